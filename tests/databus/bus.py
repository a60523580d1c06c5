"""Talking to the real STOMP broker in tests: settings, a producer, a consumer, drops."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import stomp
from flask import Flask

from recommender.broker import BusSettings, close, open_connection
from recommender.databus.subscriber import Subscriber, SubscriberOptions, start_subscriber_thread

# RabbitMQ's STOMP plugin on this machine (guest/guest, no TLS) unless TEST_RS_DATABUS_* say else.
BUS_OVERRIDES = {
    "RS_DATABUS_HOST": os.environ.get("TEST_RS_DATABUS_HOST", "127.0.0.1"),
    "RS_DATABUS_PORT": int(os.environ.get("TEST_RS_DATABUS_PORT", "61613")),
    "RS_DATABUS_USERNAME": os.environ.get("TEST_RS_DATABUS_USERNAME", "guest"),
    "RS_DATABUS_PASSWORD": os.environ.get("TEST_RS_DATABUS_PASSWORD", "guest"),
    "RS_DATABUS_SSL": False,
}
SETTINGS = BusSettings(
    host=BUS_OVERRIDES["RS_DATABUS_HOST"],
    port=BUS_OVERRIDES["RS_DATABUS_PORT"],
    username=BUS_OVERRIDES["RS_DATABUS_USERNAME"],
    password=BUS_OVERRIDES["RS_DATABUS_PASSWORD"],
    ssl=False,
    timeout_s=5.0,
)


def unique_topic(kind: str) -> str:
    return f"/topic/test-{kind}-{uuid.uuid4().hex}"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Producer:
    """One connection sending persistent messages (bytes or text bodies as given)."""

    def __init__(self) -> None:
        self.connection = open_connection(SETTINGS)

    def send(self, topic: str, body: str | bytes) -> None:
        self.connection.send(
            topic, body, content_type="application/json", headers={"persistent": "true"}
        )

    def close(self) -> None:
        close(self.connection)


@contextmanager
def producer() -> Iterator[Producer]:
    sender = Producer()
    try:
        yield sender
    finally:
        sender.close()


class Consumer(stomp.ConnectionListener):
    """Collects the bodies published on a topic (non-durable, auto-ack)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.headers: list[dict] = []

    def on_message(self, frame) -> None:
        self.headers.append(dict(frame.headers))
        self.bodies.append(frame.body)


@contextmanager
def consumer(topic: str) -> Iterator[Consumer]:
    listener = Consumer()
    connection = open_connection(SETTINGS, {"consumer": listener})
    connection.subscribe(topic, id=f"test-consumer-{uuid.uuid4().hex}", ack="auto")
    time.sleep(0.2)  # the broker binds the subscription before anything is published
    try:
        yield listener
    finally:
        close(connection)


def delete_durable_subscription(topic: str, subscription_id: str) -> None:
    """Remove the broker-side queue of a durable subscription (RabbitMQ: UNSUBSCRIBE with the
    same durable headers)."""
    durable = {"durable": "true", "auto-delete": "false"}
    connection = open_connection(SETTINGS)
    try:
        connection.subscribe(topic, id=subscription_id, ack="auto", headers=durable)
        connection.unsubscribe(subscription_id, headers=durable)
        time.sleep(0.1)
    finally:
        close(connection)


def subscriber_options(topic: str, subscription_id: str, durable: bool = True, **changes):
    return SubscriberOptions(
        bus=SETTINGS,
        topic=topic,
        subscription_id=subscription_id,
        durable=durable,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
        **changes,
    )


@contextmanager
def running_subscriber(
    app: Flask,
    topic: str,
    subscription_id: str | None = None,
    durable: bool = True,
    keep: bool = False,
    **changes,
) -> Iterator[tuple[Subscriber, threading.Thread]]:
    """A subscriber in a thread of this process (so it shares the mongomock store); its
    durable subscription is deleted on exit unless `keep`."""
    subscription_id = subscription_id or f"test-sub-{uuid.uuid4().hex}"
    stop = threading.Event()
    options = subscriber_options(topic, subscription_id, durable, **changes)
    subscriber, thread = start_subscriber_thread(app, options, stop)
    try:
        assert subscriber.connected.wait(10), "the subscriber did not subscribe"
        yield subscriber, thread
    finally:
        stop.set()
        thread.join(10)
        if durable and not keep:
            delete_durable_subscription(topic, subscription_id)


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def connection_dropper(subscriber: Subscriber) -> Callable[[], str]:
    """A function making the broker drop the subscriber's present connection; it returns how
    it was done. (Looked up now, as rabbitmqctl takes a second or so.)

    With rabbitmqctl here: kill the broker-side AMQP connection behind this STOMP connection
    (found by the client's port); the broker then sends ERROR and closes the socket, as when
    it fails. (`close_connection` does not reach STOMP connections.) Else: shut the socket."""
    sock = subscriber.connection.transport.socket
    local_port = sock.getsockname()[1]
    if shutil.which("rabbitmqctl"):
        listing = _rabbitmqctl("list_stomp_connections", "connection", "peer_port", "-s")
        for line in listing.splitlines():
            pid, _, port = line.strip().partition("\t")
            found = re.fullmatch(r"<[^.]+\.\d+\.(\d+)\.(\d+)>", pid)
            if port.strip() == str(local_port) and found:
                local_pid = f"<0.{found.group(1)}.{found.group(2)}>"
                command = f'exit(list_to_pid("{local_pid}"), kill).'
                return lambda: _rabbitmqctl("eval", command) and "broker"

    def shut() -> str:
        sock.shutdown(socket.SHUT_RDWR)
        return "socket"

    return shut


class CuttableLink:
    """A TCP forwarder to the test broker that can be cut: the broker as seen through a network
    that fails. After `cut()` the open connections are closed and new ones are refused."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # cut
                return
            upstream = socket.create_connection((SETTINGS.host, SETTINGS.port))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
