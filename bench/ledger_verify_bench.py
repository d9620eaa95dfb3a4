"""How long ledger_verify takes, and how much memory it holds, over a large ledger.

Builds a throwaway test database (never the configured one), fills it with valid chains and their
journal records through bulk inserts (checksums and images computed as the services do), seals it,
verifies it in full, then makes ``--new`` deposits through the service and verifies only those
(the incremental run), so the two times can be compared:

    BALANCE_VAR_DIR=/tmp/var-bench python bench/ledger_verify_bench.py --entries 100000 [--memory] [--profile]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/balance_bench python bench/ledger_verify_bench.py

Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balance_project.secrecy import throwaway_keys_setdefault

# A scratch database: throwaway keys unless the environment names some (balance_project/secrecy.py).
throwaway_keys_setdefault(os.environ, purpose="bench")
# The scratch database's seals go to a scratch sink (one holding an older run's would stop the sealer).
os.environ.setdefault("LEDGER_SEAL_SINK", f"file://{tempfile.mkdtemp(prefix='balance-bench-')}/seals.jsonl")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def fill(*, accounts: int, entries: int, seed: int = 1) -> None:
    """Valid chains and the journal records that wrote them (one per transaction, with the images
    ledger/journal.py makes), bulk inserted; then every record sealed, as the sealer would."""
    from accounts.models import Account
    from ledger import chain, journal
    from ledger.models import Entry, JournalRecord, Transaction

    rng = random.Random(seed)
    external = Account.objects.create(kind="system", system_code="external", currency="EUR", allow_negative=True)
    wallets = Account.objects.bulk_create(
        [Account(kind="user", owner_ref=f"bench-{n}", currency="EUR") for n in range(accounts)]
    )
    rows = {account.pk: account for account in [external, *wallets]}
    state = {pk: [0, 0, chain.GENESIS] for pk in rows}  # balance, seq, head
    batches: dict[str, list] = {"tx": [], "entry": [], "record": []}
    now = timezone.now()
    next_tx = iter(range(1, 10**9))

    def flush() -> None:
        Transaction.objects.bulk_create(batches["tx"])
        Entry.objects.bulk_create(batches["entry"])
        JournalRecord.objects.bulk_create(batches["record"])
        for batch in batches.values():
            batch.clear()

    def post(legs: list[tuple[int, int]]) -> None:
        tx = Transaction(pk=next(next_tx), kind="transfer", currency="EUR", actor="bench", metadata={}, created_at=now)
        batches["tx"].append(tx)
        draft = journal.JournalDraft(operation="bench_transfer")
        journal.journal_row(draft, "ledger_transaction", tx.pk, journal.row_values(tx, "ledger_transaction"))
        for account_id, delta in sorted(legs):
            balance, seq, head = state[account_id]
            balance, seq = balance + delta, seq + 1
            fields = dict(
                account_id=account_id,
                seq=seq,
                transaction_id=tx.pk,
                amount=delta,
                currency="EUR",
                balance_after=balance,
                created_at=now,
            )
            head = chain.entry_checksum(prev_checksum=head, **fields)
            state[account_id] = [balance, seq, head]
            entry = Entry(checksum=head, **fields)
            batches["entry"].append(entry)
            journal.journal_row(draft, "ledger_entry", f"{account_id}:{seq}", journal.row_values(entry, "ledger_entry"))
            account = rows[account_id]
            account.balance, account.entry_seq, account.chain_head = balance, seq, head
            journal.journal_row(draft, "accounts_account", account_id, journal.row_values(account, "accounts_account"))
        fields = journal.record_fields(draft, now)
        batches["record"].append(JournalRecord(**fields | {"created_at": now}, mac=journal.record_mac(fields)))
        if len(batches["entry"]) >= 5000:
            flush()

    for account in rows.values():  # the accounts' openings
        draft = journal.JournalDraft(operation="bench_open")
        opened = journal.row_values(account, "accounts_account")
        journal.journal_row(draft, "accounts_account", account.pk, opened)
        fields = journal.record_fields(draft, now)
        batches["record"].append(JournalRecord(**fields | {"created_at": now}, mac=journal.record_mac(fields)))
    for pk in [w.pk for w in wallets]:
        post([(pk, 1_000_000), (external.pk, -1_000_000)])
    ids = [w.pk for w in wallets]
    for _ in range(max(0, entries - 2 * accounts) // 2):
        source, target = rng.sample(ids, 2)
        post(_transfer(rng, source, target))
    flush()
    # bulk_create gives auto_now_add fields the time of the insert: put back the time the journal says.
    Transaction.objects.update(created_at=now)
    if connection.vendor == "postgresql":  # the ids were given: the sequence must move past them
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('ledger_transaction', 'id'), MAX(id)) FROM ledger_transaction"
            )
    for account_id, (balance, seq, head) in state.items():
        Account.objects.filter(pk=account_id).update(balance=balance, entry_seq=seq, chain_head=head)


def seal_all() -> int:
    from ledger.sealing import journal_seal

    seals = 0
    while journal_seal(limit=50_000)["seal"]:
        seals += 1
    return seals


def _transfer(rng: random.Random, source: int, target: int) -> list[tuple[int, int]]:
    amount = rng.randint(1, 1000)  # 10^6 start and <= 1000 per move: no wallet gets near zero here
    return [(source, -amount), (target, amount)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument(
        "--new", type=int, default=1000, help="Deposits made through the service before the incremental run."
    )
    parser.add_argument("--memory", action="store_true", help="Trace peak Python memory (slows the run).")
    parser.add_argument("--profile", action="store_true", help="Print the top of a cProfile of the verification.")
    args = parser.parse_args()

    from ledger.integrity import ledger_verify

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        with transaction.atomic():
            fill(accounts=args.accounts, entries=args.entries)
        print(f"filled {args.entries} entries over {args.accounts} accounts in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        seals = seal_all()
        print(f"sealed in {seals} seals in {time.perf_counter() - started:.1f} s")
        if args.memory:
            tracemalloc.start()
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        report = profiler.runcall(ledger_verify) if profiler else ledger_verify()
        elapsed = time.perf_counter() - started
        memory = ""
        if args.memory:
            memory = f", peak Python memory {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB"
            tracemalloc.stop()
        print(
            f"{connection.vendor} full: verified {report.entries_checked} entries, {report.transactions_checked} "
            f"transactions, {report.records_checked} journal records in {elapsed:.2f} s "
            f"({report.entries_checked / elapsed:,.0f} entries/s){memory}, {report.problem_count} problems"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        for problem in report.problems[:5]:
            print("  ", problem)
        through = report.through_seal
        from accounts.models import Account as Wallet
        from accounts.services import account_deposit

        wallet_ids = list(Wallet.objects.filter(kind="user").values_list("pk", flat=True)[:50])
        rng = random.Random(2)
        for n in range(args.new):
            account_deposit(client="bench", idempotency_key=f"b{n}", account_id=rng.choice(wallet_ids), amount=1)
        seal_all()
        started = time.perf_counter()
        incremental = ledger_verify(full=False, since_seal=through)
        elapsed = time.perf_counter() - started
        print(
            f"{connection.vendor} incremental: {incremental.records_checked} new journal records "
            f"({args.new} deposits through the service) in {elapsed:.3f} s, {incremental.problem_count} problems"
        )
        for problem in incremental.problems[:5]:
            print("  ", problem)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
