"""Tables, their seats and the hands settled at them.

A seat's chips live in its own ``accounts.Account`` (kind ``seat``), so every chip movement is a
ledger posting. ``Table.chips`` is kept in step with the sum of its seats under the table's row
lock, which makes "the table's chips equal the sum of its seats" a checkable invariant.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Table(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    table_id = models.CharField(max_length=64, unique=True, help_text="The poker service's table id.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    chips = models.BigIntegerField(default=0, help_text="Sum of the chips of its seats.")
    opened_by = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(chips__gte=0), name="table_chips_not_negative"),
            models.CheckConstraint(condition=Q(status__in=["open", "closed"]), name="table_status_valid"),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(closed_at__isnull=True))
                | (Q(status="closed") & Q(closed_at__isnull=False) & Q(chips=0)),
                name="table_closed_iff_closed_at_and_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"table {self.table_id} ({self.currency}, {self.status})"


class Seat(models.Model):
    """One player's place at one table. Leaving closes it for good; a later buy-in opens a new one."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        LEFT = "left"

    table = models.ForeignKey(Table, on_delete=models.PROTECT, related_name="seats")
    user_id = models.CharField(max_length=128)
    account = models.OneToOneField("accounts.Account", on_delete=models.PROTECT, related_name="seat")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    opened_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["table", "user_id"], condition=Q(status="active"), name="seat_one_active_per_table_user"
            ),
            models.CheckConstraint(condition=Q(status__in=["active", "left"]), name="seat_status_valid"),
            models.CheckConstraint(
                condition=(Q(status="active") & Q(left_at__isnull=True))
                | (Q(status="left") & Q(left_at__isnull=False)),
                name="seat_left_iff_left_at",
            ),
        ]

    def __str__(self) -> str:
        return f"seat #{self.pk} {self.user_id} at {self.table_id} ({self.status})"


class Hand(models.Model):
    """A settled hand: its figures' digest and the first answer, so a repeat gets that answer."""

    table = models.ForeignKey(Table, on_delete=models.PROTECT, related_name="hands")
    hand_id = models.CharField(max_length=128)
    figures_hash = models.CharField(max_length=64)
    rake = models.BigIntegerField(default=0)
    transaction = models.ForeignKey(
        "ledger.Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when every net was zero.",
    )
    response = models.JSONField()
    settled_by = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["table", "hand_id"], name="hand_unique_per_table"),
            models.CheckConstraint(condition=Q(rake__gte=0), name="hand_rake_not_negative"),
        ]

    def __str__(self) -> str:
        return f"hand {self.hand_id} at table #{self.table_id}"
