"""Trial balance: per currency totals that sum to zero, as of a moment, and caught disagreements."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from accounts.keys import api_key_create
from accounts.models import Account
from ledger.reports import trial_balance
from tests.ledger.conftest import balance_tampered

from .conftest import utc

pytestmark = pytest.mark.django_db


def by_currency(report: dict) -> dict:
    return {books["currency"]: books for books in report["currencies"]}


def test_books_sum_to_zero_per_currency_with_kind_and_house_totals(postings, wallet):
    wallet("dave", currency="GBP")  # an account with no entries yet
    report = trial_balance()
    assert report["balanced"] is True and report["at"] is None
    books = by_currency(report)
    assert set(books) == {"EUR", "GBP", "USD"}
    eur, usd = books["EUR"], books["USD"]
    # EUR: deposits 1000 + 500, withdrawal 100: wallets hold 1400, the external account -1400.
    assert eur["kinds"] == {
        "user": {"accounts": 2, "entries": 5, "total": 1400},
        "system": {"accounts": 1, "entries": 3, "total": -1400},
    }
    assert eur["system_accounts"] == {"external": -1400}
    assert (eur["total"], eur["accounts_total"], eur["entry_count"]) == (0, 0, 8)
    assert usd["kinds"]["user"]["total"] == 700 and usd["system_accounts"] == {"external": -700}
    assert books["GBP"]["total"] == 0 and books["GBP"]["kinds"] == {}
    for currency_books in books.values():
        assert currency_books["balanced"] and currency_books["matches_accounts"]
        assert currency_books["mismatched_accounts"] == []
    json.dumps(report)  # JSON-safe
    assert "." not in json.dumps(report)  # no floats anywhere


def test_as_of_a_moment_counts_only_earlier_transactions(postings):
    books = by_currency(trial_balance(at=utc(2026, 11, 1)))
    assert set(books) == {"EUR"}
    assert books["EUR"]["kinds"]["user"]["total"] == 1000
    assert books["EUR"]["accounts_total"] is None
    assert books["EUR"]["balanced"] and books["EUR"]["matches_accounts"]
    # At Dec 1 exactly the withdrawal stamped Dec 1 is not yet counted.
    assert by_currency(trial_balance(at=utc(2026, 12, 1)))["EUR"]["kinds"]["user"]["total"] == 1500


def test_currency_filter(postings):
    report = trial_balance(currency="USD")
    assert [b["currency"] for b in report["currencies"]] == ["USD"] and report["currency"] == "USD"


def test_an_account_row_that_disagrees_with_its_entries_is_named(postings):
    balance_tampered([postings["alice"]], Account.objects.get(pk=postings["alice"]).balance + 7)
    report = trial_balance()
    eur = by_currency(report)["EUR"]
    assert report["balanced"] is False
    assert eur["total"] == 0 and eur["accounts_total"] == 7 and eur["balanced"] is False
    assert eur["mismatched_accounts"] == [
        {"account_id": postings["alice"], "ledger_balance": 750, "recorded_balance": 757}
    ]
    assert eur["mismatched_account_count"] == 1
    assert by_currency(report)["USD"]["matches_accounts"] is True


def test_command_prints_and_exits_non_zero_when_the_books_do_not_balance(postings):
    out = io.StringIO()
    call_command("trial_balance", stdout=out)
    assert "EUR: 8 entries" in out.getvalue() and "NOT BALANCED" not in out.getvalue()
    out = io.StringIO()
    call_command("trial_balance", "--at", "2026-11-01", "--currency", "EUR", "--json", stdout=out)
    assert by_currency(json.loads(out.getvalue()))["EUR"]["kinds"]["user"]["total"] == 1000

    balance_tampered([postings["bob"]], Account.objects.get(pk=postings["bob"]).balance - 1)
    out = io.StringIO()
    with pytest.raises(CommandError, match="do not balance"):
        call_command("trial_balance", stdout=out)
    assert f"account {postings['bob']}: entries 650, recorded 649" in out.getvalue()


def test_command_refuses_a_bad_moment():
    with pytest.raises(CommandError, match="--at must be"):
        call_command("trial_balance", "--at", "soon", stdout=io.StringIO())


def test_http_trial_balance_needs_ledger_read_and_checks_input(client, postings):
    raw, _ = api_key_create(client="finance", scopes=["ledger:read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    response = client.get("/api/v1/ledger/trial-balance", {"at": "2026-11-01", "currency": "EUR"}, **auth)
    assert response.status_code == 200
    assert by_currency(response.json())["EUR"]["kinds"]["user"]["total"] == 1000
    assert client.get("/api/v1/ledger/trial-balance", **auth).json()["balanced"] is True

    for params in ({"at": "not-a-date"}, {"currency": "euro"}):
        bad = client.get("/api/v1/ledger/trial-balance", params, **auth)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"

    assert client.get("/api/v1/ledger/trial-balance").status_code == 401
    other, _ = api_key_create(client="cashier", scopes=["accounts:read"])
    denied = client.get("/api/v1/ledger/trial-balance", HTTP_AUTHORIZATION=f"Bearer {other}")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"


def test_the_external_funds_are_the_sum_of_their_shards(wallet, settings):
    """Deposits post against shard (wallet id % EXTERNAL_ACCOUNT_SHARDS); the books name one figure."""
    settings.EXTERNAL_ACCOUNT_SHARDS = 4
    wallets = [wallet(funded=100 * n) for n in range(1, 7)]
    shards = dict(
        Account.objects.filter(kind="system", system_code="external", currency="EUR").values_list("shard", "balance")
    )
    assert set(shards) == {w % 4 for w in wallets} and len(shards) > 1
    assert sum(shards.values()) == -2100
    eur = by_currency(trial_balance())["EUR"]
    assert eur["system_accounts"] == {"external": -2100} and eur["balanced"] and eur["matches_accounts"]
