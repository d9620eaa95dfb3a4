"""gunicorn's threaded worker with a deadline on reading each request (gunicorn.conf.py selects it).

gunicorn's gthread worker hands a connection to a thread once its first byte arrives, and the thread
then reads headers and body with blocking reads that each wait as long as the client likes. A client
sending one byte a second (slowloris) holds a thread for as long as it cares to, and as many such
clients as threads take the API down. Here every read of a request, headers and body, shares one
deadline (``HTTP_REQUEST_READ_TIMEOUT`` seconds from the start of the request): past it the read
fails, the body is refused (400 in balance_project/api.py) or the connection closed, and the
thread is free again. Writes of the answer get their own bound, so a client that stops reading
does not hold a thread either. A buffering proxy in front (docker/compose.yaml) does the same job
better; this keeps the service standing without one.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

REQUEST_READ_TIMEOUT_SECONDS = float(os.environ.get("HTTP_REQUEST_READ_TIMEOUT", "10"))
RESPONSE_WRITE_TIMEOUT_SECONDS = float(os.environ.get("HTTP_RESPONSE_WRITE_TIMEOUT", "30"))


class DeadlineSocket:
    """A client socket whose reads all end by one deadline (``start`` sets it per request)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._deadline: float | None = None

    def start(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def recv(self, size: int, *flags: int) -> bytes:
        if self._deadline is None:
            return self._sock.recv(size, *flags)
        left = self._deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            return self._bounded(left, self._sock.recv, size, *flags)
        except TimeoutError:
            # As a client that hung up: gunicorn closes quietly while it reads headers, and Django
            # reports an unreadable body (a 400 from balance_project/api.py) while the view reads it.
            raise NoMoreData(b"") from None

    def sendall(self, data: Any, *flags: int) -> None:
        self._bounded(RESPONSE_WRITE_TIMEOUT_SECONDS, self._sock.sendall, data, *flags)

    def send(self, data: Any, *flags: int) -> int:
        return self._bounded(RESPONSE_WRITE_TIMEOUT_SECONDS, self._sock.send, data, *flags)

    def _bounded(self, seconds: float, call: Any, *args: Any) -> Any:
        # Only a socket the worker left blocking is bounded; one it put in non-blocking mode (for its
        # poller) is left as it is.
        if self._sock.gettimeout() is not None:
            return call(*args)
        self._sock.settimeout(seconds)
        try:
            return call(*args)
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineThreadWorker(ThreadWorker):
    def handle(self, conn):
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.start(REQUEST_READ_TIMEOUT_SECONDS)
        return super().handle(conn)
