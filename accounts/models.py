"""Accounts hold money; API keys identify the callers that move it."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Account(models.Model):
    """A balance in one currency. ``available = balance - held``.

    The database refuses a negative hold, and a negative available balance for every account
    not flagged ``allow_negative`` (only the external-funds counterpart is).
    """

    class Kind(models.TextChoices):
        USER = "user", "user wallet"
        SEAT = "seat", "table seat"
        SYSTEM = "system", "house account"

    class Status(models.TextChoices):
        ACTIVE = "active"
        FROZEN = "frozen"
        CLOSED = "closed"

    class SystemCode(models.TextChoices):
        EXTERNAL = "external", "external funds (cash in / cash out counterpart)"
        RAKE = "rake", "rake revenue"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    owner_ref = models.CharField(
        max_length=128, blank=True, default="", db_index=True, help_text="External user id for user and seat accounts."
    )
    system_code = models.CharField(max_length=32, blank=True, default="", choices=SystemCode.choices)
    # A house account may be split into shards, each its own row, lock and chain: every settlement
    # credits the rake, and one rake row per currency made every table's settlements wait on one
    # lock. Its revenue is the sum of its shards. Always 0 for other accounts.
    shard = models.PositiveSmallIntegerField(default=0, db_default=0)
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    allow_negative = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    # Bumped on every change of balance, held or status; the balance cache is keyed by it.
    version = models.BigIntegerField(default=0)
    # Head of this account's entry chain: last sequence number and its checksum.
    entry_seq = models.BigIntegerField(default=0)
    chain_head = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Support actions in the admin; each calls an accounts service.
        permissions = [
            ("adjust_balance", "Can make a manual balance adjustment"),
            ("freeze_account", "Can freeze and unfreeze an account"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_not_negative"),
            models.CheckConstraint(
                condition=Q(allow_negative=True) | Q(balance__gte=F("held")),
                name="account_available_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(allow_negative=False) | Q(kind="system", system_code="external"),
                name="account_only_external_may_go_negative",
            ),
            models.CheckConstraint(
                condition=Q(version__gte=0) & Q(entry_seq__gte=0), name="account_counters_not_negative"
            ),
            models.CheckConstraint(condition=Q(kind__in=["user", "seat", "system"]), name="account_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=["active", "frozen", "closed"]), name="account_status_valid"),
            models.CheckConstraint(
                condition=(Q(kind="system") & ~Q(system_code="")) | (~Q(kind="system") & Q(system_code="")),
                name="account_system_code_iff_system",
            ),
            models.UniqueConstraint(
                fields=["owner_ref", "currency"], condition=Q(kind="user"), name="account_one_wallet_per_owner_currency"
            ),
            models.UniqueConstraint(
                fields=["system_code", "currency", "shard"],
                condition=Q(kind="system"),
                name="account_one_system_account_per_code_currency_shard",
            ),
            models.CheckConstraint(condition=Q(kind="system") | Q(shard=0), name="account_shard_only_system"),
        ]

    def __str__(self) -> str:
        who = self.owner_ref
        if self.kind == self.Kind.SYSTEM:
            who = self.system_code + (f"#{self.shard}" if self.shard else "")
        return f"#{self.pk} {self.kind}:{who} {self.currency}"

    @property
    def available(self) -> int:
        return self.balance - self.held


class ApiKey(models.Model):
    """A caller's credential. The key itself is shown once; only its SHA-256 is stored.

    ``client`` names the caller (``poker-service``, ``cashier``); idempotency keys are scoped by it,
    so rotating a key keeps the caller's idempotency history.
    """

    client = models.CharField(max_length=64, db_index=True)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.client} ({self.prefix}…)"
