"""Support's view of accounts and API keys.

The admin never writes a money field: accounts are view-only here, and freeze, unfreeze and manual
adjustments are thin adapters over accounts.services, which lock the rows, post the balanced
transaction and record the actor and reason on it.
"""

from __future__ import annotations

import re
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.adjustments import adjustment_needs_approval, adjustment_propose, adjustment_threshold
from accounts.models import Account, AdjustmentProposal, ApiKey
from accounts.services import (
    account_adjust,
    account_freeze,
    account_unfreeze,
    adjustment_amount_check,
    adjustment_reason_check,
)
from balance_project.errors import ApplicationError
from ledger.admin import ReadOnlyAdmin, numeric_term
from ledger.chain import format_timestamp

# The idempotency scope of every admin action (account_adjust's default).
ADMIN_SCOPE = "admin"
RECENT_ENTRIES_SHOWN = 20
ADJUST_TOKEN_SALT = "accounts.admin.adjust"
ADJUST_TOKEN_MAX_AGE_SECONDS = 24 * 60 * 60
MAX_REASON_LENGTH = 500
_SIGNED_INTEGER_RE = re.compile(r"^[+-]?[0-9]+$")


class AdjustmentForm(forms.Form):
    amount = forms.CharField(
        label="Amount (minor units)",
        max_length=24,
        help_text="A signed whole number of minor units (cents): 250 credits 2.50, -250 debits it.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded on the ledger transaction, with your user name.",
    )
    token = forms.CharField(widget=forms.HiddenInput)

    def clean_amount(self) -> int:
        text = self.cleaned_data["amount"].strip()
        if not _SIGNED_INTEGER_RE.match(text):
            raise forms.ValidationError(
                "Enter a whole number of minor units, such as 250 or -250: no decimal point, "
                "no exponent, no currency sign."
            )
        # The service's own rule (non-zero, at most MAX_AMOUNT either way), shown on the form.
        try:
            return adjustment_amount_check(int(text))
        except ApplicationError as refusal:
            raise forms.ValidationError(refusal.message) from None

    def clean_reason(self) -> str:
        try:
            return adjustment_reason_check(self.cleaned_data["reason"])
        except ApplicationError as refusal:
            raise forms.ValidationError(refusal.message) from None


def adjust_token_issue(*, account_id: int, user_id: int) -> str:
    """A one-time form token: its nonce becomes the idempotency key, so submitting the same form twice
    moves money once. Signed and bound to the account and the user, so it cannot be reused elsewhere."""
    return signing.dumps({"a": account_id, "u": user_id, "n": uuid.uuid4().hex}, salt=ADJUST_TOKEN_SALT)


def adjust_token_key(token: str, *, account_id: int, user_id: int) -> str | None:
    """The idempotency key carried by ``token``, or None when it is forged, stale or for another form."""
    try:
        data = signing.loads(token, salt=ADJUST_TOKEN_SALT, max_age=ADJUST_TOKEN_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != account_id or data.get("u") != user_id:
        return None
    return f"admin-adjust:{data['n']}"


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "owner_ref",
        "system_code",
        "shard",
        "currency",
        "balance",
        "held",
        "available",
        "status",
    )
    list_filter = ("kind", "currency", "status")
    search_fields = ("owner_ref",)  # shows the search box; the search itself is get_search_results
    search_help_text = "Account id, owner ref or system code (exact)."
    fields = (
        "id",
        "kind",
        "owner_ref",
        "system_code",
        "shard",
        "currency",
        "balance",
        "held",
        "available",
        "status",
        "allow_negative",
        "version",
        "entry_seq",
        "chain_head",
        "created_at",
        "updated_at",
        "recent_entries",
    )
    readonly_fields = fields
    actions = ("freeze_selected", "unfreeze_selected", "adjust_selected")
    change_form_template = "admin/accounts/account/change_form.html"
    show_full_result_count = False

    # --- permissions --------------------------------------------------------------------------------
    def has_freeze_permission(self, request) -> bool:
        return request.user.has_perm("accounts.freeze_account")

    def has_adjust_permission(self, request) -> bool:
        return request.user.has_perm("accounts.adjust_balance")

    # --- display ------------------------------------------------------------------------------------
    @admin.display(description="available")
    def available(self, account: Account) -> int:
        return account.available

    @admin.display(description="recent entries")
    def recent_entries(self, account: Account):
        entries = list(account.entries.select_related("transaction").order_by("-seq")[:RECENT_ENTRIES_SHOWN])
        all_url = reverse("admin:ledger_entry_changelist") + f"?account__id__exact={account.pk}"
        link = format_html('<p><a href="{}">All {} entries of this account</a></p>', all_url, account.entry_seq)
        if not entries:
            return link
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>tx#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e.seq,
                    reverse("admin:ledger_transaction_change", args=[e.transaction_id]),
                    e.transaction_id,
                    e.transaction.kind,
                    e.amount,
                    e.balance_after,
                    format_timestamp(e.created_at),
                )
                for e in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>seq</th><th>transaction</th><th>kind</th><th>amount</th>"
            "<th>balance after</th><th>created (UTC)</th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            link,
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(owner_ref=term) | Q(system_code=term.lower())
        number = numeric_term(term)
        if number is not None:
            match |= Q(pk=number)
        return queryset.filter(match), False

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_adjust"] = self.has_adjust_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)

    # --- freeze / unfreeze --------------------------------------------------------------------------
    @admin.action(description="Freeze selected accounts", permissions=["freeze"])
    def freeze_selected(self, request, queryset):
        self._status_action(request, queryset, account_freeze, "froze")

    @admin.action(description="Unfreeze selected accounts", permissions=["freeze"])
    def unfreeze_selected(self, request, queryset):
        self._status_action(request, queryset, account_unfreeze, "unfroze")

    def _status_action(self, request, queryset, service, verb: str) -> None:
        done, refused = [], []
        for account in queryset.order_by("pk"):
            try:
                with transaction.atomic():
                    service(
                        client=ADMIN_SCOPE, idempotency_key=f"admin-status:{uuid.uuid4().hex}", account_id=account.pk
                    )
                    self.log_change(request, account, f"{verb.capitalize()} the account.")
            except ApplicationError as refusal:
                refused.append(f"#{account.pk}: {refusal.message}")
            else:
                done.append(f"#{account.pk}")
        if done:
            self.message_user(
                request, f"{verb.capitalize()} {len(done)} account(s): {', '.join(done)}.", messages.SUCCESS
            )
        if refused:
            self.message_user(request, "Refused: " + "; ".join(refused), messages.ERROR)

    # --- manual adjustment --------------------------------------------------------------------------
    @admin.action(description="Manual adjustment of the selected account", permissions=["adjust"])
    def adjust_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            self.message_user(request, "Select exactly one account to adjust.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:accounts_account_adjust", args=[ids[0]]))

    def get_urls(self):
        adjust = path(
            "<int:account_id>/adjust/", self.admin_site.admin_view(self.adjust_view), name="accounts_account_adjust"
        )
        return [adjust, *super().get_urls()]

    def adjust_view(self, request, account_id: int):
        """GET: the form with a fresh one-time token. POST: validate, then one account_adjust call
        keyed by the token, and the admin LogEntry in the same database transaction."""
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        account = Account.objects.filter(pk=account_id).first()
        if account is None:
            raise Http404(f"account {account_id} does not exist")
        fresh_token = {"token": adjust_token_issue(account_id=account.pk, user_id=request.user.pk)}
        if request.method != "POST":
            return self._adjust_page(request, account, AdjustmentForm(initial=fresh_token))

        form = AdjustmentForm(request.POST)
        if not form.is_valid():
            return self._adjust_page(request, account, form)
        key = adjust_token_key(form.cleaned_data["token"], account_id=account.pk, user_id=request.user.pk)
        if key is None:
            form = AdjustmentForm(initial=fresh_token | {k: request.POST.get(k, "") for k in ("amount", "reason")})
            return self._adjust_page(
                request,
                account,
                form,
                error="This form has expired or was not issued for this account: check it and submit again.",
            )
        amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
        if adjustment_needs_approval(amount=amount, currency=account.currency):
            return self._propose(request, account, form, key, fresh_token)
        try:
            with transaction.atomic():
                result = account_adjust(
                    actor=request.user.username,
                    idempotency_key=key,
                    account_id=account.pk,
                    amount=amount,
                    reason=reason,
                    scope=ADMIN_SCOPE,
                )
                self._log_adjustment_once(request, account, key, amount, reason, result)
        except ApplicationError as refusal:
            # A refusal is remembered under this token, so a corrected form needs a new one.
            form = AdjustmentForm(initial=fresh_token | {"amount": str(amount), "reason": reason})
            return self._adjust_page(request, account, form, error=f"Refused ({refusal.code}): {refusal.message}")
        tx = result["transaction"]
        self.message_user(
            request,
            f"Adjusted account #{account.pk} by {amount:+d} {account.currency} "
            f"(transaction {tx['id']}); balance now {result['account']['balance']}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[account.pk]))

    def _propose(self, request, account: Account, form: AdjustmentForm, key: str, fresh_token: dict):
        """Above the four-eyes threshold: a proposal (keyed by the form's token) instead of a posting."""
        amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
        try:
            with transaction.atomic():
                proposal = adjustment_propose(
                    account_id=account.pk, amount=amount, reason=reason, proposer=request.user, request_key=key
                )
                if not LogEntry.objects.filter(
                    content_type=ContentType.objects.get_for_model(AdjustmentProposal), object_id=str(proposal.pk)
                ).exists():
                    self.log_addition(request, proposal, f"Proposed {amount:+d} {account.currency}: {reason}")
        except ApplicationError as refusal:
            form = AdjustmentForm(initial=fresh_token | {"amount": str(amount), "reason": reason})
            return self._adjust_page(request, account, form, error=f"Refused ({refusal.code}): {refusal.message}")
        self.message_user(
            request,
            f"Adjustments above {adjustment_threshold(account.currency)} {account.currency} need a second staff "
            f"member: proposal #{proposal.pk} ({amount:+d}) waits for approval until "
            f"{format_timestamp(proposal.expires_at)}. Nothing has moved yet.",
            messages.WARNING,
        )
        if request.user.has_perm("accounts.view_adjustmentproposal"):
            return HttpResponseRedirect(reverse("admin:accounts_adjustmentproposal_change", args=[proposal.pk]))
        return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[account.pk]))

    def _log_adjustment_once(self, request, account: Account, key: str, amount: int, reason: str, result: dict) -> None:
        """Write the LogEntry unless this key's adjustment was already logged (a double submit gets the
        stored answer; the account row lock taken by the first makes the second see its LogEntry)."""
        already = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Account),
            object_id=str(account.pk),
            change_message__contains=key,
        ).exists()
        if not already:
            tx_id = result["transaction"]["id"]
            self.log_change(
                request,
                account,
                f"Manual adjustment {amount:+d} {account.currency}, transaction {tx_id} [{key}]: {reason}",
            )

    def _adjust_page(self, request, account: Account, form: AdjustmentForm, error: str = "") -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": account,
            "account": account,
            "form": form,
            "error": error,
            "four_eyes_above": adjustment_threshold(account.currency),
            "title": f"Manual adjustment of {account}",
        }
        return TemplateResponse(request, "admin/accounts/account/adjust.html", context)


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("is_active",)

    def clean_is_active(self) -> bool:
        active = self.cleaned_data["is_active"]
        if active and self.instance.pk and not ApiKey.objects.filter(pk=self.instance.pk, is_active=True).exists():
            raise forms.ValidationError("A revoked key stays revoked: create a new key with the command.")
        return active


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """List and revoke keys. The hash is never shown; keys are created by the management command."""

    form = ApiKeyForm
    list_display = ("id", "client", "prefix", "scopes", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active", "client")
    search_fields = ("=client", "=prefix")
    fields = ("client", "prefix", "scopes", "is_active", "created_at", "last_used_at")
    readonly_fields = ("client", "prefix", "scopes", "created_at", "last_used_at")
    actions = ("revoke_selected",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        # Only the flag: a full save would also write back a stale last_used_at.
        obj.save(update_fields=["is_active"])

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = []
        for key in queryset.filter(is_active=True).order_by("pk"):
            with transaction.atomic():
                ApiKey.objects.filter(pk=key.pk).update(is_active=False)
                self.log_change(request, key, "Revoked the key.")
            revoked.append(key.prefix)
        self.message_user(request, f"Revoked {len(revoked)} key(s).", messages.SUCCESS)


# Four-eyes proposals and player protection have their own admin modules; importing them
# registers them on the site.
from accounts import admin_adjustments, admin_protection  # noqa: E402, F401
