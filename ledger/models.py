"""The ledger: transactions, their append-only entries, the journal (each call's idempotency key too), seals."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.db.models import Q


class Transaction(models.Model):
    """One business operation. Its entries sum to zero (checked in code and, on PostgreSQL, by a
    deferred constraint trigger)."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"
        TRANSFER = "transfer"
        ADJUSTMENT = "adjustment"
        BUY_IN = "buy_in"
        CASH_OUT = "cash_out"
        HAND_SETTLEMENT = "hand_settlement"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    actor = models.CharField(max_length=128, help_text="Who asked: API client, admin user or job.")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"tx#{self.pk} {self.kind} {self.currency}"


class Entry(models.Model):  # noqa: DJ008 (shown by id in the admin, unchanged)
    """A posting to one account. Never updated, never deleted.

    ``seq`` numbers the account's chain without gaps; ``checksum`` is
    HMAC-SHA-256(key, canonical bytes of this entry + previous checksum) — see ledger/chain.py.
    """

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="entries")
    seq = models.BigIntegerField()
    amount = models.BigIntegerField(help_text="Signed: positive raises the balance.")
    currency = models.CharField(max_length=3)
    balance_after = models.BigIntegerField()
    created_at = models.DateTimeField()
    checksum = models.CharField(max_length=64)

    class Meta:
        verbose_name_plural = "entries"
        # Viewing entries one page at a time is not taking the whole ledger away: export has its own.
        permissions = [("export_ledger", "Can export the ledger of a period as CSV")]
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="entry_seq_unique_per_account"),
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_not_zero"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="entry_seq_positive"),
        ]
        indexes = [models.Index(fields=["account", "created_at"], name="entry_account_created")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("ledger entries are append-only")


class IntegrityRun(models.Model):
    """One run of a background integrity job: what it checked and what it found.

    ``problems`` keeps at most the first ``PROBLEMS_KEPT`` problems; ``problem_count`` is the true total.
    """

    PROBLEMS_KEPT = 200

    class Kind(models.TextChoices):
        VERIFY = "verify", "full chain verification"
        RECONCILE = "reconcile", "balance reconciliation"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.VERIFY)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    problem_count = models.IntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    accounts_checked = models.IntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    transactions_checked = models.BigIntegerField(default=0)
    through_seal = models.BigIntegerField(
        null=True, blank=True, help_text="The newest seal this run verified (the next incremental run starts after it)."
    )
    signature = models.CharField(
        max_length=64, blank=True, default="", help_text="HMAC of the run's findings: a forged row does not verify."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(problem_count__gte=0), name="integrity_run_count_not_negative"),
            models.CheckConstraint(
                condition=models.Q(ok=True, problem_count=0) | models.Q(ok=False, problem_count__gt=0),
                name="integrity_run_ok_iff_no_problems",
            ),
        ]
        indexes = [models.Index(fields=["kind", "-finished_at"], name="integrity_run_kind_finished")]

    def __str__(self) -> str:
        return f"{self.kind} run #{self.pk} {'ok' if self.ok else f'{self.problem_count} problems'}"


class JournalRecord(models.Model):  # noqa: DJ008 (shown by id in the admin)
    """One committed operation, written in the transaction of its effect (ledger/journal.py).

    ``rows`` is the canonical JSON of every money row the operation wrote, as it wrote it (accounts,
    transactions, entries, reservations, tables, seats, hands); with the idempotency scope, key,
    request hash and answer (the one store of an idempotent call's first answer), it is what the
    verifier holds the tables to. ``mac`` is HMAC-SHA-256 over all of it with LEDGER_HMAC_KEY,
    computed in Python from what Python decided. ``txid`` is the
    PostgreSQL transaction id that wrote it (0 on SQLite): the sealer's horizon (ledger/sealing.py).
    Append-only: a trigger refuses UPDATE and DELETE, the runtime role has neither.
    """

    txid = models.BigIntegerField(default=0)
    scope = models.CharField(max_length=64, blank=True, default="")
    key = models.CharField(max_length=255, blank=True, default="")
    operation = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    response = models.TextField(blank=True, default="", help_text="The answer as canonical JSON.")
    is_error = models.BooleanField(default=False)
    rows = models.TextField(help_text="Canonical JSON of every row written: {table: {id: {column: value}}}.")
    created_at = models.DateTimeField()
    mac = models.CharField(max_length=64)

    class Meta:
        constraints = [
            # The store of every idempotency key (ledger/idempotency.py): a second record of a key
            # is refused, which rolls its attempt back whole.
            models.UniqueConstraint(fields=["scope", "key"], condition=~Q(key=""), name="journal_key_unique_per_scope"),
        ]
        indexes = [models.Index(fields=["txid"], name="journal_txid")]


class JournalSeal(models.Model):  # noqa: DJ008 (shown by id in the admin)
    """One round of the sealer: records ``first_position``..``last_position`` chained.

    ``head`` = the HMAC chain over the sealed records' macs in position order, from ``prev_head``;
    ``totals`` the cumulative counts and per-currency sums; ``mac`` signs the seal itself. Each seal
    is also appended outside the database (LEDGER_SEAL_SINK), and the verifier holds the database
    to the newest seal there."""

    first_position = models.BigIntegerField()
    last_position = models.BigIntegerField()
    prev_head = models.CharField(max_length=64, blank=True, default="")
    head = models.CharField(max_length=64)
    horizon = models.BigIntegerField(default=0, help_text="Every record with a smaller txid is sealed.")
    totals = models.JSONField(default=dict)
    sealed_at = models.DateTimeField()
    mac = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(first_position__gte=1) & Q(last_position__gte=models.F("first_position")),
                name="journal_seal_positions",
            ),
            models.UniqueConstraint(fields=["last_position"], name="journal_seal_last_unique"),
        ]


class JournalPosition(models.Model):  # noqa: DJ008 (shown by position in the admin)
    """A record's place in the one global order. Unique both ways: no record sealed twice, no
    position given twice."""

    position = models.BigIntegerField(primary_key=True)
    record_id = models.BigIntegerField(unique=True)
    seal_id = models.BigIntegerField(db_index=True)
