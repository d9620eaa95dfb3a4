"""Probes answer within a second whatever hangs (part of #10).

- Every HTTP thread and every gRPC worker blocked on a row lock the test holds, more calls queued
  behind them (the sidecar at its cap of calls in flight): ``/health``, ``/ready`` and gRPC health
  still answer at once (they have threads of their own: balance_project/gunicorn_worker.py,
  balance_project/grpc/server.py).
- PostgreSQL frozen (the server's TCP path stops answering; the shared server itself is never
  stopped): ``/ready`` answers 503 within a second, ``/health`` 200, gRPC health NOT_SERVING; both
  ready again once it answers.

Before: 12 blocked calls filled the 8 HTTP threads and health checks timed out; with PostgreSQL
frozen ``/ready`` hung as long as the freeze.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accounts.keys import SCOPES, api_key_create
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from tests.ledger.test_deadlines import RowHolder
from tests.ops.processes_helpers import (
    FreezableProxy,
    database_url,
    locks_waited_on,
    server_env,
    start_gunicorn,
    start_sidecar,
    stop,
    wait_until,
)
from tests.tables.helpers import new_key, new_player, open_table

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 2
BLOCKED = 5  # calls waiting on the lock: every thread busy and more queued behind them
PROBE_LIMIT_SECONDS = 1.0


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    """One gunicorn and one sidecar for the module, both reaching PostgreSQL through a proxy the
    test can freeze (thawed, it is a plain TCP path)."""
    from django.db import connection

    conf = connection.settings_dict
    proxy = FreezableProxy((conf["HOST"] or "127.0.0.1", int(conf["PORT"] or 5432)))
    env = server_env(
        database_url(port=proxy.port),
        GUNICORN_THREADS=str(THREADS),
        GUNICORN_GRACEFUL_TIMEOUT="2",
        HTTP_CALL_SECONDS="20",
        GRPC_MAX_CONCURRENT_RPCS=str(BLOCKED - 1),  # one of the blocked calls is past the cap
    )
    with ThreadPoolExecutor(2) as starting:  # both start at once
        http_started = starting.submit(start_gunicorn, env)
        grpc_started = starting.submit(start_sidecar, env, "--max-workers", str(THREADS), "--grace", "1")
    http_process, port = http_started.result()
    grpc_process, address, _ = grpc_started.result()
    try:
        yield proxy, port, address
    finally:
        proxy.thaw()
        stop(http_process)
        stop(grpc_process)
        proxy.close()


def get(port: int, path: str, timeout: float = 5) -> tuple[int, dict, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read()), time.monotonic() - started
    finally:
        connection.close()


def deposit(port: int, token: str, wallet: int, answers: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            f"/api/v1/accounts/{wallet}/deposit",
            body=json.dumps({"amount": 10}),
            headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": new_key(),
                "Content-Type": "application/json",
            },
        )
        answers.append(connection.getresponse().status)
    except OSError as exc:
        answers.append(exc)
    finally:
        connection.close()


def check(stub, timeout: float = 5) -> tuple[int, float]:
    started = time.monotonic()
    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout).status
    return status, time.monotonic() - started


def test_http_probes_answer_while_every_thread_waits_on_a_row_lock(servers):
    _, port, _ = servers
    _, wallet = new_player(funded=100)
    token, _ = api_key_create(client="probes", scopes=sorted(SCOPES))
    answers: list = []
    assert wait_until(lambda: get(port, "/ready")[0] == 200)
    with RowHolder(wallet):
        callers = [threading.Thread(target=deposit, args=(port, token, wallet, answers)) for _ in range(BLOCKED)]
        for caller in callers:
            caller.start()
        assert wait_until(lambda: locks_waited_on() >= THREADS), "the deposits never waited on the lock"
        time.sleep(0.6)  # past the cached /ready answer: this one asks the database
        probes = [get(port, path) for path in ("/health", "/ready", "/health", "/ready")]
        assert answers == [], "a deposit was answered while the lock was held"
    for caller in callers:
        caller.join(30)
    print("http probes while blocked:", [f"{path_status}:{seconds:.3f}s" for path_status, _, seconds in probes])
    assert [status for status, _, _ in probes] == [200, 200, 200, 200]
    assert max(seconds for _, _, seconds in probes) < PROBE_LIMIT_SECONDS
    assert answers == [201] * BLOCKED  # each went through once the lock was gone


def test_grpc_health_answers_while_every_worker_waits_on_a_row_lock(servers):
    _, _, address = servers
    user, wallet = new_player(funded=10_000)
    token, _ = api_key_create(client="probes", scopes=sorted(SCOPES))
    tables = [open_table() for _ in range(BLOCKED)]
    with grpc.insecure_channel(address) as channel:
        stub = balance_pb2_grpc.BalanceServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        assert wait_until(lambda: check(health)[0] == health_pb2.HealthCheckResponse.SERVING)
        with RowHolder(wallet):
            calls = [
                stub.BuyIn.future(
                    pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table, amount=100),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=30,
                )
                for table in tables
            ]
            assert wait_until(lambda: locks_waited_on() >= THREADS), "the buy-ins never waited on the lock"
            probes = [check(health) for _ in range(4)]
            refused = [call for call in calls if call.done()]
        served = [call.result(timeout=30) for call in calls if call not in refused]
    print("grpc health while blocked:", [f"{status}:{seconds:.3f}s" for status, seconds in probes])
    assert [status for status, _ in probes] == [health_pb2.HealthCheckResponse.SERVING] * 4
    assert max(seconds for _, seconds in probes) < PROBE_LIMIT_SECONDS
    # The process holds its cap of calls: the one past it is refused at once, health checks are not.
    assert [call.code() for call in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert len(served) == BLOCKED - 1 and all(result.seat.chips == 100 for result in served)


def test_probes_answer_at_once_while_the_database_is_frozen_and_recover_after(servers):
    proxy, port, address = servers
    try:
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert wait_until(lambda: get(port, "/ready")[0] == 200, 30)
            assert check(health)[0] == health_pb2.HealthCheckResponse.SERVING

            proxy.freeze()
            frozen_at = time.monotonic()
            time.sleep(0.6)  # past the cached answer
            ready = [get(port, "/ready") for _ in range(3)]
            live = get(port, "/health")
            assert wait_until(lambda: check(health)[0] == health_pb2.HealthCheckResponse.NOT_SERVING, 10)
            not_serving_after = time.monotonic() - frozen_at
            frozen_checks = [check(health) for _ in range(3)]

            proxy.thaw()
            thawed_at = time.monotonic()
            assert wait_until(lambda: get(port, "/ready")[0] == 200, 15)
            assert wait_until(lambda: check(health)[0] == health_pb2.HealthCheckResponse.SERVING, 15)
            recovered_after = time.monotonic() - thawed_at
    finally:
        proxy.thaw()
    print(
        f"frozen: /ready {[f'{status}:{seconds:.3f}s' for status, _, seconds in ready]}, /health {live[2]:.3f}s, "
        f"gRPC NOT_SERVING after {not_serving_after:.2f}s, checks {[f'{s:.3f}s' for _, s in frozen_checks]}; "
        f"both ready {recovered_after:.2f}s after the thaw"
    )
    assert all(status == 503 and body["checks"]["database"]["status"] == "down" for status, body, _ in ready)
    assert max(seconds for _, _, seconds in ready) < PROBE_LIMIT_SECONDS
    assert live[0] == 200 and live[2] < PROBE_LIMIT_SECONDS
    assert max(seconds for _, seconds in frozen_checks) < PROBE_LIMIT_SECONDS
