"""``grpcserver --processes 2``: two processes share one port and both serve calls; SIGTERM to the
parent stops them all.

Runs the real command on a fresh SQLite database of its own (a temporary BALANCE_VAR_DIR), so it
needs no test database and behaves the same whatever DATABASE_URL the suite runs on.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
CHANNELS = 24


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
def test_two_processes_serve_calls_on_one_port_and_stop_on_sigterm(tmp_path):
    env = _env(tmp_path)
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
        text=True,
    )
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

        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
        assert all(
            not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
            for child in children
        )
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
