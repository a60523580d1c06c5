"""`flask demo`: the whole service in one process, with no external services.

An in-process mongomock store, a Celery worker thread on an in-memory broker (so `POST /update`
answers at once and trains in the background, as in production), a seeded synthetic marketplace,
every engine trained, then the API and the dashboard served until SIGTERM or Ctrl-C. The
databus is off (nothing publishes, `/health` says DISABLED) unless `--subscribe` asks for it:
then user actions are read from it and served Marketplace recommendations published to it.
"""

from __future__ import annotations

import signal
import threading

import click
from celery.contrib.testing.worker import start_worker
from flask import Flask
from werkzeug.serving import make_server


def build_demo_app(current: Flask, databus: bool = False) -> Flask:
    """A new app on the in-process store, built by the factory that built `current`; the
    databus is used only when `databus`."""
    config = current.config
    return current.extensions["create_app"](
        config["ENV_NAME"],
        MONGODB_HOST="mongomock",
        CELERY_TASK_ALWAYS_EAGER=False,
        CELERY_BROKER_URL="memory://",
        CELERY_RESULT_BACKEND="cache+memory://",
        RS_DATABUS_HOST=config["RS_DATABUS_HOST"],
        RS_DATABUS_ENABLED=databus,
    )


def seed_and_train(users: int, services: int, sessions: int, seed: int) -> None:
    from recommender.services.seeding import seed_database
    from recommender.services.update import train_chain

    report = seed_database(users, services, sessions, seed)
    click.echo(
        f"Seeded {report.services} services, {report.users} users, "
        f"{report.recommendations} recommendations, {report.user_actions} user actions."
    )
    for outcome in train_chain(None, seed=seed, progress=True):
        detail = f" ({outcome.reason})" if outcome.reason else ""
        click.echo(f"  {outcome.pipeline}: {outcome.status}{detail}")


def serve_until_stopped(app, host: str, port: int, subscribe: bool) -> None:
    server = make_server(host, port, app, threaded=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threads = [threading.Thread(target=server.serve_forever, name="demo-http", daemon=True)]
    threads[0].start()
    if subscribe:
        threads += start_databus(app, stop)
    root = f"http://{host}:{server.port}"
    sign_in = " (sign in with RS_API_TOKEN)" if app.config.get("RS_API_TOKEN") else ""
    click.echo(
        f"Swagger UI: {root}/  Dashboard: {root}/dashboard/{sign_in}  (Ctrl-C stops the demo)"
    )
    stop.wait()
    click.echo("Stopping")
    server.shutdown()
    for thread in threads:
        thread.join()


def start_databus(app, stop: threading.Event) -> list[threading.Thread]:
    """The subscriber of `flask subscribe` (same options from RS_DATABUS_* variables) and the
    publisher of served recommendations (the worker's periodic task in a deployment)."""
    from recommender.commands.subscribe import environment_options
    from recommender.databus import run_publisher, start_subscriber_thread
    from recommender.services.runtime import runtime

    options = environment_options()
    _, subscriber = start_subscriber_thread(app, options, stop)
    click.echo(f"Subscribing to {options.topic} on {options.bus.address}")
    publisher = threading.Thread(
        target=run_publisher,
        args=(app, runtime().settings, stop),
        name="databus-publisher",
        daemon=True,
    )
    publisher.start()
    return [subscriber, publisher]


@click.command(
    help=(
        "Run the whole service in one process with no external services: an in-process "
        "store, seeded synthetic data, every engine trained, then the API (Swagger UI at /) "
        "and the operations dashboard (/dashboard/)."
    )
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--users", default=300, show_default=True, help="Synthetic users.")
@click.option("--services", default=120, show_default=True, help="Synthetic services.")
@click.option("--sessions", default=800, show_default=True, help="Synthetic browsing sessions.")
@click.option("--seed", default=42, show_default=True, help="Seed of data and training.")
@click.option(
    "--subscribe",
    is_flag=True,
    help=(
        "Use the databus (RS_DATABUS_* variables): store user actions from it, as `flask "
        "subscribe`, and publish served Marketplace recommendations to it."
    ),
)
def demo(
    host: str, port: int, users: int, services: int, sessions: int, seed: int, subscribe: bool
) -> None:
    from flask import current_app

    from recommender.celery_app import celery

    app = build_demo_app(current_app, databus=subscribe)
    with app.app_context():
        seed_and_train(users, services, sessions, seed)
        with start_worker(celery, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            serve_until_stopped(app, host, port, subscribe)
