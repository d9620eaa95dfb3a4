"""Rollout modes (off / shadow / enforce) and the reconciliation log with its idempotent replay."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import Account
from balance_client import BalanceClient, BalanceGate, ReconciliationLog, RetryPolicy, RolloutMode
from balance_client.replay import main as replay_main
from ledger.models import JournalRecord
from tests.grpc.conftest import handled_count, new_key

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
NO_RETRY = RetryPolicy(max_attempts=1)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def down_client(token):
    """A client of a service that is not there."""
    with BalanceClient(f"127.0.0.1:{_closed_port()}", token, timeout=1.0, retry=NO_RETRY) as client:
        yield client


@pytest.fixture
def up_client(server, token):
    with BalanceClient(server.address, token, timeout=10) as client:
        yield client


def test_off_makes_no_call_and_allows(up_client, player, table):
    user, wallet = player(funded=10)
    table_id = table()
    calls_before = handled_count("BuyIn", "OK") + handled_count("BuyIn", "FAILED_PRECONDITION")
    gate = BalanceGate(None, "off")
    decision = gate.buy_in(user_id=user, table_id=table_id, amount=1_000_000)
    assert (decision.allowed, decision.outcome, decision.mode) == (True, "skipped", RolloutMode.OFF)
    assert handled_count("BuyIn", "OK") + handled_count("BuyIn", "FAILED_PRECONDITION") == calls_before
    assert Account.objects.get(pk=wallet).balance == 10


def test_shadow_calls_the_service_logs_disagreements_and_never_blocks(up_client, player, table, tmp_path, caplog):
    user, wallet = player(funded=500)
    table_id = table()
    gate = BalanceGate(up_client, "shadow", reconciliation_log=str(tmp_path / "recon.jsonl"))
    caplog.set_level(logging.WARNING, logger="balance_client.rollout")

    agreed = gate.buy_in(user_id=user, table_id=table_id, amount=200)
    assert (agreed.allowed, agreed.outcome) == (True, "ok") and agreed.response.seat.chips == 200
    assert "disagreement" not in caplog.text

    refused = gate.buy_in(user_id=user, table_id=table_id, amount=10_000)  # the poker side allowed it
    assert (refused.allowed, refused.outcome, refused.reason) == (True, "refused", "insufficient_funds")
    assert "disagreement" in caplog.text and "insufficient_funds" in caplog.text

    caplog.clear()
    gate.cash_out(table_id=table_id, user_id=user, amount=50, expected_allowed=False)
    assert "refused by the poker side, allowed by the balance service" in caplog.text
    # Only the refused buy-in the poker side went ahead with is in the log, to be resent (and, refused
    # again, reported as a divergence); what the service answered yes to is not.
    [line] = ReconciliationLog(tmp_path / "recon.jsonl").entries()
    assert (line["operation"], line["let_through"], line["error"]["reason"]) == ("buy_in", True, "insufficient_funds")
    assert line["idempotency_key"] == refused.idempotency_key and refused.reconciliation_logged
    assert Account.objects.get(pk=wallet).balance == 350


def test_shadow_lets_everything_through_when_the_service_is_down_and_logs_it(down_client, tmp_path):
    log_path = tmp_path / "recon.jsonl"
    gate = BalanceGate(down_client, RolloutMode.SHADOW, reconciliation_log=str(log_path))
    decision = gate.buy_in(user_id="alice", table_id="t1", amount=500, idempotency_key="buy_in:t1:alice:1")
    assert (decision.allowed, decision.outcome, decision.reconciliation_logged) == (True, "pending", True)
    [line] = [json.loads(text) for text in log_path.read_text().splitlines()]
    assert line["operation"] == "buy_in" and line["idempotency_key"] == "buy_in:t1:alice:1"
    assert line["request"] == {"user_id": "alice", "table_id": "t1", "amount": 500, "ttl_seconds": None}
    assert line["error"]["code"] in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and line["time"] and line["mode"] == "shadow"
    assert line["let_through"] is True


def test_enforce_lets_the_service_decide(up_client, player, table, tmp_path):
    user, wallet = player(funded=500)
    table_id = table()
    gate = BalanceGate(up_client, "enforce", reconciliation_log=str(tmp_path / "recon.jsonl"))
    assert gate.buy_in(user_id=user, table_id=table_id, amount=300).allowed
    refused = gate.buy_in(user_id=user, table_id=table_id, amount=300)
    assert (refused.allowed, refused.outcome, refused.reason) == (False, "refused", "insufficient_funds")
    refused = gate.settle_hand(table_id=table_id, hand_id="h1", contributions={user: 100}, payouts={user: 50})
    assert (refused.allowed, refused.reason) == (False, "settlement_invalid")
    assert Account.objects.get(pk=wallet).balance == 200
    assert not (tmp_path / "recon.jsonl").exists()  # every refusal was the service's answer: nothing to resend


def test_enforce_unreachable_is_pending_and_queued_never_refused(down_client, tmp_path):
    strict_log = ReconciliationLog(tmp_path / "strict.jsonl")
    strict = BalanceGate(down_client, "enforce", reconciliation_log=strict_log)
    decision = strict.cash_out(table_id="t1", user_id="alice", leave=True)
    assert (decision.allowed, decision.outcome, decision.pending, decision.reconciliation_logged) == (
        False,
        "pending",
        True,
        True,
    )
    [line] = strict_log.entries()
    assert (line["operation"], line["let_through"], line["idempotency_key"]) == (
        "cash_out",
        False,
        decision.idempotency_key,
    )

    log = ReconciliationLog(tmp_path / "recon.jsonl")
    permissive = BalanceGate(down_client, "enforce", permissive_fallback=True, reconciliation_log=log)
    decision = permissive.cash_out(table_id="t1", user_id="alice", leave=True)
    assert (decision.allowed, decision.outcome, decision.reconciliation_logged) == (True, "pending", True)
    assert [(entry["operation"], entry["let_through"]) for entry in log.entries()] == [("cash_out", True)]
    with pytest.raises(ValueError):
        BalanceGate(down_client, "enforce", permissive_fallback=True)  # nowhere to log what it lets through
    with pytest.raises(ValueError):
        BalanceGate(down_client, "enforce")  # nowhere to keep what it leaves pending


def _replay_command(log_path, address, token):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "balance_client.replay",
            str(log_path),
            "--target",
            address,
            "--token",
            token,
            "--timeout",
            "10",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_session_let_through_while_down_is_replayed_once_and_only_once(
    down_client, start_server, token, player, tmp_path
):
    from tables.services import table_open

    alice, alice_wallet = player(funded=1_000)
    bob, bob_wallet = player(funded=1_000)
    table_open(client="tests", idempotency_key=new_key(), table_id="t-recon", currency="EUR")
    log_path = tmp_path / "recon.jsonl"
    gate = BalanceGate(down_client, "shadow", reconciliation_log=str(log_path))
    for user in (alice, bob):
        assert gate.buy_in(user_id=user, table_id="t-recon", amount=400).allowed
    assert gate.settle_hand(
        table_id="t-recon", hand_id="h1", contributions={alice: 100, bob: 100}, payouts={alice: 190}, rake=10
    ).allowed
    assert gate.cash_out(table_id="t-recon", user_id=bob, leave=True).allowed
    assert len(log_path.read_text().splitlines()) == 4

    # Still down: nothing is replayed or marked, and the command says so.
    assert replay_main([str(log_path), "--target", down_client.target, "--token", token, "--timeout", "1"]) == 1
    assert not (tmp_path / "recon.jsonl.replayed").exists()

    running = start_server()
    first = _replay_command(log_path, running.address, token)
    assert first.returncode == 0, first.stderr
    assert "replayed 4, already done 0, refused 0, pending 0" in first.stdout
    assert Account.objects.get(pk=alice_wallet).balance == 600
    assert Account.objects.get(pk=bob_wallet).balance == 900
    records = JournalRecord.objects.filter(scope="poker-service").count()

    second = _replay_command(log_path, running.address, token)
    assert second.returncode == 0, second.stderr
    assert "replayed 0, already done 4, refused 0, pending 0" in second.stdout
    assert JournalRecord.objects.filter(scope="poker-service").count() == records
    assert Account.objects.get(pk=alice_wallet).balance == 600


def test_a_replayed_line_that_had_reached_the_service_is_not_applied_twice(up_client, token, player, table, tmp_path):
    """The service applied it but the answer was lost: the log has it, the replay gets the stored answer."""
    user, wallet = player(funded=1_000)
    table_id = table()
    key = f"buy_in:{table_id}:{user}:1"
    up_client.buy_in(user_id=user, table_id=table_id, amount=300, idempotency_key=key)
    log = ReconciliationLog(tmp_path / "recon.jsonl")
    log.append(
        operation="buy_in",
        request={"user_id": user, "table_id": table_id, "amount": 300, "ttl_seconds": None},
        idempotency_key=key,
        mode="shadow",
        error={"code": "DEADLINE_EXCEEDED", "reason": "", "message": "lost answer"},
    )
    log.append(
        operation="buy_in",
        request={"user_id": user, "table_id": table_id, "amount": 5_000, "ttl_seconds": None},
        idempotency_key=f"{key}-big",
        mode="shadow",
        error={"code": "UNAVAILABLE", "reason": "", "message": "down"},
    )
    status = replay_main([str(log.path), "--target", up_client.target, "--token", token])
    assert status == 2  # the second line is refused on its merits: a person must look at it
    assert Account.objects.get(pk=wallet).balance == 700
    marks = [json.loads(text) for text in log.marks_path.read_text().splitlines()]
    assert [(m["outcome"], m["reason"]) for m in marks] == [("ok", ""), ("refused", "insufficient_funds")]
    assert replay_main([str(log.path), "--target", up_client.target, "--token", token]) == 0
