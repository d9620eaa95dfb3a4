"""Fixtures of the HTTP API tests: an API client holding a real key, and a snapshot of the books."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.keys import SCOPES, api_key_create
from accounts.models import Account
from ledger.models import Entry, JournalRecord, Transaction


class Api:
    """An APIClient with one API key. ``post`` sends a fresh Idempotency-Key unless told otherwise:
    ``idem=None`` sends none, ``idem="..."`` sends that one."""

    def __init__(self, raw_key: str | None):
        self.client = APIClient(raise_request_exception=False)
        self.raw_key = raw_key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = {"Authorization": f"Bearer {self.raw_key}"} if self.raw_key else {}
        merged.update(headers or {})
        return merged

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        idem: str | type | None = ...,
        raw: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        **extra,
    ):
        headers = self._headers(headers)
        if idem is ...:
            idem = f"idem-{uuid.uuid4().hex}"
        if idem is not None:
            headers["Idempotency-Key"] = idem
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.post(path, data, content_type="application/json", headers=headers, **extra)


@pytest.fixture
def make_api(db):
    """``make_api(scopes=None, client="cashier")`` -> Api with a new key (every scope by default)."""

    def make(scopes: list[str] | None = None, client: str = "cashier") -> Api:
        raw, _record = api_key_create(client=client, scopes=list(SCOPES) if scopes is None else scopes)
        return Api(raw)

    return make


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


@pytest.fixture
def opened(api):
    """``opened(owner=None, currency="EUR", funded=0)`` -> account id, opened and funded over HTTP."""

    def make(owner: str | None = None, currency: str = "EUR", funded: int = 0) -> int:
        owner = owner or f"player-{uuid.uuid4().hex[:8]}"
        response = api.post("/api/v1/accounts", {"owner_ref": owner, "currency": currency})
        assert response.status_code == 201, response.content
        account_id = response.json()["account"]["id"]
        if funded:
            response = api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": funded})
            assert response.status_code == 201, response.content
        return account_id

    return make


def books() -> dict[str, Any]:
    """Everything a refused call must leave as it was."""
    return {
        "accounts": sorted(Account.objects.values_list("pk", "balance", "held", "status", "version")),
        "entries": Entry.objects.count(),
        "transactions": Transaction.objects.count(),
        "idempotency": sorted(JournalRecord.objects.exclude(key="").values_list("pk", flat=True)),
    }


def assert_refused(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]


def assert_unchanged(before: dict[str, Any]) -> None:
    assert books() == before


def assert_refusal_remembered(before: dict[str, Any], code: str) -> None:
    """A business refusal moves nothing, and its answer is stored under its idempotency key."""
    after = books()
    assert {k: v for k, v in after.items() if k != "idempotency"} == {
        k: v for k, v in before.items() if k != "idempotency"
    }
    new = set(after["idempotency"]) - set(before["idempotency"])
    assert len(new) == 1 and set(before["idempotency"]) <= set(after["idempotency"])
    record = JournalRecord.objects.get(pk=new.pop())
    assert record.is_error and json.loads(record.response)["code"] == code
