"""An unknown outcome is never a refusal (issue #10): lost answers, the outbox, divergences, reconcile, the read cache.

The server is real (conftest.start_server, over the test database); ``LoseAnswer`` lets the server
do the call and commit, then throws the answer away (UNAVAILABLE), which is what a caller sees when
the connection drops after the server handled its request.
"""

from __future__ import annotations

import json
import logging
import socket
import time

import grpc
import pytest

from accounts.models import Account
from balance_client import BalanceClient, BalanceError, BalanceGate, ReconciliationLog, RetryPolicy
from balance_client.reconcile import main as reconcile_main
from balance_project.errors import ApplicationError
from balance_project.grpc.interceptors import UnaryInterceptor
from tables.models import Seat
from tests.grpc.conftest import handled_count, new_key, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FEW_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)


class LoseAnswer(UnaryInterceptor):
    """Runs the call (the server commits), then loses the answer of the first ``times`` calls to ``method``."""

    def __init__(self, method: str, times: int):
        self.method, self.times = method, times
        self.keys_seen: list[str] = []

    def applies_to(self, full_method):
        return full_method.endswith("/" + self.method)

    def around(self, full_method, request, context, proceed):
        self.keys_seen.append(request.idempotency_key)
        response = proceed(request, context)
        if len(self.keys_seen) <= self.times:
            raise ApplicationError("unavailable", "injected: the answer was lost after the server handled the call")
        return response


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _open_table(table_id: str) -> None:
    from tables.services import table_open

    table_open(client="tests", idempotency_key=new_key(), table_id=table_id, currency="EUR")


def _chips(table_id: str, user: str) -> int:
    return sum(Seat.objects.filter(table__table_id=table_id, user_id=user).values_list("account__balance", flat=True))


def test_a_lost_answer_is_learned_by_a_same_key_retry_within_the_budget(start_server, token, player, table, tmp_path):
    lose = LoseAnswer("BuyIn", times=1)
    running = start_server(inner=[lose])
    user, wallet = player(funded=1_000)
    table_id = table()
    with BalanceClient(running.address, token, timeout=10, retry=FEW_RETRIES) as client:
        gate = BalanceGate(client, "enforce", reconciliation_log=str(tmp_path / "recon.jsonl"))
        decision = gate.buy_in(user_id=user, table_id=table_id, amount=300)
    assert (decision.allowed, decision.outcome) == (True, "ok") and decision.response.seat.chips == 300
    assert len(lose.keys_seen) == 2 and len(set(lose.keys_seen)) == 1  # the retry carried the same key
    assert Account.objects.get(pk=wallet).balance == 700  # applied once
    assert not (tmp_path / "recon.jsonl").exists()


def test_enforce_an_answer_lost_past_the_budget_is_pending_then_the_outbox_learns_it(
    start_server, token, player, table, tmp_path
):
    lose = LoseAnswer("BuyIn", times=100)
    running = start_server(inner=[lose])
    user, wallet = player(funded=1_000)
    table_id = table()
    log = ReconciliationLog(tmp_path / "recon.jsonl")
    with BalanceClient(running.address, token, timeout=10, retry=FEW_RETRIES) as client:
        gate = BalanceGate(client, "enforce", reconciliation_log=log)
        decision = gate.buy_in(user_id=user, table_id=table_id, amount=300)
        # The money moved, the caller could not learn it: pending, durably queued, never "refused".
        assert (decision.allowed, decision.outcome, decision.reason, decision.reconciliation_logged) == (
            False,
            "pending",
            "unavailable",
            True,
        )
        assert Account.objects.get(pk=wallet).balance == 700
        [line] = log.entries()
        assert (line["idempotency_key"], line["let_through"]) == (decision.idempotency_key, False)

        answers = []
        lose.times = 0  # the network heals
        gate.start_outbox(interval=0.05, on_answer=lambda entry, mark: answers.append((entry, mark)))
        try:
            assert wait_for(lambda: answers, 10)
        finally:
            gate.stop_outbox()
    [(entry, mark)] = answers
    assert entry["idempotency_key"] == decision.idempotency_key and set(lose.keys_seen) == {decision.idempotency_key}
    assert (mark["outcome"], mark["divergence"]) == ("ok", False)
    assert mark["response"]["seat"]["chips"] == "300"  # the answer recorded, in the protobuf JSON mapping
    assert Account.objects.get(pk=wallet).balance == 700  # still applied once
    assert log.pending() == []
    assert reconcile_main([str(log.path)]) == 0  # held back, then done: the outbox told the poker side


def test_shadow_a_settlement_waits_behind_its_buy_ins_so_the_books_agree(start_server, token, player, tmp_path):
    """The issue's shadow case: buy-ins let through while down, then a settlement after recovery."""
    alice, alice_wallet = player(funded=1_000)
    bob, bob_wallet = player(funded=1_000)
    _open_table("t-behind")
    port = _free_port()
    log = ReconciliationLog(tmp_path / "recon.jsonl")
    with BalanceClient(f"127.0.0.1:{port}", token, timeout=5, retry=RetryPolicy(max_attempts=1)) as client:
        gate = BalanceGate(client, "shadow", reconciliation_log=log)
        for user in (alice, bob):
            assert gate.buy_in(user_id=user, table_id="t-behind", amount=1_000).pending
        # Still down: the settlement is queued behind them, not sent.
        hand = {"contributions": {alice: 500, bob: 500}, "payouts": {bob: 950}, "rake": 50}
        queued = gate.settle_hand(table_id="t-behind", hand_id="h1", **hand)
        assert (queued.allowed, queued.outcome, queued.reason) == (True, "pending", "queued_behind")

        start_server(bind=f"127.0.0.1:{port}")
        client.retry = RetryPolicy(max_attempts=20, initial_backoff=0.05, max_backoff=0.2)
        settled_before = handled_count("SettleHand", "FAILED_PRECONDITION")
        # The next operation on the table first drains the log, in order: buy-ins, then the settlement.
        second = gate.settle_hand(table_id="t-behind", hand_id="h2", contributions={bob: 100}, payouts={bob: 100})
    assert (second.allowed, second.outcome) == (True, "ok")
    assert handled_count("SettleHand", "FAILED_PRECONDITION") == settled_before  # nothing refused for order
    assert [mark["outcome"] for mark in log.marks().values()] == ["ok", "ok", "ok"]
    assert (_chips("t-behind", alice), _chips("t-behind", bob)) == (500, 1_450)  # the poker side's books
    assert Account.objects.get(pk=alice_wallet).balance == 0 and Account.objects.get(pk=bob_wallet).balance == 0


def test_a_let_through_refused_later_is_a_divergence_and_reconcile_reports_it(
    start_server, token, player, tmp_path, caplog, capsys
):
    user, wallet = player(funded=1_000)
    _open_table("t-diverge")
    port = _free_port()
    log = ReconciliationLog(tmp_path / "recon.jsonl")
    with BalanceClient(f"127.0.0.1:{port}", token, timeout=5, retry=RetryPolicy(max_attempts=1)) as client:
        gate = BalanceGate(client, "shadow", reconciliation_log=log)
        assert gate.buy_in(user_id=user, table_id="t-diverge", amount=5_000).allowed  # more than the wallet holds
        running = start_server(bind=f"127.0.0.1:{port}")
        client.retry = RetryPolicy(max_attempts=20, initial_backoff=0.05, max_backoff=0.2)
        caplog.set_level(logging.WARNING, logger="balance_client.divergence")
        report = gate.outbox.drain(deadline=time.monotonic() + 10)
    assert report is not None
    assert (report.replayed, len(report.refused), report.pending) == (0, 1, 0)
    [mark] = log.marks().values()
    assert (mark["outcome"], mark["reason"], mark["divergence"]) == ("refused", "insufficient_funds", True)
    assert "balance divergence: buy_in" in caplog.text and "insufficient_funds" in caplog.text
    assert Account.objects.get(pk=wallet).balance == 1_000

    books = tmp_path / "books.json"
    books.write_text(json.dumps({"t-diverge": {user: 5_000}}))
    capsys.readouterr()
    status = reconcile_main([str(log.path), "--target", running.address, "--token", token, "--books", str(books)])
    out = capsys.readouterr().out
    assert status == 1
    assert "divergence: buy_in" in out and "insufficient_funds" in out
    assert f"chips: table t-diverge {user}: poker side 5000, service 0" in out


def test_reconcile_says_unknown_while_the_service_has_not_answered(tmp_path, capsys):
    log = ReconciliationLog(tmp_path / "recon.jsonl")
    log.append(
        operation="cash_out",
        request={"table_id": "t", "user_id": "u", "amount": None, "leave": True, "whole": False},
        idempotency_key="cash_out:t:u:1",
        mode="enforce",
        error={"code": "UNAVAILABLE", "reason": "", "message": "down"},
        let_through=False,
    )
    assert reconcile_main([str(log.path)]) == 1
    assert "unknown: cash_out key=cash_out:t:u:1" in capsys.readouterr().out


def test_enforce_an_operation_behind_a_pending_one_is_not_sent(start_server, token, player, table, tmp_path):
    lose = LoseAnswer("BuyIn", times=100)
    running = start_server(inner=[lose])
    user, _ = player(funded=1_000)
    table_id = table()
    with BalanceClient(running.address, token, timeout=10, retry=FEW_RETRIES) as client:
        gate = BalanceGate(client, "enforce", reconciliation_log=str(tmp_path / "recon.jsonl"))
        assert gate.buy_in(user_id=user, table_id=table_id, amount=300).pending
        cash_outs = handled_count("CashOut", "OK") + handled_count("CashOut", "FAILED_PRECONDITION")
        behind = gate.cash_out(table_id=table_id, user_id=user, leave=True)
    assert (behind.allowed, behind.outcome, behind.reason) == (False, "pending", "queued_behind")
    assert handled_count("CashOut", "OK") + handled_count("CashOut", "FAILED_PRECONDITION") == cash_outs


def test_the_balance_cache_serves_a_marked_stale_read_only_within_its_bound(start_server, token, player, table):
    running = start_server()
    user, wallet = player(funded=1_000)
    table_id = table()
    client = BalanceClient(
        running.address, token, timeout=1, retry=RetryPolicy(max_attempts=1), max_staleness_seconds=0.5
    )
    with client:
        fresh = client.read_balance(user_id=user, currency="EUR")
        assert (fresh.stale, fresh.account.balance) == (False, 1_000)
        running.stop(grace=None)
        stale = client.read_balance(account_id=wallet)  # by id: the same entry
        assert (stale.stale, stale.account.balance) == (True, 1_000) and 0 <= stale.age_seconds <= 0.5
        time.sleep(0.6)
        with pytest.raises(BalanceError) as past_bound:
            client.read_balance(user_id=user, currency="EUR")
        assert past_bound.value.unreachable

    # A mutation naming the player, whatever its outcome, drops the entry: it may be older than that change.
    running = start_server()
    with BalanceClient(running.address, token, timeout=1, retry=RetryPolicy(max_attempts=1)) as client:
        client.read_balance(user_id=user, currency="EUR")
        running.stop(grace=None)
        with pytest.raises(BalanceError):
            client.buy_in(user_id=user, table_id=table_id, amount=100)
        with pytest.raises(BalanceError) as after_mutation:
            client.read_balance(user_id=user, currency="EUR")
    assert after_mutation.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class SlowFirst(UnaryInterceptor):
    """Holds the first call to ``method`` for ``seconds`` before it runs: a stalled attempt."""

    def __init__(self, method: str, seconds: float):
        self.method, self.seconds = method, seconds
        self.keys_seen: list[str] = []

    def applies_to(self, full_method):
        return full_method.endswith("/" + self.method)

    def around(self, full_method, request, context, proceed):
        self.keys_seen.append(request.idempotency_key)
        if len(self.keys_seen) == 1:
            time.sleep(self.seconds)
        return proceed(request, context)


def test_a_stalled_attempt_ends_at_its_attempt_timeout_and_is_retried_with_the_same_key(
    start_server, token, player, table
):
    slow = SlowFirst("BuyIn", seconds=0.6)
    running = start_server(inner=[slow])
    user, wallet = player(funded=1_000)
    table_id = table()
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05, attempt_timeout=0.3)
    with BalanceClient(running.address, token, timeout=10, retry=policy) as client:
        answer = client.buy_in(user_id=user, table_id=table_id, amount=300)
    assert answer.seat.chips == 300
    assert len(slow.keys_seen) >= 2 and len(set(slow.keys_seen)) == 1
    assert wait_for(lambda: Account.objects.get(pk=wallet).balance == 700)
    time.sleep(0.5)  # the stalled first attempt has finished by now: it did not apply the buy-in again
    assert Account.objects.get(pk=wallet).balance == 700


def test_replay_follow_is_the_outbox_as_a_process(start_server, token, player, table, tmp_path):
    from balance_client.replay import main as replay_main

    lose = LoseAnswer("CashOut", times=100)
    running = start_server(inner=[lose])
    user, wallet = player(funded=1_000)
    table_id = table()
    log = ReconciliationLog(tmp_path / "recon.jsonl")
    with BalanceClient(running.address, token, timeout=10, retry=FEW_RETRIES) as client:
        client.buy_in(user_id=user, table_id=table_id, amount=400)
        gate = BalanceGate(client, "enforce", permissive_fallback=True, reconciliation_log=log)
        assert gate.cash_out(table_id=table_id, user_id=user, leave=True).pending
    # The next 6 answers are lost too: the first pass (4 attempts) ends pending, a later one learns it.
    lose.times = len(lose.keys_seen) + 6
    args = [str(log.path), "--target", running.address, "--token", token, "--follow", "0.05"]
    assert replay_main(args) == 0
    assert len(lose.keys_seen) > lose.times and len(set(lose.keys_seen)) == 1
    [mark] = log.marks().values()
    assert mark["outcome"] == "ok" and mark["response"]["seat"]["status"] == "SEAT_STATUS_LEFT"
    assert Account.objects.get(pk=wallet).balance == 1_000  # cashed out once
