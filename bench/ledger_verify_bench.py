"""How long ledger_verify takes, and how much memory it holds, over a large ledger.

Builds a throwaway test database (never the configured one), fills it with valid chains through
bulk inserts (checksums computed as ledger.services does), then verifies it:

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
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balance_project.secrecy import throwaway_keys_setdefault

# A scratch database: throwaway keys unless the environment names some (balance_project/secrecy.py).
throwaway_keys_setdefault(os.environ, purpose="bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def fill(*, accounts: int, entries: int, seed: int = 1) -> None:
    from accounts.models import Account
    from ledger import chain
    from ledger.models import Entry, Transaction

    rng = random.Random(seed)
    external = Account.objects.create(kind="system", system_code="external", currency="EUR", allow_negative=True)
    wallets = Account.objects.bulk_create(
        [Account(kind="user", owner_ref=f"bench-{n}", currency="EUR") for n in range(accounts)]
    )
    ids = [w.pk for w in wallets]
    state = {pk: [0, 0, chain.GENESIS] for pk in [external.pk, *ids]}  # balance, seq, head
    batch: list[Entry] = []
    now = timezone.now()

    def post(legs: list[tuple[int, int]]) -> None:
        tx = Transaction.objects.create(kind="transfer", currency="EUR", actor="bench")
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
            batch.append(Entry(checksum=head, **fields))
        if len(batch) >= 5000:
            Entry.objects.bulk_create(batch)
            batch.clear()

    for pk in ids:
        post([(pk, 1_000_000), (external.pk, -1_000_000)])
    for _ in range(max(0, entries - 2 * accounts) // 2):
        source, target = rng.sample(ids, 2)
        post(_transfer(rng, source, target))
    Entry.objects.bulk_create(batch)
    for account_id, (balance, seq, head) in state.items():
        Account.objects.filter(pk=account_id).update(balance=balance, entry_seq=seq, chain_head=head)


def _transfer(rng: random.Random, source: int, target: int) -> list[tuple[int, int]]:
    amount = rng.randint(1, 1000)  # 10^6 start and <= 1000 per move: no wallet gets near zero here
    return [(source, -amount), (target, amount)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=200)
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
            f"{connection.vendor}: verified {report.entries_checked} entries, {report.transactions_checked} "
            f"transactions in {elapsed:.2f} s ({report.entries_checked / elapsed:,.0f} entries/s)"
            f"{memory}, {report.problem_count} problems"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        for problem in report.problems[:5]:
            print("  ", problem)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
