"""balance_client against a real server: typed calls, keys, deadlines, retries with backoff."""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys

import grpc
import pytest

from accounts.models import Account
from balance_client import BalanceClient, BalanceError, RetryPolicy, idempotency_key
from balance_project.errors import ApplicationError
from balance_project.grpc.interceptors import UnaryInterceptor
from tests.grpc.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


class FailFirst(UnaryInterceptor):
    """Refuses the first ``times`` calls of ``method`` with ``code`` (before anything runs), and
    records the idempotency key of every call it sees."""

    def __init__(self, method: str, times: int, code: str = "unavailable"):
        self.method, self.times, self.code = method, times, code
        self.keys_seen: list[str] = []

    def applies_to(self, full_method):
        return full_method.endswith("/" + self.method)

    def around(self, full_method, request, context, proceed):
        self.keys_seen.append(request.idempotency_key)
        if len(self.keys_seen) <= self.times:
            raise ApplicationError(self.code, "injected failure")
        return proceed(request, context)


class Pauses(list):
    """Stands in for time.sleep: records the backoff pauses instead of sleeping them."""

    def __call__(self, seconds):
        self.append(seconds)


def test_typed_calls_and_keys_of_the_documented_shape(server, token, player, table):
    user, wallet = player(funded=1000)
    table_id = table()
    with BalanceClient(server.address, token) as client:
        answer = client.buy_in(user_id=user, table_id=table_id, amount=250)
        assert answer.seat.chips == 250 and answer.reservation.amount == 250
        assert client.get_balance(user_id=user, currency="EUR").account.balance == 750
        assert client.get_balance(account_id=wallet).account.available == 750
        assert client.get_table(table_id=table_id).table.chips == 250
    key = idempotency_key("buy_in", "t1", "alice")
    assert re.fullmatch(r"buy_in:t1:alice:\d{19}", key)
    keys = {idempotency_key("cash_out", "t1", "alice") for _ in range(1000)}
    assert len(keys) == 1000  # never two operations under one key, however fast they come


def test_unavailable_is_retried_with_backoff_and_the_same_key_until_it_succeeds(start_server, token, player, table):
    flaky = FailFirst("BuyIn", times=3)
    running = start_server(before_guard=[flaky])
    user, wallet = player(funded=1000)
    table_id = table()
    pauses = Pauses()
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=0.3, multiplier=2.0)
    with BalanceClient(running.address, token, retry=policy, sleep=pauses, rng=random.Random(7), timeout=30) as client:
        answer = client.buy_in(user_id=user, table_id=table_id, amount=300)
    assert answer.seat.chips == 300
    assert len(flaky.keys_seen) == 4 and len(set(flaky.keys_seen)) == 1
    assert flaky.keys_seen[0].startswith(f"buy_in:{table_id}:{user}:")
    assert len(pauses) == 3
    for n, pause in enumerate(pauses):  # full jitter under an exponential, capped ceiling
        assert 0 <= pause <= min(0.3, 0.1 * 2**n)
    assert Account.objects.get(pk=wallet).balance == 700


def test_retries_stop_after_max_attempts(start_server, token, player, table):
    flaky = FailFirst("BuyIn", times=10)
    running = start_server(before_guard=[flaky])
    user, wallet = player(funded=1000)
    table_id = table()
    with BalanceClient(running.address, token, retry=RetryPolicy(max_attempts=3), sleep=Pauses()) as client:
        with pytest.raises(BalanceError) as excinfo:
            client.buy_in(user_id=user, table_id=table_id, amount=300)
    assert excinfo.value.code == grpc.StatusCode.UNAVAILABLE and excinfo.value.attempts == 3
    assert len(flaky.keys_seen) == 3
    assert Account.objects.get(pk=wallet).balance == 1000


def test_aborted_in_progress_is_retried_but_an_idempotency_conflict_is_not(start_server, token, player, table):
    busy = FailFirst("CashOut", times=1, code="idempotency_in_progress")
    running = start_server(before_guard=[busy])
    user, _ = player(funded=1000)
    table_id = table()
    pauses = Pauses()
    with BalanceClient(running.address, token, sleep=pauses) as client:
        client.buy_in(user_id=user, table_id=table_id, amount=300, idempotency_key="join-1")
        assert client.cash_out(table_id=table_id, user_id=user, amount=100).seat.chips == 200
        assert len(pauses) == 1 and len(busy.keys_seen) == 2

        with pytest.raises(BalanceError) as excinfo:
            client.buy_in(user_id=user, table_id=table_id, amount=999, idempotency_key="join-1")
    failure = excinfo.value
    assert (failure.code, failure.reason, failure.attempts) == (grpc.StatusCode.ABORTED, "idempotency_conflict", 1)
    assert len(pauses) == 1  # no pause: not retried


def test_business_refusals_are_not_retried(server, token, player, table):
    user, _ = player(funded=10)
    pauses = Pauses()
    with BalanceClient(server.address, token, sleep=pauses) as client:
        with pytest.raises(BalanceError) as excinfo:
            client.buy_in(user_id=user, table_id=table(), amount=11)
    assert (excinfo.value.code, excinfo.value.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "insufficient_funds")
    assert excinfo.value.metadata and pauses == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_that_is_down_then_comes_up_is_reached_by_a_retry(start_server, token, player):
    """The first attempt finds nothing listening; while the client backs off the server starts."""
    from tables.services import table_open

    user, wallet = player(funded=1000)
    table_open(client="tests", idempotency_key=new_key(), table_id="t-late", currency="EUR")
    port = _free_port()
    attempts_before_up = []

    def sleep_and_start(seconds):
        attempts_before_up.append(seconds)
        if len(attempts_before_up) == 1:
            start_server(bind=f"127.0.0.1:{port}")
        import time

        time.sleep(seconds)

    policy = RetryPolicy(max_attempts=20, initial_backoff=0.05, max_backoff=0.2)
    with BalanceClient(f"127.0.0.1:{port}", token, retry=policy, sleep=sleep_and_start, timeout=30) as client:
        answer = client.buy_in(user_id=user, table_id="t-late", amount=100)
    assert answer.seat.chips == 100 and len(attempts_before_up) >= 1
    assert Account.objects.get(pk=wallet).balance == 900


def test_a_call_to_nobody_fails_within_its_deadline_as_unreachable():
    port = _free_port()
    with BalanceClient(f"127.0.0.1:{port}", "token", timeout=0.5, sleep=Pauses()) as client:
        with pytest.raises(BalanceError) as excinfo:
            client.get_table(table_id="t")
    assert excinfo.value.unreachable
    assert excinfo.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_the_client_imports_without_django():
    code = (
        "import sys, balance_client, balance_client.replay; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_aborted_is_a_verdict_only_with_the_services_reason():
    assert BalanceError(grpc.StatusCode.ABORTED, "read ECONNRESET").unreachable  # a reset stream: no verdict
    assert not BalanceError(grpc.StatusCode.ABORTED, "used", reason="idempotency_conflict").unreachable
    assert not BalanceError(grpc.StatusCode.FAILED_PRECONDITION, "no", reason="insufficient_funds").unreachable
