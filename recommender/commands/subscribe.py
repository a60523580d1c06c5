"""`flask subscribe`: store the user actions published on the databus, until stopped."""

from __future__ import annotations

import functools
import signal
import threading
import uuid
from collections.abc import Callable

import click
from flask import current_app
from flask.cli import with_appcontext

from recommender.broker import BusSettings
from recommender.databus.subscriber import DEFAULT_DURABLE_ID, SubscriberOptions, run_subscriber


def _topic(_ctx, _param, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must not be empty")
    return value.strip()


DATABUS_OPTIONS: list[Callable] = [
    click.option("--host", envvar="RS_DATABUS_HOST", default="127.0.0.1", show_default=True),
    click.option(
        "--port",
        envvar="RS_DATABUS_PORT",
        default=61613,
        type=click.IntRange(1, 65535),
        show_default=True,
    ),
    click.option("--username", envvar="RS_DATABUS_USERNAME", default="admin", show_default=True),
    click.option("--password", envvar="RS_DATABUS_PASSWORD", default="admin"),
    click.option(
        "--topic",
        envvar="RS_DATABUS_SUBSCRIPTION_TOPIC",
        default="/topic/user_actions",
        show_default=True,
        callback=_topic,
        help="Destination of the user actions (RabbitMQ topics: /topic/<name>).",
    ),
    click.option(
        "--subscription-id",
        envvar="RS_DATABUS_SUBSCRIPTION_ID",
        default=None,
        help=(
            f"Subscription id. A durable subscription needs a stable one "
            f"[default: {DEFAULT_DURABLE_ID!r} when durable, else recommender-<uuid4>]."
        ),
    ),
    click.option(
        "--ssl/--no-ssl",
        envvar="RS_DATABUS_SSL",
        default=True,
        show_default=True,
        help="TLS to the broker.",
    ),
    click.option(
        "--durable/--no-durable",
        envvar="RS_DATABUS_DURABLE",
        default=True,
        show_default=True,
        help="Keep what is published while the subscriber is away (a broker-side queue).",
    ),
]


def databus_options(command: Callable) -> Callable:
    """The subscriber's options (also for `flask demo --subscribe`), passed as keywords."""
    return functools.reduce(lambda f, option: option(f), reversed(DATABUS_OPTIONS), command)


def subscriber_options(
    host: str,
    port: int,
    username: str,
    password: str,
    topic: str,
    subscription_id: str | None,
    ssl: bool,
    durable: bool,
) -> SubscriberOptions:
    """SubscriberOptions from the command-line values of `databus_options`."""
    if not subscription_id:
        subscription_id = DEFAULT_DURABLE_ID if durable else f"recommender-{uuid.uuid4()}"
    return SubscriberOptions(
        bus=BusSettings(host=host, port=port, username=username, password=password, ssl=ssl),
        topic=topic,
        subscription_id=subscription_id,
        durable=durable,
    )


def environment_options() -> SubscriberOptions:
    """What `flask subscribe` without arguments uses: its defaults and RS_DATABUS_* variables
    (for `flask demo --subscribe`). click.BadParameter names a bad variable."""
    context = subscribe.make_context("subscribe", [])
    return subscriber_options(**context.params)


@click.command("subscribe")
@databus_options
@with_appcontext
def subscribe(**values) -> None:
    """Store user actions from the databus; reconnects forever, stops on SIGTERM or Ctrl-C."""
    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        click.echo(f"{signal.Signals(signum).name}: stopping after the message in hand", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run_subscriber(current_app._get_current_object(), subscriber_options(**values), stop)
