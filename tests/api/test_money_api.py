"""Deposit, withdraw and transfer over HTTP: success, every bad amount, every refused state."""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts.models import Account
from ledger.models import Entry
from tests.api.conftest import assert_refusal_remembered, assert_refused, assert_unchanged, books

pytestmark = pytest.mark.django_db

# Raw JSON text of amounts that must be refused with invalid_amount: never rounded, never clipped.
BAD_AMOUNTS = [
    "0",
    "-5",
    "-0",
    "10.5",
    "10.0",
    "1e3",
    "1E2",
    "1000.0e0",
    '"abc"',
    '"10.5"',
    '"10.0"',
    '"1e3"',
    '""',
    '" "',
    '"-1"',
    '"0"',
    '"0x10"',
    # Text must be canonical digits: no spaces, no sign, no leading zero, no trailing newline.
    '" 5 "',
    '"5 "',
    '"0005"',
    '"-0"',
    '"+5"',
    '"5\\n"',
    '"\\u0665"',
    str(2**63),
    f'"{2**63}"',
    "1" * 40,
    "true",
    "false",
    "null",
    "[]",
    "[10]",
    "{}",
    '{"value": 10}',
]


def _movement_paths(account_id: int, other_id: int):
    return [
        (f"/api/v1/accounts/{account_id}/deposit", '{"amount": %s}'),
        (f"/api/v1/accounts/{account_id}/withdraw", '{"amount": %s}'),
        ("/api/v1/transfers", '{"from_account_id": %d, "to_account_id": %d, "amount": %%s}' % (account_id, other_id)),
    ]


def test_deposit_credits_the_wallet(api, opened):
    account_id = opened()
    response = api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 1500, "metadata": {"psp": "x-1"}})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["account"]["balance"] == 1500
    assert body["transaction"]["kind"] == "deposit" and body["transaction"]["metadata"] == {"psp": "x-1"}
    assert sum(entry["amount"] for entry in body["transaction"]["entries"]) == 0
    assert Account.objects.get(pk=account_id).balance == 1500


def test_amount_as_digit_string_is_accepted(api, opened):
    account_id = opened()
    response = api.post(f"/api/v1/accounts/{account_id}/deposit", raw='{"amount": "250"}')
    assert response.status_code == 201 and response.json()["account"]["balance"] == 250


def test_the_largest_amount_is_max_amount(api, opened):
    account_id = opened()
    response = api.post(f"/api/v1/accounts/{account_id}/deposit", raw='{"amount": %d}' % settings.MAX_AMOUNT)
    assert response.status_code == 201, response.content
    before = books()
    for over in (settings.MAX_AMOUNT + 1, 2**63 - 1):
        error = assert_refused(
            api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": over}), 400, "invalid_amount"
        )
        assert error["details"]["field"] == "amount"
    assert_unchanged(before)


def test_a_currency_can_have_its_own_maximum(api, opened, settings):
    settings.MAX_AMOUNT_BY_CURRENCY = {"EUR": 1000}
    account_id = opened(funded=1000)
    for path in ("deposit", "withdraw"):
        before = books()
        error = assert_refused(
            api.post(f"/api/v1/accounts/{account_id}/{path}", {"amount": 1001}), 400, "invalid_amount"
        )
        assert error["details"] == {"field": "amount", "max": 1000, "currency": "EUR"}
        assert_refusal_remembered(before, "invalid_amount")
    assert api.post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 1000}).status_code == 201


def test_withdraw_debits_the_wallet(api, opened):
    account_id = opened(funded=1000)
    response = api.post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 400})
    assert response.status_code == 201, response.content
    assert response.json()["transaction"]["kind"] == "withdrawal"
    assert response.json()["account"]["balance"] == 600
    assert Account.objects.get(pk=account_id).balance == 600


def test_transfer_moves_money_between_wallets(api, opened):
    a, b = opened(funded=1000), opened()
    response = api.post(
        "/api/v1/transfers", {"from_account_id": a, "to_account_id": b, "amount": 300, "metadata": {"note": "gift"}}
    )
    assert response.status_code == 201, response.content
    entries = {e["account_id"]: e["amount"] for e in response.json()["transaction"]["entries"]}
    assert entries == {a: -300, b: 300}
    assert (Account.objects.get(pk=a).balance, Account.objects.get(pk=b).balance) == (700, 300)


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
@pytest.mark.parametrize("which", ["deposit", "withdraw", "transfer"])
def test_bad_amount_is_invalid_amount_and_changes_nothing(api, opened, amount, which):
    a, b = opened(funded=100), opened()
    path, template = dict(zip(["deposit", "withdraw", "transfer"], _movement_paths(a, b), strict=True))[which]
    before = books()
    error = assert_refused(api.post(path, raw=template % amount), 400, "invalid_amount")
    assert error["details"]["field"] == "amount"
    assert_unchanged(before)


@pytest.mark.parametrize("which", ["deposit", "withdraw", "transfer"])
def test_missing_amount_is_invalid_request(api, opened, which):
    a, b = opened(funded=100), opened()
    path, template = dict(zip(["deposit", "withdraw", "transfer"], _movement_paths(a, b), strict=True))[which]
    body = template.replace(', "amount": %s', "").replace('"amount": %s', "")
    before = books()
    error = assert_refused(api.post(path, raw=body), 400, "invalid_request")
    assert "amount" in error["details"]["fields"]
    assert_unchanged(before)


@pytest.mark.parametrize(
    "metadata", ['"note"', "[1, 2]", '{"rate": 1.5}', '{"deep": [{"x": 2.0}]}', '{"blob": "%s"}' % ("x" * 5000)]
)
def test_bad_metadata_is_invalid_request(api, opened, metadata):
    account_id = opened()
    before = books()
    assert_refused(
        api.post(f"/api/v1/accounts/{account_id}/deposit", raw='{"amount": 5, "metadata": %s}' % metadata),
        400,
        "invalid_request",
    )
    assert_unchanged(before)


@pytest.mark.parametrize(
    "field, value",
    [
        ("from_account_id", "1.0"),
        ("from_account_id", "true"),
        ("to_account_id", '"abc"'),
        ("to_account_id", "0"),
        ("to_account_id", str(2**63)),
        ("from_account_id", "null"),
    ],
)
def test_transfer_with_bad_account_id_is_invalid_request(api, opened, field, value):
    a, b = opened(funded=100), opened()
    body = {"from_account_id": str(a), "to_account_id": str(b), "amount": "5"}
    body[field] = "@"
    raw = "{%s}" % ", ".join(f'"{k}": {value if v == "@" else v}' for k, v in body.items())
    before = books()
    error = assert_refused(api.post("/api/v1/transfers", raw=raw), 400, "invalid_request")
    assert field in error["details"]["fields"]
    assert_unchanged(before)


def test_transfer_to_the_same_account_is_invalid_request(api, opened):
    a = opened(funded=100)
    before = books()
    assert_refused(
        api.post("/api/v1/transfers", {"from_account_id": a, "to_account_id": a, "amount": 5}), 400, "invalid_request"
    )
    assert_unchanged(before)


@pytest.mark.parametrize("which", ["deposit", "withdraw", "transfer_from", "transfer_to"])
def test_unknown_account_is_account_not_found(api, opened, which):
    known = opened(funded=100)
    path, body = {
        "deposit": ("/api/v1/accounts/987654321/deposit", {"amount": 5}),
        "withdraw": ("/api/v1/accounts/987654321/withdraw", {"amount": 5}),
        "transfer_from": ("/api/v1/transfers", {"from_account_id": 987654321, "to_account_id": known, "amount": 5}),
        "transfer_to": ("/api/v1/transfers", {"from_account_id": known, "to_account_id": 987654321, "amount": 5}),
    }[which]
    before = books()
    error = assert_refused(api.post(path, body), 404, "account_not_found")
    assert error["details"]["account_id"] == 987654321
    assert_refusal_remembered(before, "account_not_found")


@pytest.mark.parametrize("state, code", [("freeze", "account_frozen"), ("close", "account_closed")])
@pytest.mark.parametrize("which", ["deposit", "withdraw", "transfer_from", "transfer_to"])
def test_frozen_or_closed_account_moves_no_money(api, opened, state, code, which):
    target, other = opened(), opened(funded=100)
    if state == "freeze" and which in ("withdraw", "transfer_from"):
        assert api.post(f"/api/v1/accounts/{target}/deposit", {"amount": 50}).status_code == 201
    assert api.post(f"/api/v1/accounts/{target}/{state}").status_code == 200
    path, body = {
        "deposit": (f"/api/v1/accounts/{target}/deposit", {"amount": 5}),
        "withdraw": (f"/api/v1/accounts/{target}/withdraw", {"amount": 5}),
        "transfer_from": ("/api/v1/transfers", {"from_account_id": target, "to_account_id": other, "amount": 5}),
        "transfer_to": ("/api/v1/transfers", {"from_account_id": other, "to_account_id": target, "amount": 5}),
    }[which]
    before = books()
    error = assert_refused(api.post(path, body), 422, code)
    assert error["details"]["account_id"] == target
    assert_refusal_remembered(before, code)


def test_transfer_across_currencies_is_currency_mismatch(api, opened):
    eur, usd = opened(funded=100), opened(currency="USD")
    before = books()
    assert_refused(
        api.post("/api/v1/transfers", {"from_account_id": eur, "to_account_id": usd, "amount": 5}),
        422,
        "currency_mismatch",
    )
    assert_refusal_remembered(before, "currency_mismatch")


@pytest.mark.parametrize("which", ["withdraw", "transfer"])
def test_above_available_is_insufficient_funds(api, opened, which):
    a, b = opened(funded=100), opened()
    path, body = (
        (f"/api/v1/accounts/{a}/withdraw", {"amount": 101})
        if which == "withdraw"
        else ("/api/v1/transfers", {"from_account_id": a, "to_account_id": b, "amount": 101})
    )
    before = books()
    error = assert_refused(api.post(path, body), 422, "insufficient_funds")
    assert error["details"] == {"account_id": a, "available": 100, "requested": 101}
    assert_refusal_remembered(before, "insufficient_funds")
    assert Entry.objects.filter(account_id=a).count() == 1
