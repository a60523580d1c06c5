"""The databus subscriber: user actions from a STOMP topic, stored as `POST /user_actions` does.

Delivery guarantees:
- `client-individual` acks, sent only after the batch holding the message is stored (or the
  message is kept as a RejectedMessage with its reason): a crash never loses an action.
- A durable subscription (default) keeps what is published while the subscriber is away.
- Redelivered messages are stored once: user actions have a unique content fingerprint.
- The connection is re-opened with back-off, forever; stopping (SIGTERM, Ctrl-C, `stop_event`)
  finishes the batch in hand, and unacknowledged messages go back to the broker.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import stomp
from flask import Flask
from pymongo.errors import ConnectionFailure
from stomp.exception import ConnectFailedException

from recommender.broker import BusSettings, close, open_connection, text
from recommender.errors import InvalidInputError
from recommender.models.ops import RejectedMessage
from recommender.schemas.user_action import UserActionIn, validate_user_action
from recommender.services.user_actions import count_rejected, store_actions

logger = logging.getLogger(__name__)
# A durable subscription must keep its id across restarts (it names the broker-side queue).
DEFAULT_DURABLE_ID = "recommender"
MAX_KEPT_BODY = 64 * 1024  # characters of a rejected body kept for inspection


@dataclass(frozen=True)
class SubscriberOptions:
    bus: BusSettings = field(default_factory=BusSettings)
    topic: str = "/topic/user_actions"
    subscription_id: str = DEFAULT_DURABLE_ID
    durable: bool = True
    prefetch: int = 1000  # unacknowledged messages the broker may send ahead
    batch_size: int = 200  # messages stored with one bulk write at most
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def subscription_headers(options: SubscriberOptions) -> tuple[dict[str, str], dict[str, str]]:
    """(CONNECT headers, SUBSCRIBE headers) for the options' durability and prefetch."""
    subscribe = {  # how many unacknowledged messages the broker may send ahead
        "prefetch-count": str(options.prefetch),  # RabbitMQ
        "activemq.prefetchSize": str(options.prefetch),  # ActiveMQ
    }
    if not options.durable:
        return {}, subscribe
    subscribe |= {
        "durable": "true",  # RabbitMQ: a queue that outlives the connection ...
        "auto-delete": "false",  # ... and is not deleted when the consumer leaves
        "activemq.subscriptionName": options.subscription_id,  # ActiveMQ durable subscriber
    }
    return {"client-id": options.subscription_id}, subscribe  # ActiveMQ needs a client id too


def decode_body(body: bytes | str) -> dict:
    """A JSON object, or a JSON-encoded string holding one (double-encoded); else ValueError."""
    data = json.loads(body)
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise ValueError(f"the body is JSON {type(data).__name__}, not an object")
    return data


class _Inbox(stomp.ConnectionListener):
    """What one connection delivers; `lost` is set when that connection goes away."""

    def __init__(self) -> None:
        self.frames: queue.Queue = queue.Queue()
        self.lost = threading.Event()
        self.receipt = f"subscribed-{uuid.uuid4()}"
        self.subscribed = threading.Event()  # the broker confirmed the SUBSCRIBE

    def on_message(self, frame) -> None:
        self.frames.put(frame)

    def on_receipt(self, frame) -> None:
        if frame.headers.get("receipt-id") == self.receipt:
            self.subscribed.set()

    def on_error(self, frame) -> None:
        message = frame.headers.get("message", "")
        logger.error("Databus ERROR frame: %s %s", message, text(frame.body))

    def on_disconnected(self) -> None:
        self.lost.set()

    def on_heartbeat_timeout(self) -> None:
        logger.warning("Databus heart-beat timed out")
        self.lost.set()


class _StoreError(Exception):
    """Storing a batch failed (e.g. the database is down): nothing of it was acknowledged."""


class Subscriber:
    def __init__(self, options: SubscriberOptions, stop_event: threading.Event | None = None):
        self.options = options
        self.stop_event = stop_event or threading.Event()
        self.connection: stomp.Connection11 | None = None
        self.connected = threading.Event()  # set while subscribed (tests and the demo wait on it)
        self.sessions = 0  # successful (re)subscriptions
        self.store_failures = 0  # consecutive batches the database did not take

    def run(self) -> None:
        """Subscribe and store until `stop_event` is set, reconnecting with back-off."""
        options = self.options
        attempt = 0
        logger.info(
            "Subscribing to %s on %s as %r (%s)",
            options.topic,
            options.bus.address,
            options.subscription_id,
            "durable" if options.durable else "not durable",
        )
        while not self.stop_event.is_set():
            attempt += 1
            try:
                inbox = self._subscribe()
            except Exception as error:
                delay = self._backoff(attempt)
                logger.warning(
                    "Databus connection attempt %d failed (%s); retrying in %.1f s",
                    attempt,
                    error,
                    delay,
                )
                self.stop_event.wait(delay)
                continue
            logger.info("Subscribed to %s (attempt %d)", options.topic, attempt)
            attempt = 0
            try:
                self._consume(inbox)
            except Exception as error:
                # Unacknowledged messages go back to the broker when the connection closes;
                # the wait grows while the database stays unreachable.
                self.store_failures += 1
                delay = self._backoff(self.store_failures)
                logger.error(
                    "%s; reconnecting in %.1f s",
                    error,
                    delay,
                    exc_info=not isinstance(error, _StoreError),  # a bug: show where
                )
                self.stop_event.wait(delay)
            finally:
                self.connected.clear()
                close(self.connection)
                self.connection = None
            if not self.stop_event.is_set():
                logger.warning("Databus connection lost; reconnecting")
        logger.info("Databus subscriber stopped")

    def _backoff(self, attempt: int) -> float:
        base = min(self.options.backoff_max_s, self.options.backoff_initial_s * 2 ** (attempt - 1))
        return base * random.uniform(0.8, 1.2)  # jitter: restarted subscribers do not align

    def _subscribe(self) -> _Inbox:
        connect_headers, subscribe_headers = subscription_headers(self.options)
        inbox = _Inbox()
        connection = open_connection(
            self.options.bus, {"inbox": inbox}, connect_headers, auto_decode=False
        )
        self.connection = connection
        try:
            # With a receipt: "subscribed" means the broker has bound the subscription, so
            # nothing published from then on can miss it.
            connection.subscribe(
                self.options.topic,
                id=self.options.subscription_id,
                ack="client-individual",
                headers={**subscribe_headers, "receipt": inbox.receipt},
            )
            if not inbox.subscribed.wait(self.options.bus.timeout_s):
                raise ConnectFailedException(f"no receipt for SUBSCRIBE {self.options.topic}")
        except Exception:
            close(connection)
            self.connection = None
            raise
        self.sessions += 1
        self.connected.set()
        return inbox

    def _consume(self, inbox: _Inbox) -> None:
        while not self.stop_event.is_set() and not inbox.lost.is_set():
            batch = self._next_batch(inbox)
            if batch:
                self._handle(batch)

    def _next_batch(self, inbox: _Inbox) -> list:
        """Up to `batch_size` frames: waits briefly for the first, takes what else is there."""
        try:
            batch = [inbox.frames.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < self.options.batch_size:
            try:
                batch.append(inbox.frames.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, frames: list) -> None:
        valid: list[tuple[Any, UserActionIn]] = []
        rejected: list[dict] = []
        for frame in frames:
            try:
                action = validate_user_action(decode_body(frame.body), known_clients_only=False)
            except InvalidInputError as error:
                rejected.append(self._rejected(frame, str(error)))
            except Exception as error:  # not JSON, not UTF-8, not an object, too deep
                rejected.append(self._rejected(frame, f"invalid JSON body: {error}"))
            else:
                valid.append((frame, action))
        try:
            rejected += self._store(valid)
            if rejected:
                RejectedMessage._get_collection().insert_many(rejected)
        except Exception as error:
            raise _StoreError(f"Storing {len(frames)} databus messages failed: {error}") from None
        if rejected:
            count_rejected("databus", len(rejected))
        self.store_failures = 0
        self._ack(frames)

    def _store(self, valid: list[tuple[Any, UserActionIn]]) -> list[dict]:
        """Store the batch; when the database refuses it (not an outage), store one by one so
        that one bad action is rejected instead of blocking the queue. Returns the rejects."""
        try:
            store_actions([action for _, action in valid], "databus")
            return []
        except ConnectionFailure:
            raise
        except Exception as error:
            logger.warning("Bulk store failed (%s); storing one by one", error)
        rejected = []
        for frame, action in valid:
            try:
                store_actions([action], "databus")
            except ConnectionFailure:
                raise
            except Exception as error:
                rejected.append(self._rejected(frame, f"the database refused it: {error}"))
        return rejected

    def _rejected(self, frame, reason: str) -> dict:
        message_id = frame.headers.get("message-id")
        logger.warning("Rejected databus message %s: %s", message_id, reason)
        return (
            RejectedMessage(
                source="databus",
                destination=frame.headers.get("destination"),
                message_id=message_id,
                body=text(frame.body)[:MAX_KEPT_BODY],
                reason=reason,
            )
            .to_mongo()
            .to_dict()
        )

    def _ack(self, frames: list) -> None:
        connection = self.connection
        for frame in frames:
            try:
                connection.ack(frame.headers["message-id"], frame.headers["subscription"])
            except Exception as error:
                # The connection went away: the broker redelivers; the fingerprint dedupes.
                logger.warning("Could not acknowledge databus messages: %s", error)
                return


def run_subscriber(
    app: Flask, options: SubscriberOptions, stop_event: threading.Event | None = None
) -> Subscriber:
    """Run a subscriber inside `app` until `stop_event` is set (usable from a thread)."""
    subscriber = Subscriber(options, stop_event)
    with app.app_context():
        subscriber.run()
    return subscriber


def start_subscriber_thread(
    app: Flask, options: SubscriberOptions, stop_event: threading.Event
) -> tuple[Subscriber, threading.Thread]:
    """Run a subscriber in a daemon thread (the demo, tests); set `stop_event` to end it."""
    subscriber = Subscriber(options, stop_event)

    def target() -> None:
        with app.app_context():
            subscriber.run()

    thread = threading.Thread(target=target, name="databus-subscriber", daemon=True)
    thread.start()
    return subscriber, thread
