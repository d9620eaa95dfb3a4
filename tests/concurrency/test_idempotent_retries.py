"""The same mutating request sent 5 times with one key, one after another and all at once:
the money moves once and every answer is the same."""

import pytest

from accounts.models import Account
from accounts.services import account_deposit, account_transfer, account_withdraw
from ledger.integrity import ledger_verify
from ledger.models import JournalRecord, Transaction
from tests.concurrency.conftest import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(wallet):
    return wallet(funded=1000), wallet(funded=0)


def transfer(a, b, key, amount=300):
    return lambda: account_transfer(
        client="poker", idempotency_key=key, from_account_id=a, to_account_id=b, amount=amount
    )


def balances(*ids):
    return [Account.objects.get(pk=pk).balance for pk in ids]


def assert_moved_once(outcomes, a, b):
    assert [status for status, _ in outcomes] == ["ok"] * 5
    answers = [value for _, value in outcomes]
    assert all(answer == answers[0] for answer in answers)
    assert balances(a, b) == [700, 300]
    assert Transaction.objects.filter(kind="transfer").count() == 1
    assert ledger_verify().ok


def test_sequential_retries_move_money_once(pair):
    a, b = pair
    call = transfer(a, b, "retry-seq")
    assert_moved_once([("ok", call()) for _ in range(5)], a, b)


def test_concurrent_retries_move_money_once(pair):
    a, b = pair
    outcomes = run_concurrently([transfer(a, b, "retry-par")] * 5)
    assert_moved_once(outcomes, a, b)
    assert JournalRecord.objects.filter(scope="poker", key="retry-par").count() == 1


@pytest.mark.parametrize("together", [False, True])
def test_retries_of_a_refused_request_get_the_same_refusal(pair, together):
    a, b = pair
    call = transfer(a, b, f"refused-{together}", amount=5000)
    if together:
        outcomes = run_concurrently([call] * 5)
    else:
        outcomes = []
        for _ in range(5):
            try:
                outcomes.append(("ok", call()))
            except Exception as refusal:
                outcomes.append(("error", refusal))
    assert [status for status, _ in outcomes] == ["error"] * 5
    assert all(value.as_dict() == outcomes[0][1].as_dict() for _, value in outcomes)
    assert outcomes[0][1].code == "insufficient_funds"
    assert balances(a, b) == [1000, 0]


def test_concurrent_deposits_and_withdrawals_each_retried_move_once(pair):
    a, _ = pair
    calls = []
    for n in range(4):
        calls += [
            lambda n=n: account_deposit(client="cashier", idempotency_key=f"dep-{n}", account_id=a, amount=100)
        ] * 5
        calls += [
            lambda n=n: account_withdraw(client="cashier", idempotency_key=f"wd-{n}", account_id=a, amount=50)
        ] * 5
    outcomes = run_concurrently(calls, threads=8)
    assert all(status == "ok" for status, _ in outcomes)
    for start in range(0, len(calls), 5):
        group = [value for _, value in outcomes[start : start + 5]]
        assert all(answer == group[0] for answer in group)
    assert balances(a) == [1000 + 4 * 100 - 4 * 50]
    assert ledger_verify().ok


def test_same_key_for_different_requests_at_once_moves_one_and_refuses_the_rest(pair):
    a, b = pair
    outcomes = run_concurrently([transfer(a, b, "shared", amount=amount) for amount in (100, 200, 300, 400, 500)])
    winners = [value for status, value in outcomes if status == "ok"]
    assert len(winners) == 1
    assert {value.code for status, value in outcomes if status == "error"} == {"idempotency_conflict"}
    moved = winners[0]["transaction"]["entries"][1]["amount"]
    assert balances(a, b) == [1000 - moved, moved]
