"""The hot calls on the lean data path (ledger/work.py): round trips per call, the books and
checksum chains after a mixed sequence, rake shards, refusals stored with their keys, and a call
that fails half way leaving nothing behind."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.cache import balance_cache_get
from accounts.models import Account
from accounts.results import account_result
from accounts.services import account_deposit, account_transfer, account_withdraw
from balance_project.errors import ApplicationError
from ledger import chain
from ledger.integrity import ledger_verify
from ledger.models import Entry, JournalRecord
from tables.models import Table
from tables.services import rake_shard
from tests.perf.helpers import CLIENT, Run, buy_in, cash_out, commit, refusal, release, reserve, settle, world
from tests.tables.helpers import books_problems, new_key

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("a_rake_shard_per_table")]

# Round trips to the database per call, BEGIN and COMMIT included: BEGIN with the locks and reads,
# then the writes with the journal record (idempotency key and answer) and COMMIT. A first buy-in
# at a table (or a commit into a new seat) allocates the seat's ids in one more; so does a house
# account's first posting in a currency and shard (a rake or external-funds shard is created then).
ROUND_TRIPS = {
    "reserve": 2,
    "commit_opening_seat": 3,
    "release": 2,
    "buy_in_opening_seat": 3,
    "buy_in": 2,
    "settle": 2,
    "cash_out": 2,
    "cash_out_leave": 2,
    "deposit": 2,
    "withdraw": 2,
    "transfer": 2,
    "refused_buy_in": 2,
}


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


# --- round trips per call ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # as in production: BEGIN and COMMIT, no test savepoints
def test_each_hot_call_keeps_its_round_trip_budget():
    run = Run()
    table, (a, wallet_a), (b, wallet_b) = run.table(), run.player("a", funded=5000), run.player("b", funded=5000)
    settle_warm = run.player("c", funded=5000)[0]
    account_deposit(client=CLIENT, idempotency_key=new_key(), account_id=wallet_a, amount=1)  # its shard exists
    account_deposit(client=CLIENT, idempotency_key=new_key(), account_id=wallet_b, amount=1)
    counts = {}

    def count(name, call, *args, **kwargs):
        with CaptureQueriesContext(connection) as queries:
            try:
                answer = call(*args, **kwargs)
            except ApplicationError as refused:
                answer = refused
        counts[name] = len(queries.captured_queries)
        return answer

    reserved = count("reserve", reserve, table, a, 600)["reservation"]["id"]
    count("commit_opening_seat", commit, reserved)
    count("release", release, reserve(table, a, 100)["reservation"]["id"])
    count("buy_in_opening_seat", buy_in, table, b, 500)
    count("buy_in", buy_in, table, b, 100)
    buy_in(table, settle_warm, 100)
    settle(table, "warm-up", {settle_warm: 10}, {b: 5}, 5)  # the table's first rake creates its rake shard
    count("settle", settle, table, "h1", {a: 100, b: 100}, {a: 195}, 5)
    count("cash_out", cash_out, table, a, amount=100)
    count("cash_out_leave", cash_out, table, b, leave=True)
    count("deposit", account_deposit, client=CLIENT, idempotency_key=new_key(), account_id=wallet_a, amount=50)
    count("withdraw", account_withdraw, client=CLIENT, idempotency_key=new_key(), account_id=wallet_a, amount=50)
    count(
        "transfer",
        account_transfer,
        client=CLIENT,
        idempotency_key=new_key(),
        from_account_id=wallet_a,
        to_account_id=wallet_b,
        amount=50,
    )
    assert isinstance(count("refused_buy_in", buy_in, table, a, 10**9), ApplicationError)
    assert counts == ROUND_TRIPS
    assert books_problems() == []


# --- the books and the checksum chains after a mixed sequence ---------------------------------


# Committed for real, with no test transaction around it: the deferred triggers check the entries
# at COMMIT, and the balance cache is fed after it.
@pytest.mark.django_db(transaction=True)
def test_the_ledger_verifies_after_a_mixed_sequence():
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
    if connection.vendor == "postgresql":  # the chain guard is PostgreSQL's
        victim = Account.objects.get(kind="seat", owner_ref=a)
        with transaction.atomic():
            Account.objects.filter(pk=victim.pk).update(chain_head="0" * 64)
            assert chain_breaks([victim.pk]) != []
            assert {p["code"] for p in ledger_verify(account_ids=[victim.pk]).problems} == {"chain_head_mismatch"}
            transaction.set_rollback(True)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_balance_cache_holds_every_wallet_as_committed_and_no_seat():
    run = Run()
    table, (a, wallet), (b, _) = run.table(), run.player("a"), run.player("b")
    buy_in(table, a, 300)
    buy_in(table, b, 300)
    settle(table, "h1", {a: 100, b: 100}, {a: 195}, 5)
    cash_out(table, b, leave=True)
    touched = Account.objects.filter(owner_ref__startswith=run.token)
    assert touched.count() == 4
    for account in touched:
        expected = account_result(account) if account.kind == Account.Kind.USER else None
        assert balance_cache_get(account.pk) == expected
    assert balance_cache_get(wallet)["balance"] == 700


# --- the rake goes to its table's shard -----------------------------------------------------


def rake_by_shard():
    return dict(
        Account.objects.filter(kind="system", system_code="rake", currency="EUR").values_list("shard", "balance")
    )


def test_the_rake_lands_on_the_shard_of_its_table(settings):
    settings.RAKE_ACCOUNT_SHARDS = 4
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
        credited = Account.objects.get(
            pk=next(e["account_id"] for e in answer["transaction"]["entries"] if e["amount"] == rake)
        )
        assert (
            (credited.kind, credited.system_code, credited.currency, credited.shard)
            == ("system", "rake", "EUR", table.pk % 4)
            == ("system", "rake", "EUR", rake_shard(table))
        )
        assert answer["table"]["chips"] == 1000 - rake
        settled[shard] = rake
    after = rake_by_shard()
    assert {shard: after[shard] - before.get(shard, 0) for shard in after} == settled
    assert sum(after.values()) - sum(before.values()) == sum(settled.values())
    assert books_problems() == []


# --- a refusal is stored with its key -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # as in production: no test transaction around the call
def test_a_refusal_is_stored_and_replayed_without_moving_anything():
    run = Run()
    table, (a, wallet) = run.table(), run.player("a")
    buy_in(table, a, 400)
    key, before = new_key("short"), world()
    with pytest.raises(ApplicationError) as first:
        settle(table, "h1", {a: 401}, {a: 400}, 1, key=key)
    assert first.value.code == "insufficient_chips"
    record = JournalRecord.objects.get(scope=CLIENT, key=key)
    assert record.is_error and json.loads(record.response) == first.value.as_dict()
    for clear_cache in (False, True):  # replayed from the cache, then from the database record
        if clear_cache:
            cache.clear()
        with pytest.raises(ApplicationError) as again:
            settle(table, "h1", {a: 401}, {a: 400}, 1, key=key)
        assert again.value.as_dict() == first.value.as_dict()
    assert world() == before and JournalRecord.objects.filter(key=key).count() == 1
    # The connection serves the next call: the same hand, with figures that fit, settles.
    assert settle(table, "h1", {a: 400}, {a: 399}, 1)["table"]["chips"] == 399
    assert Account.objects.get(pk=wallet).balance == 600


# --- a call that fails half way leaves nothing ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_reads_leaves_nothing_and_the_next_call_works(monkeypatch):
    """The writes are queued until the COMMIT's round trip: when the call fails before it, the
    transaction is rolled back with its locks, and the connection serves the next call."""
    import tables.services

    run = Run()
    table, (a, _), (b, _) = run.table(), run.player("a"), run.player("b")
    buy_in(table, a, 300)
    buy_in(table, b, 300)
    before = world()

    def broken(*args, **kwargs):
        raise RuntimeError("the answer could not be built")

    with monkeypatch.context() as patched:
        patched.setattr(tables.services, "table_result", broken)
        with pytest.raises(RuntimeError):
            settle(table, "h1", {a: 50, b: 50}, {a: 95}, 5)
    assert world() == before
    answer = settle(table, "h1", {a: 50, b: 50}, {a: 95}, 5)  # the same hand, now answered
    assert answer["transaction"]["entries"] and books_problems() == []
