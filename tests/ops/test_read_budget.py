"""Every ORM read bounded by the call's budget (part of #10): with a table held in ACCESS EXCLUSIVE
mode by another session of the test, reads of it answer deadline_exceeded / DEADLINE_EXCEEDED by the
budget, never hang: balances from the database, history, statements, the trial balance, over HTTP
and gRPC, and key authentication waits no longer than API_KEY_DB_SECONDS."""

from __future__ import annotations

import time

import grpc
import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.keys import SCOPES, api_key_create, api_key_forget_verified
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_project import outage
from tests.grpc.conftest import auth, channels, rpc_failure, start_server  # noqa: F401  (fixtures)
from tests.ops.faults import LOCAL_CACHES, TableLock
from tests.tables.helpers import new_player

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUDGET = 0.5
# What the answer may take past the budget: the request's own work, and a slow shared machine.
SLACK = 0.6


@pytest.fixture(autouse=True)
def _no_outage_left():
    outage.reset_for_tests()
    api_key_forget_verified()
    yield
    outage.reset_for_tests()
    api_key_forget_verified()


def http_client() -> APIClient:
    raw, _ = api_key_create(client="cashier", scopes=list(SCOPES))
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


READS = [
    ("/api/v1/accounts/{id}/balance", "accounts_account"),
    ("/api/v1/accounts/{id}", "accounts_account"),
    ("/api/v1/accounts/{id}/transactions", "ledger_entry"),
    ("/api/v1/accounts/{id}/statement", "ledger_entry"),
    ("/api/v1/ledger/trial-balance", "ledger_entry"),
]


def test_an_http_read_of_a_locked_table_answers_deadline_exceeded_by_the_budget():
    client = http_client()
    _, wallet = new_player(funded=100)
    for path, table in READS:
        url = path.format(id=wallet)
        # No shared cache: a balance read goes to the database.
        with override_settings(CACHES=LOCAL_CACHES):
            first = client.get(url)  # the first request of a process imports a lot: not under the short budget
            assert first.status_code == 200, first.content
        with override_settings(CACHES=LOCAL_CACHES, HTTP_CALL_SECONDS=BUDGET):
            with TableLock(connection.settings_dict, table):
                response, took = timed(client.get, url)
            assert response.status_code == 504, (path, response.content)
            assert response.json()["error"]["code"] == "deadline_exceeded"
            assert took < BUDGET + SLACK, f"{path} took {took:.2f} s with a {BUDGET} s budget"
            assert client.get(url).status_code == 200  # the lock gone, the same connection answers


def test_a_grpc_read_of_a_locked_table_ends_deadline_exceeded_on_the_server(start_server, channels):  # noqa: F811
    raw, _ = api_key_create(client="poker-service", scopes=["accounts:read"])
    _, wallet = new_player(funded=100)
    with override_settings(CACHES=LOCAL_CACHES):
        server = start_server()
        stub = balance_pb2_grpc.BalanceServiceStub(channels(server.address))
    for call, request in [
        (stub.GetBalance, pb.GetBalanceRequest(account_id=wallet)),
        (stub.ListTransactions, pb.ListTransactionsRequest(account_id=wallet, limit=10)),
    ]:
        with override_settings(CACHES=LOCAL_CACHES):
            call(request, metadata=auth(raw), timeout=10)  # the first call imports a lot
        # The caller sends no deadline: the server's own budget (GRPC_DEFAULT_CALL_SECONDS) must end it.
        with override_settings(CACHES=LOCAL_CACHES, GRPC_DEFAULT_CALL_SECONDS=BUDGET):
            with TableLock(connection.settings_dict, "accounts_account"):
                started = time.monotonic()
                pending = call.future(request, metadata=auth(raw))
                with pytest.raises(grpc.RpcError) as failed:
                    try:
                        pending.result(timeout=5)
                    finally:
                        took = time.monotonic() - started
                        pending.cancel()
            error = rpc_failure(failed)
            assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED and error.reason == "deadline_exceeded", error
            assert took < BUDGET + SLACK, f"{request} took {took:.2f} s with a {BUDGET} s budget"
            call(request, metadata=auth(raw), timeout=10)


def test_key_authentication_waits_on_a_locked_key_table_no_longer_than_its_bound():
    client = http_client()
    _, wallet = new_player(funded=100)
    with override_settings(CACHES=LOCAL_CACHES, HTTP_CALL_SECONDS=5, API_KEY_DB_SECONDS=0.3):
        with TableLock(connection.settings_dict, "accounts_apikey"):
            response, took = timed(client.get, f"/api/v1/accounts/{wallet}/balance")
        # Never verified, so not known: the database cannot say, and the key may be valid.
        assert response.status_code == 503, response.content
        assert response.json()["error"]["code"] == "unavailable"
        assert took < 0.3 + SLACK, f"authentication took {took:.2f} s with a 0.3 s bound in a 5 s budget"


@pytest.mark.django_db
def test_a_budget_spent_before_a_read_sends_nothing():
    from accounts.selectors import account_transactions_list
    from balance_project.deadlines import call_budget
    from balance_project.errors import ApplicationError

    _, wallet = new_player(funded=100)
    with call_budget(0), pytest.raises(ApplicationError) as refused:
        account_transactions_list(account_id=wallet)
    assert refused.value.code == "deadline_exceeded"


def test_a_streamed_read_is_bounded_too_and_leaves_the_session_timeout_as_it_was():
    """A server-side cursor (``.iterator()``, the reports' way) cannot carry the prefix."""
    from accounts.models import Account
    from balance_project.deadlines import call_budget
    from balance_project.errors import ApplicationError

    def session_timeout() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return cursor.fetchone()[0]

    new_player(funded=100)
    before = session_timeout()
    with call_budget(5):
        assert len(list(Account.objects.all().iterator(chunk_size=2))) >= 2
    assert session_timeout() == before  # the session default again, for statements with no budget
    with TableLock(connection.settings_dict, "accounts_account"):
        started = time.monotonic()
        with call_budget(BUDGET), pytest.raises(ApplicationError) as failed:
            list(Account.objects.all().iterator(chunk_size=2))
        took = time.monotonic() - started
    assert failed.value.code == "deadline_exceeded"
    assert took < BUDGET + SLACK
