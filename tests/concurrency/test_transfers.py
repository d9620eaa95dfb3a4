"""1,000 random transfers among 20 wallets on 8 threads, verified while they run and after."""

import random
import threading
import uuid

import pytest
from django.db import connection
from django.db.models import Sum

from accounts.models import Account
from accounts.services import account_transfer
from ledger.integrity import ledger_verify
from ledger.integrity_runs import ledger_checkpoint_create
from ledger.models import Entry, Transaction
from tests.concurrency.conftest import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

WALLETS, FUNDS, TRANSFERS, THREADS = 20, 2_000, 1_000, 8


class Auditor(threading.Thread):
    """Verifies the ledger (and signs a checkpoint every other time) until told to stop."""

    def __init__(self):
        super().__init__(name="auditor")
        self.stop = threading.Event()
        self.reports = []
        self.checkpoints = []
        self.failure = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.reports.append(ledger_verify())
                if len(self.reports) % 2:
                    self.checkpoints.append(ledger_checkpoint_create()["checkpoint"]["id"])
        except BaseException as failure:
            self.failure = failure
        finally:
            connection.close()


def test_random_concurrent_transfers_keep_the_books_exact(wallet):
    ids = [wallet(funded=FUNDS) for _ in range(WALLETS)]
    rng = random.Random(20261125)
    plan = []
    for _ in range(TRANSFERS):
        source, target = rng.sample(ids, 2)
        plan.append((source, target, rng.randint(1, 300)))

    def transfer(source, target, amount):
        return lambda: account_transfer(
            client="poker",
            idempotency_key=f"t-{uuid.uuid4().hex}",
            from_account_id=source,
            to_account_id=target,
            amount=amount,
        )

    auditor = Auditor()
    auditor.start()
    try:
        outcomes = run_concurrently([transfer(*step) for step in plan], threads=THREADS)
    finally:
        auditor.stop.set()
        auditor.join(timeout=120)
    assert auditor.failure is None, auditor.failure

    refusals = {value.code for status, value in outcomes if status == "error"}
    assert refusals <= {"insufficient_funds"}
    succeeded = sum(1 for status, _ in outcomes if status == "ok")
    assert succeeded == Transaction.objects.filter(kind="transfer").count()
    assert succeeded > TRANSFERS // 2

    wallets = Account.objects.filter(pk__in=ids)
    assert sum(w.balance for w in wallets) == WALLETS * FUNDS
    sums = dict(Entry.objects.filter(account_id__in=ids).values_list("account_id").annotate(Sum("amount")))
    for w in wallets:
        assert w.balance == sums[w.pk] >= 0
        assert w.entry_seq == Entry.objects.filter(account_id=w.pk).count()

    # Every verification taken while transfers were committing saw a consistent snapshot.
    assert auditor.reports and all(report.ok for report in auditor.reports), [
        r.problems[:3] for r in auditor.reports if not r.ok
    ]
    final = ledger_verify()
    assert final.ok, final.problems
    assert final.checkpoint_id == auditor.checkpoints[-1]
    assert final.entries_checked == Entry.objects.count()
