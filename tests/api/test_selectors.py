"""The account selectors as gRPC and other callers use them (no HTTP in between)."""

from __future__ import annotations

import pytest

from accounts import selectors
from balance_project.errors import ApplicationError

pytestmark = pytest.mark.django_db


def _refused(code: str, call, **kwargs) -> None:
    with pytest.raises(ApplicationError) as err:
        call(**kwargs)
    assert err.value.code == code


def test_wallet_balance_get_finds_the_wallet_by_owner_and_currency(wallet):
    eur = wallet(owner="gina", funded=300)
    wallet(owner="gina", currency="USD", funded=5)
    result = selectors.wallet_balance_get(user_id="gina", currency="EUR")
    assert (result["id"], result["balance"], result["available"]) == (eur, 300, 300)
    assert result["source"] in ("cache", "database")
    _refused("account_not_found", selectors.wallet_balance_get, user_id="gina", currency="GBP")
    _refused("account_not_found", selectors.wallet_balance_get, user_id="nobody", currency="EUR")
    _refused("invalid_request", selectors.wallet_balance_get, user_id="gina", currency="eur")


def test_account_get_and_list_by_owner(wallet):
    account_id = wallet(owner="hank", funded=10)
    assert selectors.account_get(account_id=account_id)["account"]["balance"] == 10
    assert [a["id"] for a in selectors.accounts_list_by_owner(owner_ref="hank")["items"]] == [account_id]
    assert selectors.accounts_list_by_owner(owner_ref="hank", kind="seat") == {"items": []}
    _refused("invalid_request", selectors.accounts_list_by_owner, owner_ref="hank", kind="system")
    _refused("invalid_request", selectors.accounts_list_by_owner, owner_ref=" ")
    for bad in (0, -1, 2**63, True, "1"):
        _refused("account_not_found", selectors.account_get, account_id=bad)


@pytest.mark.parametrize("limit", [0, 201, True, "5", 5.0])
def test_transactions_list_refuses_a_bad_limit(wallet, limit):
    _refused("invalid_request", selectors.account_transactions_list, account_id=wallet(), limit=limit)


def test_balance_get_of_an_unknown_account(db):
    _refused("account_not_found", selectors.account_balance_get, account_id=987654321)


def test_a_remembered_wallet_id_that_names_another_account_is_looked_up_again(wallet):
    """The process remembers wallet ids; one that no longer names that wallet (a test database
    reset reuses ids) is dropped, never answered with."""
    mine = wallet(owner="ivy", funded=70)
    other = wallet(owner="jon", funded=900)
    selectors._WALLET_IDS[("ivy", "EUR")] = other
    result = selectors.wallet_balance_get(user_id="ivy", currency="EUR")
    assert (result["id"], result["owner_ref"], result["balance"]) == (mine, "ivy", 70)
    assert selectors._WALLET_IDS[("ivy", "EUR")] == mine
    selectors._WALLET_IDS[("ivy", "EUR")] = 2**62  # an id with no account at all
    assert selectors.wallet_balance_get(user_id="ivy", currency="EUR")["id"] == mine
