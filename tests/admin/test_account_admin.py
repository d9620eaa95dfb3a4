"""Support admin for accounts: pages load, money is never editable, freeze and unfreeze call services."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from accounts.keys import api_key_create
from accounts.models import Account, ApiKey
from accounts.services import account_deposit

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/account/"


def change_url(account_id: int) -> str:
    return f"{CHANGELIST}{account_id}/change/"


def test_changelist_shows_money_columns_and_filters(admin, wallet):
    wallet("alice", funded=1234)
    response = admin.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for column in ("column-balance", "column-held", "column-available", "column-status"):
        assert column in html
    assert "1234" in html
    for query in ("kind__exact=user", "currency__exact=EUR", "status__exact=active"):
        assert admin.get(f"{CHANGELIST}?{query}").status_code == 200


def test_search_by_id_owner_ref_and_system_code(admin, wallet):
    alice, bob = wallet("alice", funded=10), wallet("bob")
    external = Account.objects.get(kind="system", system_code="external")

    def found(term: str) -> set[int]:
        response = admin.get(CHANGELIST, {"q": term})
        assert response.status_code == 200
        return {a.pk for a in response.context["cl"].result_list}

    assert found("alice") == {alice}
    assert found(str(bob)) == {bob}
    assert found(f"#{bob}") == {bob}
    assert found("external") == {external.pk}
    assert found("no such thing") == set()
    assert found("99999999999999999999999") == set()  # too long for an id: no database error


def test_change_view_is_read_only_and_lists_recent_entries(admin, wallet, key):
    alice = wallet("alice", funded=500)
    account_deposit(client="t", idempotency_key=key(), account_id=alice, amount=70)
    response = admin.get(change_url(alice))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="balance"' not in html and 'name="held"' not in html and 'name="status"' not in html
    assert "recent entries" in html.lower()
    assert f"?account__id__exact={alice}" in html
    assert ">570<" in html  # balance after the second deposit
    assert admin.get(f"/admin/ledger/entry/?account__id__exact={alice}").status_code == 200


def test_money_fields_cannot_be_changed_by_post(admin, wallet):
    alice = wallet("alice", funded=500)
    before = Account.objects.get(pk=alice)
    response = admin.post(
        change_url(alice),
        {
            "balance": "999999",
            "held": "0",
            "status": "active",
            "kind": "user",
            "currency": "EUR",
            "allow_negative": "on",
        },
    )
    assert response.status_code == 403
    after = Account.objects.get(pk=alice)
    assert (after.balance, after.held, after.allow_negative, after.version) == (
        before.balance,
        before.held,
        before.allow_negative,
        before.version,
    )


def test_no_add_and_no_delete(admin, wallet):
    alice = wallet("alice")
    assert admin.get(f"{CHANGELIST}add/").status_code == 403
    assert admin.post(f"{CHANGELIST}add/", {"kind": "user", "currency": "EUR", "balance": "5"}).status_code == 403
    assert admin.post(f"{CHANGELIST}{alice}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in admin.get(CHANGELIST).content.decode()
    assert Account.objects.filter(pk=alice).exists()


def test_freeze_and_unfreeze_actions_call_the_services_and_log(admin, wallet):
    alice, bob = wallet("alice"), wallet("bob")
    response = admin.post(CHANGELIST, {"action": "freeze_selected", "_selected_action": [alice, bob]})
    assert response.status_code == 302
    assert set(Account.objects.filter(pk__in=[alice, bob]).values_list("status", flat=True)) == {"frozen"}
    assert LogEntry.objects.filter(object_id=str(alice), change_message__contains="Froze").count() == 1

    admin.post(CHANGELIST, {"action": "unfreeze_selected", "_selected_action": [alice]})
    assert Account.objects.get(pk=alice).status == "active"
    assert Account.objects.get(pk=bob).status == "frozen"


def test_freeze_needs_its_permission(staff, wallet):
    alice = wallet("alice")
    viewer = staff("accounts.view_account")
    response = viewer.post(CHANGELIST, {"action": "freeze_selected", "_selected_action": [alice]})
    assert response.status_code in (200, 302)
    assert Account.objects.get(pk=alice).status == "active"
    assert "freeze_selected" not in viewer.get(CHANGELIST).content.decode()

    freezer = staff("accounts.view_account", "accounts.freeze_account", username="lead")
    freezer.post(CHANGELIST, {"action": "freeze_selected", "_selected_action": [alice]})
    assert Account.objects.get(pk=alice).status == "frozen"


def test_freezing_a_closed_account_is_refused_with_a_message(admin, wallet):
    alice = wallet("alice")
    Account.objects.filter(pk=alice).update(status="closed")
    response = admin.post(CHANGELIST, {"action": "freeze_selected", "_selected_action": [alice]}, follow=True)
    assert "is closed" in response.content.decode()
    assert Account.objects.get(pk=alice).status == "closed"


# --- API keys --------------------------------------------------------------------------------------
def test_api_keys_list_without_hashes_and_revoke(admin):
    raw, record = api_key_create(client="cashier", scopes=["accounts:read"])
    changelist = admin.get("/admin/accounts/apikey/")
    assert changelist.status_code == 200 and "cashier" in changelist.content.decode()
    detail = admin.get(f"/admin/accounts/apikey/{record.pk}/change/")
    assert detail.status_code == 200
    for page in (changelist, detail):
        assert record.key_hash not in page.content.decode() and raw not in page.content.decode()
    assert admin.get("/admin/accounts/apikey/add/").status_code == 403

    admin.post("/admin/accounts/apikey/", {"action": "revoke_selected", "_selected_action": [record.pk]})
    assert ApiKey.objects.get(pk=record.pk).is_active is False
    # A revoked key stays revoked.
    response = admin.post(f"/admin/accounts/apikey/{record.pk}/change/", {"is_active": "on"})
    assert response.status_code == 200 and "stays revoked" in response.content.decode()
    assert ApiKey.objects.get(pk=record.pk).is_active is False


def test_api_key_revoke_through_the_change_form_touches_only_the_flag(admin):
    _, record = api_key_create(client="poker", scopes=["tables:write"])
    response = admin.post(f"/admin/accounts/apikey/{record.pk}/change/", {"client": "evil", "scopes": "[]"})
    assert response.status_code == 302
    record.refresh_from_db()
    assert (record.is_active, record.client, record.scopes) == (False, "poker", ["tables:write"])
