"""Four-eyes manual adjustments (NJ N.J.A.C. 13:69O-1.3: supervisor review of manual adjustments).

A staff member's manual adjustment whose size is above the threshold for its currency
(``ADJUSTMENT_FOUR_EYES_ABOVE``, per currency ``ADJUSTMENT_FOUR_EYES_ABOVE_BY_CURRENCY``) does not
post: it becomes an ``AdjustmentProposal``. A second staff member, never the proposer, approves or
rejects it before it expires (``ADJUSTMENT_PROPOSAL_TTL_SECONDS``). Only approval posts, through
``accounts.services.account_adjust`` keyed by the proposal's id, so a proposal posts at most once
whatever is submitted twice; the ledger transaction's metadata names the proposal, the proposer and
the approver (``approval``), and its actor is the approver. At or below the threshold the direct adjustment stays.

Each function here is the whole rule; the admin only adapts forms to them. Every decision is
recorded on the proposal row (who, when, note) in the same database transaction as its effect.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, AdjustmentProposal
from accounts.services import account_adjust, adjustment_amount_check, adjustment_reason_check
from balance_project.errors import ApplicationError
from balance_project.text import free_text_check

# The idempotency scope of every admin action (account_adjust's default).
ADMIN_SCOPE = "admin"
MAX_NOTE_LENGTH = 500


def adjustment_threshold(currency: str) -> int:
    """The largest size (minor units, either sign) that still posts without a second person."""
    return settings.ADJUSTMENT_FOUR_EYES_ABOVE_BY_CURRENCY.get(currency, settings.ADJUSTMENT_FOUR_EYES_ABOVE)


def adjustment_needs_approval(*, amount: int, currency: str) -> bool:
    return abs(amount) > adjustment_threshold(currency)


def adjustment_posting_key(proposal_id: int) -> str:
    """The idempotency key of a proposal's posting: one per proposal, so it posts at most once."""
    return f"adjustment-proposal:{proposal_id}"


def adjustment_propose(
    *, account_id: int, amount: Any, reason: Any, proposer: Any, request_key: str, now: datetime | None = None
) -> AdjustmentProposal:
    """Record a proposal to adjust a wallet by ``amount``; nothing moves yet.

    ``request_key`` (the form's one-time nonce) makes it idempotent: the same key again returns the
    same proposal, and the same key with a different request is ``idempotency_conflict``. Refused
    with the code account_adjust would give for an amount, a missing reason, an unknown account, a
    seat or house account, or a closed wallet, so a proposal that can never post is never made.
    """
    amount = adjustment_amount_check(amount)
    reason = adjustment_reason_check(reason)
    now = now or timezone.now()
    existing = AdjustmentProposal.objects.filter(request_key=request_key).first()
    if existing is not None:
        return _same_proposal(existing, account_id=account_id, amount=amount, reason=reason, proposer=proposer)
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise ApplicationError("account_not_found", f"account {account_id} does not exist", {"account_id": account_id})
    if account.kind != Account.Kind.USER:
        raise ApplicationError(
            "account_not_wallet", "only a player's wallet is adjusted by hand", {"account_id": account_id}
        )
    if account.status == Account.Status.CLOSED:
        raise ApplicationError("account_closed", "the wallet is closed", {"account_id": account_id})
    try:
        with transaction.atomic():
            return AdjustmentProposal.objects.create(
                account=account,
                amount=amount,
                currency=account.currency,
                reason=reason,
                proposed_by=proposer,
                proposed_at=now,
                expires_at=now + timedelta(seconds=settings.ADJUSTMENT_PROPOSAL_TTL_SECONDS),
                request_key=request_key,
            )
    except IntegrityError:
        # The same form submitted twice at once: the unique request_key let one through.
        existing = AdjustmentProposal.objects.filter(request_key=request_key).first()
        if existing is None:
            raise
        return _same_proposal(existing, account_id=account_id, amount=amount, reason=reason, proposer=proposer)


def adjustment_approve(*, proposal_id: int, approver: Any, now: datetime | None = None) -> dict[str, Any]:
    """Approve a pending proposal and post it; returns account_adjust's answer.

    Locks the proposal row (``SELECT ... FOR UPDATE``) for the whole decision, so two approvals at
    once decide one after the other: the second finds it approved and is refused (``invalid_state``).
    The posting is keyed by the proposal's id besides. Refused: the proposer approving
    (``permission_denied``), a proposal no longer pending or past its expiry (``invalid_state``; an
    overdue one is marked expired), and whatever account_adjust refuses (insufficient funds, a
    closed wallet), which leaves the proposal pending.
    """
    now = now or timezone.now()
    with transaction.atomic():
        proposal = _locked_pending(proposal_id, decider=approver, now=now)
        if proposal.status == AdjustmentProposal.Status.PENDING:
            proposer_name = proposal.proposed_by.get_username()
            approver_name = approver.get_username()
            result = account_adjust(
                actor=approver_name,
                idempotency_key=adjustment_posting_key(proposal.pk),
                account_id=proposal.account_id,
                amount=proposal.amount,
                reason=proposal.reason,
                scope=ADMIN_SCOPE,
                approval={"proposal_id": proposal.pk, "proposed_by": proposer_name, "approved_by": approver_name},
            )
            proposal.status = AdjustmentProposal.Status.APPROVED
            proposal.decided_by = approver
            proposal.decided_at = now
            proposal.transaction_id = result["transaction"]["id"]
            proposal.save(update_fields=["status", "decided_by", "decided_at", "transaction"])
            return result
    raise _expired(proposal)


def adjustment_reject(*, proposal_id: int, rejecter: Any, note: Any, now: datetime | None = None) -> AdjustmentProposal:
    """Reject a pending proposal with a note; nothing moves. The same refusals as approval."""
    note = free_text_check(note or "", field="note", max_length=MAX_NOTE_LENGTH, multiline=True)
    if not note:
        raise ApplicationError("invalid_request", "a rejection needs a note", {"field": "note"})
    now = now or timezone.now()
    with transaction.atomic():
        proposal = _locked_pending(proposal_id, decider=rejecter, now=now)
        if proposal.status == AdjustmentProposal.Status.PENDING:
            proposal.status = AdjustmentProposal.Status.REJECTED
            proposal.decided_by = rejecter
            proposal.decided_at = now
            proposal.decision_note = note
            proposal.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
            return proposal
    raise _expired(proposal)


def adjustment_proposals_expire(*, now: datetime | None = None) -> int:
    """Mark every pending proposal past its expiry as expired (the periodic job); returns how many.
    One UPDATE: a proposal being approved at this moment holds its row lock, and this waits for it."""
    now = now or timezone.now()
    due = AdjustmentProposal.objects.filter(status=AdjustmentProposal.Status.PENDING, expires_at__lte=now)
    return due.update(status=AdjustmentProposal.Status.EXPIRED, decided_at=now)


def _locked_pending(proposal_id: int, *, decider: Any, now: datetime) -> AdjustmentProposal:
    """The proposal, locked, if ``decider`` may decide it now; an overdue one comes back marked expired
    (saved, so the caller commits that before refusing)."""
    proposal = (
        AdjustmentProposal.objects.select_for_update().select_related("proposed_by").filter(pk=proposal_id).first()
    )
    if proposal is None:
        raise ApplicationError("not_found", f"adjustment proposal {proposal_id} does not exist", {"id": proposal_id})
    if proposal.proposed_by_id == decider.pk:
        raise ApplicationError(
            "permission_denied",
            "a proposal is decided by a second staff member, not by the one who proposed it",
            {"id": proposal.pk},
        )
    if proposal.status != AdjustmentProposal.Status.PENDING:
        raise ApplicationError(
            "invalid_state",
            f"the proposal is already {proposal.status}",
            {"id": proposal.pk, "status": proposal.status, "transaction_id": proposal.transaction_id},
        )
    if now >= proposal.expires_at:
        proposal.status = AdjustmentProposal.Status.EXPIRED
        proposal.decided_at = now
        proposal.save(update_fields=["status", "decided_at"])
    return proposal


def _expired(proposal: AdjustmentProposal) -> ApplicationError:
    return ApplicationError(
        "invalid_state",
        "the proposal expired before it was decided: propose it again if it is still needed",
        {"id": proposal.pk, "status": proposal.status},
    )


def _same_proposal(
    existing: AdjustmentProposal, *, account_id: int, amount: int, reason: str, proposer: Any
) -> AdjustmentProposal:
    if (existing.account_id, existing.amount, existing.reason, existing.proposed_by_id) != (
        account_id,
        amount,
        reason,
        proposer.pk,
    ):
        raise ApplicationError(
            "idempotency_conflict", "this form was already used for a different proposal", {"id": existing.pk}
        )
    return existing
