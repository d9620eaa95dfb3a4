"""Finance's view of the ledger: browse and search, export a period as CSV (``ledger.export_ledger``).
Strictly read-only.

Nothing here writes: the ledger changes only through ledger.services, and an admin form that saved
a transaction or an entry would bypass the chain, the locks and the double-entry check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from balance_project.errors import ApplicationError
from ledger.chain import format_timestamp
from ledger.models import Entry, IntegrityRun, JournalRecord, JournalSeal, Transaction
from ledger.reports import ledger_export_csv_lines, report_moment_parse, report_period_check


class ReadOnlyAdmin(admin.ModelAdmin):
    """View permission only: no add, change or delete, for superusers too."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def numeric_term(term: str) -> int | None:
    """``123`` or ``#123`` as an id, else None (an id lookup with text would be a database error)."""
    digits = term.strip().removeprefix("#")
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None


class LedgerExportForm(forms.Form):
    start = forms.CharField(label="From (inclusive)", help_text="YYYY-MM-DD (midnight UTC) or ISO 8601")
    end = forms.CharField(label="To (exclusive)", help_text="YYYY-MM-DD (midnight UTC) or ISO 8601")
    currency = forms.CharField(required=False, max_length=3, help_text="Optional, e.g. EUR")

    def clean(self):
        super().clean()
        data = self.cleaned_data
        try:
            data["start"] = report_moment_parse(data.get("start"), field="from")
            data["end"] = report_moment_parse(data.get("end"), field="to")
            report_period_check(start=data["start"], end=data["end"])
        except ApplicationError as refusal:
            raise forms.ValidationError(refusal.message) from refusal
        data["currency"] = (data.get("currency") or "").strip().upper() or None
        return data


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object


class LedgerExportMixin(_ModelAdmin):
    """An ``export/`` page on a ledger changelist: a period form whose GET streams the CSV."""

    change_list_template = "admin/ledger/change_list_export.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        export = path("export/", self.admin_site.admin_view(self.export_view), name="{}_{}_export".format(*info))
        return [export, *super().get_urls()]

    def has_export_permission(self, request) -> bool:
        # Its own permission: browsing entries (support reads a player's history) is not taking the
        # whole ledger of a period away.
        return self.has_view_permission(request) and request.user.has_perm("ledger.export_ledger")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_export": self.has_export_permission(request)}
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        if not self.has_export_permission(request):
            raise PermissionDenied
        form = LedgerExportForm(request.GET or None)
        if form.is_valid():
            start, end, currency = form.cleaned_data["start"], form.cleaned_data["end"], form.cleaned_data["currency"]
            try:
                lines = ledger_export_csv_lines(start=start, end=end, currency=currency)
            except ApplicationError as refusal:
                form.add_error("currency" if refusal.details.get("field") == "currency" else None, refusal.message)
            else:
                response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
                name = f"ledger_{format_timestamp(start)}_{format_timestamp(end)}{'_' + currency if currency else ''}"
                response["Content-Disposition"] = f'attachment; filename="{name.replace(":", "")}.csv"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Export the ledger as CSV",
        }
        return TemplateResponse(request, "admin/ledger/export_form.html", context)


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ("account_link", "seq", "amount", "balance_after", "currency", "checksum")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="account")
    def account_link(self, entry: Entry):
        url = reverse("admin:accounts_account_change", args=[entry.account_id])
        return format_html('<a href="{}">{}</a>', url, entry.account)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account").order_by("account_id")


@admin.register(Transaction)
class TransactionAdmin(LedgerExportMixin, ReadOnlyAdmin):
    list_display = ("id", "kind", "currency", "actor", "hand_id", "created_at")
    list_filter = ("kind", "currency", ("created_at", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    search_fields = ("id",)  # shows the search box; the search itself is get_search_results
    search_help_text = "Transaction id, account id, owner ref, hand id or actor (exact)."
    fields = ("id", "kind", "currency", "actor", "metadata", "created_at")
    readonly_fields = fields
    inlines = (EntryInline,)
    show_full_result_count = False

    @admin.display(description="hand id")
    def hand_id(self, tx: Transaction) -> str:
        return str((tx.metadata or {}).get("hand_id", ""))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(entries__account__owner_ref=term) | Q(metadata__hand_id=term) | Q(actor=term)
        number = numeric_term(term)
        if number is not None:
            match |= Q(pk=number) | Q(entries__account_id=number)
        return queryset.filter(match), True


@admin.register(Entry)
class EntryAdmin(LedgerExportMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "transaction_link",
        "kind",
        "account_link",
        "seq",
        "amount",
        "balance_after",
        "currency",
        "created_at",
    )
    list_filter = ("transaction__kind", "currency", ("created_at", admin.DateFieldListFilter), "account__kind")
    list_select_related = ("transaction", "account")
    search_fields = ("id",)
    search_help_text = "Transaction id, account id, owner ref or hand id (exact)."
    fields = (
        "id",
        "transaction_link",
        "kind",
        "account_link",
        "seq",
        "amount",
        "balance_after",
        "currency",
        "created_at",
        "checksum",
        "metadata",
    )
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="transaction", ordering="transaction_id")
    def transaction_link(self, entry: Entry):
        url = reverse("admin:ledger_transaction_change", args=[entry.transaction_id])
        return format_html('<a href="{}">tx#{}</a>', url, entry.transaction_id)

    @admin.display(description="kind")
    def kind(self, entry: Entry) -> str:
        return entry.transaction.kind

    @admin.display(description="account", ordering="account_id")
    def account_link(self, entry: Entry):
        url = reverse("admin:accounts_account_change", args=[entry.account_id])
        return format_html('<a href="{}">{}</a>', url, entry.account)

    @admin.display(description="transaction metadata")
    def metadata(self, entry: Entry):
        return entry.transaction.metadata

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(account__owner_ref=term) | Q(transaction__metadata__hand_id=term)
        number = numeric_term(term)
        if number is not None:
            match |= Q(transaction_id=number) | Q(account_id=number)
        return queryset.filter(match), False


# The journal and its seals (ledger/journal.py, ledger/sealing.py): what the verifier holds the books to.
@admin.register(JournalSeal)
class JournalSealAdmin(ReadOnlyAdmin):
    list_display = ("id", "first_position", "last_position", "sealed_at", "head")
    list_filter = (("sealed_at", admin.DateFieldListFilter),)
    fields = ("id", "first_position", "last_position", "prev_head", "head", "horizon", "totals", "sealed_at", "mac")
    readonly_fields = fields


@admin.register(JournalRecord)
class JournalRecordAdmin(ReadOnlyAdmin):
    list_display = ("id", "operation", "scope", "key", "is_error", "created_at")
    list_filter = ("operation", "is_error", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=key", "=scope")
    fields = (
        "id",
        "txid",
        "operation",
        "scope",
        "key",
        "request_hash",
        "is_error",
        "response",
        "rows",
        "created_at",
        "mac",
    )
    readonly_fields = fields


# The integrity job's run history (ledger.integrity).
@admin.register(IntegrityRun)
class IntegrityRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "ok", "problem_count", "accounts_checked", "entries_checked", "finished_at")
    list_filter = ("kind", "ok", ("finished_at", admin.DateFieldListFilter))
    readonly_fields = [field.name for field in IntegrityRun._meta.fields]
