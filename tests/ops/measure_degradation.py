"""The figures of docs/degradation.md: what each channel answers under each fault, how long it
takes, and how fast it recovers. Not part of the suite (the name does not match test_*.py); run:

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python -m pytest -q -s \
        -p no:cacheprovider tests/ops/measure_degradation.py

Everything runs in this process against the real servers: Django's test client (every middleware,
the budget included) and an in-process gRPC server, a private redis-server, a TCP proxy in front of
the shared PostgreSQL, a table lock held by another session. Each line printed is one figure.
"""

from __future__ import annotations

import shutil
import time
import uuid

import grpc
import pytest
from django.db import connection, connections
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.keys import SCOPES, api_key_create, api_key_forget_verified
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_project import outage, redis_breaker
from balance_project.shared_cache import shared_cache
from tests.grpc.conftest import auth, channels, start_server  # noqa: F401  (fixtures)
from tests.ops.faults import LOCAL_CACHES, PrivateRedis, TableLock, TcpProxy, redis_caches, wait_until
from tests.tables.helpers import new_player

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


def figure(fault: str, what: str, value: str) -> None:
    print(f"FIGURE | {fault} | {what} | {value}")


def timed(call, *args, **kwargs):
    started = time.monotonic()
    try:
        result = call(*args, **kwargs)
    except grpc.RpcError as exc:
        result = exc
    return result, time.monotonic() - started


def answer(result) -> str:
    if isinstance(result, grpc.RpcError):
        return result.code().name
    if isinstance(result, tuple):  # with_call
        response, call = result
        stale = ("balance-stale", "true") in call.trailing_metadata()
        return f"OK source={response.source}{' stale' if stale else ''} balance={response.account.balance}"
    body = result.json()
    if result.status_code >= 400:
        return f"{result.status_code} {body['error']['code']}"
    stale = " stale" if result.headers.get("Balance-Stale") else ""
    return f"{result.status_code} source={body.get('source')}{stale} balance={body.get('balance')}"


def until(predicate, limit: float = 30.0) -> str:
    started = time.monotonic()
    ok = wait_until(predicate, limit)
    return f"{time.monotonic() - started:.2f} s" if ok else f"not within {limit} s"


@pytest.fixture
def setup(tmp_path, start_server, channels):  # noqa: F811
    redis_server = PrivateRedis(tmp_path)
    overrides = override_settings(CACHES=redis_caches(redis_server.url, f"m-{uuid.uuid4().hex[:8]}"))
    overrides.enable()
    redis_breaker.reset_for_tests()
    outage.reset_for_tests()
    api_key_forget_verified()
    raw, _ = api_key_create(client="cashier", scopes=list(SCOPES))
    http = APIClient(raise_request_exception=False)
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    stub = balance_pb2_grpc.BalanceServiceStub(channels(start_server().address))
    user_id, wallet = new_player(funded=100)
    try:
        yield redis_server, http, stub, auth(raw), user_id, wallet
    finally:
        overrides.disable()
        redis_server.stop()
        outage.reset_for_tests()
        api_key_forget_verified()


def deposit(http, wallet, amount=1):
    return http.post(
        f"/api/v1/accounts/{wallet}/deposit", {"amount": amount}, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
    )


def test_redis_frozen(setup):
    redis_server, http, stub, md, _, wallet = setup
    get = pb.GetBalanceRequest(account_id=wallet)
    http.get(f"/api/v1/accounts/{wallet}/balance")
    redis_server.freeze()
    result, took = timed(deposit, http, wallet, 50)
    figure("Redis frozen", "HTTP deposit, first call", f"{answer(result)} in {took:.2f} s")
    result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
    figure("Redis frozen", "HTTP balance, breaker open", f"{answer(result)} in {took:.3f} s")
    result, took = timed(stub.GetBalance.with_call, get, metadata=md, timeout=5)
    figure("Redis frozen", "gRPC GetBalance, breaker open", f"{answer(result)} in {took:.3f} s")
    redis_server.thaw()
    figure(
        "Redis frozen",
        "after SIGCONT: until balances come from the cache again",
        until(lambda: http.get(f"/api/v1/accounts/{wallet}/balance").json()["source"] == "cache"),
    )
    figure("Redis frozen", "HTTP balance then", answer(http.get(f"/api/v1/accounts/{wallet}/balance")))


def test_redis_frozen_seen_from_another_process(setup, tmp_path):
    """The reader process was idle through the freeze: how long it is served the old balance."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.ops.test_redis_freeze_readers import READER

    redis_server, http, _, _, _, wallet = setup
    prefix = shared_cache().key_prefix
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(REDIS_URL=redis_server.url, CACHE_KEY_PREFIX=prefix, BALANCE_VAR_DIR=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "balance_project.settings"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def read() -> str:
        assert reader.stdin is not None and reader.stdout is not None
        reader.stdin.write(f"{wallet}\n")
        reader.stdin.flush()
        return reader.stdout.readline().strip()

    try:
        http.get(f"/api/v1/accounts/{wallet}/balance")
        assert read() == "100"
        redis_server.freeze()
        deposit(http, wallet, 50)
        redis_server.thaw()
        figure(
            "Redis frozen",
            "another process, idle through it: served the pre-deposit balance for",
            until(lambda: read() != "100", 10),
        )
    finally:
        reader.kill()
        reader.wait(timeout=10)


def test_redis_restarted_from_old_data(setup):
    redis_server, http, stub, md, _, wallet = setup
    http.get(f"/api/v1/accounts/{wallet}/balance")
    redis_server.save()
    deposit(http, wallet, 50)
    shared_cache().client.get_client(write=True).connection_pool.disconnect()
    redis_server.restart_from_dump()
    result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
    figure("Redis restarted from old data", "HTTP balance, first read", f"{answer(result)} in {took:.3f} s")
    result, took = timed(stub.GetBalance.with_call, pb.GetBalanceRequest(account_id=wallet), metadata=md, timeout=5)
    figure("Redis restarted from old data", "gRPC GetBalance", f"{answer(result)} in {took:.3f} s")
    figure(
        "Redis restarted from old data",
        "until balances come from the cache again",
        until(lambda: http.get(f"/api/v1/accounts/{wallet}/balance").json()["source"] == "cache"),
    )


def test_database_unreachable(setup):
    _, http, stub, md, user_id, wallet = setup
    db = connections.settings["default"]
    saved = db["HOST"], db["PORT"]
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    connections.close_all()
    db["HOST"], db["PORT"] = "127.0.0.1", proxy.port
    try:
        by_wallet = pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=user_id, currency="EUR"))
        http.get(f"/api/v1/accounts/{wallet}/balance")
        stub.GetBalance(by_wallet, metadata=md, timeout=5)
        proxy.refuse()
        result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
        figure("DB unreachable", "HTTP balance, first call", f"{answer(result)} in {took:.3f} s")
        result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
        figure("DB unreachable", "HTTP balance, next call", f"{answer(result)} in {took:.3f} s")
        result, took = timed(deposit, http, wallet)
        figure("DB unreachable", "HTTP deposit", f"{answer(result)} in {took:.3f} s")
        result, took = timed(http.get, f"/api/v1/accounts/{wallet}/transactions")
        figure("DB unreachable", "HTTP history", f"{answer(result)} in {took:.3f} s")
        result, took = timed(stub.GetBalance.with_call, by_wallet, metadata=md, timeout=5)
        figure("DB unreachable", "gRPC GetBalance (wallet)", f"{answer(result)} in {took:.3f} s")
        reserve = pb.ReserveRequest(idempotency_key=uuid.uuid4().hex, user_id=user_id, table_id="t", amount=1)
        result, took = timed(stub.Reserve, reserve, metadata=md, timeout=5)
        figure("DB unreachable", "gRPC Reserve", f"{answer(result)} in {took:.3f} s")
        proxy.forward()
        figure(
            "DB unreachable",
            "after it answers: until an HTTP deposit succeeds",
            until(lambda: deposit(http, wallet).status_code == 201),
        )
        figure(
            "DB unreachable",
            "after it answers: until gRPC GetBalance is not stale",
            until(
                lambda: (
                    ("balance-stale", "true")
                    not in stub.GetBalance.with_call(by_wallet, metadata=md, timeout=5)[1].trailing_metadata()
                )
            ),
        )
        stub.GetBalance(by_wallet, metadata=md, timeout=5)
        http.get(f"/api/v1/accounts/{wallet}/balance")
        proxy.swallow()
        connections["default"].health_check_done = False  # as at the start of a request outside tests
        result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
        figure("DB silent (frozen)", "HTTP balance, first call (health check due)", f"{answer(result)} in {took:.2f} s")
        result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
        figure("DB silent (frozen)", "HTTP balance, next call", f"{answer(result)} in {took:.3f} s")
        proxy.forward()
        figure(
            "DB silent (frozen)",
            "after it answers: until an HTTP deposit succeeds",
            until(lambda: deposit(http, wallet).status_code == 201),
        )
        stub.GetBalance(by_wallet, metadata=md, timeout=5)
        proxy.swallow()
        with override_settings(HTTP_CALL_SECONDS=1):
            result, took = timed(http.get, f"/api/v1/accounts/{wallet}/transactions")
        figure("DB silent (frozen)", "HTTP history, 1 s budget, open connection", f"{answer(result)} in {took:.2f} s")
        result, took = timed(stub.GetBalance.with_call, by_wallet, metadata=md, timeout=5)
        figure("DB silent (frozen)", "gRPC GetBalance (wallet, cached) after that", f"{answer(result)} in {took:.3f} s")
        proxy.forward()
    finally:
        proxy.forward()
        connections.close_all()
        db["HOST"], db["PORT"] = saved
        proxy.stop()


def test_database_lock_held(setup):
    _, http, stub, md, _, wallet = setup
    with override_settings(CACHES=LOCAL_CACHES):  # no balance cache: reads go to the database
        http.get(f"/api/v1/accounts/{wallet}/balance")
        get = pb.GetBalanceRequest(account_id=wallet)
        stub.GetBalance(get, metadata=md, timeout=5)
        with override_settings(HTTP_CALL_SECONDS=1), TableLock(connection.settings_dict, "accounts_account"):
            result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
            figure("DB lock held", "HTTP balance, HTTP_CALL_SECONDS=1", f"{answer(result)} in {took:.2f} s")
            result, took = timed(deposit, http, wallet)
            figure("DB lock held", "HTTP deposit, HTTP_CALL_SECONDS=1", f"{answer(result)} in {took:.2f} s")
            result, took = timed(stub.GetBalance, get, metadata=md, timeout=1)
            figure("DB lock held", "gRPC GetBalance, 1 s deadline", f"{answer(result)} in {took:.2f} s")
        result, took = timed(http.get, f"/api/v1/accounts/{wallet}/balance")
        figure("DB lock held", "HTTP balance right after release", f"{answer(result)} in {took:.3f} s")
