"""The PostgreSQL hot path (one PL/pgSQL function per hot call, ledger/hot_path.py) against the ORM path.

An equivalence test runs one scenario twice, each time on fresh tables and players: with
settings.PG_HOT_PATH off (the ORM code, which also serves SQLite), then on. The answers, the refusals
and the rows the scenario wrote must be equal once what legitimately differs is normalised: database
ids (replaced by their rank among the run's ids of their kind, which keeps "the same seat" and the
order of entries), timestamps, and the run's names (a token in every table and user id). Versions,
sequence numbers, balances, messages and details are compared as they are.
"""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.cache import balance_cache_get
from accounts.models import Account
from accounts.results import account_result
from accounts.services import account_close, account_freeze
from balance_project.errors import ApplicationError
from ledger import chain
from ledger.integrity import ledger_verify
from ledger.models import Entry, IdempotencyRecord, Transaction
from reservations.models import Reservation, ReservationEvent
from reservations.services import reservation_commit, reservation_release, reservation_reserve
from tables.models import Hand, Seat, Table
from tables.services import hand_settle, rake_shard, seat_cash_out, table_buy_in, table_close
from tests.tables.helpers import books_problems, new_key, new_player, open_table

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CLIENT = "poker"

# Queries per call on the hot path, as measured: SAVEPOINT and RELEASE of the idempotency transaction
# (BEGIN/COMMIT outside a test), the function, and one round trip with the call's deferred writes
# (balance_seal, balance_hand_record) and its idempotency record. The ORM path makes 9 to 19.
HOT_MAX = {"reserve": 4, "commit": 4, "release": 4, "buy_in": 4, "buy_in_top_up": 4, "settle": 4,
           "cash_out": 4, "cash_out_leave": 4}


@pytest.fixture(autouse=True)
def _a_rake_shard_per_table(settings):
    # With this many shards each table of a test gets its own, created by its first rake on either
    # path, so a table's rake entries do not depend on which path ran first.
    settings.RAKE_ACCOUNT_SHARDS = 30_000


# --- calls, each with a fresh idempotency key ---------------------------------------------------

def reserve(table, user, amount, **kwargs):
    return reservation_reserve(client=CLIENT, idempotency_key=new_key(), user_id=user, table_id=table,
                               amount=amount, **kwargs)


def commit(reservation, amount=None):
    return reservation_commit(client=CLIENT, idempotency_key=new_key(), reservation_id=reservation, amount=amount)


def release(reservation, reason=""):
    return reservation_release(client=CLIENT, idempotency_key=new_key(), reservation_id=reservation, reason=reason)


def buy_in(table, user, amount):
    return table_buy_in(client=CLIENT, idempotency_key=new_key(), user_id=user, table_id=table, amount=amount)


def settle(table, hand_id, contributions, payouts, rake, key=None):
    return hand_settle(client=CLIENT, idempotency_key=key or new_key(), table_id=table, hand_id=hand_id,
                       contributions=contributions, payouts=payouts, rake=rake)


def cash_out(table, user, **kwargs):
    return seat_cash_out(client=CLIENT, idempotency_key=new_key(), table_id=table, user_id=user, **kwargs)


def world():
    """Everything a refused call could have touched (a stricter money_snapshot)."""
    return (list(Account.objects.order_by("pk").values_list("pk", "balance", "held", "status", "version",
                                                            "entry_seq", "chain_head")),
            Transaction.objects.count(), Hand.objects.count(), ReservationEvent.objects.count(),
            list(Reservation.objects.order_by("pk").values_list("pk", "status", "committed_amount")),
            list(Seat.objects.order_by("pk").values_list("pk", "status")),
            list(Table.objects.order_by("pk").values_list("pk", "chips", "status")))


def refusal(code, call, *args, **kwargs):
    """``call``'s refusal ``code`` as {"code", "message", "details"}, once checked that it moved nothing."""
    before = world()
    with pytest.raises(ApplicationError) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value
    assert world() == before, f"the refused call ({err.value!r}) changed something"
    return err.value.as_dict()


# --- one scenario on both paths -----------------------------------------------------------------

class Run:
    """One path's run of a scenario: every table and user id carries the run's token."""

    def __init__(self):
        self.token = f"hp{uuid.uuid4().hex[:10]}"

    def table(self, name="t", currency="EUR"):
        return open_table(currency, table_id=f"{self.token}-{name}")

    def player(self, name, funded=1000, currency="EUR"):
        return new_player(funded=funded, currency=currency, user_id=f"{self.token}-{name}")

    def rows(self):
        """What the run wrote: accounts, entries, reservations and their events, seats, tables, hands."""
        mine = self.token
        reservations = Reservation.objects.filter(user_id__startswith=mine).order_by("pk").values(
            "id", "account_id", "amount", "committed_amount", "status", "seat_id", "transaction_id", "created_by",
            "ended_by", "end_reason", "expires_at", "created_at")
        return {
            "accounts": list(Account.objects.filter(owner_ref__startswith=mine).order_by("pk").values(
                "id", "kind", "owner_ref", "currency", "balance", "held", "status", "version", "entry_seq")),
            "entries": list(Entry.objects.filter(account__owner_ref__startswith=mine).order_by("account_id", "seq")
                            .values("account_id", "seq", "transaction_id", "amount", "currency", "balance_after")),
            # The TTL each reservation was given, rather than its times.
            "reservations": [{**{k: v for k, v in row.items() if not k.endswith("_at")},
                              "ttl": round((row["expires_at"] - row["created_at"]).total_seconds())}
                             for row in reservations],
            "events": list(ReservationEvent.objects.filter(reservation__user_id__startswith=mine).order_by("pk")
                           .values("reservation_id", "kind", "from_status", "to_status", "amount", "actor", "reason")),
            "seats": list(Seat.objects.filter(user_id__startswith=mine).order_by("pk").values(
                "id", "user_id", "account_id", "status")),
            "tables": list(Table.objects.filter(table_id__startswith=mine).order_by("pk").values(
                "table_id", "currency", "chips", "status")),
            # Not figures_hash: it hashes the run's user ids (and Python computes it for both paths).
            "hands": list(Hand.objects.filter(table__table_id__startswith=mine).order_by("pk").values(
                "hand_id", "rake", "transaction_id", "response", "settled_by")),
        }


ID_KEYS = {"account_id": "account", "seat_id": "seat", "transaction_id": "tx", "reservation_id": "reservation"}
ID_OWNERS = {"account": "account", "accounts": "account", "seat": "seat", "seats": "seat", "transaction": "tx",
             "reservation": "reservation", "reservations": "reservation"}  # the kind of an "id" is its owner's
MESSAGE_IDS = re.compile(r"\b(account|reservation) (\d+)\b")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # as chain.format_timestamp writes it


def normalised(value, token):
    ids: dict[str, set[int]] = {}
    rank: dict[str, dict[int, str]] = {}

    def walk(value, owner, rewrite):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                kind = ID_KEYS.get(key) or (ID_OWNERS.get(owner, f"?{owner}") if key == "id" else None)
                if kind and isinstance(item, int):
                    ids.setdefault(kind, set()).add(item)
                    item = rank[kind][item] if rewrite else item
                elif key.endswith("_at") and isinstance(item, str) and TIMESTAMP.match(item):
                    item = "<time>"  # a time in another format stays, to show
                else:
                    item = walk(item, key, rewrite)
                out[key.replace(token, "<run>")] = item
            return out
        if isinstance(value, list):
            return [walk(item, owner, rewrite) for item in value]
        if isinstance(value, str):
            for kind, number in MESSAGE_IDS.findall(value):
                ids.setdefault(kind, set()).add(int(number))
            if rewrite:
                value = MESSAGE_IDS.sub(lambda m: rank[m[1]][int(m[2])], value)
            return value.replace(token, "<run>")
        return value

    walk(value, None, rewrite=False)
    rank.update({kind: {v: f"{kind}#{i}" for i, v in enumerate(sorted(found))} for kind, found in ids.items()})
    return walk(value, None, rewrite=True)


def differences(orm, hot, path=""):
    """Where two normalised outcomes differ, one "path: ORM value != hot value" line each."""
    if isinstance(orm, dict) and isinstance(hot, dict):
        return [line for key in {**orm, **hot}
                for line in differences(orm.get(key, "<absent>"), hot.get(key, "<absent>"), f"{path}.{key}")]
    if isinstance(orm, list) and isinstance(hot, list) and len(orm) == len(hot):
        return [line for i, (a, b) in enumerate(zip(orm, hot)) for line in differences(a, b, f"{path}[{i}]")]
    return [] if orm == hot else [f"{path}: ORM {orm!r} != hot {hot!r}"]


def same_on_both_paths(settings, scenario):
    """Run ``scenario(run)`` on the ORM path, then on the hot path; check that the answers it returns
    and the rows it wrote are the same, normalised; return the ORM path's."""
    outcomes = []
    for hot in (False, True):
        settings.PG_HOT_PATH = hot
        run = Run()
        with CaptureQueriesContext(connection) as queries:
            answers = scenario(run)
        called = any(re.search(r"SELECT balance_\w+\(", q["sql"]) for q in queries.captured_queries)
        assert called == hot, f"PG_HOT_PATH={hot}, yet the PL/pgSQL functions were{'' if called else ' not'} called"
        outcomes.append(normalised({"answers": answers, "rows": run.rows()}, run.token))
    found = differences(*outcomes)
    assert not found, "the paths differ:\n" + "\n".join(found)
    return outcomes[0]


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


# --- 2. the books and the checksum chains after a mixed sequence on the hot path ---------------

def chain_breaks(account_ids):
    """Each account's chain recomputed from its entries: every break, as a readable line."""
    breaks = []
    for account in Account.objects.filter(pk__in=account_ids).order_by("pk"):
        seq, head = 0, chain.GENESIS
        for entry in Entry.objects.filter(account=account).order_by("seq"):
            seq += 1
            if entry.seq != seq or entry.checksum != chain.checksum_of(entry, head):
                breaks.append(f"account {account.pk} entry {entry.seq}: not the next link of its chain")
            head = entry.checksum
        if (account.entry_seq, account.chain_head) != (seq, head):
            breaks.append(f"account {account.pk}: its head is not its last entry ({seq})")
    return breaks


# Committed for real, with no test transaction around it: the deferred balance trigger on
# ledger_entry checks the sealed entries at COMMIT, and the balance cache is fed after it.
@pytest.mark.django_db(transaction=True)
def test_the_ledger_verifies_after_a_mixed_sequence_on_the_hot_path(settings):
    settings.PG_HOT_PATH = True
    run = Run()
    table, (a, _), (b, _), (c, _) = run.table(), run.player("a"), run.player("b"), run.player("c")
    commit(reserve(table, a, 600)["reservation"]["id"], amount=450)
    release(reserve(table, b, 100)["reservation"]["id"])
    for user, amount in ((b, 300), (c, 200), (b, 100)):
        buy_in(table, user, amount)
    settle(table, "h1", {a: 100, b: 100, c: 100}, {a: 290}, 10)
    settle(table, "h2", {a: 50, b: 50}, {a: 50, b: 50}, 0)
    settle(table, "h3", {b: 200, c: 100}, {c: 297}, 3)
    refusal("insufficient_chips", settle, table, "h4", {c: 10_000}, {a: 10_000}, 0)
    cash_out(table, a, amount=40)
    cash_out(table, b, leave=True)
    refusal("insufficient_funds", buy_in, table, c, 10**9)
    touched = set(Entry.objects.filter(account__owner_ref__startswith=run.token).values_list("account_id", flat=True))
    touched |= set(Account.objects.filter(system_code="rake").values_list("pk", flat=True))
    assert len(touched) == 7 and Entry.objects.filter(account_id__in=touched).count() >= 20
    assert chain_breaks(touched) == []
    assert ledger_verify(account_ids=touched).problem_count == 0
    assert books_problems() == []
    for account in Account.objects.filter(pk__in=touched):
        assert balance_cache_get(account.pk) == account_result(account)
    # The two checks are live: a chain head moved behind the ledger's back is seen by both (in a
    # transaction rolled back, not committed: the database's chain guard would refuse the COMMIT).
    victim = Account.objects.get(kind="seat", owner_ref=a)
    with transaction.atomic():
        Account.objects.filter(pk=victim.pk).update(chain_head="0" * 64)
        assert chain_breaks([victim.pk]) != []
        assert {p["code"] for p in ledger_verify(account_ids=[victim.pk]).problems} == {"chain_head_mismatch"}
        transaction.set_rollback(True)


# --- 3. a hot call is a handful of queries -----------------------------------------------------

def counted_calls(settings, hot, assert_max):
    """The queries of each hot call on one path; ``assert_max`` holds the hot path to HOT_MAX."""
    settings.PG_HOT_PATH = hot
    run = Run()
    table, (a, _), (b, _) = run.table(), run.player("a"), run.player("b")
    counts = {}

    def count(name, call, *args, **kwargs):
        with assert_max(HOT_MAX[name] if hot else 100) as queries:
            answer = call(*args, **kwargs)
        counts[name] = len(queries.captured_queries)
        return answer

    count("commit", commit, count("reserve", reserve, table, a, 600)["reservation"]["id"])  # opens the seat
    count("release", release, reserve(table, a, 100)["reservation"]["id"])
    count("buy_in", buy_in, table, b, 500)  # opens the seat
    count("buy_in_top_up", buy_in, table, b, 100)
    settle(table, "warm-up", {a: 10}, {b: 5}, 5)  # the table's first rake creates its rake shard
    count("settle", settle, table, "h1", {a: 100, b: 100}, {a: 195}, 5)
    count("cash_out", cash_out, table, a, amount=100)
    count("cash_out_leave", cash_out, table, b, leave=True)
    return counts


def test_each_hot_call_is_a_handful_of_queries(settings, django_assert_max_num_queries):
    orm = counted_calls(settings, False, django_assert_max_num_queries)
    hot = counted_calls(settings, True, django_assert_max_num_queries)
    print("queries per call (ORM, hot):", {name: (orm[name], hot[name]) for name in HOT_MAX})
    for name in HOT_MAX:
        assert hot[name] * 2 <= orm[name], (name, hot[name], orm[name])


# --- 4. the rake goes to its table's shard -----------------------------------------------------

def rake_by_shard():
    return dict(Account.objects.filter(kind="system", system_code="rake", currency="EUR")
                .values_list("shard", "balance"))


@pytest.mark.parametrize("hot", [False, True], ids=["orm", "hot"])
def test_the_rake_lands_on_the_shard_of_its_table(settings, hot):
    settings.PG_HOT_PATH, settings.RAKE_ACCOUNT_SHARDS = hot, 4
    run = Run()
    tables = {}  # shard -> a table on it
    for n in range(16):
        table = Table.objects.get(table_id=run.table(f"t{n}"))
        tables.setdefault(table.pk % 4, table)
        if len(tables) == 4:
            break
    assert sorted(tables) == [0, 1, 2, 3]
    before, settled = rake_by_shard(), {}
    for shard, table in tables.items():
        (a, _), (b, _) = run.player(f"a{shard}"), run.player(f"b{shard}")
        buy_in(table.table_id, a, 500)
        buy_in(table.table_id, b, 500)
        rake = 10 + shard  # a different rake at each table, so that a swap of shards shows
        answer = settle(table.table_id, "h1", {a: 100, b: 100}, {b: 200 - rake}, rake)
        credited = Account.objects.get(pk=next(e["account_id"] for e in answer["transaction"]["entries"]
                                                if e["amount"] == rake))
        assert (credited.kind, credited.system_code, credited.currency, credited.shard) == \
            ("system", "rake", "EUR", table.pk % 4) == ("system", "rake", "EUR", rake_shard(table))
        assert answer["table"]["chips"] == 1000 - rake
        settled[shard] = rake
    after = rake_by_shard()
    assert {shard: after[shard] - before.get(shard, 0) for shard in after} == settled
    assert sum(after.values()) - sum(before.values()) == sum(settled.values())
    assert books_problems() == []


# --- 5. a refusal raised in PL/pgSQL is stored with its key ------------------------------------

@pytest.mark.django_db(transaction=True)  # as in production: the refusal aborts a real transaction
def test_a_refusal_from_the_hot_path_is_stored_and_replayed_without_moving_anything(settings):
    settings.PG_HOT_PATH = True
    run = Run()
    table, (a, wallet) = run.table(), run.player("a")
    buy_in(table, a, 400)
    key, before = new_key("short"), world()
    with pytest.raises(ApplicationError) as first:
        settle(table, "h1", {a: 401}, {a: 400}, 1, key=key)
    assert first.value.code == "insufficient_chips"
    # The function's error aborted its transaction; the key's record was written after it all the same.
    record = IdempotencyRecord.objects.get(scope=CLIENT, key=key)
    assert record.is_error and record.response == first.value.as_dict()
    for clear_cache in (False, True):  # replayed from the cache, then from the database record
        if clear_cache:
            cache.clear()
        with pytest.raises(ApplicationError) as again:
            settle(table, "h1", {a: 401}, {a: 400}, 1, key=key)
        assert again.value.as_dict() == first.value.as_dict()
    assert world() == before and IdempotencyRecord.objects.filter(key=key).count() == 1
    # The connection serves the next call: the same hand, with figures that fit, settles.
    assert settle(table, "h1", {a: 400}, {a: 399}, 1)["table"]["chips"] == 399
    assert Account.objects.get(pk=wallet).balance == 600
