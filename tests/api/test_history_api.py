"""Transaction history (cursor pages) and statements."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from ledger.chain import format_timestamp
from ledger.models import Entry
from tests.api.conftest import assert_refused

pytestmark = pytest.mark.django_db


def _deposits(api, account_id: int, amounts: list[int]) -> None:
    for amount in amounts:
        assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": amount}).status_code == 201


def test_pages_walk_every_entry_once_newest_first(api, opened):
    account_id = opened()
    _deposits(api, account_id, list(range(1, 24)))
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        response = api.get(f"/api/v1/accounts/{account_id}/transactions", params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["items"]) <= 5
        seen += body["items"]
        pages += 1
        if pages == 2:
            _deposits(api, account_id, [1000])  # posted mid-walk: must not shift later pages
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert [item["seq"] for item in seen] == list(range(23, 0, -1))
    assert [item["amount"] for item in seen] == list(range(23, 0, -1))
    first = seen[-1]
    assert set(first) == {"transaction_id", "kind", "seq", "amount", "balance_after", "created_at", "metadata"}
    assert (first["kind"], first["balance_after"]) == ("deposit", 1)


def test_last_page_has_no_cursor_and_default_limit_is_50(api, opened):
    account_id = opened()
    _deposits(api, account_id, [5, 6])
    body = api.get(f"/api/v1/accounts/{account_id}/transactions").json()
    assert [item["amount"] for item in body["items"]] == [6, 5] and body["next_cursor"] is None
    assert api.get(f"/api/v1/accounts/{opened()}/transactions").json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"limit": "5.0"},
        {"limit": "-1"},
        {"cursor": "not-a-cursor"},
        {"cursor": base64.urlsafe_b64encode(b"e1:999999999:1").decode()},
        {"cursor": base64.urlsafe_b64encode(b"e9:1:1").decode()},
    ],
)
def test_bad_limit_or_cursor_is_invalid_request(api, opened, params):
    account_id = opened()
    _deposits(api, account_id, [1, 2, 3])
    error = assert_refused(api.get(f"/api/v1/accounts/{account_id}/transactions", params), 400, "invalid_request")
    assert set(params) & (set(error["details"].get("fields", {})) | {error["details"].get("field")})


def test_cursor_of_another_account_is_refused(api, opened):
    a, b = opened(), opened()
    _deposits(api, a, [1, 2, 3])
    _deposits(api, b, [1, 2, 3])
    cursor = api.get(f"/api/v1/accounts/{a}/transactions", {"limit": 1}).json()["next_cursor"]
    assert cursor
    assert_refused(api.get(f"/api/v1/accounts/{b}/transactions", {"cursor": cursor}), 400, "invalid_request")


def test_statement_of_a_period(api, opened):
    account_id, other = opened(), opened()
    _deposits(api, account_id, [1000])
    assert api.post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 300}).status_code == 201
    _deposits(api, account_id, [50])
    assert (
        api.post("/api/v1/transfers", {"from_account_id": account_id, "to_account_id": other, "amount": 25}).status_code
        == 201
    )
    _deposits(api, account_id, [7])
    stamps = list(Entry.objects.filter(account_id=account_id).order_by("seq").values_list("created_at", flat=True))
    assert stamps == sorted(set(stamps))
    # [entry 2, entry 5): the withdrawal, the deposit of 50 and the transfer out.
    response = api.get(
        f"/api/v1/accounts/{account_id}/statement",
        {"from": format_timestamp(stamps[1]), "to": format_timestamp(stamps[4])},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    totals = (body["opening_balance"], body["total_in"], body["total_out"], body["closing_balance"])
    assert totals == (1000, 50, 325, 725)
    assert body["opening_balance"] + body["total_in"] - body["total_out"] == body["closing_balance"]
    assert [e["amount"] for e in body["entries"]] == [-300, 50, -25]
    assert (body["entry_count"], body["truncated"]) == (3, False)
    assert body["from"] == format_timestamp(stamps[1]) and body["to"] == format_timestamp(stamps[4])
    assert body["account"]["id"] == account_id


def test_statement_by_dates_and_defaults(api, opened):
    account_id = opened()
    _deposits(api, account_id, [100, 20])
    today = Entry.objects.filter(account_id=account_id).first().created_at.date()
    by_day = api.get(
        f"/api/v1/accounts/{account_id}/statement", {"from": today.isoformat(), "to": today.isoformat()}
    ).json()
    assert (by_day["opening_balance"], by_day["closing_balance"], by_day["entry_count"]) == (0, 120, 2)
    everything = api.get(f"/api/v1/accounts/{account_id}/statement").json()
    assert (everything["from"], everything["closing_balance"], everything["total_in"]) == (None, 120, 120)
    last = Entry.objects.filter(account_id=account_id).order_by("seq").last().created_at
    later = api.get(
        f"/api/v1/accounts/{account_id}/statement", {"from": format_timestamp(last + timedelta(microseconds=1))}
    ).json()
    assert (later["opening_balance"], later["closing_balance"], later["entries"]) == (120, 120, [])
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert_refused(api.get(f"/api/v1/accounts/{account_id}/statement", {"from": tomorrow}), 400, "invalid_request")


def test_statement_accepts_offsets_even_with_an_unescaped_plus(api, opened):
    account_id = opened()
    _deposits(api, account_id, [5])
    stamp = Entry.objects.get(account_id=account_id).created_at
    start = (stamp - timedelta(hours=1)).astimezone().isoformat()
    url = f"/api/v1/accounts/{account_id}/statement?from={start.replace('+', '%2B')}"
    assert api.client.get(url, headers={"Authorization": f"Bearer {api.raw_key}"}).json()["entry_count"] == 1
    assert (
        api.get(f"/api/v1/accounts/{account_id}/statement", {"from": "2000-01-01T00:00:00 00:00"}).json()["entry_count"]
        == 1
    )


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2024-13-01"},
        {"from": "2024-02-30"},
        {"from": "2024-02-01", "to": "2024-01-01"},
        {"from": "2024-01-02T00:00:00Z", "to": "2024-01-02T00:00:00Z"},
    ],
)
def test_bad_statement_period_is_invalid_request(api, opened, params):
    assert_refused(api.get(f"/api/v1/accounts/{opened()}/statement", params), 400, "invalid_request")


def test_long_statement_lists_the_first_entries_and_says_so(api, opened, monkeypatch):
    from accounts import selectors

    monkeypatch.setattr(selectors, "STATEMENT_MAX_ENTRIES", 2)
    account_id = opened()
    _deposits(api, account_id, [1, 2, 4])
    body = api.get(f"/api/v1/accounts/{account_id}/statement").json()
    assert [e["amount"] for e in body["entries"]] == [1, 2]
    assert (body["truncated"], body["entry_count"], body["total_in"], body["closing_balance"]) == (True, 3, 7, 7)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01"},
        {"to": "9999-12-31"},  # the end of its day is past the calendar
        {"from": "9999-12-31T23:59:59.999999"},
        {"from": "2026-11-01T00:00:00+23:00"},  # PostgreSQL takes offsets under 16 hours
        {"from": "2026-11-01T00:00:00-16:00"},
    ],
)
def test_moments_outside_the_calendar_or_the_offsets_are_invalid_request(api, opened, params):
    account_id = opened()
    assert_refused(api.get(f"/api/v1/accounts/{account_id}/statement", params), 400, "invalid_request")
    assert_refused(api.get("/api/v1/reservations/expiry-rate", params), 400, "invalid_request")


def test_the_widest_moments_allowed_still_answer(api, opened):
    account_id = opened()
    params = {"from": "1970-01-01T00:00:00-15:59", "to": "8999-12-30"}  # its end of day is the last moment allowed
    response = api.get(f"/api/v1/accounts/{account_id}/statement", params)
    assert response.status_code == 200, response.json()
