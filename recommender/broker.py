"""Opening STOMP connections the same way everywhere: subscriber, publisher, health check.

STOMP 1.1 (as the original): 1.2 makes stomp.py send `host: <broker host>`, which RabbitMQ reads
as a virtual host name and refuses. Credentials go as login/passcode, TLS is on when `ssl` is,
and heart-beats let both sides notice a dead peer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import stomp
from stomp.exception import ConnectFailedException

if TYPE_CHECKING:
    from recommender.settings import Settings

logger = logging.getLogger(__name__)
HEARTBEAT_MS = 10_000


@dataclass(frozen=True)
class BusSettings:
    host: str = "127.0.0.1"
    port: int = 61613
    username: str = "admin"
    password: str = "admin"
    ssl: bool = True
    heartbeat_ms: int = HEARTBEAT_MS
    timeout_s: float = 10.0

    @classmethod
    def of(cls, settings: Settings, timeout_s: float = 10.0) -> BusSettings:
        """The broker settings in effect (RS_DATABUS_*, TEST_RS_DATABUS_* when testing)."""
        bus = settings.databus()
        return cls(
            host=bus["RS_DATABUS_HOST"],
            port=bus["RS_DATABUS_PORT"],
            username=bus["RS_DATABUS_USERNAME"],
            password=bus["RS_DATABUS_PASSWORD"],
            ssl=settings.RS_DATABUS_SSL,
            timeout_s=timeout_s,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}{' (TLS)' if self.ssl else ''}"


def text(body: bytes | str | None) -> str:
    """A frame body as text, whether stomp.py decoded it or not."""
    if isinstance(body, bytes):
        return body.decode(errors="replace")
    return body or ""


class _ConnectWaiter(stomp.ConnectionListener):
    """Wakes `open_connection` on CONNECTED, ERROR or a closed socket (stomp.py's own wait has
    no time limit when the broker accepts the socket but never answers)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None

    def on_connected(self, frame) -> None:
        self.done.set()

    def on_error(self, frame) -> None:
        if not self.done.is_set():
            self.error = f"{frame.headers.get('message', 'ERROR')}: {text(frame.body)}".strip()
            self.done.set()

    def on_disconnected(self) -> None:
        if not self.done.is_set():
            self.error = self.error or "connection closed by the broker"
            self.done.set()


def open_connection(
    settings: BusSettings,
    listeners: Mapping[str, stomp.ConnectionListener] | None = None,
    headers: Mapping[str, str] | None = None,
    auto_decode: bool = True,
) -> stomp.Connection11:
    """A connected STOMP connection, or ConnectFailedException saying why (one attempt).

    `auto_decode=False` leaves message bodies as bytes (the subscriber decodes them itself, so
    a body that is not UTF-8 is rejected instead of being dropped inside stomp.py)."""
    address = (settings.host, settings.port)
    connection = stomp.Connection11(
        [address],
        try_loopback_connect=False,  # else "localhost" gets a second, TLS-less entry
        reconnect_attempts_max=1,  # callers own the retry policy
        timeout=settings.timeout_s,
        heartbeats=(settings.heartbeat_ms, settings.heartbeat_ms),
        auto_decode=auto_decode,
    )
    if settings.ssl:
        connection.set_ssl(for_hosts=[address])
    waiter = _ConnectWaiter()
    connection.set_listener("connect-waiter", waiter)
    for name, listener in (listeners or {}).items():
        connection.set_listener(name, listener)
    try:
        connection.connect(
            settings.username, settings.password, wait=False, headers=dict(headers or {})
        )
    except ConnectFailedException:
        raise ConnectFailedException(f"cannot reach {settings.address}") from None
    if not waiter.done.wait(settings.timeout_s) or waiter.error or not connection.is_connected():
        close(connection)
        raise ConnectFailedException(
            f"{settings.address}: {waiter.error or 'no answer to CONNECT'}"
        )
    connection.remove_listener("connect-waiter")
    return connection


def close(connection: stomp.Connection11 | None, wait_s: float = 2.0) -> None:
    """Disconnect politely (DISCONNECT, then the broker's receipt), else drop the socket.

    Never raises: the socket may already be gone."""
    if connection is None:
        return
    transport = connection.transport
    try:
        if connection.is_connected():
            connection.disconnect()
            deadline = time.monotonic() + wait_s
            while transport.socket is not None and time.monotonic() < deadline:
                time.sleep(0.01)
    except Exception as error:
        logger.debug("STOMP DISCONNECT failed: %s", error)
    try:
        transport.disconnect_socket()
    except Exception as error:
        logger.debug("Closing a STOMP socket: %s", error)


def check(settings: BusSettings) -> str | None:
    """None when the broker accepts these credentials, else why not (for `GET /health`)."""
    try:
        connection = open_connection(settings)
    except Exception as error:
        return str(error) or type(error).__name__
    close(connection)
    return None
