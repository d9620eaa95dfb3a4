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
from ledger.models import Entry, JournalPosition, JournalRecord, Transaction
from ledger.sealing import journal_seal
from tests.concurrency.conftest import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

WALLETS, FUNDS, TRANSFERS, THREADS = 20, 2_000, 1_000, 8


class Auditor(threading.Thread):
    """Until told to stop: verifies the whole ledger, seals the journal, and verifies what came since
    the seal before (the sealer and both verifications run while the transfers commit)."""

    def __init__(self):
        super().__init__(name="auditor")
        self.stop = threading.Event()
        self.reports = []
        self.seals = []
        self.failure = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.reports.append(ledger_verify())
                since = self.seals[-1] if self.seals else None
                sealed = journal_seal()["seal"]
                if sealed:
                    self.seals.append(sealed)
                if since:
                    self.reports.append(ledger_verify(full=False, since_seal=since))
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
    last = journal_seal()["seal"] or auditor.seals[-1]
    final = ledger_verify()
    assert final.ok, final.problems
    assert final.through_seal == last
    assert final.records_checked == JournalRecord.objects.count() == JournalPosition.objects.count()
    assert final.entries_checked == Entry.objects.count()
