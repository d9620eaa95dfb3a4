"""Reservations: funds held on a wallet for a buy-in at one table, until committed, released or
expired. Every transition is also written as a ``ReservationEvent`` (who, when, why)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Reservation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        COMMITTED = "committed"
        RELEASED = "released"
        EXPIRED = "expired"

    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="reservations",
        help_text="The wallet the funds are held on.",
    )
    table = models.ForeignKey("tables.Table", on_delete=models.PROTECT, related_name="reservations")
    user_id = models.CharField(max_length=128)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Held while pending.")
    committed_amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    seat = models.ForeignKey("tables.Seat", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    transaction = models.ForeignKey(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.CharField(max_length=128)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=128, blank=True, default="")
    end_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("release_reservation", "Can release a pending reservation from the admin")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="reservation_amount_positive"),
            models.CheckConstraint(
                condition=Q(committed_amount__gte=0) & Q(committed_amount__lte=F("amount")),
                name="reservation_committed_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "committed", "released", "expired"]), name="reservation_status_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="committed")
                    & Q(committed_amount__gt=0)
                    & Q(transaction__isnull=False)
                    & Q(seat__isnull=False)
                )
                | (~Q(status="committed") & Q(committed_amount=0) & Q(transaction__isnull=True)),
                name="reservation_committed_iff_posted",
            ),
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(ended_at__isnull=True))
                | (~Q(status="pending") & Q(ended_at__isnull=False)),
                name="reservation_ended_iff_not_pending",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="reservation_status_expiry"),
            models.Index(fields=["ended_at"], name="reservation_ended_at"),
        ]

    def __str__(self) -> str:
        return f"reservation #{self.pk} {self.user_id} {self.amount} {self.currency} ({self.status})"

    @property
    def released_amount(self) -> int:
        return 0 if self.status == self.Status.PENDING else self.amount - self.committed_amount


class ReservationEvent(models.Model):
    """Audit trail, written in the same database transaction as the change it describes."""

    class Kind(models.TextChoices):
        RESERVED = "reserved"
        COMMITTED = "committed"
        RELEASED = "released"
        EXPIRED = "expired"

    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_status = models.CharField(max_length=10, blank=True, default="")
    to_status = models.CharField(max_length=10)
    amount = models.BigIntegerField(default=0, help_text="Held (reserved), moved (committed) or dropped.")
    actor = models.CharField(max_length=128)
    reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["reserved", "committed", "released", "expired"]),
                name="reservation_event_kind_valid",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="reservation_event_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["reservation", "created_at"], name="reservation_event_by_time")]

    def __str__(self) -> str:
        return f"{self.kind} reservation #{self.reservation_id} by {self.actor}"
