"""The sealer under concurrent commits (issue #9): threads commit operations on overlapping
accounts while another thread seals in a loop. At the end, after one last seal, every journal
record has exactly one position, positions run 1..N without a hole, seals tile them, and for each
account the records that wrote it are in the order they committed (their positions increase with
the account's entry seq and version, which only its row lock hands out).
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from collections import defaultdict

import pytest
from django.db import connection

from accounts.services import account_deposit, account_open, account_transfer, account_withdraw
from balance_project.errors import ApplicationError
from ledger.models import JournalPosition, JournalRecord, JournalSeal

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, available_apps=["accounts", "ledger", "reservations", "tables"]),
]

WALLETS = 5  # few, so the threads keep meeting on the same rows
WRITERS = 4
OPERATIONS_PER_WRITER = 15


def _key() -> str:
    return f"sc-{uuid.uuid4().hex}"


def _operation(rng: random.Random, wallets: list[int]) -> None:
    kind = rng.choice(("transfer", "transfer", "deposit", "withdraw"))
    if kind == "deposit":
        account_deposit(client="t", idempotency_key=_key(), account_id=rng.choice(wallets), amount=rng.randint(1, 50))
    elif kind == "withdraw":
        account_withdraw(client="t", idempotency_key=_key(), account_id=rng.choice(wallets), amount=rng.randint(1, 20))
    else:
        source, target = rng.sample(wallets, 2)
        account_transfer(
            client="t", idempotency_key=_key(), from_account_id=source, to_account_id=target, amount=rng.randint(1, 30)
        )


def test_every_record_is_sealed_once_in_commit_order_per_account(settings, tmp_path):
    from ledger.sealing import journal_seal

    settings.LEDGER_SEAL_SINK = f"file://{tmp_path / 'seals.jsonl'}"
    seed = int.from_bytes(os.urandom(4), "big")
    wallets = []
    for n in range(WALLETS):
        opened = account_open(client="t", idempotency_key=_key(), owner_ref=f"sc-{seed}-{n}", currency="EUR")
        wallets.append(opened["account"]["id"])
        account_deposit(client="t", idempotency_key=_key(), account_id=wallets[-1], amount=10_000)

    failures: list[BaseException] = []
    done = threading.Event()
    seals_during = []
    start = threading.Barrier(WRITERS + 1)

    def writer(n: int) -> None:
        rng = random.Random(seed + n)
        try:
            start.wait(timeout=60)
            for _ in range(OPERATIONS_PER_WRITER):
                try:
                    _operation(rng, wallets)
                except ApplicationError as refusal:  # a business refusal is journaled too, or nothing is
                    assert refusal.code in {"insufficient_funds"}, refusal
        except BaseException as failure:
            failures.append(failure)
        finally:
            connection.close()

    def sealer() -> None:
        try:
            start.wait(timeout=60)
            while not done.is_set():
                seals_during.append(journal_seal()["seal"])
        except BaseException as failure:
            failures.append(failure)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer, args=(n,), name=f"writer-{n}") for n in range(WRITERS)]
    sealing = threading.Thread(target=sealer, name="sealer")
    for thread in [*writers, sealing]:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
        assert not thread.is_alive(), f"{thread.name} is stuck"
    done.set()
    sealing.join(timeout=60)
    assert not sealing.is_alive(), "the sealer is stuck"
    assert not failures, (seed, failures)
    journal_seal()

    sealed_while_writing = {seal for seal in seals_during if seal is not None}
    assert len(sealed_while_writing) >= 2, f"the sealer hardly ran while the writers did (seed {seed})"
    records = dict(JournalRecord.objects.values_list("pk", "rows"))
    positions = list(JournalPosition.objects.order_by("position").values_list("position", "record_id", "seal_id"))
    assert [position for position, _, _ in positions] == list(range(1, len(records) + 1)), f"seed {seed}"
    assert sorted(record for _, record, _ in positions) == sorted(records), f"a record unsealed or sealed twice: {seed}"

    expected_first = 1
    for seal_id, first, last in JournalSeal.objects.order_by("pk").values_list("pk", "first_position", "last_position"):
        assert first == expected_first, f"seal {seal_id} does not start where the previous one ended (seed {seed})"
        assert {s for p, _, s in positions if first <= p <= last} == {seal_id}
        expected_first = last + 1
    assert expected_first == len(records) + 1

    # Per account, in position order: each record's image of the account row, and the entries it wrote.
    versions: dict[str, list[int]] = defaultdict(list)
    entry_seqs: dict[str, list[int]] = defaultdict(list)
    for _, record_id, _ in positions:
        rows = json.loads(records[record_id])
        for account_id, image in rows.get("accounts_account", {}).items():
            versions[account_id].append(image["version"])
        for entry_key in sorted(rows.get("ledger_entry", {}), key=lambda key: int(key.split(":")[1])):
            account_id, seq = entry_key.split(":")
            entry_seqs[account_id].append(int(seq))
    for account_id in map(str, wallets):  # about 18 each on average: the writers did meet on every wallet
        assert len(entry_seqs[account_id]) >= 6, ("too little contention to prove anything", seed)
    for account_id, seqs in entry_seqs.items():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), (account_id, seqs, seed)
        assert seqs == list(range(1, len(seqs) + 1)), (account_id, "an entry is not journaled", seed)
    for account_id, seen in versions.items():
        assert seen == sorted(seen) and len(set(seen)) == len(seen), (account_id, seen, seed)
