"""Success paths of every account endpoint, and the refusals of opening, reading and status changes."""

from __future__ import annotations

import pytest

from accounts.models import Account
from tests.api.conftest import assert_refusal_remembered, assert_refused, assert_unchanged, books

pytestmark = pytest.mark.django_db

ACCOUNT_FIELDS = {
    "id",
    "kind",
    "owner_ref",
    "system_code",
    "currency",
    "balance",
    "held",
    "available",
    "status",
    "version",
}


def test_open_account_returns_201_and_the_new_wallet(api):
    response = api.post("/api/v1/accounts", {"owner_ref": "alice", "currency": "EUR"})
    assert response.status_code == 201
    account = response.json()["account"]
    assert set(account) == ACCOUNT_FIELDS
    assert account["owner_ref"] == "alice" and account["currency"] == "EUR" and account["kind"] == "user"
    assert (account["balance"], account["held"], account["available"], account["status"]) == (0, 0, 0, "active")
    assert Account.objects.get(pk=account["id"]).owner_ref == "alice"


def test_second_wallet_for_owner_and_currency_is_account_exists(api, opened):
    first = opened(owner="bob")
    before = books()
    error = assert_refused(api.post("/api/v1/accounts", {"owner_ref": "bob", "currency": "EUR"}), 409, "account_exists")
    assert error["details"] == {"account_id": first}
    assert_refusal_remembered(before, "account_exists")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"owner_ref": "carol", "currency": "eur"}, "currency"),
        ({"owner_ref": "carol", "currency": "EURO"}, "currency"),
        ({"owner_ref": "carol", "currency": 978}, "currency"),
        ({"owner_ref": "", "currency": "EUR"}, "owner_ref"),
        ({"owner_ref": "x" * 129, "currency": "EUR"}, "owner_ref"),
        ({"owner_ref": 42, "currency": "EUR"}, "owner_ref"),
        ({"currency": "EUR"}, "owner_ref"),
        ({"owner_ref": "carol", "currency": "EUR", "ownerref": "typo"}, "ownerref"),
    ],
)
def test_open_account_with_bad_fields_is_invalid_request(api, body, field):
    before = books()
    error = assert_refused(api.post("/api/v1/accounts", body), 400, "invalid_request")
    assert field in error["details"].get("fields", {}) or error["details"].get("field") == field
    assert_unchanged(before)


def test_list_by_owner_returns_each_wallet_in_id_order(api, opened):
    eur, usd = opened(owner="dora"), opened(owner="dora", currency="USD")
    opened(owner="someone-else")
    response = api.get("/api/v1/accounts", {"owner_ref": "dora"})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["id"] for item in items] == [eur, usd]
    assert [item["currency"] for item in items] == ["EUR", "USD"]
    assert api.get("/api/v1/accounts", {"owner_ref": "nobody"}).json() == {"items": []}


def test_list_needs_owner_ref(api):
    error = assert_refused(api.get("/api/v1/accounts"), 400, "invalid_request")
    assert "owner_ref" in error["details"]["fields"]


def test_detail_and_balance(api, opened):
    account_id = opened(funded=1234)
    detail = api.get(f"/api/v1/accounts/{account_id}")
    assert detail.status_code == 200
    body = detail.json()
    assert set(body) == ACCOUNT_FIELDS | {"source"}
    assert (body["id"], body["balance"], body["available"]) == (account_id, 1234, 1234)
    balance = api.get(f"/api/v1/accounts/{account_id}/balance")
    assert balance.status_code == 200
    assert {k: v for k, v in balance.json().items() if k != "source"} == {
        "account_id": account_id,
        "currency": "EUR",
        "balance": 1234,
        "held": 0,
        "available": 1234,
        "version": body["version"],
    }


@pytest.mark.parametrize("suffix", ["", "/balance", "/transactions", "/statement"])
def test_unknown_account_is_account_not_found_on_reads(api, suffix):
    error = assert_refused(api.get(f"/api/v1/accounts/987654321{suffix}"), 404, "account_not_found")
    assert error["details"] == {"account_id": 987654321}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/9223372036854775808",
        "/api/v1/accounts/0",
        "/api/v1/accounts/abc",
        "/api/v1/accounts/99999999999999999999/deposit",
    ],
)
def test_ids_that_cannot_exist_are_not_found(api, path):
    assert_refused(api.get(path) if "deposit" not in path else api.post(path, {"amount": 1}), 404, "not_found")


def test_freeze_unfreeze_close(api, opened):
    account_id = opened()
    for action, status in [("freeze", "frozen"), ("unfreeze", "active"), ("close", "closed")]:
        response = api.post(f"/api/v1/accounts/{account_id}/{action}")
        assert response.status_code == 200, response.content
        assert response.json()["account"]["status"] == status
        assert Account.objects.get(pk=account_id).status == status


def test_status_change_of_unknown_account_is_not_found_and_remembered(api):
    before = books()
    assert_refused(api.post("/api/v1/accounts/987654321/freeze"), 404, "account_not_found")
    assert_refusal_remembered(before, "account_not_found")


def test_close_with_money_is_account_not_empty(api, opened):
    account_id = opened(funded=10)
    before = books()
    error = assert_refused(api.post(f"/api/v1/accounts/{account_id}/close"), 422, "account_not_empty")
    assert error["details"]["balance"] == 10
    assert_refusal_remembered(before, "account_not_empty")


@pytest.mark.parametrize("action", ["freeze", "unfreeze", "close"])
def test_closed_account_never_changes_status_again(api, opened, action):
    account_id = opened()
    assert api.post(f"/api/v1/accounts/{account_id}/close").status_code == 200
    before = books()
    assert_refused(api.post(f"/api/v1/accounts/{account_id}/{action}"), 422, "account_closed")
    assert_refusal_remembered(before, "account_closed")


def test_status_change_refuses_a_body_with_fields(api, opened):
    account_id = opened()
    before = books()
    assert_refused(api.post(f"/api/v1/accounts/{account_id}/freeze", {"reason": "x"}), 400, "invalid_request")
    assert_unchanged(before)


@pytest.mark.parametrize("owner_ref", ["tab\there", "nul\u0000", "x" * 129, "   "])
def test_an_owner_ref_that_is_not_1_to_128_printable_characters_is_refused(api, owner_ref):
    before = Account.objects.count()
    response = api.post("/api/v1/accounts", {"owner_ref": owner_ref, "currency": "EUR"})
    assert response.status_code == 400, response.content
    assert Account.objects.count() == before


@pytest.mark.parametrize(
    "owner_ref",
    ["", " alice", "alice ", "alice\n", "ali\u200bce", "\u202ealice", "alic\u0065\u0301", "\u0430lice", "=cmd"],
)
def test_an_owner_ref_has_one_spelling(api, owner_ref):
    """Letters, digits and . _ : @ - only, exactly as given: a look-alike, a zero-width or bidi
    character, a combining accent or a space around it would be a second wallet for one player."""
    before = Account.objects.count()
    response = api.post("/api/v1/accounts", {"owner_ref": owner_ref, "currency": "EUR"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", response.content
    assert Account.objects.count() == before
    listed = api.get("/api/v1/accounts", {"owner_ref": owner_ref})
    assert listed.status_code == 400 and listed.json()["error"]["details"]["field"] == "owner_ref", listed.content


def test_an_owner_ref_may_be_an_email_or_a_uuid(api):
    for owner_ref in ("alice@example.com", "6f1c2a3e-1b2c-4d5e-8f90-123456789abc", "tenant:42.user_7"):
        response = api.post("/api/v1/accounts", {"owner_ref": owner_ref, "currency": "EUR"})
        assert response.status_code == 201, response.content
