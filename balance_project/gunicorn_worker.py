"""gunicorn's threaded worker with a deadline on reading each request, probes that never wait for a
busy thread, and a bounded drain (gunicorn.conf.py selects it).

gunicorn's gthread worker hands a connection to a thread once its first byte arrives, and the thread
then reads headers and body with blocking reads that each wait as long as the client likes. A client
sending one byte a second (slowloris) holds a thread for as long as it cares to, and as many such
clients as threads take the API down. Here every read of a request, headers and body, shares one
deadline (``HTTP_REQUEST_READ_TIMEOUT`` seconds from the start of the request): past it the read
fails, the body is refused (400 in balance_project/api.py) or the connection closed, and the
thread is free again. Writes of the answer get their own bound, so a client that stops reading
does not hold a thread either. A buffering proxy in front (docker/compose.yaml) does the same job
better; this keeps the service standing without one.

Probes (``/health``, ``/ready``) get threads of their own (``PROBE_THREADS``): before a connection is
handed to a thread its first bytes are peeked at, and a probe's request line sends it to the probe
pool, so probes are answered while every request thread waits on the database. A connection with
nothing to read yet waits on the poller, not on a thread. ``/ready`` itself answers within a second
whatever the database does (balance_project/health.py).

The drain: on SIGTERM gunicorn stops accepting and lets requests in flight finish; at
``graceful_timeout - DRAIN_CANCEL_BEFORE_KILL_SECONDS`` the database work still in flight is
cancelled (balance_project/drain.py: those requests answer an error, nothing they did commits), so
the worker is gone before the arbiter kills it at ``graceful_timeout`` (a killed worker's backend
would go on waiting on its lock, and commit once it got it). docs/processes.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import socket
import threading
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

from balance_project import drain

REQUEST_READ_TIMEOUT_SECONDS = float(os.environ.get("HTTP_REQUEST_READ_TIMEOUT", "10"))
RESPONSE_WRITE_TIMEOUT_SECONDS = float(os.environ.get("HTTP_RESPONSE_WRITE_TIMEOUT", "30"))
PROBE_THREADS = 2
# The request line of a probe, as the first bytes on the connection (query string allowed).
PROBE_REQUEST = re.compile(rb"(GET|HEAD) /(health|ready)[ ?]")
# At SIGTERM + graceful_timeout - this, what requests still do in the database is cancelled.
DRAIN_CANCEL_BEFORE_KILL_SECONDS = 1.0


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


def _peek(sock: Any) -> bytes | None:
    """The bytes waiting on ``sock``, left there; None when there are none yet (b"" at EOF)."""
    try:
        return sock.recv(16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


class DeadlineThreadWorker(ThreadWorker):
    def init_process(self):
        # gunicorn writes its own error pages through this one function; the service's clients
        # (and its schema) expect JSON everywhere.
        gunicorn_util.write_error = write_json_error
        self.probe_pool = futures.ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="http-probe")
        drain.guard_connections()
        super().init_process()

    def enqueue_req(self, conn):
        if self.cfg.is_ssl or (conn.parser is not None and conn.parser.unreader.buf.getvalue()):
            # Encrypted bytes say nothing; a request read ahead into the parser is past peeking.
            return super().enqueue_req(conn)
        first = _peek(conn.sock)
        if first is None and not conn.initialized and self.alive and self.cfg.keepalive > 0:
            # Nothing sent yet: wait on the poller (gthread's "pending" connections), not on a thread.
            self._wait_for_first_bytes(conn)
            return None
        if first and PROBE_REQUEST.match(first):
            future = self.probe_pool.submit(self.handle, conn)
            future.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))
            return None
        return super().enqueue_req(conn)

    def _wait_for_first_bytes(self, conn) -> None:
        # As gthread defers a connection whose thread saw no data (the same timeout keeps its
        # list of pending connections in order).
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def handle_exit(self, sig, frame):
        if self.alive:
            delay = max(0.0, self.cfg.graceful_timeout - DRAIN_CANCEL_BEFORE_KILL_SECONDS)
            timer = threading.Timer(delay, self._cancel_database_work)
            timer.daemon = True
            timer.start()
        super().handle_exit(sig, frame)

    def _cancel_database_work(self) -> None:
        cancelled = drain.cancel_database_work()
        if cancelled:
            self.log.warning("graceful timeout near: cancelled %s database statements in flight", cancelled)

    def run(self):
        super().run()
        self.probe_pool.shutdown(wait=False)
        if drain.refusing():
            # Its statements were cancelled and answered: what is left is the interpreter's own
            # teardown, which was seen to take over a second after a cancel (past the arbiter's
            # kill). Nothing is left to finish, so the worker leaves now.
            self.log.info("Worker exiting after the drain (pid: %s)", self.pid)
            logging.shutdown()
            os._exit(0)

    def handle(self, conn):
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.start(REQUEST_READ_TIMEOUT_SECONDS)
        return super().handle(conn)
