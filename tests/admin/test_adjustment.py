"""Manual adjustment: one-time token (a double submit moves money once), strict amounts, audit."""

from __future__ import annotations

import threading

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection

from accounts.models import Account
from ledger.models import Transaction

from .conftest import form_token, login

pytestmark = pytest.mark.django_db


def adjust_url(account_id: int) -> str:
    return f"/admin/accounts/account/{account_id}/adjust/"


def adjustments(account_id: int):
    return Transaction.objects.filter(kind="adjustment", entries__account_id=account_id)


def test_double_submit_moves_money_once_and_records_actor_and_reason(admin, superuser, wallet):
    alice = wallet("alice", funded=1000)
    token = form_token(admin.get(adjust_url(alice)).content.decode())
    form = {"amount": "-250", "reason": "duplicate deposit, ticket 42", "token": token}
    first = admin.post(adjust_url(alice), form)
    second = admin.post(adjust_url(alice), form)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == f"/admin/accounts/account/{alice}/change/"
    assert Account.objects.get(pk=alice).balance == 750
    tx = adjustments(alice).get()
    assert tx.actor == superuser.username
    assert tx.metadata == {"reason": "duplicate deposit, ticket 42", "actor": superuser.username}
    assert sorted(tx.entries.values_list("amount", flat=True)) == [-250, 250]
    log = LogEntry.objects.get(object_id=str(alice))
    assert log.user_id == superuser.pk and "-250 EUR" in log.change_message and "ticket 42" in log.change_message


def test_each_form_gets_a_new_token_so_two_forms_move_money_twice(admin, wallet):
    alice = wallet("alice")
    for _ in range(2):
        token = form_token(admin.get(adjust_url(alice)).content.decode())
        assert (
            admin.post(adjust_url(alice), {"amount": "+100", "reason": "goodwill", "token": token}).status_code == 302
        )
    assert Account.objects.get(pk=alice).balance == 200
    assert adjustments(alice).count() == 2


@pytest.mark.parametrize(
    "amount",
    [
        "10.5",
        "10.0",
        "1e3",
        "abc",
        "0",
        "-0",
        "",
        " ",
        "12,50",
        "€5",
        "99999999999999999999",
        "0x10",
        "1_000",
        "1000000000000001",
        "-1000000000000001",
    ],  # over MAX_AMOUNT (10^15) either way
)
def test_garbage_floats_and_zero_are_refused_without_moving_money(admin, wallet, amount):
    alice = wallet("alice", funded=1000)
    token = form_token(admin.get(adjust_url(alice)).content.decode())
    response = admin.post(adjust_url(alice), {"amount": amount, "reason": "test", "token": token})
    assert response.status_code == 200
    assert response.context["form"].errors["amount"]
    assert Account.objects.get(pk=alice).balance == 1000
    assert not adjustments(alice).exists() and not LogEntry.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", "tab\there", "\u202ehidden"])
def test_a_reason_is_required(admin, wallet, reason):
    alice = wallet("alice", funded=1000)
    token = form_token(admin.get(adjust_url(alice)).content.decode())
    response = admin.post(adjust_url(alice), {"amount": "5", "reason": reason, "token": token})
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    response = admin.post(adjust_url(alice), {"amount": "5", "token": token})
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    assert Account.objects.get(pk=alice).balance == 1000 and not adjustments(alice).exists()


def test_a_refusal_by_the_service_moves_nothing_and_issues_a_fresh_token(admin, wallet):
    alice = wallet("alice", funded=100)
    token = form_token(admin.get(adjust_url(alice)).content.decode())
    refused = admin.post(adjust_url(alice), {"amount": "-101", "reason": "chargeback", "token": token})
    assert refused.status_code == 200
    assert "insufficient_funds" in refused.content.decode()
    assert Account.objects.get(pk=alice).balance == 100 and not adjustments(alice).exists()
    retry_token = form_token(refused.content.decode())
    assert retry_token != token
    ok = admin.post(adjust_url(alice), {"amount": "-100", "reason": "chargeback", "token": retry_token})
    assert ok.status_code == 302 and Account.objects.get(pk=alice).balance == 0


def test_a_forged_or_foreign_token_is_refused(admin, wallet):
    alice, bob = wallet("alice"), wallet("bob")
    bobs_token = form_token(admin.get(adjust_url(bob)).content.decode())
    for token in ("forged", bobs_token):
        response = admin.post(adjust_url(alice), {"amount": "5", "reason": "x", "token": token})
        assert response.status_code == 200 and "expired" in response.content.decode()
    assert not Transaction.objects.filter(kind="adjustment").exists()


def test_adjustment_works_on_a_frozen_account(admin, wallet):
    alice = wallet("alice", funded=10)
    Account.objects.filter(pk=alice).update(status="frozen")
    token = form_token(admin.get(adjust_url(alice)).content.decode())
    assert admin.post(adjust_url(alice), {"amount": "-10", "reason": "fraud", "token": token}).status_code == 302
    assert Account.objects.get(pk=alice).balance == 0


def test_staff_without_the_permission_is_refused(staff, wallet):
    alice = wallet("alice", funded=1000)
    viewer = staff("accounts.view_account")
    assert viewer.get(adjust_url(alice)).status_code == 403
    assert viewer.post(adjust_url(alice), {"amount": "5", "reason": "x", "token": "t"}).status_code == 403
    viewer.post("/admin/accounts/account/", {"action": "adjust_selected", "_selected_action": [alice]})
    assert "Manual adjustment" not in viewer.get(f"/admin/accounts/account/{alice}/change/").content.decode()
    assert Account.objects.get(pk=alice).balance == 1000 and not adjustments(alice).exists()


def test_staff_with_the_permission_can_adjust_through_the_action(staff, wallet):
    alice = wallet("alice")
    agent = staff("accounts.view_account", "accounts.adjust_balance")
    redirect = agent.post("/admin/accounts/account/", {"action": "adjust_selected", "_selected_action": [alice]})
    assert redirect.status_code == 302 and redirect["Location"] == adjust_url(alice)
    token = form_token(agent.get(adjust_url(alice)).content.decode())
    assert agent.post(adjust_url(alice), {"amount": "42", "reason": "promo", "token": token}).status_code == 302
    assert Account.objects.get(pk=alice).balance == 42
    assert adjustments(alice).get().actor == "support"


def test_the_action_wants_exactly_one_account(admin, wallet):
    alice, bob = wallet("alice"), wallet("bob")
    response = admin.post(
        "/admin/accounts/account/", {"action": "adjust_selected", "_selected_action": [alice, bob]}, follow=True
    )
    assert "exactly one" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_moves_money_once(superuser, wallet):
    alice = wallet("alice", funded=1000)
    token = form_token(login(superuser).get(adjust_url(alice)).content.decode())
    form = {"amount": "-300", "reason": "double click", "token": token}
    clients = [login(superuser) for _ in range(4)]
    start, statuses = threading.Barrier(len(clients)), []

    def submit(client):
        try:
            start.wait()
            statuses.append(client.post(adjust_url(alice), form).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * len(clients)
    assert Account.objects.get(pk=alice).balance == 700
    assert adjustments(alice).count() == 1
    assert LogEntry.objects.filter(object_id=str(alice)).count() == 1


def test_a_reason_may_span_lines(admin, wallet):
    alice = wallet("alice", funded=1000)
    token = form_token(admin.get(adjust_url(alice)).content.decode())
    admin.post(adjust_url(alice), {"amount": "5", "reason": "chargeback\r\nticket 42", "token": token})
    assert adjustments(alice).get().metadata["reason"] == "chargeback\nticket 42"
