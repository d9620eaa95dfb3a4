"""Finance admin for the ledger: browse and search, strictly read-only, CSV export of a period."""

from __future__ import annotations

import pytest

from accounts.services import account_transfer
from ledger.models import Entry, JournalRecord, JournalSeal, Transaction
from ledger.sealing import journal_seal

pytestmark = pytest.mark.django_db

MODELS = {
    "transaction": Transaction,
    "entry": Entry,
    "journalrecord": JournalRecord,
    "journalseal": JournalSeal,
}


@pytest.fixture
def ledger(wallet, key, settings):
    settings.PLAYER_TRANSFERS_ENABLED = True  # the operator's switch (off by default) for this fixture
    alice, bob = wallet("alice", funded=1000), wallet("bob")
    transfer = account_transfer(
        client="t",
        idempotency_key=key(),
        from_account_id=alice,
        to_account_id=bob,
        amount=300,
        metadata={"hand_id": "hand-77", "table_id": "t1"},
    )
    journal_seal()
    return {"alice": alice, "bob": bob, "transfer": transfer["transaction"]["id"]}


@pytest.mark.parametrize("model", ["transaction", "entry", "journalrecord", "journalseal"])
def test_changelists_and_change_views_load(admin, ledger, model):
    assert admin.get(f"/admin/ledger/{model}/").status_code == 200
    obj = MODELS[model].objects.order_by("pk").first()
    assert admin.get(f"/admin/ledger/{model}/{obj.pk}/change/").status_code == 200


@pytest.mark.parametrize("model", ["transaction", "entry", "journalrecord", "journalseal"])
def test_add_change_and_delete_are_refused(admin, ledger, model):
    obj = MODELS[model].objects.order_by("pk").first()
    assert admin.get(f"/admin/ledger/{model}/add/").status_code == 403
    assert admin.post(f"/admin/ledger/{model}/add/", {"amount": "5"}).status_code == 403
    assert admin.post(f"/admin/ledger/{model}/{obj.pk}/change/", {"amount": "5", "kind": "deposit"}).status_code == 403
    assert admin.post(f"/admin/ledger/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin.post(
        f"/admin/ledger/{model}/", {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert Entry.objects.get(transaction_id=ledger["transfer"], account_id=ledger["bob"]).amount == 300


def test_transaction_search_by_id_account_owner_and_hand(admin, ledger):
    def found(term: str) -> set[int]:
        response = admin.get("/admin/ledger/transaction/", {"q": term})
        assert response.status_code == 200
        return {tx.pk for tx in response.context["cl"].result_list}

    transfer = ledger["transfer"]
    assert found("hand-77") == {transfer}
    assert found("bob") == {transfer}
    assert found(str(ledger["bob"])) >= {transfer}
    assert transfer in found(str(transfer))
    assert len(found("alice")) == 2  # her deposit and the transfer, each once
    assert found("nobody") == set()


def test_transaction_filters_and_date_hierarchy(admin, ledger):
    for query in ("kind__exact=transfer", "currency__exact=EUR", "created_at__year=2030"):
        assert admin.get(f"/admin/ledger/transaction/?{query}").status_code == 200
    response = admin.get("/admin/ledger/transaction/?kind__exact=transfer")
    assert {tx.pk for tx in response.context["cl"].result_list} == {ledger["transfer"]}


def test_entry_search_and_filters(admin, ledger):
    response = admin.get("/admin/ledger/entry/", {"q": "hand-77"})
    assert {e.account_id for e in response.context["cl"].result_list} == {ledger["alice"], ledger["bob"]}
    response = admin.get(f"/admin/ledger/entry/?account__id__exact={ledger['bob']}")
    assert {e.amount for e in response.context["cl"].result_list} == {300}
    for query in ("transaction__kind__exact=deposit", "currency__exact=EUR", "account__kind__exact=system"):
        assert admin.get(f"/admin/ledger/entry/?{query}").status_code == 200


def test_admin_export_streams_the_period_csv(admin, ledger):
    assert "Export ledger (CSV)" in admin.get("/admin/ledger/entry/").content.decode()
    form = admin.get("/admin/ledger/entry/export/")
    assert form.status_code == 200 and "Download CSV" in form.content.decode()
    response = admin.get("/admin/ledger/entry/export/", {"start": "2000-01-01", "end": "2100-01-01", "currency": "EUR"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("transaction_id,kind,created_at,account_id")
    assert len(lines) == 1 + Entry.objects.count()
    assert any(f"{ledger['transfer']},transfer," in line and ",300,300," in line for line in lines)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-12-01", "end": "2026-11-01"},
        {"start": "x", "end": "y"},
        {"start": "2026-11-01", "end": "2026-12-01", "currency": "e1"},
    ],
)
def test_admin_export_refuses_bad_periods_with_the_form(admin, params):
    response = admin.get("/admin/ledger/transaction/export/", params)
    assert response.status_code == 200 and not response.streaming
    assert "errorlist" in response.content.decode()


def test_admin_export_needs_its_own_permission_not_view_entry(staff):
    viewer = staff("ledger.view_entry", "ledger.view_transaction", username="history-reader")
    assert viewer.get("/admin/ledger/entry/").status_code == 200
    assert "Export ledger (CSV)" not in viewer.get("/admin/ledger/entry/").content.decode()
    for url in ("/admin/ledger/entry/export/", "/admin/ledger/transaction/export/"):
        assert viewer.get(url, {"start": "2000-01-01", "end": "2100-01-01"}).status_code == 403
    assert staff("accounts.view_account").get("/admin/ledger/entry/export/").status_code == 403
    exporter = staff("ledger.view_entry", "ledger.export_ledger", username="finance")
    assert "Export ledger (CSV)" in exporter.get("/admin/ledger/entry/").content.decode()
    response = exporter.get("/admin/ledger/entry/export/", {"start": "2000-01-01", "end": "2100-01-01"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_integrity_runs_are_read_only_when_the_model_exists(admin):
    from ledger import models as ledger_models

    if not hasattr(ledger_models, "IntegrityRun"):
        pytest.skip("the integrity job's model is not there yet")
    assert admin.get("/admin/ledger/integrityrun/").status_code == 200
    assert admin.get("/admin/ledger/integrityrun/add/").status_code == 403
