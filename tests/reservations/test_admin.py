import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from reservations.models import Reservation, ReservationEvent
from reservations.services import reservation_commit, reservation_reserve
from tables.services import hand_settle, table_buy_in
from tests.admin.conftest import login
from tests.tables.helpers import account, new_key, new_player, open_table

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:reservations_reservation_changelist"


@pytest.fixture
def admin_client(admin_user):
    """pytest-django's admin_client, also verified by a TOTP device, as the admin requires."""
    return login(admin_user)


def reserve(user, table, amount):
    return reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=amount)[
        "reservation"
    ]["id"]


@pytest.fixture
def stuck():
    table = open_table()
    user, wallet = new_player(funded=1000)
    pending = [reserve(user, table, 100), reserve(user, table, 200)]
    done = reserve(user, table, 300)
    reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=done, whole=True)
    return wallet, pending, done


def test_release_selected_asks_for_a_reason_then_releases_with_the_admin_as_actor(admin_client, admin_user, stuck):
    wallet, pending, done = stuck
    selected = {"action": "release_selected", "_selected_action": [*pending, done]}
    confirm = admin_client.post(reverse(CHANGELIST), selected)
    assert confirm.status_code == 200 and b"Release 2 reservations" in confirm.content
    assert account(wallet).held == 300  # nothing happens before the confirmation
    page = confirm.context["form"]["nonce"].value()
    body = {**selected, "confirm": "yes", "reason": "stuck after a poker-service crash", "nonce": page}
    done_response = admin_client.post(reverse(CHANGELIST), body)
    assert done_response.status_code == 302
    assert account(wallet).held == 0
    for reservation_id in pending:
        row = Reservation.objects.get(pk=reservation_id)
        assert (row.status, row.ended_by, row.end_reason) == (
            "released",
            admin_user.username,
            "stuck after a poker-service crash",
        )
        event = ReservationEvent.objects.get(reservation=row, kind="released")
        assert (event.actor, event.reason) == (admin_user.username, "stuck after a poker-service crash")
    assert Reservation.objects.get(pk=done).status == "committed"
    # The same confirmation submitted again releases nothing more and breaks nothing.
    assert admin_client.post(reverse(CHANGELIST), body).status_code == 302


def test_release_needs_a_reason(admin_client, stuck):
    wallet, pending, _ = stuck
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "release_selected", "_selected_action": pending, "confirm": "yes", "reason": "  ", "nonce": "n1"},
    )
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    assert account(wallet).held == 300


def test_staff_without_the_release_permission_does_not_get_the_action(stuck):
    wallet, pending, _ = stuck
    staff = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_reservation"))
    client = login(staff)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200 and b"release_selected" not in page.content
    client.post(
        reverse(CHANGELIST),
        {"action": "release_selected", "_selected_action": pending, "confirm": "yes", "reason": "x", "nonce": "n2"},
    )
    assert account(wallet).held == 300
    staff.user_permissions.add(Permission.objects.get(codename="release_reservation"))
    assert b"release_selected" in client.get(reverse(CHANGELIST)).content


def test_reservations_are_searchable_and_read_only(admin_client, stuck):
    _, pending, _ = stuck
    row = Reservation.objects.get(pk=pending[0])
    by_user = admin_client.get(reverse(CHANGELIST), {"q": row.user_id})
    assert by_user.status_code == 200 and by_user.context["cl"].result_count == 3
    by_id = admin_client.get(reverse(CHANGELIST), {"q": f"#{row.pk}"})
    assert row in list(by_id.context["cl"].result_list)
    detail = admin_client.get(reverse("admin:reservations_reservation_change", args=[row.pk]))
    assert detail.status_code == 200 and b"reserved" in detail.content
    assert admin_client.get(reverse("admin:reservations_reservation_add")).status_code == 403


def test_table_seat_and_hand_pages_are_read_only(admin_client):
    table = open_table()
    (a, _), (b, _) = new_player(funded=500), new_player(funded=500)
    for user in (a, b):
        table_buy_in(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)
    hand_settle(
        client="poker",
        idempotency_key=new_key(),
        table_id=table,
        hand_id="h1",
        contributions={a: 10},
        payouts={b: 9},
        rake=1,
    )
    from tables.models import Table

    pk = Table.objects.get(table_id=table).pk
    for name in ("tables_table", "tables_seat", "tables_hand"):
        assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403
    detail = admin_client.get(reverse("admin:tables_table_change", args=[pk]))
    assert detail.status_code == 200 and a.encode() in detail.content
    assert admin_client.post(reverse("admin:tables_table_change", args=[pk]), {"chips": 0}).status_code == 403
