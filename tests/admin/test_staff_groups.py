"""The staff groups made by the data migration: exactly their permissions, and what each can do."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from accounts.models import Account

from .conftest import form_token, login

pytestmark = pytest.mark.django_db

SUPPORT = {
    "accounts.view_account",
    "accounts.freeze_account",
    "accounts.adjust_balance",
    "accounts.view_adjustmentproposal",
    "ledger.view_transaction",
    "ledger.view_entry",
    "ledger.view_journalrecord",
    "reservations.view_reservation",
    "reservations.view_reservationevent",
    "reservations.release_reservation",
    "tables.view_table",
    "tables.view_seat",
    "tables.view_hand",
    # 0007: player protection
    "accounts.view_playerlimit",
    "accounts.view_selfexclusion",
    "accounts.view_protectionevent",
    "accounts.add_selfexclusion",
}
FINANCE = {
    "accounts.view_account",
    "accounts.view_adjustmentproposal",
    "ledger.view_transaction",
    "ledger.view_entry",
    "ledger.export_ledger",
    "ledger.view_journalseal",
    "ledger.view_journalrecord",
    "ledger.view_integrityrun",
    "accounts.view_playerlimit",
    "accounts.view_selfexclusion",
    "accounts.view_protectionevent",
}
SUPERVISOR = {
    "accounts.view_account",
    "accounts.view_adjustmentproposal",
    "accounts.approve_adjustment",
    "ledger.view_transaction",
    "ledger.view_entry",
}
MONEY_AND_STATUS = {"accounts.freeze_account", "accounts.adjust_balance", "reservations.release_reservation"}


def group_perms(name: str) -> set[str]:
    perms = Group.objects.get(name=name).permissions.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in perms}


def member(group: str, username: str | None = None):
    user = User(username=username or f"{group}-1", is_staff=True)
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=group))
    return login(user)


def test_groups_have_exactly_their_permissions():
    assert group_perms("support") == SUPPORT
    assert group_perms("finance") == FINANCE
    assert group_perms("supervisor") == SUPERVISOR


def test_neither_support_nor_finance_has_both_duties():
    assert "ledger.export_ledger" not in group_perms("support")
    assert not MONEY_AND_STATUS & group_perms("finance")
    assert "accounts.approve_adjustment" not in group_perms("support") | group_perms("finance")
    for name in ("support", "finance", "supervisor"):
        perms = group_perms(name)
        # No raw model edits; add_selfexclusion gates the admin's form that starts one through the
        # service (accounts/admin_protection.py), as the player asked, and nothing can remove one.
        writes = {p for p in perms if p.split(".")[1].startswith(("add_", "change_", "delete_"))}
        assert writes <= {"accounts.add_selfexclusion"}, writes
        assert "accounts.view_apikey" not in perms


def test_support_freezes_and_reads_history_but_cannot_export(wallet):
    alice = wallet("alice", funded=10)
    support = member("support")
    assert support.get(f"/admin/accounts/account/{alice}/change/").status_code == 200
    assert support.get(f"/admin/ledger/entry/?account__id__exact={alice}").status_code == 200
    response = support.post("/admin/accounts/account/", {"action": "freeze_selected", "_selected_action": [alice]})
    assert response.status_code == 302 and Account.objects.get(pk=alice).status == "frozen"
    assert support.get(f"/admin/accounts/account/{alice}/adjust/").status_code == 200
    assert support.get("/admin/reservations/reservation/").status_code == 200
    export = {"start": "2000-01-01", "end": "2100-01-01"}
    assert support.get("/admin/ledger/entry/export/", export).status_code == 403
    assert support.get("/admin/ledger/transaction/export/", export).status_code == 403


def test_finance_exports_but_cannot_freeze_adjust_or_release(wallet):
    alice = wallet("alice", funded=10)
    finance = member("finance")
    response = finance.get("/admin/ledger/entry/export/", {"start": "2000-01-01", "end": "2100-01-01"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert finance.get("/admin/accounts/account/").status_code == 200
    finance.post("/admin/accounts/account/", {"action": "freeze_selected", "_selected_action": [alice]})
    assert Account.objects.get(pk=alice).status == "active"
    assert finance.get(f"/admin/accounts/account/{alice}/adjust/").status_code == 403
    token_page = login(User.objects.create(username="root2", is_staff=True, is_superuser=True))
    token = form_token(token_page.get(f"/admin/accounts/account/{alice}/adjust/").content.decode())
    posted = finance.post(f"/admin/accounts/account/{alice}/adjust/", {"amount": "5", "reason": "x", "token": token})
    assert posted.status_code == 403 and Account.objects.get(pk=alice).balance == 10
    assert finance.get("/admin/reservations/reservation/").status_code == 403
