"""Player protection in the admin: limits, exclusions and their audit trail (read-only), the
operator's policy as configured, the daily finance reports to download, and a form for support to
start a self-exclusion or time-out a player asked for (by phone, by mail).

Nothing here decides anything: the exclusion form calls accounts/protection_services.py (which
checks, locks, writes and audits it with the staff member as actor), the reports stream from
ledger/liability_reports.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.models import PlayerLimit, ProtectionEvent, SelfExclusion
from accounts.protection import effective_value
from accounts.protection_services import self_exclusion_start
from balance_project.errors import ApplicationError
from ledger.admin import ReadOnlyAdmin
from ledger.liability_reports import REPORT_FORMATS, REPORTS, report_stream

_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def protection_policy() -> list[tuple[str, Any, str]]:
    """(setting, value, what it does) of every player-protection setting, as configured."""
    deposits = ", ".join(f"{code} {amount}" for code, amount in sorted(settings.MAX_SINGLE_DEPOSIT.items()))
    return [
        ("PLAYER_TRANSFERS_ENABLED", settings.PLAYER_TRANSFERS_ENABLED, "player-to-player transfers allowed"),
        ("MAX_SINGLE_DEPOSIT", deposits or "none", "largest single deposit per currency (minor units)"),
        (
            "LIMIT_INCREASE_COOLING_OFF_SECONDS",
            settings.LIMIT_INCREASE_COOLING_OFF_SECONDS,
            "a higher limit or a removal waits this long",
        ),
        ("TIME_OUT_DAYS", "{} to {}".format(*settings.TIME_OUT_DAYS), "lengths a time-out may have"),
        ("SELF_EXCLUSION_DAYS", "{} to {}".format(*settings.SELF_EXCLUSION_DAYS), "lengths a self-exclusion may have"),
    ]


class FinanceReportForm(forms.Form):
    report = forms.ChoiceField(choices=[(name, name) for name in sorted(REPORTS)])
    date = forms.CharField(help_text="The UTC day, YYYY-MM-DD")
    format = forms.ChoiceField(choices=[(name, name) for name in REPORT_FORMATS])
    currency = forms.CharField(required=False, max_length=3, help_text="Optional, e.g. EUR")


@admin.register(PlayerLimit)
class PlayerLimitAdmin(ReadOnlyAdmin):
    list_display = ("owner_ref", "currency", "kind", "period", "in_force", "pending_value", "pending_effective_at")
    list_filter = ("kind", "period", "currency")
    search_fields = ("=owner_ref",)
    ordering = ("owner_ref", "currency", "kind", "period")

    @admin.display(description="in force now")
    def in_force(self, limit: PlayerLimit) -> Any:
        value = effective_value(limit.value, limit.pending_value, limit.pending_effective_at, timezone.now())
        return "removed" if value is None else value


class ExclusionStartForm(forms.Form):
    owner_ref = forms.CharField(label="Player (owner ref)", max_length=128)
    kind = forms.ChoiceField(choices=SelfExclusion.Kind.choices)
    days = forms.IntegerField(
        min_value=1,
        help_text="time-out: {} to {} days; self-exclusion: {} to {} days. It starts at once and cannot be "
        "shortened or lifted.".format(*settings.TIME_OUT_DAYS, *settings.SELF_EXCLUSION_DAYS),
    )
    # One per form shown: submitting the same form twice starts one exclusion (the idempotency key).
    token = forms.CharField(widget=forms.HiddenInput)


@admin.register(SelfExclusion)
class SelfExclusionAdmin(ReadOnlyAdmin):
    list_display = ("owner_ref", "kind", "starts_at", "ends_at", "in_force", "actor")
    list_filter = ("kind",)
    search_fields = ("=owner_ref",)
    ordering = ("-starts_at",)
    change_list_template = "admin/accounts/selfexclusion_change_list.html"

    def get_urls(self):
        start = path("start/", self.admin_site.admin_view(self.start_view), name="accounts_selfexclusion_start")
        return [start, *super().get_urls()]

    def has_start_permission(self, request) -> bool:
        # Rows are never added through the model form (ReadOnlyAdmin): only through this service call.
        return request.user.has_perm("accounts.add_selfexclusion")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_start": self.has_start_permission(request)}
        return super().changelist_view(request, extra_context)

    def start_view(self, request):
        if not self.has_start_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ExclusionStartForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    result = self_exclusion_start(
                        client="admin",
                        idempotency_key=f"admin-exclusion-{data['token']}",
                        owner_ref=data["owner_ref"],
                        kind=data["kind"],
                        days=data["days"],
                        actor=request.user.get_username(),
                    )
                except ApplicationError as refusal:
                    field = refusal.details.get("field")
                    form.add_error(field if field in form.fields else None, refusal.message)
                else:
                    messages.success(request, f"{data['owner_ref']} is excluded until {result['excluded_until']}.")
                    return HttpResponseRedirect(reverse("admin:accounts_selfexclusion_changelist"))
        else:
            form = ExclusionStartForm(initial={"token": uuid.uuid4().hex})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Start a self-exclusion or time-out",
        }
        return TemplateResponse(request, "admin/accounts/protection_exclusion_form.html", context)

    @admin.display(boolean=True, description="in force")
    def in_force(self, exclusion: SelfExclusion) -> bool:
        return exclusion.ends_at > timezone.now()


@admin.register(ProtectionEvent)
class ProtectionEventAdmin(ReadOnlyAdmin):
    """The audit trail, with the finance reports and the operator's policy one click away."""

    list_display = ("created_at", "owner_ref", "currency", "action", "kind", "period", "old_value", "new_value",
                    "effective_at", "actor")  # fmt: skip
    list_filter = ("action", "kind", "currency")
    search_fields = ("=owner_ref", "=actor")
    ordering = ("-created_at", "-id")
    change_list_template = "admin/accounts/protection_event_change_list.html"

    def get_urls(self):
        reports = path(
            "reports/", self.admin_site.admin_view(self.reports_view), name="accounts_protectionevent_reports"
        )
        return [reports, *super().get_urls()]

    def has_report_permission(self, request) -> bool:
        # The finance reports are a period's money, as the ledger export is: the same permission.
        return request.user.has_perm("ledger.export_ledger")

    def reports_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        may_download = self.has_report_permission(request)
        form = FinanceReportForm(request.GET or None)
        if form.is_valid():
            if not may_download:
                raise PermissionDenied
            data = form.cleaned_data
            try:
                lines = report_stream(
                    report=data["report"], day=data["date"], fmt=data["format"], currency=data["currency"] or None
                )
            except ApplicationError as refusal:
                form.add_error(refusal.details.get("field") if refusal.details.get("field") in form.fields else None,
                               refusal.message)  # fmt: skip
            else:
                response = StreamingHttpResponse(lines, content_type=_CONTENT_TYPES[data["format"]])
                name = f"{data['report']}_{data['date']}.{data['format']}"
                response["Content-Disposition"] = f'attachment; filename="{name}"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "may_download": may_download,
            "policy": protection_policy(),
            "title": "Player protection: policy and finance reports",
        }
        return TemplateResponse(request, "admin/accounts/protection_reports.html", context)
