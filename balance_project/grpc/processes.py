"""``grpcserver --processes N``: N sidecar processes sharing one port through SO_REUSEPORT.

One Python process runs the services on one core at a time (the GIL), so one process cannot use a
second core. With N > 1 the parent serves nothing itself: it reserves the port (so ``:0`` still
means one free port for all), starts N children (this same command with ``--processes 1
--reuse-port``), each with its own worker threads and database connections, and the kernel spreads
incoming connections over them. The parent prints the listening line once every child is up,
forwards SIGTERM/SIGINT to them and waits for them to drain (each exits by grace + 1 s).

If a child exits on its own (a crash, the OOM killer, a kill -9) the parent starts another in its
place at once, while the others go on serving: the kernel hands new connections to the listening
children only, so the port never stops answering. A child that keeps failing is restarted with a
growing delay (balance_project/restarts.py). docs/processes.md has the figures.

Child ``i`` (from 0) serves its metrics on ``metrics_port + i`` (none when ``metrics_port`` is 0).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from balance_project.restarts import restart_delay

log = logging.getLogger("balance.grpc")

LISTENING = "gRPC server listening on "
# How often the parent looks for a dead child.
SUPERVISE_TICK_SECONDS = 0.1
# On SIGTERM a child exits by grace + 1 s (server.py); one still running a little after is killed.
KILL_AFTER_GRACE_SECONDS = 2.0


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host, int(port)


@dataclass
class _Child:
    """One slot of the sidecar: its index, the process now in it, and how often it failed lately."""

    index: int
    metrics_port: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    exited_at: float | None = None
    restart_at: float | None = None
    failures: int = 0
    ready: threading.Event = field(default_factory=threading.Event)


def run_processes(
    *,
    processes: int,
    bind: str,
    max_workers: int,
    metrics_port: int,
    grace: float,
    auth_cache_seconds: float,
    announce: Callable[[str], None],
) -> int:
    """Run ``processes`` children on ``bind`` until SIGTERM/SIGINT; returns the exit status."""
    host, port = split_bind(bind)
    reserved = _reserve_port(host, port)
    address = f"{host}:{reserved.getsockname()[1]}"
    stop_requested = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop_requested.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    children = [_Child(index, metrics_port + index if metrics_port else 0) for index in range(processes)]

    def start(child: _Child) -> None:
        child.ready.clear()
        child.process = _start_child(
            address,
            max_workers=max_workers,
            grace=grace,
            metrics_port=child.metrics_port,
            auth_cache_seconds=auth_cache_seconds,
        )
        child.started_at, child.restart_at = time.monotonic(), None
        threading.Thread(target=_read_output, args=(child,), name=f"grpc-child-{child.index}", daemon=True).start()

    try:
        for child in children:
            start(child)
        for child in children:
            if not _wait_ready(child):
                log.error("gRPC child process %s did not start (exit status %s)", child.index, _status(child))
                return _stop(children, grace) or 1
        announce(address)
        while not stop_requested.wait(SUPERVISE_TICK_SECONDS):
            now = time.monotonic()
            for child in children:
                if child.restart_at is None and _status(child) is not None:
                    _schedule_restart(child, now)
                elif child.restart_at is not None and now >= child.restart_at:
                    start(child)
        log.info("signal: stopping %s gRPC processes (grace %ss)", len(children), grace)
        return _stop(children, grace)
    finally:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.kill()
                child.process.wait()
        reserved.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _status(child: _Child) -> int | None:
    return None if child.process is None else child.process.poll()


def _schedule_restart(child: _Child, now: float) -> None:
    """A child exited on its own: start another in its place, at once the first time, later when
    it keeps failing (a child that ran STABLE_SECONDS starts the count again)."""
    delay, child.failures = restart_delay(child.failures, now - child.started_at)
    child.exited_at, child.restart_at = now, now + delay
    assert child.process is not None  # it exited, so it was started
    log.error(
        "gRPC child process %s (pid %s) exited with %s: the others serve on; restarting it in %.1fs",
        child.index,
        child.process.pid,
        child.process.returncode,
        delay,
    )


def _read_output(child: _Child) -> None:
    """The child's stdout, read to its end (so it never blocks on a full pipe): its listening
    line marks it ready; the rest ("gRPC server stopped") is for a terminal, not for here."""
    process = child.process
    assert process is not None and process.stdout is not None  # started with stdout=PIPE
    for line in process.stdout:
        if line.startswith(LISTENING) and not child.ready.is_set():
            child.ready.set()
            if child.exited_at is not None:
                log.warning(
                    "gRPC child process %s serves again (pid %s), %.1fs after the last one exited",
                    child.index,
                    process.pid,
                    time.monotonic() - child.exited_at,
                )


def _wait_ready(child: _Child) -> bool:
    """Until the child listens (True) or exits (False)."""
    while not child.ready.wait(0.1):
        if _status(child) is not None:
            return child.ready.is_set()
    return True


def _reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket: it holds the port, receives no connections."""
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    reserved = socket.socket(family, kind, proto)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # A connection the last sidecar on this port closed sits in TIME_WAIT for a minute; without
    # SO_REUSEADDR the bind fails (Errno 98) until it is gone, so a quick restart could not bind.
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.bind(sockaddr)
    return reserved


def _start_child(
    address: str, *, max_workers: int, grace: float, metrics_port: int, auth_cache_seconds: float
) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "django",
        "grpcserver",
        "--processes",
        "1",
        "--reuse-port",
        "--bind",
        address,
        "--max-workers",
        str(max_workers),
        "--metrics-port",
        str(metrics_port),
        "--grace",
        str(grace),
        "--auth-cache-seconds",
        str(auth_cache_seconds),
    ]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "balance_project.settings")}
    return subprocess.Popen(
        argv, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent
    )


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(children: list[_Child], grace: float) -> int:
    """SIGTERM every child still running, wait for them (each exits by grace + 1 s; killed at
    grace + KILL_AFTER_GRACE_SECONDS); 0 if all exit 0."""
    running = [child.process for child in children if child.process is not None and child.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace + KILL_AFTER_GRACE_SECONDS
    status = 0
    for process in running:
        try:
            code = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        status = status or (1 if code else 0)
    return status
