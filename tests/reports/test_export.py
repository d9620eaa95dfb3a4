"""The ledger export: exact CSV for known postings, period boundaries, currency filter, HTTP, command."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from accounts.keys import api_key_create
from balance_project.errors import ApplicationError
from ledger.models import Entry
from ledger.reports import LEDGER_EXPORT_HEADER, ledger_export_csv_lines, ledger_export_rows, report_moment_parse

from .conftest import utc

pytestmark = pytest.mark.django_db

NOV, DEC = utc(2026, 11, 1), utc(2026, 12, 1)
HEADER = (
    "transaction_id,kind,created_at,account_id,account_kind,owner_ref,system_code,currency,amount,"
    "balance_after,seq,checksum,metadata"
)


def expected_lines(p: dict, *, currencies=("EUR", "USD")) -> list[str]:
    def ck(tx, account):
        return Entry.objects.get(transaction_id=tx, account_id=account).checksum

    a, b, c, e, u = p["alice"], p["bob"], p["carol"], p["ext_eur"], p["ext_usd"]
    t1, t2, t3 = p["at_start"], p["transfer"], p["usd"]
    eur = [
        # Deposit at exactly the start: inside. The external account went to -1000 before the period.
        f"{t1},deposit,2026-11-01T00:00:00.000000Z,{b},user,bob,,EUR,500,500,1,{ck(t1, b)},{{}}",
        f"{t1},deposit,2026-11-01T00:00:00.000000Z,{e},system,,external,EUR,-500,-1500,2,{ck(t1, e)},{{}}",
        f"{t2},transfer,2026-11-15T12:30:01.000250Z,{a},user,alice,,EUR,-250,750,2,{ck(t2, a)},"
        '"{""n"":2,""note"":""rent, \\""split\\""""}"',
        f"{t2},transfer,2026-11-15T12:30:01.000250Z,{b},user,bob,,EUR,250,750,2,{ck(t2, b)},"
        '"{""n"":2,""note"":""rent, \\""split\\""""}"',
    ]
    usd = [
        f"{t3},deposit,2026-11-20T00:00:00.000000Z,{c},user,carol,,USD,700,700,1,{ck(t3, c)},{{}}",
        f"{t3},deposit,2026-11-20T00:00:00.000000Z,{u},system,,external,USD,-700,-700,1,{ck(t3, u)},{{}}",
    ]
    assert a < b < e and c < u, "the expected order assumes wallets were opened before the house accounts"
    return [HEADER] + (eur if "EUR" in currencies else []) + (usd if "USD" in currencies else [])


def export_text(**kwargs) -> str:
    return "".join(ledger_export_csv_lines(**kwargs))


def test_export_is_exact_with_inclusive_start_and_exclusive_end(postings):
    text = export_text(start=NOV, end=DEC)
    assert text == "\r\n".join(expected_lines(postings)) + "\r\n"
    assert ",".join(LEDGER_EXPORT_HEADER) == HEADER


def test_export_amounts_are_integers_and_parse_back(postings):
    rows = list(csv.DictReader(io.StringIO(export_text(start=NOV, end=DEC))))
    assert [int(r["amount"]) for r in rows] == [500, -500, -250, 250, 700, -700]
    assert all("." not in r["amount"] + r["balance_after"] for r in rows)
    raw = list(ledger_export_rows(start=NOV, end=DEC))
    assert all(type(row[8]) is int and type(row[9]) is int for row in raw)


def test_export_filters_by_currency(postings):
    assert (
        export_text(start=NOV, end=DEC, currency="USD")
        == "\r\n".join(expected_lines(postings, currencies=("USD",))) + "\r\n"
    )


def test_export_period_edges_move_the_boundary_transactions(postings):
    # One microsecond earlier the pre-period deposit is in; the end-of-period withdrawal needs end > Dec 1.
    early = list(ledger_export_rows(start=utc(2026, 10, 31, 23, 59, 59, 999999), end=NOV))
    assert {row[0] for row in early} == {postings["before"]}
    late = list(ledger_export_rows(start=DEC, end=utc(2026, 12, 1, 0, 0, 0, 1)))
    assert {row[0] for row in late} == {postings["at_end"]}
    assert export_text(start=utc(2027, 1, 1), end=utc(2027, 2, 1)) == HEADER + "\r\n"


@pytest.mark.parametrize("start,end", [(DEC, NOV), (NOV, NOV)])
def test_export_refuses_an_empty_or_reversed_period(start, end):
    with pytest.raises(ApplicationError) as err:
        ledger_export_csv_lines(start=start, end=end)
    assert err.value.code == "invalid_request"


@pytest.mark.parametrize("value", ["", "2026-13-01", "yesterday", "2026-11-01T25:00", None, "1700000000"])
def test_moment_parse_refuses_garbage(value):
    with pytest.raises(ApplicationError) as err:
        report_moment_parse(value, field="from")
    assert err.value.code == "invalid_request" and err.value.details["field"] == "from"


def test_moment_parse_reads_dates_as_utc_midnight_and_keeps_offsets():
    assert report_moment_parse("2026-11-01", field="f") == NOV
    assert report_moment_parse("2026-11-01T00:00:00", field="f") == NOV
    assert report_moment_parse("2026-11-01T01:00:00+01:00", field="f") == NOV
    assert report_moment_parse("2026-11-01T00:00:00Z", field="f") == NOV


# --- HTTP ------------------------------------------------------------------------------------------
def bearer(*scopes: str) -> dict:
    raw, _ = api_key_create(client="finance", scopes=list(scopes))
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_http_export_streams_the_same_csv(client, postings):
    response = client.get("/api/v1/ledger/export", {"from": "2026-11-01", "to": "2026-12-01"}, **bearer("ledger:read"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    assert body == "\r\n".join(expected_lines(postings)) + "\r\n"


def test_http_export_with_currency_and_datetimes(client, postings):
    response = client.get(
        "/api/v1/ledger/export",
        {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "currency": "USD"},
        HTTP_ACCEPT="text/csv",
        **bearer("ledger:read"),
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().splitlines() == expected_lines(postings, currencies=("USD",))


@pytest.mark.parametrize(
    "params,field",
    [
        ({"from": "garbage", "to": "2026-12-01"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"from": "2026-12-01", "to": "2026-11-01"}, None),
        ({"from": "2026-11-01", "to": "2026-12-01", "currency": "eur"}, "currency"),
    ],
)
def test_http_export_bad_input_is_400_in_the_json_envelope(client, params, field):
    response = client.get("/api/v1/ledger/export", params, HTTP_ACCEPT="text/csv", **bearer("ledger:read"))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    if field:
        assert error["details"]["field"] == field


def test_http_export_needs_ledger_read(client, postings):
    params = {"from": "2026-11-01", "to": "2026-12-01"}
    assert client.get("/api/v1/ledger/export", params).status_code == 401
    response = client.get("/api/v1/ledger/export", params, **bearer("accounts:read", "payments:write"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


# --- management command ----------------------------------------------------------------------------
def test_command_writes_the_csv_to_a_file(postings, tmp_path):
    target = tmp_path / "ledger.csv"
    call_command(
        "export_ledger", "--from", "2026-11-01", "--to", "2026-12-01", "--output", str(target), stderr=io.StringIO()
    )
    assert target.read_bytes().decode() == "\r\n".join(expected_lines(postings)) + "\r\n"


def test_command_writes_to_stdout_with_a_currency(postings):
    out = io.StringIO()
    call_command("export_ledger", "--from", "2026-11-01", "--to", "2026-12-01", "--currency", "USD", stdout=out)
    assert out.getvalue().splitlines() == expected_lines(postings, currencies=("USD",))


def test_command_refuses_bad_dates():
    with pytest.raises(CommandError, match="--from must be a date"):
        call_command("export_ledger", "--from", "2026-11-31", "--to", "2026-12-01", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_http_export_streams_outside_a_transaction(client, wallet, key):
    # Real autocommit, as in production: on PostgreSQL the streamed rows come from a server-side cursor.
    from accounts.services import account_deposit

    alice = wallet("alice")
    for amount in range(1, 6):
        account_deposit(client="cashier", idempotency_key=key(), account_id=alice, amount=amount)
    response = client.get("/api/v1/ledger/export", {"from": "2000-01-01", "to": "2100-01-01"}, **bearer("ledger:read"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["amount"]) for r in rows if r["account_id"] == str(alice)] == [1, 2, 3, 4, 5]
    assert sum(int(r["amount"]) for r in rows) == 0
