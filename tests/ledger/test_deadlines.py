"""Every call bounded by its deadline (balance_project/deadlines.py, ledger/work.py): a call whose
budget runs out while it waits on the database is refused ``deadline_exceeded`` and never commits
later, whatever it was waiting for."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from accounts.services import account_deposit
from balance_project.deadlines import call_budget
from balance_project.errors import ApplicationError
from ledger.models import JournalRecord
from tests.tables.helpers import account, new_key, new_player

pytestmark = pytest.mark.django_db(transaction=True)


class RowHolder:
    """Another connection holding ``FOR UPDATE`` on an account row (PostgreSQL) or the write lock
    (SQLite), as a stuck or slow transaction would, until ``release``."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        try:
            with connections["default"].cursor() as cursor:  # this thread's own connection
                if connection.vendor == "postgresql":
                    cursor.execute("BEGIN")
                    cursor.execute("SELECT id FROM accounts_account WHERE id = %s FOR UPDATE", [self.account_id])
                else:
                    cursor.execute("BEGIN IMMEDIATE")
                self.held.set()
                self.release.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            connections["default"].close()

    def __enter__(self) -> RowHolder:
        self.thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(10)


def test_a_call_whose_budget_ends_on_a_lock_is_refused_and_never_lands():
    _, wallet = new_player(funded=100)
    key = new_key()
    with RowHolder(wallet):
        started = time.monotonic()
        with pytest.raises(ApplicationError) as refused, call_budget(0.5):
            account_deposit(client="cashier", idempotency_key=key, account_id=wallet, amount=50)
        waited = time.monotonic() - started
    assert refused.value.code == "deadline_exceeded"
    assert 0.3 < waited < 3, waited
    time.sleep(0.3)  # the holder is gone: nothing queued behind it may land now
    assert account(wallet).balance == 100
    assert not JournalRecord.objects.filter(key=key).exists()  # not remembered: a retry may succeed
    with call_budget(5):
        account_deposit(client="cashier", idempotency_key=key, account_id=wallet, amount=50)
    assert account(wallet).balance == 150


def test_no_round_trip_starts_once_the_budget_is_spent():
    _, wallet = new_player(funded=100)
    with pytest.raises(ApplicationError) as refused, call_budget(0):
        account_deposit(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=50)
    assert refused.value.code == "deadline_exceeded"
    assert account(wallet).balance == 100


def test_a_call_with_no_budget_waits_for_the_lock_as_before():
    _, wallet = new_player(funded=100)
    holder = RowHolder(wallet)
    with holder:
        threading.Timer(0.5, holder.release.set).start()
        account_deposit(client="jobs", idempotency_key=new_key(), account_id=wallet, amount=50)
    assert account(wallet).balance == 150
