"""The player-protection HTTP API: read, set a limit, start an exclusion; the refusals as 422."""

from __future__ import annotations

import pytest

from accounts.models import PlayerLimit, SelfExclusion
from tests.api.conftest import api, make_api  # noqa: F401  (fixtures)
from tests.tables.helpers import new_player

pytestmark = pytest.mark.django_db


def limit(api, idem=..., **body):  # noqa: F811
    return api.post("/api/v1/protection/limits", {"currency": "EUR", **body}, idem=idem)


def test_set_read_and_be_refused_over_http(api, clock):  # noqa: F811
    user, wallet = new_player()
    answer = limit(api, owner_ref=user, kind="deposit", period="24h", value=500)
    assert answer.status_code == 200, answer.content
    assert answer.json()["limit"] == {
        "owner_ref": user,
        "currency": "EUR",
        "kind": "deposit",
        "period": "24h",
        "value": 500,
        "pending_value": None,
        "pending_removal": False,
        "pending_effective_at": None,
    }
    raised = limit(api, owner_ref=user, kind="deposit", period="24h", value="900").json()["limit"]
    assert (raised["value"], raised["pending_value"]) == (500, 900)
    read = api.get("/api/v1/protection", {"owner_ref": user, "currency": "EUR"}).json()
    assert read["limits"] == [raised] and read["exclusion"] is None
    refused = api.post(f"/api/v1/accounts/{wallet}/deposit", {"amount": 501})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "deposit_limit_exceeded"
    assert (error["details"]["window"], error["details"]["allowance"]) == ("24h", 500)


def test_an_exclusion_over_http_refuses_a_buy_in_with_its_end(api, clock):  # noqa: F811
    user, _ = new_player(funded=100)
    started = api.post("/api/v1/protection/exclusions", {"owner_ref": user, "kind": "time_out", "days": 7})
    assert started.status_code == 201, started.content
    until = started.json()["excluded_until"]
    assert api.get("/api/v1/protection", {"owner_ref": user}).json()["exclusion"]["ends_at"] == until


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "deposit", "period": "24h", "value": 1.5},
        {"kind": "deposit", "period": "24h", "value": 0},
        {"kind": "deposit", "period": "1y", "value": 5},
        {"kind": "deposit", "value": 5},
        {"kind": "buy_in", "period": "24h", "value": 5},
        {"kind": "deposit", "period": "24h"},
        {"kind": "deposit", "period": "24h", "value": 5, "extra": 1},
        {"kind": "deposit", "period": "24h", "value": True},
    ],
)
def test_bad_limit_bodies_are_400_and_change_nothing(api, body):  # noqa: F811
    user, _ = new_player()
    response = limit(api, owner_ref=user, **body)
    assert response.status_code == 400, response.content
    assert not PlayerLimit.objects.filter(owner_ref=user).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "time_out", "days": "7"},
        {"kind": "time_out", "days": 7.0},
        {"kind": "time_out", "days": 0},
        {"kind": "self_exclusion", "days": 30},
        {"kind": "holiday", "days": 7},
        {"kind": "time_out"},
    ],
)
def test_bad_exclusion_bodies_are_400_and_start_nothing(api, body):  # noqa: F811
    user, _ = new_player()
    response = api.post("/api/v1/protection/exclusions", {"owner_ref": user, **body})
    assert response.status_code == 400, response.content
    assert not SelfExclusion.objects.filter(owner_ref=user).exists()


def test_setting_needs_the_protection_scope_and_a_key(make_api):  # noqa: F811
    user, _ = new_player()
    reader = make_api(scopes=["accounts:read"])
    assert limit(reader, owner_ref=user, kind="loss", period="7d", value=5).status_code == 403
    assert reader.get("/api/v1/protection", {"owner_ref": user}).status_code == 200
    writer = make_api(scopes=["protection:write"])
    assert limit(writer, owner_ref=user, kind="loss", period="7d", value=5, idem=None).status_code == 400


def test_the_same_key_sets_once(api, clock):  # noqa: F811
    user, _ = new_player()
    first = limit(api, owner_ref=user, kind="loss", period="7d", value=100, idem="one")
    again = limit(api, owner_ref=user, kind="loss", period="7d", value=100, idem="one")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = limit(api, owner_ref=user, kind="loss", period="7d", value=200, idem="one")
    assert other.status_code == 409


def test_reading_without_an_owner_is_400(api):  # noqa: F811
    assert api.get("/api/v1/protection").status_code == 400


def test_a_reservation_over_http_answers_the_specific_refusal(api, clock):  # noqa: F811
    from tests.tables.helpers import open_table

    user, _ = new_player(funded=1000)
    table = open_table()
    limit(api, owner_ref=user, kind="buy_in", value=200)
    refused = api.post("/api/v1/reservations", {"user_id": user, "table_id": table, "amount": 201})
    assert refused.status_code == 422, refused.content
    assert refused.json()["error"]["code"] == "buy_in_limit_exceeded"
