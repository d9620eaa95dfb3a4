"""Formula injection: every CSV export escapes text cells a spreadsheet would run; numbers stay numbers."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.csv_safety import csv_cell_safe, csv_lines
from ledger.reports import ledger_export_csv_lines

HOSTILE = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x")', "-", "--1", "-0", "+5"]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_that_starts_a_formula_gets_an_apostrophe(text):
    assert csv_cell_safe(text) == "'" + text


@pytest.mark.parametrize("value", [-250, 0, 7, None, "-250", "0", "12", "alice", "a=1", " =1", "{}", ""])
def test_numbers_canonical_integer_text_and_plain_text_are_unchanged(value):
    assert csv_cell_safe(value) == value


def test_csv_lines_escape_every_cell_including_the_header():
    text = "".join(csv_lines(["=h", "amount"], [["@x", -250], ["ok", "-250"]]))
    assert list(csv.reader(io.StringIO(text))) == [["'=h", "amount"], ["'@x", "-250"], ["ok", "-250"]]


@pytest.mark.django_db
def test_ledger_export_escapes_a_hostile_owner_ref_and_keeps_negative_amounts(wallet, key):
    from accounts.models import Account
    from accounts.services import account_withdraw

    hostile, bob = wallet("mallory", funded=1000), wallet("bob", funded=5)
    account_withdraw(client="t", idempotency_key=key(), account_id=hostile, amount=250)
    # Owner refs are checked on the way in today; rows from before that rule (or written around the
    # service) still reach the export, which must not trust them.
    Account.objects.filter(pk=hostile).update(owner_ref="=cmd|' /C calc'!A0")
    Account.objects.filter(pk=bob).update(owner_ref="@bob")
    now = datetime.now(UTC)
    text = "".join(ledger_export_csv_lines(start=now - timedelta(hours=1), end=now + timedelta(hours=1)))
    rows = list(csv.DictReader(io.StringIO(text)))
    owners = {row["owner_ref"] for row in rows}
    assert "'=cmd|' /C calc'!A0" in owners and "'@bob" in owners
    assert not any(row[name].startswith(("=", "+", "@")) for row in rows for name in row)
    assert {int(row["amount"]) for row in rows if row["owner_ref"] == "'=cmd|' /C calc'!A0"} >= {-250}


def test_no_csv_writer_outside_csv_safety():
    """Every CSV export goes through ledger/csv_safety.py: a csv.writer anywhere else would skip it."""
    root = Path(__file__).resolve().parents[2]
    writers = []
    for package in ("accounts", "ledger", "reservations", "tables", "balance_project"):
        for source in (root / package).rglob("*.py"):
            if source.name != "csv_safety.py" and re.search(r"csv\.(writer|DictWriter)\(", source.read_text()):
                writers.append(str(source.relative_to(root)))
    assert writers == []


@pytest.mark.django_db
def test_the_admin_and_http_exports_escape_formula_cells(admin, wallet, settings):
    from accounts.keys import api_key_create
    from accounts.models import Account

    mallory = wallet("mallory", funded=700)
    Account.objects.filter(pk=mallory).update(owner_ref="+SUM(1)")
    period = {"start": "2000-01-01", "end": "2100-01-01"}
    response = admin.get("/admin/ledger/entry/export/", period)
    admin_rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    raw, _ = api_key_create(client="finance", scopes=["ledger:read"])
    response = admin.get(
        "/api/v1/ledger/export",
        {"from": period["start"], "to": period["end"]},
        HTTP_ACCEPT="text/csv",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 200
    http_rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    for rows in (admin_rows, http_rows):
        assert "'+SUM(1)" in {row["owner_ref"] for row in rows}
        assert -700 in {int(row["amount"]) for row in rows}
