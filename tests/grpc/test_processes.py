"""``grpcserver --processes 2``: two processes share one port and both serve calls; SIGTERM to the
parent stops them all; a child killed is replaced within seconds while the other serves on.

Runs the real command on a fresh SQLite database of its own (a temporary BALANCE_VAR_DIR), so it
needs no test database and behaves the same whatever DATABASE_URL the suite runs on.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_project.restarts import STABLE_SECONDS

pytestmark = pytest.mark.embedded_default

REPO = Path(__file__).resolve().parents[2]
CHANNELS = 24
RESTART_LIMIT_SECONDS = 10


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> tuple[dict[str, str], str]:
    """A fresh SQLite database of the module's own, migrated, and a key that may read accounts."""
    env = _env(tmp_path_factory.mktemp("processes"))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True, timeout=300)
    token = subprocess.run(
        [*manage, "create_api_key", "--client", "poker", "--scopes", "accounts:read"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()
    return env, token


def _env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, "BALANCE_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "balance_project.settings"}


def _two_free_ports() -> int:
    """A port p such that p and p + 1 are free now (the metrics ports of the two children)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    pytest.skip("no two consecutive free ports")


def _handled(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(
        float(value)
        for value in re.findall(
            r'^balance_grpc_server_handled_total\{[^}]*grpc_method="GetBalance"[^}]*\} (\S+)$', text, flags=re.M
        )
    )


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing and /proc are Linux's")
def test_two_processes_serve_calls_on_one_port_a_killed_one_is_replaced_and_sigterm_stops_all(migrated):
    env, token = migrated
    manage = [sys.executable, "manage.py"]
    metrics_port = _two_free_ports()
    server = subprocess.Popen(
        [
            *manage,
            "grpcserver",
            "--processes",
            "2",
            "--bind",
            "127.0.0.1:0",
            "--metrics-port",
            str(metrics_port),
            "--max-workers",
            "2",
            "--grace",
            "2",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [log.put(line) for line in server.stderr], daemon=True).start()
    try:
        line = server.stdout.readline()
        address = re.search(r"listening on (\S+)", line).group(1)
        children = _children(server.pid)
        assert len(children) == 2

        # SO_REUSEPORT spreads connections, not calls: each channel is its own connection.
        for n in range(CHANNELS):
            with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                stub = balance_pb2_grpc.BalanceServiceStub(channel)
                with pytest.raises(grpc.RpcError) as excinfo:
                    stub.GetBalance(
                        pb.GetBalanceRequest(account_id=10**9 + n),
                        timeout=30,
                        metadata=(("authorization", f"Bearer {token}"),),
                    )
                assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND  # authenticated, read the database
        served = [_handled(metrics_port), _handled(metrics_port + 1)]
        assert sum(served) == CHANNELS
        assert min(served) > 0, f"one process served every call: {served}"

        children = _kill_one_and_see_it_replaced(server, address, token, log)

        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
        assert all(_gone(child) for child in children)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_port_is_reserved_though_a_closed_connection_lingers_in_time_wait():
    """A sidecar restarted right after the last one closed connections on its port binds anyway."""
    import socket

    from balance_project.grpc.processes import _reserve_port

    listener = socket.socket()  # as grpc listens (SO_REUSEADDR, which its TIME_WAIT sockets keep)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end of the connection goes to TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    reserved = _reserve_port("127.0.0.1", port)
    try:
        assert reserved.getsockname()[1] == port
    finally:
        reserved.close()


def _get_balance(address: str, token: str) -> grpc.StatusCode:
    """One call on a channel of its own (a new connection, which SO_REUSEPORT hands to a child)."""
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = balance_pb2_grpc.BalanceServiceStub(channel)
        try:
            stub.GetBalance(
                pb.GetBalanceRequest(account_id=10**9), timeout=10, metadata=(("authorization", f"Bearer {token}"),)
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                print(f"unexpected answer: {error.code()} {error.details()}")
            return error.code()
    return grpc.StatusCode.OK


def _gone(pid: int) -> bool:
    """Reaped by the parent: only then have all its threads exited and its sockets closed (a
    zombie leader may still have threads tearing down, its listening socket still open)."""
    return not Path(f"/proc/{pid}").exists()


def _kill_one_and_see_it_replaced(server: subprocess.Popen, address: str, token: str, log: queue.Queue) -> list[int]:
    """SIGKILL one child: the other serves every new connection meanwhile, and the parent starts a
    new child within seconds (before: one child's death took the whole sidecar down). Returns the
    children now running."""
    victim, survivor = _children(server.pid)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    assert _wait(lambda: _gone(victim), 5)
    codes = []
    replaced = None
    while replaced is None and time.monotonic() - killed < 30:
        codes.append(_get_balance(address, token))
        time.sleep(0.1)  # a steady trickle, leaving the cores to the child starting up
        while not log.empty():
            if "serves again" in log.get():
                replaced = time.monotonic() - killed
    assert replaced is not None, "the killed child was not replaced within 30 s"
    children = _children(server.pid)
    assert survivor in children and victim not in children and len(children) == 2
    codes += [_get_balance(address, token) for _ in range(6)]
    print(f"restart: a killed child served again {replaced:.2f}s after the kill; {len(codes)} calls: {set(codes)}")
    # A few seconds on an idle machine (about 1.5 s here); the bound leaves room for a loaded CI.
    assert replaced < RESTART_LIMIT_SECONDS
    assert set(codes) == {grpc.StatusCode.NOT_FOUND}  # authenticated, read the database, none refused
    assert server.poll() is None  # the parent serves on
    return children


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_child_that_keeps_failing_is_restarted_later_and_later():
    from balance_project.grpc import processes

    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    child = processes._Child(index=0, metrics_port=0, process=exited)
    delays = []
    for _ in range(4):
        child.started_at = 100.0
        processes._schedule_restart(child, now=101.0)  # it failed a second after it started
        delays.append(child.restart_at - 101.0)
    assert delays == [0.0, 1.0, 2.0, 4.0]
    child.started_at = 100.0
    processes._schedule_restart(child, now=100.0 + STABLE_SECONDS)  # it had served a while
    assert child.restart_at == 100.0 + STABLE_SECONDS  # at once again
