"""Real server processes on the test database, and the faults the tests of #10 put them through: a
row lock held by the test, and a TCP path to PostgreSQL the test can freeze (what a frozen server
looks like from the client: connections that accept bytes and never answer)."""

from __future__ import annotations

import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.db import connection

from tests.ops.faults import free_port, wait_until  # noqa: F401  (what the process tests import from here)

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url(host: str | None = None, port: int | None = None) -> str:
    """The PostgreSQL test database the test process uses (optionally through another address)."""
    conf = connection.settings_dict
    user = conf["USER"] + (f":{conf['PASSWORD']}" if conf.get("PASSWORD") else "")
    return f"postgres://{user}@{host or conf['HOST'] or '127.0.0.1'}:{port or conf['PORT'] or 5432}/{conf['NAME']}"


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
    return {**env, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **extra}


class Output:
    """A process's stdout, read on a thread so waits can time out."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, needle: str, seconds: float) -> str:
        for line in self.lines:
            if needle in line:
                return line
        found = self._read(time.monotonic() + seconds, needle)
        if found is None:
            raise AssertionError(f"{needle!r} not printed within {seconds}s:\n{''.join(self.lines)[-4000:]}")
        return found

    def rest(self, seconds: float) -> str:
        """Everything printed, after reading on for ``seconds`` (or to the end of the output)."""
        self._read(time.monotonic() + seconds, None)
        return "".join(self.lines)

    def _read(self, deadline: float, needle: str | None) -> str | None:
        """Read lines until one holds ``needle`` (returned), the output ends, or the deadline."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            self.lines.append(line)
            if needle is not None and needle in line:
                return line
        return None


def start_sidecar(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str, Output]:
    """``manage.py grpcserver`` on a free port; (process, address, its output with stderr)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "grpcserver", "--bind", "127.0.0.1:0", "--metrics-port", "0", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    line = output.wait_for("gRPC server listening on ", 120)
    return process, line.split("listening on ", 1)[1].split()[0], output


def start_gunicorn(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "balance_project/gunicorn.conf.py", "balance_project.wsgi"],
        cwd=BASE_DIR,
        env={**env, "HTTP_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESSLOG": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def locks_waited_on() -> int:
    """Backends of the test database waiting for a lock now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


class FreezableProxy:
    """A TCP proxy to ``target``: while frozen it forwards nothing either way (the connections stay
    open), as a PostgreSQL stopped with SIGSTOP would look; new connections are accepted and get no
    answer either. Thawed, the bytes held back flow again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thawed = threading.Event()
        self.thawed.set()
        self._closing = False
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.thawed.clear()

    def thaw(self) -> None:
        self.thawed.set()

    def close(self) -> None:
        self._closing = True
        self.thawed.set()
        for sock in list(self._sockets):
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.thawed.wait()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._closing:
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    self.thawed.wait()  # frozen: hold the bytes where they are
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
