from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import account_freeze
from reservations.models import Reservation
from tests.tables.helpers import Api, account, error_code, money_snapshot, new_key, new_player, open_table, seat_chips

pytestmark = pytest.mark.django_db

WRITE = ["reservations:write", "accounts:read"]


@pytest.fixture
def api():
    return Api(WRITE)


@pytest.fixture
def setup():
    table = open_table()
    user, wallet = new_player(funded=1000)
    return table, user, wallet


def reserve(api, table, user, amount=300, **extra):
    return api.post("reservations", {"user_id": user, "table_id": table, "amount": amount, **extra})


def test_reserve_read_commit(api, setup):
    table, user, wallet = setup
    created = reserve(api, table, user, 300, ttl_seconds=60)
    assert created.status_code == 201, created.json()
    r = created.json()["reservation"]
    assert (r["status"], r["amount"], r["table_id"], r["user_id"]) == ("pending", 300, table, user)
    assert account(wallet).held == 300
    detail = api.get(f"reservations/{r['id']}")
    assert detail.status_code == 200 and detail.json() == created.json()
    committed = api.post(f"reservations/{r['id']}/commit", {"amount": 200})
    assert committed.status_code == 200, committed.json()
    body = committed.json()
    assert body["reservation"]["status"] == "committed" and body["reservation"]["committed_amount"] == 200
    assert body["seat"]["chips"] == 200 and body["transaction"]["kind"] == "buy_in"
    assert (account(wallet).balance, account(wallet).held, seat_chips(table, user)) == (800, 0, 200)


def test_release_with_a_reason(api, setup):
    table, user, wallet = setup
    r = reserve(api, table, user).json()["reservation"]
    released = api.post(f"reservations/{r['id']}/release", {"reason": "player left the lobby"})
    assert released.status_code == 200, released.json()
    assert released.json()["reservation"]["end_reason"] == "player left the lobby"
    assert account(wallet).held == 0
    assert api.post(f"reservations/{r['id']}/release").json()["error"]["code"] == "reservation_not_pending"


def test_same_key_replays_and_another_body_conflicts(api, setup):
    table, user, wallet = setup
    key = new_key()
    first = api.post("reservations", {"user_id": user, "table_id": table, "amount": 100}, key=key)
    again = api.post("reservations", {"user_id": user, "table_id": table, "amount": 100}, key=key)
    assert (first.status_code, again.status_code) == (201, 201) and again.content == first.content
    other = api.post("reservations", {"user_id": user, "table_id": table, "amount": 101}, key=key)
    assert (other.status_code, error_code(other)) == (409, "idempotency_conflict")
    assert account(wallet).held == 100


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"amount": 1001}, 422, "insufficient_funds"),
        ({"amount": -5}, 400, "invalid_amount"),
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": 10.0}, 400, "invalid_amount"),
        ({"amount": "ten"}, 400, "invalid_amount"),
        ({"amount": 10, "ttl_seconds": 1}, 400, "invalid_request"),
        ({"amount": 10, "ttl_seconds": 10**6}, 400, "invalid_request"),
        ({"amount": 10, "ttl_seconds": -60}, 400, "invalid_request"),
        ({"amount": 10, "table_id": "no-such-table"}, 404, "table_not_found"),
        ({"amount": 10, "user_id": "nobody"}, 404, "account_not_found"),
        ({"amount": 10, "ammount": 10}, 400, "invalid_request"),
        ({"amount": 10, "user_id": 12}, 400, "invalid_request"),
    ],
)
def test_bad_reserves_are_refused_and_change_nothing(api, setup, body, status, code):
    table, user, _ = setup
    before = money_snapshot()
    response = api.post("reservations", {"user_id": user, "table_id": table, **body})
    assert (response.status_code, error_code(response)) == (status, code), response.json()
    assert money_snapshot() == before and not Reservation.objects.exists()


def test_reserve_refused_for_a_frozen_wallet_and_another_currency(api, setup, key):
    table, user, wallet = setup
    usd_table = open_table("USD")
    response = reserve(api, usd_table, user, 10)
    assert (response.status_code, error_code(response)) == (422, "currency_mismatch")
    account_freeze(client="tests", idempotency_key=key(), account_id=wallet)
    response = reserve(api, table, user, 10)
    assert (response.status_code, error_code(response)) == (422, "account_frozen")


def test_commit_and_release_refusals(api, setup):
    table, user, wallet = setup
    r = reserve(api, table, user, 100).json()["reservation"]
    over = api.post(f"reservations/{r['id']}/commit", {"amount": 101})
    assert (over.status_code, error_code(over)) == (422, "insufficient_funds")
    negative = api.post(f"reservations/{r['id']}/commit", {"amount": -1})
    assert (negative.status_code, error_code(negative)) == (400, "invalid_amount")
    assert api.post(f"reservations/{r['id']}/commit", {"all": True}).status_code == 200
    again = api.post(f"reservations/{r['id']}/commit", {"all": True})
    assert (again.status_code, error_code(again)) == (409, "reservation_not_pending")
    release = api.post(f"reservations/{r['id']}/release")
    assert (release.status_code, error_code(release)) == (409, "reservation_not_pending")
    for path in ("reservations/999999", "reservations/999999/commit", "reservations/999999/release"):
        response = (
            api.get(path) if path.count("/") == 1 else api.post(path, {"all": True} if "commit" in path else None)
        )
        assert (response.status_code, error_code(response)) == (404, "reservation_not_found")
    assert (account(wallet).balance, account(wallet).held, seat_chips(table, user)) == (900, 0, 100)


def test_commit_after_expiry(api, setup):
    table, user, wallet = setup
    r = reserve(api, table, user, 100).json()["reservation"]
    Reservation.objects.filter(pk=r["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.post(f"reservations/{r['id']}/commit", {"all": True})
    assert (response.status_code, error_code(response)) == (409, "reservation_expired")
    assert api.get(f"reservations/{r['id']}").json()["reservation"]["status"] == "expired"
    assert account(wallet).held == 0


def test_credentials_scopes_and_the_idempotency_key(setup):
    table, user, _ = setup
    body = {"user_id": user, "table_id": table, "amount": 10}
    reader = Api(["accounts:read"])
    assert error_code(reader.post("reservations", body)) == "permission_denied"
    tables_only = Api(["tables:write"])
    assert tables_only.post("reservations", body).status_code == 403
    writer = Api(["reservations:write"])
    assert writer.post("reservations", body, key=None).json()["error"]["code"] == "idempotency_key_missing"
    assert writer.get("reservations/1").status_code == 403
    anonymous = Api(["accounts:read"])
    anonymous.http.credentials()
    assert anonymous.get("reservations/1").status_code == 401
    assert not Reservation.objects.exists()


def test_expiry_rate(api, setup):
    table, user, _ = setup
    ids = [reserve(api, table, user, 10).json()["reservation"]["id"] for _ in range(4)]
    api.post(f"reservations/{ids[0]}/commit", {"all": True})
    api.post(f"reservations/{ids[1]}/release")
    api.post(f"reservations/{ids[2]}/commit", {"all": True})
    Reservation.objects.filter(pk=ids[3]).update(expires_at=timezone.now() - timedelta(seconds=1))
    api.post(f"reservations/{ids[3]}/commit", {"all": True})
    response = api.get("reservations/expiry-rate")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["expired"], body["committed"], body["released"], body["total"], body["rate"]) == (1, 2, 1, 4, "0.2500")
    assert b"0.25," not in response.content  # a string, never a JSON number
    past = api.get("reservations/expiry-rate", {"from": "2020-01-01", "to": "2020-01-02"}).json()
    assert (past["total"], past["rate"]) == (0, "0.0000")
    bad = api.get("reservations/expiry-rate", {"from": "yesterday"})
    assert (bad.status_code, error_code(bad)) == (400, "invalid_request")
    backwards = api.get("reservations/expiry-rate", {"from": "2024-02-01", "to": "2024-01-01"})
    assert (backwards.status_code, error_code(backwards)) == (400, "invalid_request")


def test_the_outcome_counter_is_exported_on_metrics(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    for outcome in ("committed", "released", "expired"):
        assert f'balance_reservations_total{{outcome="{outcome}"}}'.encode() in response.content


def test_a_missing_amount_never_means_all(api, setup):
    """Commit names the amount, or asks for everything with all: true. Nothing else commits the
    hold: leaving the amount out, a null, an empty or non-object body (the fuzz findings)."""
    table, user, _ = setup
    r = reserve(api, table, user).json()["reservation"]
    before = money_snapshot()
    for body, code in [
        ({}, "invalid_request"),
        ({"amount": None}, "invalid_amount"),
        ({"all": False}, "invalid_request"),
        ({"all": True, "amount": 5}, "invalid_request"),
        ({"all": "true"}, "invalid_request"),
    ]:
        refused = api.post(f"reservations/{r['id']}/commit", body)
        assert refused.status_code == 400 and error_code(refused) == code, (body, refused.json())
    for raw in ("[]", "null", "0", "false", '""'):
        refused = api.http.post(
            f"/api/v1/reservations/{r['id']}/commit",
            raw,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=new_key(),
        )
        assert refused.status_code == 400, (raw, refused.json())
    assert money_snapshot() == before and Reservation.objects.get(pk=r["id"]).status == "pending"
    assert api.post(f"reservations/{r['id']}/commit", {"all": True}).json()["reservation"]["committed_amount"] == 300
