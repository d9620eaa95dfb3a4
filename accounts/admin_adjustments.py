"""Four-eyes adjustment proposals in the admin: list them, approve or reject one (accounts/adjustments.py).

A thin adapter: the rules (who may decide, expiry, posting once) live in the service functions; this
turns a POST into one call, writes the admin LogEntry and says what happened.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.adjustments import MAX_NOTE_LENGTH, adjustment_approve, adjustment_reject
from accounts.models import AdjustmentProposal
from balance_project.errors import ApplicationError
from ledger.admin import ReadOnlyAdmin


class RejectionForm(forms.Form):
    note = forms.CharField(max_length=MAX_NOTE_LENGTH, widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(AdjustmentProposal)
class AdjustmentProposalAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account_link",
        "amount",
        "currency",
        "status_now",
        "proposed_by",
        "proposed_at",
        "expires_at",
        "decided_by",
        "transaction_link",
    )
    list_filter = ("status", "currency")
    list_select_related = ("account", "proposed_by", "decided_by")
    ordering = ("-pk",)
    fields = (
        "id",
        "account_link",
        "amount",
        "currency",
        "reason",
        "status_now",
        "proposed_by",
        "proposed_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "transaction_link",
    )
    readonly_fields = fields
    change_form_template = "admin/accounts/adjustmentproposal/change_form.html"
    show_full_result_count = False

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("accounts.approve_adjustment")

    @admin.display(description="status")
    def status_now(self, proposal: AdjustmentProposal) -> str:
        # The periodic job marks overdue proposals expired; until it has run, say so here.
        if proposal.status == AdjustmentProposal.Status.PENDING and proposal.expires_at <= timezone.now():
            return "pending (expired, cannot be approved)"
        return proposal.status

    @admin.display(description="account")
    def account_link(self, proposal: AdjustmentProposal):
        url = reverse("admin:accounts_account_change", args=[proposal.account_id])
        return format_html('<a href="{}">{}</a>', url, proposal.account)

    @admin.display(description="transaction")
    def transaction_link(self, proposal: AdjustmentProposal):
        if proposal.transaction_id is None:
            return "-"
        url = reverse("admin:ledger_transaction_change", args=[proposal.transaction_id])
        return format_html('<a href="{}">tx#{}</a>', url, proposal.transaction_id)

    def render_change_form(self, request, context, *args, **kwargs):
        proposal = context.get("original")
        context["can_decide"] = (
            proposal is not None
            and self.has_approve_permission(request)
            and proposal.status == AdjustmentProposal.Status.PENDING
            and proposal.proposed_by_id != request.user.pk
        )
        context["rejection_form"] = RejectionForm()
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self):
        decide = [
            path(
                "<int:proposal_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="accounts_adjustmentproposal_approve",
            ),
            path(
                "<int:proposal_id>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="accounts_adjustmentproposal_reject",
            ),
        ]
        return [*decide, *super().get_urls()]

    def approve_view(self, request, proposal_id: int):
        proposal = self._decidable(request, proposal_id)
        if request.method == "POST":
            try:
                result = adjustment_approve(proposal_id=proposal.pk, approver=request.user)
            except ApplicationError as refusal:
                self.message_user(request, f"Not approved ({refusal.code}): {refusal.message}", messages.ERROR)
            else:
                tx = result["transaction"]["id"]
                self.log_change(request, proposal, f"Approved; posted transaction {tx}.")
                self.message_user(
                    request,
                    f"Approved proposal #{proposal.pk}: {proposal.amount:+d} {proposal.currency} posted "
                    f"(transaction {tx}); balance now {result['account']['balance']}.",
                    messages.SUCCESS,
                )
        return HttpResponseRedirect(reverse("admin:accounts_adjustmentproposal_change", args=[proposal.pk]))

    def reject_view(self, request, proposal_id: int):
        proposal = self._decidable(request, proposal_id)
        if request.method == "POST":
            form = RejectionForm(request.POST)
            if not form.is_valid():
                self.message_user(request, "A note saying why is required to reject.", messages.ERROR)
            else:
                try:
                    adjustment_reject(proposal_id=proposal.pk, rejecter=request.user, note=form.cleaned_data["note"])
                except ApplicationError as refusal:
                    self.message_user(request, f"Not rejected ({refusal.code}): {refusal.message}", messages.ERROR)
                else:
                    self.log_change(request, proposal, f"Rejected: {form.cleaned_data['note']}")
                    self.message_user(request, f"Rejected proposal #{proposal.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:accounts_adjustmentproposal_change", args=[proposal.pk]))

    def _decidable(self, request, proposal_id: int) -> AdjustmentProposal:
        if not self.has_approve_permission(request):
            raise PermissionDenied
        proposal = AdjustmentProposal.objects.filter(pk=proposal_id).first()
        if proposal is None:
            raise Http404(f"adjustment proposal {proposal_id} does not exist")
        return proposal
