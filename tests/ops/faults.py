"""Real faults for the degradation tests (part of #10): a private redis-server the test can freeze,
snapshot and restart from an old dump, and a TCP proxy in the test process in front of the shared
PostgreSQL that the test can make refuse (down) or swallow (hung) traffic. Nothing here touches the
shared servers themselves."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class PrivateRedis:
    """``redis-server`` on a free port, its dump in ``directory`` (``SAVE`` writes it, ``restart``
    loads it: a Redis back from an older snapshot)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.directory), "--dbfilename", "dump.rdb"),
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        assert wait_until(lambda: _pings(client)), "redis-server did not start"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def save(self) -> None:
        self.client().save()

    def kill(self) -> None:
        """Gone at once, without saving (SIGKILL): the dump on disk stays as the last SAVE left it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.kill()
        self.process.wait(timeout=10)

    def restart_from_dump(self) -> None:
        self.kill()
        self.start()

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


class TcpProxy:
    """127.0.0.1:<port> -> ``target``. ``refuse()``: every open connection is reset and new ones are
    refused (a database that is down); ``swallow()``: connections stay open and nothing reaches
    either side (a frozen server or a network black hole); ``forward()``: normal again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.mode = "forward"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._stopped = False
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by refuse() or stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        ends = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(ends), [], [], 0.05)
                if self.mode == "swallow":
                    continue  # nothing read, nothing sent: both sides wait
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                try:
                    sock.close()
                except OSError:
                    pass

    def refuse(self) -> None:
        self.mode = "refuse"
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(), which otherwise keeps the port bound
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                try:  # a reset, as from a server that went away
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def swallow(self) -> None:
        self.mode = "swallow"

    def forward(self) -> None:
        if self._listener is None:
            self._listen()
        self.mode = "forward"

    def stop(self) -> None:
        self.refuse()


def redis_caches(url: str, prefix: str) -> dict:
    """settings.CACHES for ``url``, as settings.py builds it for REDIS_URL (the breaker's pool)."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "IGNORE_EXCEPTIONS": True,
                "CONNECTION_POOL_CLASS": "balance_project.redis_breaker.CircuitBreakerConnectionPool",
            },
        }
    }


LOCAL_CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": "faults"}}


class TableLock:
    """``with TableLock(settings_dict, "accounts_account"):`` another session holds the table in
    ACCESS EXCLUSIVE mode (even a SELECT waits) until the block ends."""

    def __init__(self, settings_dict: dict, table: str) -> None:
        self.settings_dict = settings_dict
        self.table = table
        self.connection = None

    def __enter__(self) -> TableLock:
        import psycopg

        db = self.settings_dict
        self.connection = psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname=db["NAME"],
            connect_timeout=5,
        )
        self.connection.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc) -> None:
        assert self.connection is not None
        self.connection.rollback()
        self.connection.close()
