"""First deposits of many wallets at once onto external-funds shards that do not exist yet."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import Account
from accounts.services import account_deposit, account_withdraw
from ledger.integrity import ledger_verify
from tests.concurrency.conftest import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_first_deposits_at_once_create_each_shard_once_and_balance_the_books(wallet, settings):
    """Every shard is created by whichever first deposit gets there (the others wait on its unique
    index, then lock it), no deposit is refused or deadlocks, and each shard is minus exactly what
    its wallets received."""
    settings.EXTERNAL_ACCOUNT_SHARDS = 4
    wallets = [wallet(currency="SEK") for _ in range(24)]  # a currency no other test deposits in

    def deposit(account_id):
        return lambda: account_deposit(
            client="cashier", idempotency_key=f"d-{uuid.uuid4().hex}", account_id=account_id, amount=100
        )

    def withdraw(account_id):
        return lambda: account_withdraw(
            client="cashier", idempotency_key=f"w-{uuid.uuid4().hex}", account_id=account_id, amount=40
        )

    outcomes = run_concurrently([deposit(w) for w in wallets] + [deposit(w) for w in wallets])
    assert [status for status, _ in outcomes] == ["ok"] * 48, outcomes
    outcomes = run_concurrently([withdraw(w) for w in wallets])
    assert [status for status, _ in outcomes] == ["ok"] * 24, outcomes

    shards = dict(
        Account.objects.filter(kind="system", system_code="external", currency="SEK").values_list("shard", "balance")
    )
    assert set(shards) == {w % 4 for w in wallets}
    assert shards == {shard: -160 * sum(1 for w in wallets if w % 4 == shard) for shard in shards}
    assert all(balance == 160 for balance in Account.objects.filter(pk__in=wallets).values_list("balance", flat=True))
    assert ledger_verify().problem_count == 0
