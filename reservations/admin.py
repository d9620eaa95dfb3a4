"""Support's view of reservations: find them, read their audit trail, release stuck ones.

The release action is a thin adapter over reservations.services.reservation_release: it locks the
rows, drops the hold and records the admin user and the reason, one reservation at a time.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from balance_project.errors import ApplicationError
from ledger.admin import ReadOnlyAdmin, numeric_term
from reservations.holds import MAX_REASON
from reservations.models import Reservation, ReservationEvent
from reservations.services import reservation_release

ADMIN_SCOPE = "admin"


class ReleaseForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded on each reservation, with your user name.",
    )
    # One idempotency key per confirmation page: submitting it twice releases once.
    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason


class ReservationEventInline(admin.TabularInline):
    model = ReservationEvent
    fields = ("created_at", "kind", "from_status", "to_status", "amount", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "pk")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user_id",
        "table",
        "amount",
        "committed_amount",
        "currency",
        "status",
        "expires_at",
        "ended_at",
        "ended_by",
    )
    list_filter = ("status", "currency")
    search_fields = ("user_id", "table__table_id")
    list_select_related = ("table",)
    ordering = ("-pk",)
    show_full_result_count = False
    inlines = [ReservationEventInline]
    actions = ["release_selected"]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        reservation_id = numeric_term(search_term)
        if reservation_id is not None:
            results |= queryset.filter(pk=reservation_id)
        return results, may_have_duplicates

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("reservations.release_reservation")

    @admin.action(description="Release selected pending reservations", permissions=["release"])
    def release_selected(self, request, queryset):
        queryset = queryset.select_related("table").order_by("pk")
        pending = [r for r in queryset if r.status == Reservation.Status.PENDING]
        skipped = [r for r in queryset if r.status != Reservation.Status.PENDING]
        form = ReleaseForm(
            request.POST if request.POST.get("confirm") == "yes" else None, initial={"nonce": uuid.uuid4().hex}
        )
        if form.is_bound and form.is_valid():
            self._release(request, pending, form.cleaned_data["reason"], form.cleaned_data["nonce"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Release pending reservations",
            "opts": self.opts,
            "queryset": queryset,
            "pending": pending,
            "skipped": skipped,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/reservations/reservation/release_confirm.html", context)

    def _release(self, request, pending, reason: str, nonce: str) -> None:
        actor = request.user.get_username()
        released, refused = [], []
        for reservation in pending:
            try:
                reservation_release(
                    client=ADMIN_SCOPE,
                    idempotency_key=f"admin-release:{nonce}:{reservation.pk}",
                    reservation_id=reservation.pk,
                    reason=reason,
                    actor=actor,
                )
                released.append(f"#{reservation.pk}")
            except ApplicationError as refusal:
                refused.append(f"#{reservation.pk} ({refusal.code})")
        if released:
            self.message_user(request, f"Released {', '.join(released)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not released: {', '.join(refused)}.", messages.WARNING)
