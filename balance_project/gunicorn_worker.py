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

import json
import os
import socket
import time
from typing import Any

from gunicorn import util as gunicorn_util
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


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it cannot parse (a bad request line or header, an oversized
    header), in the service's JSON envelope instead of gunicorn's HTML page. What the client sent is
    not repeated back."""
    code = "internal_error" if status_int >= 500 else "invalid_request"
    body = json.dumps(
        {"error": {"code": code, "message": reason.lower(), "details": {"status": status_int}}},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn_util.write_nonblock(sock, head + body)


class DeadlineThreadWorker(ThreadWorker):
    def init_process(self):
        # gunicorn writes its own error pages through this one function; the service's clients
        # (and its schema) expect JSON everywhere.
        gunicorn_util.write_error = write_json_error
        super().init_process()

    def handle(self, conn):
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.start(REQUEST_READ_TIMEOUT_SECONDS)
        return super().handle(conn)
