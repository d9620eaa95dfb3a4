"""``grpcserver --processes N``: N sidecar processes sharing one port through SO_REUSEPORT.

One Python process runs the services on one core at a time (the GIL), so one process cannot use a
second core. With N > 1 the parent serves nothing itself: it reserves the port (so ``:0`` still
means one free port for all), starts N children (this same command with ``--processes 1
--reuse-port``), each with its own worker threads and database connections, and the kernel spreads
incoming connections over them. The parent prints the listening line once every child is up,
forwards SIGTERM/SIGINT to them and waits for them to drain. If a child exits on its own the parent
stops the others and exits 1, so whatever supervises the sidecar restarts it whole.

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
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger("balance.grpc")

LISTENING = "gRPC server listening on "


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host, int(port)


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
    children: list[subprocess.Popen] = []
    try:
        for index in range(processes):
            children.append(
                _start_child(
                    address,
                    max_workers=max_workers,
                    grace=grace,
                    metrics_port=metrics_port + index if metrics_port else 0,
                    auth_cache_seconds=auth_cache_seconds,
                )
            )
        for child in children:
            assert child.stdout is not None  # started with stdout=PIPE
            line = child.stdout.readline()
            if not line.startswith(LISTENING):
                log.error("a gRPC child process did not start: %r", line)
                return _stop(children, grace) or 1
        announce(address)
        while not stop_requested.wait(0.5):
            exited = [child for child in children if child.poll() is not None]
            if exited:
                log.error(
                    "gRPC child process %s exited with %s: stopping the others", exited[0].pid, exited[0].returncode
                )
                _stop(children, grace)
                return 1
        log.info("signal: stopping %s gRPC processes (grace %ss)", len(children), grace)
        return _stop(children, grace)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        reserved.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def _stop(children: list[subprocess.Popen], grace: float) -> int:
    """SIGTERM every child still running, wait for them (grace + 10 s, then kill); 0 if all exit 0."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    status = 0
    for child in children:
        try:
            code = child.wait(grace + 10)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        status = status or (1 if code else 0)
    return status
