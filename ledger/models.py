"""The ledger: transactions, their append-only entries, idempotency records and checkpoints."""

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


class IdempotencyRecord(models.Model):  # noqa: DJ008 (shown by id in the admin, unchanged)
    """The first answer to a mutating call, stored in the same transaction as its effect."""

    scope = models.CharField(max_length=64, help_text="The calling client.")
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    response = models.JSONField()
    is_error = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique_per_scope")]


class Checkpoint(models.Model):  # noqa: DJ008 (shown by id in the admin, unchanged)
    """A periodic signed snapshot of every chain head, so a truncated chain is caught later."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    heads = models.JSONField(help_text='{"<account id>": [seq, checksum], ...}')
    account_count = models.IntegerField()
    entry_count = models.BigIntegerField()
    signature = models.CharField(max_length=64)


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
    checkpoint = models.ForeignKey(
        Checkpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The checkpoint the chains were compared against.",
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
