"""The daily finance reports: player liability, player activity (N.J.A.C. 13:69O-1.9) and the
protection audit, over a known day of play; their totals against the trial balance."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.protection_services import player_limit_set, self_exclusion_start
from accounts.services import account_deposit, account_withdraw
from ledger.liability_reports import ACTIVITY_HEADER, LIABILITY_HEADER, amount_decimal, report_stream
from ledger.reports import trial_balance
from reservations.services import reservation_reserve
from tables.services import hand_settle, seat_cash_out, table_buy_in
from tests.api.conftest import make_api  # noqa: F401  (fixture)
from tests.tables.helpers import new_key, new_player, open_table

pytestmark = pytest.mark.django_db
DAY = "2030-03-10"
START = datetime(2030, 3, 10, tzinfo=UTC)


@pytest.fixture
def day_of_play(monkeypatch):
    """Alice and Bob fund before the day; during it they play a hand (rake 10), Alice cashes out
    and withdraws, Bob keeps a pending reservation; Carol (USD) does nothing all day."""
    moment = [START - timedelta(hours=2)]
    monkeypatch.setattr(timezone, "now", lambda: moment[0])
    alice, alice_wallet = new_player(funded=10_000)
    bob, bob_wallet = new_player(funded=5_000)
    carol, _ = new_player(funded=700, currency="USD")
    table = open_table()
    moment[0] = START + timedelta(hours=9)
    account_deposit(client="c", idempotency_key=new_key(), account_id=bob_wallet, amount=1_234)
    table_buy_in(client="p", idempotency_key=new_key(), user_id=alice, table_id=table, amount=2_000)
    table_buy_in(client="p", idempotency_key=new_key(), user_id=bob, table_id=table, amount=1_000)
    hand_settle(
        client="p", idempotency_key=new_key(), table_id=table, hand_id="h1",
        contributions={alice: 500, bob: 500}, payouts={alice: 990}, rake=10,
    )  # fmt: skip
    seat_cash_out(client="p", idempotency_key=new_key(), table_id=table, user_id=alice, leave=True)
    account_withdraw(client="c", idempotency_key=new_key(), account_id=alice_wallet, amount=3_000)
    reservation_reserve(client="p", idempotency_key=new_key(), user_id=bob, table_id=table, amount=300)
    moment[0] = START + timedelta(days=3)
    return {"alice": alice, "bob": bob, "carol": carol, "alice_wallet": alice_wallet, "bob_wallet": bob_wallet}


def rows_of(report, day=DAY, fmt="jsonl", currency=None):
    lines = list(report_stream(report=report, day=day, fmt=fmt, currency=currency))
    if fmt == "jsonl":
        return [json.loads(line) for line in lines]
    return list(csv.DictReader(io.StringIO("".join(lines))))


def test_the_liability_explains_the_day_and_equals_the_trial_balance(day_of_play):
    eur, usd = rows_of("player-liability")
    assert (eur["currency"], usd["currency"]) == ("EUR", "USD")
    assert eur["opening_liability"] == 15_000 and eur["opening_seats"] == 0
    assert (eur["deposits"], eur["withdrawals"], eur["rake"], eur["other"]) == (1_234, -3_000, -10, 0)
    movements = eur["deposits"] + eur["withdrawals"] + eur["adjustments"] + eur["rake"] + eur["other"]
    assert eur["opening_liability"] + movements == eur["closing_liability"] == 13_224
    assert (eur["closing_seats"], eur["closing_holds"], eur["opening_holds"]) == (500, 300, 0)
    books = trial_balance(at=START + timedelta(days=1), currency="EUR")["currencies"][0]["kinds"]
    assert eur["closing_wallets"] == books["user"]["total"] and eur["closing_seats"] == books["seat"]["total"]
    assert eur["closing_liability_decimal"] == "132.24" and eur["rake_decimal"] == "-0.10"
    assert usd["opening_liability"] == usd["closing_liability"] == 700


def test_the_next_days_opening_is_this_days_closing_even_without_activity(day_of_play):
    today = {row["currency"]: row for row in rows_of("player-liability")}
    tomorrow = {row["currency"]: row for row in rows_of("player-liability", day="2030-03-11")}
    for currency in ("EUR", "USD"):
        assert tomorrow[currency]["opening_liability"] == today[currency]["closing_liability"]
        assert tomorrow[currency]["closing_liability"] == today[currency]["closing_liability"]
        assert tomorrow[currency]["opening_holds"] == today[currency]["closing_holds"]


def test_every_player_has_an_activity_row_that_adds_up(day_of_play):
    rows = {row["owner_ref"]: row for row in rows_of("player-activity")}
    assert set(rows) == {day_of_play["alice"], day_of_play["bob"], day_of_play["carol"]}
    alice, bob, carol = rows[day_of_play["alice"]], rows[day_of_play["bob"]], rows[day_of_play["carol"]]
    assert (alice["beginning_balance"], alice["to_games"], alice["from_games"], alice["withdrawals"]) == (
        10_000, 2_000, 2_490, 3_000,
    )  # fmt: skip
    assert (alice["on_game_start"], alice["on_game_end"], alice["ending_balance"]) == (0, 0, 7_490)
    assert (bob["deposits"], bob["on_game_end"], bob["ending_balance"]) == (1_234, 500, 5_234)
    for row in rows.values():
        assert row["ending_balance"] == (
            row["beginning_balance"] + row["deposits"] - row["withdrawals"] - row["to_games"] + row["from_games"]
            + row["transfers_in"] - row["transfers_out"] + row["adjustments"]
        )  # fmt: skip
    assert {k: carol[k] for k in ("beginning_balance", "deposits", "ending_balance")} == {
        "beginning_balance": 700, "deposits": 0, "ending_balance": 700,
    }  # fmt: skip
    books = trial_balance(at=START + timedelta(days=1), currency="EUR")["currencies"][0]["kinds"]
    eur = [row for row in rows.values() if row["currency"] == "EUR"]
    assert sum(row["ending_balance"] for row in eur) == books["user"]["total"]
    assert sum(row["on_game_end"] for row in eur) == books["seat"]["total"]
    quiet = rows_of("player-activity", day="2030-03-12")
    assert len(quiet) == 3 and all(row["deposits"] == row["to_games"] == 0 for row in quiet)


def test_csv_has_the_header_integers_and_decimals(day_of_play):
    lines = list(report_stream(report="player-liability", day=DAY, fmt="csv"))
    assert lines[0].rstrip("\r\n").split(",") == list(LIABILITY_HEADER)
    eur = rows_of("player-liability", fmt="csv", currency="EUR")
    assert len(eur) == 1 and eur[0]["withdrawals"] == "-3000" and eur[0]["withdrawals_decimal"] == "-30.00"
    activity = rows_of("player-activity", fmt="csv", currency="USD")
    assert list(activity[0]) == list(ACTIVITY_HEADER)


def test_the_protection_audit_lists_changes_with_formula_cells_escaped(monkeypatch):
    moment = [START + timedelta(hours=1)]
    monkeypatch.setattr(timezone, "now", lambda: moment[0])
    user, _ = new_player()
    player_limit_set(
        client="c", idempotency_key=new_key(), owner_ref=user, currency="EUR", kind="deposit", period="24h",
        value=12_345, actor="=HYPERLINK(1)",
    )  # fmt: skip
    self_exclusion_start(client="c", idempotency_key=new_key(), owner_ref=user, kind="time_out", days=2)
    moment[0] = START + timedelta(days=1)  # the next day's changes are not in this day's audit
    self_exclusion_start(client="c", idempotency_key=new_key(), owner_ref=user, kind="time_out", days=3)
    rows = rows_of("protection-audit", fmt="csv")
    assert [(r["action"], r["kind"]) for r in rows] == [("limit_set", "deposit"), ("exclusion_started", "time_out")]
    assert rows[0]["actor"] == "'=HYPERLINK(1)" and rows[0]["new_value_decimal"] == "123.45"
    assert rows[1]["effective_at"].startswith("2030-03-12T01:00:00") and rows[1]["new_value_decimal"] == ""


def test_amounts_format_with_integer_arithmetic():
    assert [amount_decimal(a, "EUR") for a in (0, 5, -5, 1234, -100)] == ["0.00", "0.05", "-0.05", "12.34", "-1.00"]
    assert amount_decimal(2**63 - 1, "EUR") == "92233720368547758.07"
    assert (amount_decimal(1234, "JPY"), amount_decimal(1234, "KWD")) == ("1234", "1.234")


@pytest.mark.parametrize(
    ("report", "day", "fmt"),
    [("player-liability", "2030-3-1", "csv"), ("player-liability", "", "csv"), ("nope", DAY, "csv"),
     ("player-activity", DAY, "xml"), ("player-activity", "2030-02-30", "csv")],
)  # fmt: skip
def test_bad_report_requests_are_invalid_before_any_line(report, day, fmt):
    from balance_project.errors import ApplicationError

    with pytest.raises(ApplicationError) as caught:
        report_stream(report=report, day=day, fmt=fmt)
    assert caught.value.code == "invalid_request"


def test_http_needs_finance_read_and_streams(day_of_play, make_api):  # noqa: F811
    finance = make_api(scopes=["finance:read"])
    response = finance.get("/api/v1/reports/player-liability", {"date": DAY, "format": "jsonl"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [row["currency"] for row in rows] == ["EUR", "USD"]
    assert finance.get("/api/v1/reports/player-activity", {"date": "yesterday"}).status_code == 400
    assert finance.get("/api/v1/reports/unknown", {"date": DAY}).status_code == 400
    reader = make_api(scopes=["ledger:read", "accounts:read"])
    assert reader.get("/api/v1/reports/player-liability", {"date": DAY}).status_code == 403


def test_the_command_writes_the_report(day_of_play, tmp_path, capsys):
    target = tmp_path / "activity.csv"
    call_command("finance_report", "player-activity", "--date", DAY, "--output", str(target))
    assert len(target.read_text().splitlines()) == 4  # the header and three players
    call_command("finance_report", "player-liability", "--date", DAY, "--format", "jsonl", "--currency", "USD")
    assert json.loads(capsys.readouterr().out)["closing_liability"] == 700
