"""Accounts hold money; API keys identify the callers that move it."""

from __future__ import annotations

from django.conf import settings
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


class PlayerLimit(models.Model):
    """A limit a player set on themselves, per owner and currency (accounts/protection.py applies it).

    ``value`` is in force; an increase (or a removal) waits in ``pending_value`` until
    ``pending_effective_at`` (the cooling-off), a decrease replaces ``value`` at once. A pending
    row with ``pending_value`` NULL is a pending removal. ``period`` is the rolling window of a
    deposit or loss limit, empty for the maximum buy-in (one buy-in or reservation at a table).
    """

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "deposits over a rolling window"
        LOSS = "loss", "buy-ins minus cash-outs over a rolling window"
        BUY_IN = "buy_in", "the largest single buy-in at a table"

    class Period(models.TextChoices):
        DAY = "24h", "24 hours"
        WEEK = "7d", "7 days"
        MONTH = "30d", "30 days"
        NONE = "", "not a window"

    owner_ref = models.CharField(max_length=128)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    period = models.CharField(max_length=3, choices=Period.choices, blank=True, default="")
    value = models.BigIntegerField()
    pending_value = models.BigIntegerField(null=True, blank=True)
    pending_effective_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_ref", "currency", "kind", "period"], name="player_limit_one_per_owner_currency_kind"
            ),
            models.CheckConstraint(condition=Q(value__gt=0), name="player_limit_value_positive"),
            models.CheckConstraint(
                condition=Q(pending_value__isnull=True) | Q(pending_value__gt=0),
                name="player_limit_pending_value_positive",
            ),
            models.CheckConstraint(
                condition=Q(pending_value__isnull=True) | Q(pending_effective_at__isnull=False),
                name="player_limit_pending_value_has_moment",
            ),
            models.CheckConstraint(
                condition=(Q(kind__in=["deposit", "loss"]) & Q(period__in=["24h", "7d", "30d"]))
                | (Q(kind="buy_in") & Q(period="")),
                name="player_limit_kind_period_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_ref} {self.currency} {self.kind} {self.period or 'per buy-in'}: {self.value}"


class SelfExclusion(models.Model):
    """A self-exclusion or time-out of an owner (every currency). Rows are only ever added: a new
    one can extend the exclusion, nothing shortens or lifts it (the latest ``ends_at`` applies)."""

    class Kind(models.TextChoices):
        SELF_EXCLUSION = "self_exclusion", "self-exclusion"
        TIME_OUT = "time_out", "time-out"

    owner_ref = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    actor = models.CharField(max_length=128, help_text="Who asked: API client or admin user.")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="self_exclusion_ends_after_start"),
            models.CheckConstraint(
                condition=Q(kind__in=["self_exclusion", "time_out"]), name="self_exclusion_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["owner_ref", "ends_at"], name="self_exclusion_owner_ends")]

    def __str__(self) -> str:
        return f"{self.owner_ref} {self.kind} until {self.ends_at:%Y-%m-%dT%H:%M:%SZ}"


class ProtectionEvent(models.Model):
    """The audit trail of player protection: who changed which limit or started which exclusion,
    when, from what to what. Written in the same transaction as the change."""

    class Action(models.TextChoices):
        LIMIT_SET = "limit_set", "limit in force at once (new or lower)"
        LIMIT_INCREASE_PENDING = "limit_increase_pending", "higher limit pending its cooling-off"
        LIMIT_REMOVAL_PENDING = "limit_removal_pending", "removal pending its cooling-off"
        LIMIT_PENDING_CANCELLED = "limit_pending_cancelled", "pending change cancelled"
        EXCLUSION_STARTED = "exclusion_started", "self-exclusion or time-out started"

    owner_ref = models.CharField(max_length=128)
    currency = models.CharField(max_length=3, blank=True, default="")
    action = models.CharField(max_length=24, choices=Action.choices)
    kind = models.CharField(max_length=16, help_text="Limit kind, or exclusion kind.")
    period = models.CharField(max_length=3, blank=True, default="")
    old_value = models.BigIntegerField(null=True, blank=True)
    new_value = models.BigIntegerField(null=True, blank=True)
    effective_at = models.DateTimeField(help_text="When the change applies (an exclusion: when it ends).")
    actor = models.CharField(max_length=128)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["owner_ref", "created_at"], name="protection_event_owner_created")]

    def __str__(self) -> str:
        return f"{self.owner_ref} {self.action} {self.kind} {self.period}".strip()


class AdjustmentProposal(models.Model):
    """A manual adjustment above the four-eyes threshold, waiting for a second staff member.

    Made and decided only by accounts/adjustments.py. On approval it posts through account_adjust,
    keyed by this row's id, so it posts at most once; both names and the reason go on the ledger
    transaction. The database holds the rules a decision must keep: the approver is never the
    proposer, and each status carries exactly the fields it implies.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="adjustment_proposals")
    amount = models.BigIntegerField(help_text="Signed minor units: positive credits the wallet.")
    currency = models.CharField(max_length=3)
    reason = models.TextField()
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The proposal form's one-time nonce: the same form submitted twice proposes once.
    request_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="")
    transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        permissions = [("approve_adjustment", "Can approve or reject another staff member's adjustment proposal")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected", "expired"]),
                name="adjustment_proposal_status_valid",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="adjustment_proposal_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("proposed_at")), name="adjustment_proposal_expires_after_proposed"
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                name="adjustment_proposal_four_eyes",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="pending", decided_by__isnull=True, decided_at__isnull=True, transaction__isnull=True)
                    | Q(
                        status="approved", decided_by__isnull=False, decided_at__isnull=False, transaction__isnull=False
                    )
                    | Q(status="rejected", decided_by__isnull=False, decided_at__isnull=False, transaction__isnull=True)
                    | Q(status="expired", decided_by__isnull=True, decided_at__isnull=False, transaction__isnull=True)
                ),
                name="adjustment_proposal_status_fields",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="adjustment_proposal_due")]

    def __str__(self) -> str:
        return f"proposal #{self.pk}: {self.amount:+d} {self.currency} on account #{self.account_id} ({self.status})"
