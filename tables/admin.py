"""Read-only views of tables, seats and settled hands. Chips move only through tables.services."""

from __future__ import annotations

from django.contrib import admin

from ledger.admin import ReadOnlyAdmin
from tables.models import Hand, Seat, Table


class SeatInline(admin.TabularInline):
    model = Seat
    fields = ("id", "user_id", "account", "chips", "status", "opened_at", "left_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-status", "pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    @admin.display(description="chips")
    def chips(self, seat: Seat) -> int:
        return seat.account.balance

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Table)
class TableAdmin(ReadOnlyAdmin):
    list_display = ("table_id", "currency", "status", "chips", "created_at", "closed_at")
    list_filter = ("status", "currency")
    search_fields = ("table_id",)
    ordering = ("-pk",)
    inlines = [SeatInline]


@admin.register(Seat)
class SeatAdmin(ReadOnlyAdmin):
    list_display = ("id", "table", "user_id", "account", "chips", "status", "opened_at", "left_at")
    list_filter = ("status",)
    search_fields = ("user_id", "table__table_id")
    list_select_related = ("table", "account")
    ordering = ("-pk",)

    @admin.display(description="chips")
    def chips(self, seat: Seat) -> int:
        return seat.account.balance


@admin.register(Hand)
class HandAdmin(ReadOnlyAdmin):
    list_display = ("hand_id", "table", "rake", "transaction", "settled_by", "created_at")
    search_fields = ("hand_id", "table__table_id")
    list_select_related = ("table", "transaction")
    ordering = ("-pk",)
    exclude = ("response",)
