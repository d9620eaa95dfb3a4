"""PostgreSQL down (part of #10): the service is pointed at a TCP proxy in front of the shared
server, and the test makes the proxy reset every connection and refuse new ones. Keys verified
recently still authenticate, balances come from the cache marked stale, writes answer unavailable
at once, a revoked key stops working within API_KEY_OUTAGE_SECONDS, and everything is normal again
once the database answers. A proxy that swallows traffic (a frozen server) ends a read by the
budget. The shared PostgreSQL itself is never stopped."""

from __future__ import annotations

import shutil
import time
import uuid

import grpc
import pytest
from django.db import connections
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.cache import balance_cache_forget
from accounts.keys import SCOPES, api_key_create, api_key_forget_verified
from accounts.models import ApiKey
from accounts.selectors import account_transactions_list
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_project import outage
from balance_project.deadlines import call_budget
from balance_project.errors import ApplicationError
from tests.grpc.conftest import auth, channels, rpc_failure, start_server  # noqa: F401  (fixtures)
from tests.ops.faults import PrivateRedis, TcpProxy, redis_caches, wait_until
from tests.tables.helpers import new_player

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]

RETRY = 0.3  # DB_OUTAGE_RETRY_SECONDS here
FAST = 1.0  # what "at once" may take on a loaded shared machine


@pytest.fixture
def down(tmp_path):
    """-> (proxy, settings overrides): the database behind a proxy, the cache on a private Redis."""
    redis_server = PrivateRedis(tmp_path)
    db = connections.settings["default"]  # the dict every connection of the process is made from
    saved = db["HOST"], db["PORT"]
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    connections.close_all()
    db["HOST"], db["PORT"] = "127.0.0.1", proxy.port
    outage.reset_for_tests()
    api_key_forget_verified()
    overrides = override_settings(
        CACHES=redis_caches(redis_server.url, f"outage-{uuid.uuid4().hex[:8]}"),
        DB_OUTAGE_RETRY_SECONDS=RETRY,
        API_KEY_OUTAGE_SECONDS=60,
    )
    overrides.enable()
    try:
        yield proxy
    finally:
        overrides.disable()
        proxy.forward()
        connections.close_all()
        db["HOST"], db["PORT"] = saved
        proxy.stop()
        redis_server.stop()
        outage.reset_for_tests()
        api_key_forget_verified()


def http_client(scopes=None) -> tuple[APIClient, ApiKey]:
    raw, record = api_key_create(client="cashier", scopes=list(scopes or SCOPES))
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, record


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def test_http_reads_come_from_the_cache_marked_stale_and_writes_are_refused(down):
    client, _ = http_client()
    _, wallet = new_player(funded=100)
    _, uncached = new_player(funded=5)
    balance_cache_forget(uncached)
    warm = client.get(f"/api/v1/accounts/{wallet}/balance")  # verifies the key; the balance is cached
    assert (warm.status_code, warm.json()["source"], warm.json()["balance"]) == (200, "cache", 100)
    assert "Balance-Stale" not in warm.headers

    down.refuse()
    read, took = timed(client.get, f"/api/v1/accounts/{wallet}/balance")
    assert read.status_code == 200, read.content
    assert (read.json()["source"], read.json()["balance"], read.headers.get("Balance-Stale")) == ("cache", 100, "true")
    assert took < FAST, f"a cached read took {took:.2f} s with the database down"

    for path, body in [
        (f"/api/v1/accounts/{wallet}/deposit", {"amount": 1}),
        (f"/api/v1/accounts/{uncached}/balance", None),  # not cached: needs the database
        (f"/api/v1/accounts/{wallet}/transactions", None),
    ]:
        if body is None:
            response, took = timed(client.get, path)
        else:
            response, took = timed(client.post, path, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{uuid.uuid4().hex}")
        assert response.status_code == 503, (path, response.content)
        assert response.json()["error"]["code"] == "unavailable"
        assert took < FAST, f"{path} took {took:.2f} s to be refused"

    stranger = APIClient(raise_request_exception=False)
    stranger.credentials(HTTP_AUTHORIZATION="Bearer bal_00000000_never-verified")
    unknown = stranger.get(f"/api/v1/accounts/{wallet}/balance")
    assert unknown.status_code == 503, unknown.content  # the database cannot say no: not a 401

    down.forward()
    started = time.monotonic()
    assert wait_until(lambda: "Balance-Stale" not in client.get(f"/api/v1/accounts/{wallet}/balance").headers)
    recovered = time.monotonic() - started
    assert recovered < RETRY + 2.0, f"reads were marked stale {recovered:.2f} s after the database came back"
    deposit = client.post(
        f"/api/v1/accounts/{wallet}/deposit", {"amount": 1}, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{uuid.uuid4().hex}"
    )
    assert deposit.status_code == 201, deposit.content
    assert stranger.get(f"/api/v1/accounts/{wallet}/balance").status_code == 401


def test_a_revoked_key_stops_working_within_the_window(down):
    client, record = http_client(["accounts:read"])
    _, wallet = new_player(funded=100)
    window = 2.0
    with override_settings(API_KEY_OUTAGE_SECONDS=window):
        assert client.get(f"/api/v1/accounts/{wallet}/balance").status_code == 200
        verified = time.monotonic()
        # Revoked in the database, and no request of the key sees it before the outage.
        ApiKey.objects.filter(pk=record.pk).update(is_active=False)
        down.refuse()
        inside = client.get(f"/api/v1/accounts/{wallet}/balance")
        assert time.monotonic() - verified < window
        assert (inside.status_code, inside.headers.get("Balance-Stale")) == (200, "true")  # the stated window
        time.sleep(max(0.0, verified + window + 0.05 - time.monotonic()))
        after = client.get(f"/api/v1/accounts/{wallet}/balance")
        assert after.status_code == 503, after.content  # no longer authenticated by the outage copy
        down.forward()
        assert wait_until(lambda: client.get(f"/api/v1/accounts/{wallet}/balance").status_code == 401)


def test_grpc_get_balance_is_served_stale_and_mutations_are_unavailable(down, start_server, channels):  # noqa: F811
    raw, _ = api_key_create(client="poker-service", scopes=["accounts:read", "reservations:write"])
    user_id, wallet = new_player(funded=100)
    stub = balance_pb2_grpc.BalanceServiceStub(channels(start_server().address))
    by_wallet = pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=user_id, currency="EUR"))
    for request in (pb.GetBalanceRequest(account_id=wallet), by_wallet):
        response, call = stub.GetBalance.with_call(request, metadata=auth(raw), timeout=10)
        assert response.source == "cache" and ("balance-stale", "true") not in call.trailing_metadata()

    down.refuse()
    for request in (pb.GetBalanceRequest(account_id=wallet), by_wallet):
        (response, call), took = timed(stub.GetBalance.with_call, request, metadata=auth(raw), timeout=5)
        assert (response.source, response.account.balance) == ("cache", 100)
        assert ("balance-stale", "true") in call.trailing_metadata()
        assert took < FAST, f"GetBalance took {took:.2f} s with the database down"
    reserve = pb.ReserveRequest(idempotency_key=f"k-{uuid.uuid4().hex}", user_id=user_id, table_id="t", amount=10)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        stub.Reserve(reserve, metadata=auth(raw), timeout=5)
    assert time.monotonic() - started < FAST
    assert rpc_failure(refused).code == grpc.StatusCode.UNAVAILABLE

    down.forward()
    assert wait_until(
        lambda: (
            ("balance-stale", "true")
            not in stub.GetBalance.with_call(by_wallet, metadata=auth(raw), timeout=5)[1].trailing_metadata()
        )
    )


def test_a_read_on_a_database_that_stops_answering_ends_by_the_budget(down):
    _, wallet = new_player(funded=100)
    with call_budget(5):
        account_transactions_list(account_id=wallet)  # the connection through the proxy is open
    down.swallow()  # nothing reaches the server any more, and nothing comes back: no server-side timeout
    started = time.monotonic()
    with call_budget(0.5), pytest.raises(ApplicationError) as failed:
        account_transactions_list(account_id=wallet)
    took = time.monotonic() - started
    assert failed.value.code == "deadline_exceeded"
    assert took < 0.5 + 0.25 + 0.5, f"the read on a silent database took {took:.2f} s with a 0.5 s budget"
    assert outage.database_down()


def test_a_silent_database_costs_the_first_http_read_its_key_lookup_bound_not_a_hang(down):
    client, _ = http_client(["accounts:read"])
    _, wallet = new_player(funded=100)
    assert client.get(f"/api/v1/accounts/{wallet}/balance").status_code == 200
    down.swallow()
    # As at the start of every request outside tests (request_started): Django's health check is due.
    connections["default"].health_check_done = False
    with override_settings(API_KEY_DB_SECONDS=0.3):
        read, took = timed(client.get, f"/api/v1/accounts/{wallet}/balance")
    assert (read.status_code, read.headers.get("Balance-Stale")) == (200, "true"), read.content
    assert took < 0.3 + 0.25 + 0.5, f"the first read on a silent database took {took:.2f} s"
    again, took = timed(client.get, f"/api/v1/accounts/{wallet}/balance")
    assert (again.status_code, again.headers.get("Balance-Stale")) == (200, "true")
    assert took < 0.2, f"the next read took {took:.2f} s: the probe, not calls, should wait on the database"
