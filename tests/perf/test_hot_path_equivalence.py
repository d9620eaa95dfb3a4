"""The PostgreSQL hot path (one PL/pgSQL function per hot call, ledger/hot_path.py) against the ORM path.

An equivalence test runs one scenario twice, each time on fresh tables and players: with
settings.PG_HOT_PATH off (the ORM code, which also serves SQLite), then on. The answers, the refusals
and the rows the scenario wrote must be equal once what legitimately differs is normalised: database
ids (replaced by their rank among the run's ids of their kind, which keeps "the same seat" and the
order of entries), timestamps, and the run's names (a token in every table and user id). Versions,
sequence numbers, balances, messages and details are compared as they are.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_close, account_freeze
from balance_project.errors import ApplicationError
from ledger import chain
from reservations.models import Reservation
from tables.models import Table
from tables.services import table_close
from tests.perf.hot_path_helpers import (
    Run, buy_in, cash_out, commit, refusal, release, reserve, same_on_both_paths, settle,
)
from tests.tables.helpers import books_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.usefixtures("a_rake_shard_per_table")]


# --- 1. the same answers, refusals and rows on both paths ---------------------------------------

def test_reserve_commit_release_answer_the_same(settings):
    def scenario(run):
        table, (a, _), (b, _) = run.table(), run.player("a"), run.player("b")
        out = {"reserve": reserve(table, a, 300)}
        out["commit_all"] = commit(out["reserve"]["reservation"]["id"])  # opens the seat
        out["commit_part"] = commit(reserve(table, a, 400)["reservation"]["id"], amount=150)  # 250 released
        out["release"] = release(reserve(table, b, 200, ttl_seconds=60)["reservation"]["id"], reason=" gone ")
        return out

    orm = same_on_both_paths(settings, scenario)["answers"]
    assert (orm["commit_part"]["seat"]["chips"], orm["commit_part"]["reservation"]["released_amount"]) == (450, 250)
    assert orm["release"]["reservation"]["end_reason"] == "gone"


def test_buy_in_and_top_up_answer_the_same(settings):
    def scenario(run):
        table, (a, _) = run.table(), run.player("a")
        return {"first": buy_in(table, a, 300), "top_up": buy_in(table, a, 200)}

    orm = same_on_both_paths(settings, scenario)["answers"]
    assert orm["top_up"]["seat"] == {**orm["first"]["seat"], "chips": 500}


def test_hand_settlements_answer_the_same(settings):
    def scenario(run):
        table, (a, _), (b, _), (c, _) = run.table(), run.player("a"), run.player("b"), run.player("c")
        for user in (a, b, c):
            buy_in(table, user, 500)
        out = {"rake": settle(table, "h1", {a: 100, b: 100, c: 50}, {a: 240}, 10),
               "no_rake": settle(table, "h2", {a: 30, b: 30}, {b: 60}, 0),
               "a_zero_net": settle(table, "h3", {a: 50, b: 50, c: 20}, {a: 50, b: 65}, 5),
               "all_nets_zero": settle(table, "h4", {a: 40, b: 0}, {a: 40}, 0),
               "again": settle(table, "h1", {a: 100, b: 100, c: 50}, {a: 240}, 10)}
        assert out["again"] == out["rake"]  # the same hand id and figures: the first answer
        out["conflict"] = refusal("hand_conflict", settle, table, "h1", {a: 100, b: 100, c: 50}, {b: 240}, 10)
        return out

    orm = same_on_both_paths(settings, scenario)["answers"]
    assert orm["all_nets_zero"]["transaction"] is None
    assert len(orm["a_zero_net"]["transaction"]["entries"]) == 3  # b, c and the rake


def test_cash_outs_answer_the_same(settings, key):
    def scenario(run):
        table, (a, _), (b, wallet_b) = run.table(), run.player("a"), run.player("b")
        buy_in(table, a, 500)
        buy_in(table, b, 400)
        account_freeze(client="tests", idempotency_key=key(), account_id=wallet_b)  # still gets its chips back
        return {"part": cash_out(table, a, amount=200), "rest": cash_out(table, a), "zero": cash_out(table, a),
                "leave_at_zero": cash_out(table, a, leave=True), "leave_frozen": cash_out(table, b, leave=True)}

    orm = same_on_both_paths(settings, scenario)["answers"]
    assert orm["zero"]["transaction"] is None and orm["leave_frozen"]["account"]["balance"] == 1000


def test_refusals_to_hold_and_buy_in_are_the_same_and_move_nothing(settings, key):
    def scenario(run):
        table, usd, closed, bare = run.table(), run.table("usd", "USD"), run.table("closed"), run.table("bare")
        table_close(client="tests", idempotency_key=key(), table_id=closed)
        (a, _), (frozen, frozen_wallet), (late, late_wallet) = run.player("a"), run.player("f"), run.player("g")
        (dollar, _), (broke, broke_wallet) = run.player("d", currency="USD"), run.player("x", funded=0)
        account_freeze(client="tests", idempotency_key=key(), account_id=frozen_wallet)
        account_close(client="tests", idempotency_key=key(), account_id=broke_wallet)
        held, released, committed = (reserve(table, a, amount)["reservation"]["id"] for amount in (300, 100, 50))
        release(released)
        commit(committed)
        frozen_hold = reserve(table, late, 100)["reservation"]["id"]
        stranded = reserve(bare, a, 10)["reservation"]["id"]
        account_freeze(client="tests", idempotency_key=key(), account_id=late_wallet)
        Table.objects.filter(table_id=bare).update(status="closed", closed_at=timezone.now())  # behind its back
        missing, nobody = f"{run.token}-missing", f"{run.token}-nobody"
        return {
            "reserve_table_not_found": refusal("table_not_found", reserve, missing, a, 10),
            "buy_in_table_not_found": refusal("table_not_found", buy_in, missing, a, 10),
            "reserve_table_closed": refusal("table_closed", reserve, closed, a, 10),
            "buy_in_table_closed": refusal("table_closed", buy_in, closed, a, 10),
            "commit_table_closed": refusal("table_closed", commit, stranded),
            # a has 1000 - 300 - 10 held - 50 committed = 640 available
            "reserve_beyond_available": refusal("insufficient_funds", reserve, table, a, 641),
            "buy_in_beyond_available": refusal("insufficient_funds", buy_in, table, a, 641),
            "commit_more_than_held": refusal("insufficient_funds", commit, held, 301),
            "reserve_frozen": refusal("account_frozen", reserve, table, frozen, 10),
            "buy_in_frozen": refusal("account_frozen", buy_in, table, frozen, 10),
            "commit_frozen": refusal("account_frozen", commit, frozen_hold),
            "release_frozen": release(frozen_hold),  # dropping a hold is allowed on a frozen wallet
            "reserve_closed_wallet": refusal("account_closed", reserve, table, broke, 10),
            "reserve_usd_wallet": refusal("currency_mismatch", reserve, table, dollar, 10),
            "buy_in_usd_wallet": refusal("currency_mismatch", buy_in, table, dollar, 10),
            "buy_in_at_usd_table": refusal("currency_mismatch", buy_in, usd, a, 10),
            "reserve_no_wallet": refusal("account_not_found", reserve, table, nobody, 10),
            "buy_in_no_wallet": refusal("account_not_found", buy_in, table, nobody, 10),
            "commit_not_found": refusal("reservation_not_found", commit, 2**62),
            "release_not_found": refusal("reservation_not_found", release, 2**62),
            "commit_released": refusal("reservation_not_pending", commit, released),
            "release_committed": refusal("reservation_not_pending", release, committed),
        }

    orm = same_on_both_paths(settings, scenario)["answers"]
    assert orm["release_frozen"]["reservation"]["status"] == "released"


def test_refusals_to_settle_and_cash_out_are_the_same_and_move_nothing(settings, key):
    def scenario(run):
        table, closed = run.table(), run.table("closed")
        table_close(client="tests", idempotency_key=key(), table_id=closed)
        (a, _), (b, _), (z, _), (all_in, all_in_wallet) = (run.player(n) for n in ("a", "b", "z", "w"))
        for user in (a, b, z):
            buy_in(table, user, 300)
        buy_in(table, all_in, 1000)
        z_seat = Account.objects.get(owner_ref=z, kind="seat").pk
        account_freeze(client="tests", idempotency_key=key(), account_id=z_seat)
        account_close(client="tests", idempotency_key=key(), account_id=all_in_wallet)  # empty: all of it is seated
        nobody = f"{run.token}-nobody"
        return {
            "settle_table_closed": refusal("table_closed", settle, closed, "h1", {a: 10}, {b: 10}, 0),
            "settle_not_seated": refusal("player_not_seated", settle, table, "h1", {a: 10, nobody: 10}, {a: 20}, 0),
            "settle_short": refusal("insufficient_chips", settle, table, "h1", {a: 301, b: 400}, {z: 700}, 1),
            "settle_frozen_seat": refusal("account_frozen", settle, table, "h1", {z: 10}, {a: 10}, 0),
            "buy_in_frozen_seat": refusal("account_frozen", buy_in, table, z, 10),
            "cash_out_not_seated": refusal("player_not_seated", cash_out, table, nobody),
            "cash_out_short": refusal("insufficient_chips", cash_out, table, a, amount=301),
            "leave_with_part": refusal("invalid_request", cash_out, table, a, amount=100, leave=True),
            "cash_out_closed_wallet": refusal("account_closed", cash_out, table, all_in),
            "cash_out_frozen_seat": cash_out(table, z, leave=True),  # allowed, as into a frozen wallet
        }

    orm = same_on_both_paths(settings, scenario)["answers"]
    assert orm["cash_out_frozen_seat"]["seat"]["status"] == "left"


def test_an_overdue_reservation_is_refused_and_expired_the_same(settings):
    """reservation_expired is the one refusal that changes something: the hold is dropped on the spot."""
    def scenario(run):
        table, (a, wallet) = run.table(), run.player("a")
        out = {}
        for call in (commit, release):
            held = reserve(table, a, 100, ttl_seconds=5)["reservation"]["id"]
            Reservation.objects.filter(pk=held).update(expires_at=timezone.now() - timedelta(seconds=1))
            with pytest.raises(ApplicationError) as err:
                call(held)
            expires_at = chain.format_timestamp(Reservation.objects.get(pk=held).expires_at)
            assert err.value.details["expires_at"] == expires_at
            out[call.__name__] = err.value.as_dict()
            out[f"{call.__name__}_again"] = refusal("reservation_expired", call, held)  # expired now: nothing moves
        assert Account.objects.get(pk=wallet).held == 0
        return out

    orm = same_on_both_paths(settings, scenario)
    assert orm["answers"]["commit"]["code"] == "reservation_expired"
    assert [r["status"] for r in orm["rows"]["reservations"]] == ["expired", "expired"]


def test_a_hold_past_int64_is_refused_the_same(settings):
    """held + amount would not fit in a bigint: refused before the sum, as the ORM path (Python ints) does."""
    def scenario(run):
        table, (a, _) = run.table(), run.player("a")
        reserve(table, a, 300)  # held 300: 300 + (2**63 - 1) does not fit in a bigint
        return {"reserve": refusal("insufficient_funds", reserve, table, a, 2**63 - 1),
                "buy_in": refusal("insufficient_funds", buy_in, table, a, 2**63 - 1)}

    same_on_both_paths(settings, scenario)


def test_the_paths_mix_mid_stream(settings):
    """A switch of PG_HOT_PATH (a rollout, a rollback) meets reservations and hands of the other path."""
    run = Run()
    table, (a, _), (b, _) = run.table(), run.player("a"), run.player("b")
    settings.PG_HOT_PATH = False
    held = reserve(table, a, 400)["reservation"]["id"]
    buy_in(table, b, 300)
    settings.PG_HOT_PATH = True
    assert commit(held, amount=300)["seat"]["chips"] == 300
    first = settle(table, "h1", {a: 100, b: 50}, {b: 145}, 5)
    settings.PG_HOT_PATH = False
    assert settle(table, "h1", {a: 100, b: 50}, {b: 145}, 5) == first
    refusal("hand_conflict", settle, table, "h1", {a: 100, b: 50}, {a: 145}, 5)
    settled_by_orm = settle(table, "h2", {a: 10}, {b: 9}, 1)
    settings.PG_HOT_PATH = True
    assert settle(table, "h2", {a: 10}, {b: 9}, 1) == settled_by_orm
    assert cash_out(table, a, leave=True)["account"]["balance"] == 1000 - 100 - 10
    assert books_problems() == []
