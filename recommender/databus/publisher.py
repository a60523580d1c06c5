"""Publishing served recommendations to the databus, from the stored outbox.

A served Marketplace recommendation is stored with `published` False (databus/outbox.py); the
request never talks to a broker or a queue. A worker's periodic task (`publish_pending`, every
RS_DATABUS_PUBLISH_INTERVAL seconds from Celery beat) claims a batch, sends each message over
the process's one STOMP connection, waits for the broker's receipt and marks the document
published. When the broker fails, what was not confirmed is released for the next run (counted
as retries): nothing stored is dropped. A sender killed between a receipt and its mark sends
that one message again once its claim expires; each message carries a `recommendation-id`
header so a consumer can recognise it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping

import stomp
from flask import Flask
from prometheus_client import Counter, Gauge
from stomp.exception import StompException

from recommender.broker import BusSettings, close, open_connection
from recommender.databus import outbox
from recommender.settings import Settings

logger = logging.getLogger(__name__)
RECOMMENDER_SYSTEM = "recommender"
BATCH = 200  # documents claimed at once
CLAIM_TTL_S = 120.0  # past this a sender that died loses its claim (a batch takes < 1 s)

PUBLISHED = Counter("recommender_databus_published_total", "Recommendations sent to the databus")
PUBLISH_RETRIES = Counter(
    "recommender_databus_publish_retries_total",
    "Recommendations left in the outbox for the next run after a broker failure",
)
WAITING = Gauge(
    "recommender_databus_unpublished",
    "Stored Marketplace recommendations waiting to be published (as the last run saw them)",
    multiprocess_mode="livemax",
)
RETRYABLE = (StompException, OSError)


class PublishError(OSError):
    """The broker did not confirm a message (no receipt in time, or the connection dropped)."""


def recommendation_message(context: Mapping, response: Mapping) -> str:
    """The body the Marketplace's consumers read (the original's shape)."""
    return json.dumps(
        {"recommender_system": RECOMMENDER_SYSTEM, "context": context, "response": response}
    )


def message_of(document: Mapping) -> str:
    """A stored recommendation's message: the request as received, completed with the panel
    and the candidates it was answered from, and the response as it was sent."""
    panel = document["panel_id"]
    context = {**json.loads(document["request"]), "panel_id": panel}
    context["candidates"] = document["candidates"]
    response = {
        "panel_id": panel,
        "recommendations": document["services"],
        "scores": document["scores"],
        "explanations": document["explanations"],
        "explanations_short": document["explanations_short"],
        "engine_version": document["engine_version"],
    }
    if document.get("experiment"):  # as the response carried it
        response["experiment"] = {"id": document["experiment"], "variant": document["variant"]}
    return recommendation_message(context, response)


class _Receipts(stomp.ConnectionListener):
    def __init__(self) -> None:
        self._waiting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def expect(self, receipt: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiting[receipt] = event
        return event

    def on_receipt(self, frame) -> None:
        with self._lock:
            event = self._waiting.pop(frame.headers.get("receipt-id", ""), None)
        if event is not None:
            event.set()

    def on_disconnected(self) -> None:
        # Wake every waiter now; the sender sees the connection is gone and fails.
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for event in waiting.values():
            event.set()


class Channel:
    """One STOMP connection per process, opened on first use and reused by every send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: stomp.Connection11 | None = None
        self._receipts = _Receipts()
        self._settings: BusSettings | None = None

    def send(
        self,
        settings: BusSettings,
        destination: str,
        body: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send `body` and wait for the broker's receipt; PublishError or a STOMP/OS error
        when it is not confirmed (the connection is then dropped and re-opened next time)."""
        with self._lock:
            connection = self._connected(settings)
            receipt = str(uuid.uuid4())
            confirmed = self._receipts.expect(receipt)
            try:
                connection.send(
                    destination,
                    body,
                    content_type="application/json",
                    headers={**(headers or {}), "persistent": "true", "receipt": receipt},
                )
                if not confirmed.wait(settings.timeout_s) or not connection.is_connected():
                    raise PublishError(f"no receipt from {settings.address}")
            except Exception:
                self._drop()
                raise

    def _connected(self, settings: BusSettings) -> stomp.Connection11:
        if self._connection is not None and (
            settings != self._settings or not self._connection.is_connected()
        ):
            self._drop()
        if self._connection is None:
            self._connection = open_connection(settings, {"receipts": self._receipts})
            self._settings = settings
        return self._connection

    def _drop(self) -> None:
        close(self._connection, wait_s=0.5)
        self._connection = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def forget_after_fork(self) -> None:
        # The socket belongs to the parent: a DISCONNECT from the child would end its session.
        self.__init__()


channel = Channel()
os.register_at_fork(after_in_child=channel.forget_after_fork)


def publish_pending(settings: Settings, batch: int = BATCH) -> int:
    """Send every waiting recommendation, a claimed batch at a time; returns how many the broker
    confirmed. Stops at the first broker failure, releasing the rest of the batch."""
    bus = BusSettings.of(settings)
    topic = settings.databus()["RS_DATABUS_PUBLISH_TOPIC"]
    sent = 0
    while True:
        token, documents = outbox.claim(batch, CLAIM_TTL_S)
        for index, document in enumerate(documents):
            try:
                channel.send(
                    bus,
                    topic,
                    message_of(document),
                    {"recommendation-id": str(document["_id"])},
                )
            except RETRYABLE as error:
                left = [doc["_id"] for doc in documents[index:]]
                outbox.release(left, token)
                PUBLISH_RETRIES.inc(len(left))
                logger.warning(
                    "Publishing to the databus failed (%s); %d recommendations wait for the "
                    "next run",
                    error,
                    len(left),
                )
                WAITING.set(outbox.waiting())
                return sent
            outbox.mark_published(document["_id"], token)
            PUBLISHED.inc()
            sent += 1
        if len(documents) < batch:
            WAITING.set(outbox.waiting())
            return sent


def run_publisher(app: Flask, settings: Settings, stop: threading.Event) -> None:
    """`publish_pending` every RS_DATABUS_PUBLISH_INTERVAL seconds until `stop` (the demo;
    deployments run the periodic Celery task instead)."""
    with app.app_context():
        while not stop.wait(settings.RS_DATABUS_PUBLISH_INTERVAL):
            try:
                publish_pending(settings)
            except Exception:
                logger.exception("Publishing to the databus failed")
