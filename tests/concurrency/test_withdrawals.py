"""50 withdrawals at once against a wallet that can pay for exactly 10 of them."""

import uuid

import pytest

from accounts.models import Account
from accounts.services import account_withdraw
from ledger.integrity import ledger_verify
from ledger.models import Entry
from tests.concurrency.conftest import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_exactly_ten_of_fifty_concurrent_withdrawals_succeed(wallet):
    a = wallet(funded=1000)

    def withdraw():
        return account_withdraw(client="cashier", idempotency_key=f"w-{uuid.uuid4().hex}", account_id=a, amount=100)

    outcomes = run_concurrently([withdraw] * 50)

    succeeded = [value for status, value in outcomes if status == "ok"]
    refused = [value for status, value in outcomes if status == "error"]
    assert len(succeeded) == 10
    assert len(refused) == 40
    assert {refusal.code for refusal in refused} == {"insufficient_funds"}
    account = Account.objects.get(pk=a)
    assert (account.balance, account.held, account.entry_seq) == (0, 0, 11)
    # Never below zero on the way: every entry's balance_after is between 0 and the deposit.
    assert sorted(Entry.objects.filter(account_id=a).values_list("balance_after", flat=True)) == list(
        range(0, 1001, 100)
    )
    assert sorted(s["account"]["balance"] for s in succeeded) == list(range(0, 1000, 100))
    report = ledger_verify()
    assert report.ok, report.problems
