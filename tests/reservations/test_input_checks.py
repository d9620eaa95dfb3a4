"""What reservations.services accepts from a Python caller beyond what HTTP and gRPC send: digit
strings for ids and TTLs, None for a reason; and the sweep going on past a reservation it cannot
expire."""

import pytest
from django.db import DatabaseError

from balance_project.errors import ApplicationError
from reservations import services
from reservations.models import Reservation
from reservations.services import reservation_expire_overdue, reservation_release, reservation_reserve
from tests.reservations.test_services import overdue, reserve
from tests.tables.helpers import account, books_problems, new_key, new_player, open_table

pytestmark = pytest.mark.django_db


def test_a_ttl_and_a_reservation_id_may_be_digit_strings():
    table = open_table()
    user, wallet = new_player(funded=100)
    held = reservation_reserve(
        client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=40, ttl_seconds=" 60 "
    )["reservation"]
    released = reservation_release(
        client="poker", idempotency_key=new_key(), reservation_id=str(held["id"]), reason=None
    )["reservation"]
    assert (released["id"], released["status"]) == (held["id"], "released")
    assert account(wallet).held == 0


@pytest.mark.parametrize("reservation_id", [0, -1, 2**63, True, "12a", None])
def test_a_bad_reservation_id_is_invalid_request(reservation_id):
    with pytest.raises(ApplicationError) as refused:
        reservation_release(client="poker", idempotency_key=new_key(), reservation_id=reservation_id)
    assert (refused.value.code, refused.value.details["field"]) == ("invalid_request", "reservation_id")


@pytest.mark.parametrize(
    "reason", [17, "x" * 256, "a\x00b", "two\nlines", "tab\there", "\u202egnp.exe", "left\u2066to", "c1\x85"]
)
def test_a_bad_reason_is_invalid_request(reason):
    table = open_table()
    user, _ = new_player(funded=100)
    held = reserve(user, table, 10)
    with pytest.raises(ApplicationError) as refused:
        reservation_release(client="poker", idempotency_key=new_key(), reservation_id=held["id"], reason=reason)
    assert (refused.value.code, refused.value.details["field"]) == ("invalid_request", "reason")
    assert Reservation.objects.get(pk=held["id"]).status == "pending"


def test_a_reason_is_kept_in_nfc():
    table = open_table()
    user, _ = new_player(funded=100)
    held = reserve(user, table, 10)
    reservation_release(client="poker", idempotency_key=new_key(), reservation_id=held["id"], reason=" cafe\u0301 ")
    assert Reservation.objects.get(pk=held["id"]).end_reason == "caf\u00e9"


def test_the_sweep_goes_on_past_a_reservation_it_cannot_expire(monkeypatch, caplog):
    table = open_table()
    user, wallet = new_player(funded=100)
    stuck, late = reserve(user, table, 10), reserve(user, table, 20)
    overdue(stuck["id"])
    overdue(late["id"])
    expire_one = services.reservation_expire_one

    def failing_for_stuck(*, reservation_id, **kwargs):
        if reservation_id == stuck["id"]:
            raise DatabaseError("lock timeout")
        return expire_one(reservation_id=reservation_id, **kwargs)

    monkeypatch.setattr(services, "reservation_expire_one", failing_for_stuck)
    assert reservation_expire_overdue() == 1
    assert f"could not expire reservation {stuck['id']}" in caplog.text
    assert dict(Reservation.objects.values_list("pk", "status")) == {stuck["id"]: "pending", late["id"]: "expired"}
    assert account(wallet).held == 10
    assert books_problems() == []
