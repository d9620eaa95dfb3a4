"""Seats and house accounts are out of reach of the calls meant for user wallets: a caller holding
an accounts:write or payments:write key cannot close or freeze the external funds (which would stop
every deposit in the currency), freeze a seat (which would block every settlement at its table) or
adjust chips into a seat behind the table's back."""

from __future__ import annotations

import pytest

from accounts.models import Account
from accounts.services import (
    account_adjust,
    account_close,
    account_deposit,
    account_freeze,
    account_transfer,
    account_unfreeze,
    account_withdraw,
)
from balance_project.errors import ERROR_TABLE, ApplicationError
from tables.services import hand_settle, table_buy_in
from tests.perf.helpers import world
from tests.tables.helpers import new_key, new_player, open_table

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts_of_the_house(settings):
    """A table with two seated players, their wallets, its rake shard and the external funds."""
    settings.EXTERNAL_ACCOUNT_SHARDS = 1
    table = open_table()
    (a, wallet_a), (b, _) = new_player(funded=1000), new_player(funded=1000)
    for user in (a, b):
        table_buy_in(client="t", idempotency_key=new_key(), user_id=user, table_id=table, amount=500)
    hand_settle(
        client="t",
        idempotency_key=new_key(),
        table_id=table,
        hand_id="h1",
        contributions={a: 10},
        payouts={b: 9},
        rake=1,
    )
    return {
        "table": table,
        "a": a,
        "b": b,
        "wallet_a": wallet_a,
        "seat": Account.objects.get(kind="seat", owner_ref=a).pk,
        "external": Account.objects.get(kind="system", system_code="external").pk,
        "rake": Account.objects.get(kind="system", system_code="rake").pk,
    }


def refused(call, **kwargs) -> ApplicationError:
    before = world()
    with pytest.raises(ApplicationError) as refusal:
        call(idempotency_key=new_key(), **kwargs)
    assert world() == before
    return refusal.value


@pytest.mark.parametrize("target", ["seat", "external", "rake"])
def test_status_changes_and_money_calls_on_a_seat_or_house_account_are_refused(accounts_of_the_house, target):
    account_id = accounts_of_the_house[target]
    calls = [
        (account_freeze, {"client": "t", "account_id": account_id}),
        (account_unfreeze, {"client": "t", "account_id": account_id}),
        (account_close, {"client": "t", "account_id": account_id}),
        (account_deposit, {"client": "t", "account_id": account_id, "amount": 5}),
        (account_withdraw, {"client": "t", "account_id": account_id, "amount": 5}),
        (account_adjust, {"actor": "support", "account_id": account_id, "amount": 5, "reason": "fix"}),
        (
            account_transfer,
            {
                "client": "t",
                "from_account_id": accounts_of_the_house["wallet_a"],
                "to_account_id": account_id,
                "amount": 5,
            },
        ),
    ]
    for call, kwargs in calls:
        refusal = refused(call, **kwargs)
        assert (refusal.code, refusal.details) == (
            "account_not_wallet",
            {"account_id": account_id, "kind": Account.objects.get(pk=account_id).kind},
        )
    assert ERROR_TABLE["account_not_wallet"].http_status == 422


def test_the_external_funds_stay_usable_when_they_net_to_zero(accounts_of_the_house):
    """Closing the external funds is refused whatever their balance (the audit closed them once
    they netted to zero, which stopped every deposit in the currency for good); deposits go on."""
    house = accounts_of_the_house
    wallet = house["wallet_a"]
    account_withdraw(client="t", idempotency_key=new_key(), account_id=wallet, amount=500)
    assert refused(account_close, client="t", account_id=house["external"]).code == "account_not_wallet"
    assert (
        account_deposit(client="t", idempotency_key=new_key(), account_id=wallet, amount=7)["account"]["balance"] == 7
    )


def test_a_wallet_is_still_frozen_and_closed_as_before(accounts_of_the_house):
    _, wallet = new_player()
    assert account_freeze(client="t", idempotency_key=new_key(), account_id=wallet)["account"]["status"] == "frozen"
    assert account_unfreeze(client="t", idempotency_key=new_key(), account_id=wallet)["account"]["status"] == "active"
    assert account_close(client="t", idempotency_key=new_key(), account_id=wallet)["account"]["status"] == "closed"
