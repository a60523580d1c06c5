"""Databus ingestion benchmark: user actions through the STOMP subscriber into the store.

    .venv/bin/python benchmarks/databus.py [--backlog 2000] [--rate 500] [--seconds 4]

Against the real broker (RabbitMQ STOMP at 127.0.0.1:61613, guest/guest unless
TEST_RS_DATABUS_* say otherwise) and the in-process mongomock store, with the subscriber
running in a thread of this process as `flask demo --subscribe` runs it:

1. **drain**: `--backlog` valid actions are published to a durable subscription while the
   subscriber is away; then it starts and the time to store them all gives the sustained
   ingestion rate (messages/s) with the broker never waiting on the publisher.
2. **paced**: a publisher process sends `--rate` actions/s for `--seconds` to a running
   subscriber; end-to-end delay = time stored - time sent (p50, p99, max), and the rate kept.

Each phase starts on an empty store; the store's distinct actions are printed (every one
stored exactly once: the counts equal the messages sent). `--no-write` is a diagnostic that
leaves the database write out, to show what mongomock's inserts cost.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FLASK_ENV", "production")

from recommender import create_app  # noqa: E402
from recommender.broker import BusSettings, close, open_connection  # noqa: E402
from recommender.databus import subscriber as subscriber_module  # noqa: E402
from recommender.databus.subscriber import SubscriberOptions, start_subscriber_thread  # noqa: E402
from recommender.models.activity import UserAction  # noqa: E402
from tests.user_actions.payloads import user_action  # noqa: E402

SETTINGS = BusSettings(
    host=os.environ.get("TEST_RS_DATABUS_HOST", "127.0.0.1"),
    port=int(os.environ.get("TEST_RS_DATABUS_PORT", "61613")),
    username=os.environ.get("TEST_RS_DATABUS_USERNAME", "guest"),
    password=os.environ.get("TEST_RS_DATABUS_PASSWORD", "guest"),
    ssl=False,
)


def action(n: int) -> dict:
    """A Marketplace panel click (distinct per n), shaped as the tests' user actions are."""
    return user_action(
        user_id=n % 5000,
        source__root__resource_id=n % 3000,
        target__page_id=f"/services/{n % 3000}",
        action__order=n % 10 == 0,
    )


def publish(topic: str, bodies: list[str], rate: float | None, sent_at: dict | None) -> None:
    """Send `bodies` (at `rate` per second when given), recording each send time."""
    connection = open_connection(SETTINGS)
    started = time.monotonic()
    try:
        for i, body in enumerate(bodies):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if sent_at is not None:
                sent_at[i] = time.time()
            connection.send(topic, body, content_type="application/json")
    finally:
        close(connection)


def publish_process(topic: str, bodies: list[str], rate: float, results) -> None:
    sent_at: dict[int, float] = {}
    publish(topic, bodies, rate, sent_at)
    results.put(sent_at)


def record_store_times(stored_at: dict[str, float], write: bool) -> None:
    """Note when each action's batch was stored (instrumentation of the subscriber); without
    `write`, skip the database write (diagnostic: what the rest of the path costs)."""
    store = subscriber_module.store_actions if write else (lambda actions, _: [True] * len(actions))

    def timed(actions, source):
        result = store(actions, source)
        now = time.time()
        for item in actions:
            stored_at.setdefault(item.target.visit_id, now)
        return result

    subscriber_module.store_actions = timed


def options(topic: str, subscription: str) -> SubscriberOptions:
    return SubscriberOptions(bus=SETTINGS, topic=topic, subscription_id=subscription)


def stop(handle) -> None:
    event, thread = handle
    event.set()
    thread.join(10)


def start(app, topic: str, subscription: str):
    event = threading.Event()
    subscriber, thread = start_subscriber_thread(app, options(topic, subscription), event)
    if not subscriber.connected.wait(10):
        raise SystemExit("the subscriber could not subscribe")
    return event, thread


def delete_subscription(topic: str, subscription: str) -> None:
    durable = {"durable": "true", "auto-delete": "false"}
    connection = open_connection(SETTINGS)
    connection.subscribe(topic, id=subscription, ack="auto", headers=durable)
    connection.unsubscribe(subscription, headers=durable)
    time.sleep(0.1)
    close(connection)


def wait_stored(stored_at: dict[str, float], expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stored_at) < expected and time.monotonic() < deadline:
        time.sleep(0.01)


def distinct_stored() -> int:
    return len(UserAction._get_collection().distinct("target.visit_id"))


def drain(n: int, stored_at: dict[str, float]) -> dict:
    app = create_app(MONGODB_HOST="mongomock", RS_API_TOKEN=None)
    topic, subscription = f"/topic/bench-{uuid.uuid4().hex}", f"bench-{uuid.uuid4().hex}"
    actions = [action(i) for i in range(n)]
    with app.app_context():
        stop(start(app, topic, subscription))  # creates the durable queue, then goes away
        publish(topic, [json.dumps(a) for a in actions], None, None)
        stored_at.clear()
        started = time.time()
        handle = start(app, topic, subscription)
        wait_stored(stored_at, n, 300)
        stop(handle)
        delete_subscription(topic, subscription)
        stored = distinct_stored()
    elapsed = max(stored_at.values()) - started
    return {"messages": n, "handled": len(stored_at), "stored": stored, "seconds": elapsed}


def paced(rate: float, seconds: float, stored_at: dict[str, float]) -> dict:
    app = create_app(MONGODB_HOST="mongomock", RS_API_TOKEN=None)
    topic, subscription = f"/topic/bench-{uuid.uuid4().hex}", f"bench-{uuid.uuid4().hex}"
    n = int(rate * seconds)
    actions = [action(i) for i in range(n)]
    with app.app_context():
        handle = start(app, topic, subscription)
        stored_at.clear()
        results = multiprocessing.get_context("spawn").Queue()
        sender = multiprocessing.get_context("spawn").Process(
            target=publish_process, args=(topic, [json.dumps(a) for a in actions], rate, results)
        )
        sender.start()
        sent_at = results.get(timeout=seconds * 10 + 60)
        sender.join()
        wait_stored(stored_at, n, 300)
        stop(handle)
        delete_subscription(topic, subscription)
        stored = distinct_stored()
    delays = np.array(
        [stored_at[a["target"]["visit_id"]] - sent_at[i] for i, a in enumerate(actions)]
    )
    span = max(stored_at.values()) - min(sent_at.values())
    return {
        "messages": n,
        "handled": len(stored_at),
        "stored": stored,
        "rate": n / span,
        "p50_ms": float(np.percentile(delays, 50) * 1000),
        "p99_ms": float(np.percentile(delays, 99) * 1000),
        "max_ms": float(delays.max() * 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="diagnostic: everything but the database write (mongomock's cost left out)",
    )
    args = parser.parse_args()
    stored_at: dict[str, float] = {}
    record_store_times(stored_at, write=not args.no_write)
    mode = "without the database write" if args.no_write else "into mongomock"

    result = drain(args.backlog, stored_at)
    print(
        f"drain ({mode}): {result['handled']} of {result['messages']} messages in "
        f"{result['seconds']:.2f} s = {result['handled'] / result['seconds']:.0f} messages/s; "
        f"distinct actions in the store: {result['stored']}"
    )
    result = paced(args.rate, args.seconds, stored_at)
    print(
        f"paced at {args.rate:.0f}/s ({mode}): {result['handled']} of {result['messages']} "
        f"messages, kept {result['rate']:.0f}/s; delay p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms; distinct actions in "
        f"the store: {result['stored']}"
    )


if __name__ == "__main__":
    main()
