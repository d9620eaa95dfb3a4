"""The PostgreSQL hot path (ledger/hot_path.py) on its own: the books and checksum chains after a
mixed sequence, queries per call, rake shards, and refusals raised in PL/pgSQL stored with their
keys. test_hot_path_equivalence.py compares it with the ORM path call by call."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction

from accounts.cache import balance_cache_get
from accounts.models import Account
from accounts.results import account_result
from balance_project.errors import ApplicationError
from ledger import chain
from ledger.integrity import ledger_verify
from ledger.models import Entry, IdempotencyRecord
from tables.models import Table
from tables.services import rake_shard
from tests.perf.hot_path_helpers import (
    CLIENT, Run, buy_in, cash_out, commit, refusal, release, reserve, settle, world,
)
from tests.tables.helpers import books_problems, new_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.usefixtures("a_rake_shard_per_table")]

# Queries per call on the hot path, as measured: SAVEPOINT and RELEASE of the idempotency transaction
# (BEGIN/COMMIT outside a test), the function, and one round trip with the call's deferred writes
# (balance_seal, balance_hand_record) and its idempotency record. The ORM path makes 9 to 19.
HOT_MAX = {"reserve": 4, "commit": 4, "release": 4, "buy_in": 4, "buy_in_top_up": 4, "settle": 4,
           "cash_out": 4, "cash_out_leave": 4}


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


# --- 6. a call that fails after its function ran leaves nothing queued for the next ---------------

def test_a_failure_after_the_function_leaves_no_writes_queued_for_the_next_call(settings, monkeypatch):
    """The seal and the hand record wait for the idempotency record's round trip: when the call
    fails in between, they go with its rolled-back transaction, not into the next call's."""
    import tables.hot_path

    settings.PG_HOT_PATH = True
    run = Run()
    table, (a, _), (b, _) = run.table(), run.player("a"), run.player("b")
    buy_in(table, a, 300)
    buy_in(table, b, 300)
    before = world()

    def broken(*args, **kwargs):
        raise RuntimeError("the answer could not be built")

    with monkeypatch.context() as patched:
        patched.setattr(tables.hot_path, "table_result", broken)
        with pytest.raises(RuntimeError):
            settle(table, "h1", {a: 50, b: 50}, {a: 95}, 5)
    assert world() == before
    answer = settle(table, "h1", {a: 50, b: 50}, {a: 95}, 5)  # the same hand, now answered
    assert answer["transaction"]["entries"] and books_problems() == []
