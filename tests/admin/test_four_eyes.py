"""Four-eyes adjustments through the admin: above the threshold an adjustment is a proposal that a
second staff member approves (it posts once) or rejects; the proposer cannot decide; proposals expire."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.adjustments import adjustment_proposals_expire
from accounts.models import Account, AdjustmentProposal
from ledger.models import Transaction

from .conftest import form_token, login

pytestmark = pytest.mark.django_db

THRESHOLD = 1000


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.ADJUSTMENT_FOUR_EYES_ABOVE = THRESHOLD
    settings.ADJUSTMENT_FOUR_EYES_ABOVE_BY_CURRENCY = {"JPY": 50}


def staff_member(username: str, *groups: str, superuser: bool = False) -> User:
    user = User(username=username, is_staff=True, is_superuser=superuser)
    user.set_unusable_password()
    user.save()
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def sam() -> User:
    """Support: proposes."""
    return staff_member("sam", "support")


@pytest.fixture
def vera() -> User:
    """A supervisor: approves."""
    return staff_member("vera", "supervisor")


def adjust(client, account_id: int, amount: str, reason: str = "chargeback reversal, ticket 7"):
    url = f"/admin/accounts/account/{account_id}/adjust/"
    token = form_token(client.get(url).content.decode())
    return client.post(url, {"amount": amount, "reason": reason, "token": token}), token


def approve(client, proposal: AdjustmentProposal):
    return client.post(f"/admin/accounts/adjustmentproposal/{proposal.pk}/approve/", follow=True)


def reject(client, proposal: AdjustmentProposal, note: str = "no ticket for this"):
    return client.post(f"/admin/accounts/adjustmentproposal/{proposal.pk}/reject/", {"note": note}, follow=True)


def adjustments(account_id: int):
    return Transaction.objects.filter(kind="adjustment", entries__account_id=account_id)


def balance(account_id: int) -> int:
    return Account.objects.get(pk=account_id).balance


def page_messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_at_the_threshold_it_posts_and_one_unit_over_it_is_a_proposal(sam, wallet):
    alice = wallet("alice", funded=5000)
    client = login(sam)
    response, _ = adjust(client, alice, str(-THRESHOLD))
    assert response.status_code == 302 and balance(alice) == 4000 and adjustments(alice).count() == 1
    response, _ = adjust(client, alice, str(THRESHOLD + 1))
    proposal = AdjustmentProposal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/accounts/adjustmentproposal/{proposal.pk}/change/"
    assert (proposal.status, proposal.amount, proposal.proposed_by, proposal.account_id) == (
        "pending",
        THRESHOLD + 1,
        sam,
        alice,
    )
    assert balance(alice) == 4000 and adjustments(alice).count() == 1  # nothing moved


def test_the_threshold_can_be_set_per_currency(sam, wallet):
    yen = wallet("alice", currency="JPY")
    adjust(login(sam), yen, "51")
    assert AdjustmentProposal.objects.get().currency == "JPY" and balance(yen) == 0


def test_a_double_submitted_proposal_form_proposes_once(sam, wallet):
    alice = wallet("alice")
    client = login(sam)
    url = f"/admin/accounts/account/{alice}/adjust/"
    token = form_token(client.get(url).content.decode())
    form = {"amount": "5000", "reason": "goodwill", "token": token}
    assert client.post(url, form).status_code == client.post(url, form).status_code == 302
    assert AdjustmentProposal.objects.count() == 1


def test_the_proposer_cannot_approve_even_with_the_permission(wallet):
    boss = staff_member("boss", "support", "supervisor")
    alice = wallet("alice")
    client = login(boss)
    adjust(client, alice, "5000")
    proposal = AdjustmentProposal.objects.get()
    page = client.get(f"/admin/accounts/adjustmentproposal/{proposal.pk}/change/").content.decode()
    assert "Approve and post" not in page
    response = approve(client, proposal)
    assert "second staff member" in page_messages(response)
    response = reject(client, proposal)
    proposal.refresh_from_db()
    assert proposal.status == "pending" and proposal.decided_by is None
    assert balance(alice) == 0 and not adjustments(alice).exists()


def test_a_second_staff_member_approves_and_it_posts_with_both_names(sam, vera, wallet):
    alice = wallet("alice", funded=100)
    adjust(login(sam), alice, "2500", reason="missed payout, hand 991")
    proposal = AdjustmentProposal.objects.get()
    client = login(vera)
    assert (
        "Approve and post" in client.get(f"/admin/accounts/adjustmentproposal/{proposal.pk}/change/").content.decode()
    )
    response = approve(client, proposal)
    assert "Approved proposal" in page_messages(response)
    proposal.refresh_from_db()
    tx = adjustments(alice).get()
    assert (proposal.status, proposal.decided_by, proposal.transaction_id) == ("approved", vera, tx.pk)
    assert balance(alice) == 2600
    assert tx.actor == "vera"
    assert tx.metadata["actor"] == "vera"
    assert "missed payout, hand 991" in tx.metadata["reason"]
    assert (tx.metadata["proposal_id"], tx.metadata["proposed_by"], tx.metadata["approved_by"]) == (
        proposal.pk,
        "sam",
        "vera",
    )
    assert sorted(tx.entries.values_list("amount", flat=True)) == [-2500, 2500]


def test_approval_submitted_twice_posts_exactly_once(sam, vera, wallet):
    alice = wallet("alice")
    adjust(login(sam), alice, "3000")
    proposal = AdjustmentProposal.objects.get()
    client, other_tab = login(vera), login(vera)
    first, second = approve(client, proposal), approve(other_tab, proposal)
    assert "Approved proposal" in page_messages(first)
    assert "already approved" in page_messages(second)
    assert balance(alice) == 3000 and adjustments(alice).count() == 1


def test_reject_moves_nothing_and_a_rejected_proposal_cannot_be_approved(sam, vera, wallet):
    alice = wallet("alice", funded=10)
    adjust(login(sam), alice, "4000")
    proposal = AdjustmentProposal.objects.get()
    client = login(vera)
    assert "A note saying why" in page_messages(reject(client, proposal, note="  "))
    assert "Rejected proposal" in page_messages(reject(client, proposal, note="duplicate of #12"))
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by, proposal.decision_note) == ("rejected", vera, "duplicate of #12")
    assert "already rejected" in page_messages(approve(client, proposal))
    assert balance(alice) == 10 and not adjustments(alice).exists()


def test_an_expired_proposal_cannot_be_approved_and_is_marked_expired(sam, vera, wallet, settings):
    alice = wallet("alice")
    adjust(login(sam), alice, "5000")
    proposal = AdjustmentProposal.objects.get()
    assert proposal.expires_at - proposal.proposed_at == timedelta(seconds=settings.ADJUSTMENT_PROPOSAL_TTL_SECONDS)
    AdjustmentProposal.objects.filter(pk=proposal.pk).update(
        proposed_at=timezone.now() - timedelta(hours=73), expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = approve(login(vera), proposal)
    assert "expired" in page_messages(response)
    proposal.refresh_from_db()
    assert proposal.status == "expired" and proposal.decided_by is None and proposal.decided_at is not None
    assert balance(alice) == 0 and not adjustments(alice).exists()


def test_the_periodic_job_expires_overdue_proposals_only(sam, wallet):
    from accounts.tasks import expire_adjustment_proposals

    alice = wallet("alice")
    client = login(sam)
    adjust(client, alice, "5000")
    adjust(client, alice, "6000")
    overdue, fresh = AdjustmentProposal.objects.order_by("pk")
    AdjustmentProposal.objects.filter(pk=overdue.pk).update(
        proposed_at=timezone.now() - timedelta(days=4), expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert expire_adjustment_proposals() == 1
    assert adjustment_proposals_expire() == 0
    overdue.refresh_from_db(), fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == ("expired", "pending")


def test_a_refused_posting_leaves_the_proposal_pending_and_a_later_approval_posts(sam, vera, wallet, key):
    from accounts.services import account_deposit

    alice = wallet("alice", funded=100)
    adjust(login(sam), alice, "-5000", reason="reverse a double credit")
    proposal = AdjustmentProposal.objects.get()
    client = login(vera)
    assert "insufficient_funds" in page_messages(approve(client, proposal))
    proposal.refresh_from_db()
    assert proposal.status == "pending" and balance(alice) == 100
    account_deposit(client="t", idempotency_key=key(), account_id=alice, amount=6000)
    assert "Approved proposal" in page_messages(approve(client, proposal))
    assert balance(alice) == 1100 and adjustments(alice).count() == 1


def test_deciding_needs_the_approve_permission(sam, wallet):
    alice = wallet("alice")
    adjust(login(sam), alice, "5000")
    proposal = AdjustmentProposal.objects.get()
    colleague = login(staff_member("sue", "support"))
    assert colleague.post(f"/admin/accounts/adjustmentproposal/{proposal.pk}/approve/").status_code == 403
    assert colleague.post(f"/admin/accounts/adjustmentproposal/{proposal.pk}/reject/", {"note": "x"}).status_code == 403
    finance = login(staff_member("fin", "finance"))
    assert finance.post(f"/admin/accounts/adjustmentproposal/{proposal.pk}/approve/").status_code == 403
    assert AdjustmentProposal.objects.get().status == "pending" and balance(alice) == 0


def test_proposals_of_seats_and_house_accounts_are_refused(sam):
    external = Account.objects.create(kind="system", system_code="suspense-test", currency="EUR")
    response, _ = adjust(login(sam), external.pk, "5000")
    assert response.status_code == 200 and "account_not_wallet" in response.content.decode()
    assert not AdjustmentProposal.objects.exists()


def test_the_database_refuses_an_approver_who_is_the_proposer(sam, vera, wallet):
    alice = wallet("alice")
    adjust(login(sam), alice, "5000")
    proposal = AdjustmentProposal.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        AdjustmentProposal.objects.filter(pk=proposal.pk).update(
            status="rejected", decided_by=sam, decided_at=timezone.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        AdjustmentProposal.objects.filter(pk=proposal.pk).update(status="approved", decided_by=vera)
    with pytest.raises(IntegrityError), transaction.atomic():
        AdjustmentProposal.objects.filter(pk=proposal.pk).update(status="done")


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_post_exactly_once(wallet):
    # Superusers, not groups: a transactional test may run after another has flushed the groups.
    proposer = staff_member("pat", superuser=True)
    approver = staff_member("quinn", superuser=True)
    alice = wallet("alice")
    adjust(login(proposer), alice, "7000")
    proposal = AdjustmentProposal.objects.get()
    clients = [login(approver) for _ in range(4)]
    start, statuses = threading.Barrier(len(clients)), []

    def submit(client):
        try:
            start.wait()
            # No follow: the test client's captured contexts (messages) mix across threads.
            statuses.append(client.post(f"/admin/accounts/adjustmentproposal/{proposal.pk}/approve/").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * len(clients)
    # The admin logs an approval only when the service approved: one of the four did.
    approvals = LogEntry.objects.filter(object_id=str(proposal.pk), change_message__startswith="Approved")
    assert approvals.count() == 1
    assert balance(alice) == 7000 and adjustments(alice).count() == 1
    assert AdjustmentProposal.objects.get().status == "approved"
