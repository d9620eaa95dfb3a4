import pytest

from accounts.models import Account
from tables.models import Hand, Seat, Table
from tests.tables.helpers import Api, account, error_code, money_snapshot, new_player, open_table, seat_chips

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return Api(["tables:write", "accounts:read"])


@pytest.fixture
def seated(api):
    """A table with two players bought in for 500 each -> (table, [(user, wallet), ...])."""
    table = open_table()
    players = [new_player(funded=1000) for _ in range(2)]
    for user, _ in players:
        assert api.post(f"tables/{table}/buy-in", {"user_id": user, "amount": 500}).status_code == 201
    return table, players


def expect(response, status, code):
    assert (response.status_code, error_code(response)) == (status, code), response.json()


def test_a_table_from_open_to_close(api):
    opened = api.post("tables", {"table_id": "nl-holdem-7", "currency": "EUR"})
    assert opened.status_code == 201, opened.json()
    assert opened.json() == {
        "table": {"table_id": "nl-holdem-7", "currency": "EUR", "status": "open", "chips": 0, "seats": []}
    }
    (a, wallet_a), (b, wallet_b) = new_player(funded=1000), new_player(funded=1000)
    bought = api.post("tables/nl-holdem-7/buy-in", {"user_id": a, "amount": 400, "ttl_seconds": 30})
    assert bought.status_code == 201, bought.json()
    assert bought.json()["seat"]["chips"] == 400 and bought.json()["reservation"]["status"] == "committed"
    api.post("tables/nl-holdem-7/buy-in", {"user_id": b, "amount": "400"})
    hand = api.post(
        "tables/nl-holdem-7/hands",
        {"hand_id": "h-1", "contributions": {a: 100, b: 100}, "payouts": {a: 190}, "rake": 10},
    )
    assert hand.status_code == 201, hand.json()
    assert hand.json()["table"]["chips"] == 790 and hand.json()["transaction"]["metadata"]["hand_id"] == "h-1"
    detail = api.get("tables/nl-holdem-7")
    assert detail.status_code == 200
    assert {s["user_id"]: s["chips"] for s in detail.json()["table"]["seats"]} == {a: 490, b: 300}
    part = api.post("tables/nl-holdem-7/cash-out", {"user_id": a, "amount": 90})
    assert part.status_code == 200, part.json()
    assert part.json()["seat"]["chips"] == 400 and part.json()["account"]["balance"] == 690
    left = api.post("tables/nl-holdem-7/cash-out", {"user_id": a, "leave": True})
    assert left.json()["seat"]["status"] == "left" and account(wallet_a).balance == 1090
    expect(api.post("tables/nl-holdem-7/close"), 409, "table_not_empty")
    api.post("tables/nl-holdem-7/cash-out", {"user_id": b, "all": True})
    closed = api.post("tables/nl-holdem-7/close")
    assert closed.status_code == 200 and closed.json()["table"]["status"] == "closed"
    assert account(wallet_b).balance == 900
    expect(api.post("tables/nl-holdem-7/buy-in", {"user_id": b, "amount": 10}), 409, "table_closed")


def test_bad_tables_and_buy_ins(api):
    expect(api.post("tables", {"table_id": "t/1", "currency": "EUR"}), 400, "invalid_request")
    expect(api.post("tables", {"table_id": "t1", "currency": "euro"}), 400, "invalid_request")
    expect(api.get("tables/no-such-table"), 404, "table_not_found")
    table = open_table("USD")
    user, _ = new_player(funded=100)
    before = money_snapshot()
    expect(api.post(f"tables/{table}/buy-in", {"user_id": user, "amount": 10}), 422, "currency_mismatch")
    eur = open_table()
    expect(api.post(f"tables/{eur}/buy-in", {"user_id": user, "amount": 101}), 422, "insufficient_funds")
    expect(api.post(f"tables/{eur}/buy-in", {"user_id": user, "amount": -1}), 400, "invalid_amount")
    expect(api.post(f"tables/{eur}/buy-in", {"user_id": user, "amount": 1.5}), 400, "invalid_amount")
    expect(api.post("tables/missing/buy-in", {"user_id": user, "amount": 1}), 404, "table_not_found")
    assert money_snapshot() == before and not Seat.objects.exists()


@pytest.mark.parametrize(
    "hand, status, code",
    [
        ({"contributions": {"A": 100, "B": 100}, "payouts": {"A": 150}, "rake": 10}, 422, "settlement_invalid"),
        ({"contributions": {"A": 501}, "payouts": {"B": 501}, "rake": 0}, 422, "insufficient_chips"),
        ({"contributions": {"A": 10, "stranger": 10}, "payouts": {"A": 20}, "rake": 0}, 422, "player_not_seated"),
        ({"contributions": {"A": -10, "B": 10}, "payouts": {}, "rake": 0}, 400, "invalid_amount"),
        ({"contributions": {"A": 10}, "payouts": {"B": 20}, "rake": -10}, 400, "invalid_amount"),
        ({"contributions": {"A": 10}, "payouts": {"B": 10}, "rake": 0.0}, 400, "invalid_amount"),
        ({"contributions": [10], "payouts": {"B": 10}, "rake": 0}, 400, "invalid_request"),
        ({"contributions": {"A": 10}, "payouts": {"B": 10}}, 400, "invalid_request"),
    ],
)
def test_bad_hands_are_refused_and_change_nothing(api, seated, hand, status, code):
    table, [(a, _), (b, _)] = seated
    stranger, _ = new_player()
    names = {"A": a, "B": b, "stranger": stranger}

    def rename(amounts):
        return {names[k]: v for k, v in amounts.items()} if isinstance(amounts, dict) else amounts

    body = {"hand_id": "h-bad", **{k: rename(v) for k, v in hand.items()}}
    before = money_snapshot()
    expect(api.post(f"tables/{table}/hands", body), status, code)
    assert money_snapshot() == before and not Hand.objects.exists()


def test_a_repeated_hand_id(api, seated):
    table, [(a, _), (b, _)] = seated
    body = {"hand_id": "h-9", "contributions": {a: 50, b: 50}, "payouts": {b: 100}, "rake": 0}
    first = api.post(f"tables/{table}/hands", body)
    again = api.post(f"tables/{table}/hands", body)
    assert first.status_code == again.status_code == 201 and again.content == first.content
    expect(api.post(f"tables/{table}/hands", {**body, "payouts": {a: 100}}), 409, "hand_conflict")
    assert (seat_chips(table, a), seat_chips(table, b)) == (450, 550)


def test_bad_cash_outs(api, seated):
    table, [(a, _), _] = seated
    outsider, _ = new_player(funded=10)
    before = money_snapshot()
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a, "amount": 501}), 422, "insufficient_chips")
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a, "amount": -1}), 400, "invalid_amount")
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a, "amount": None}), 400, "invalid_amount")  # not "all"
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a, "leave": "yes"}), 400, "invalid_request")
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a}), 400, "invalid_request")  # never "all"
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a, "all": False}), 400, "invalid_request")
    expect(api.post(f"tables/{table}/cash-out", {"user_id": a, "all": True, "amount": 5}), 400, "invalid_request")
    expect(api.post(f"tables/{table}/cash-out", {"user_id": outsider, "all": True}), 422, "player_not_seated")
    assert money_snapshot() == before
    kept = api.post(f"tables/{table}/cash-out", {"user_id": a, "all": True})
    assert kept.status_code == 200 and kept.json()["seat"] == {**kept.json()["seat"], "chips": 0, "status": "active"}


def test_scopes(seated):
    table, [(a, _), _] = seated
    reservations_only = Api(["reservations:write", "accounts:read"])
    assert (
        error_code(reservations_only.post(f"tables/{table}/buy-in", {"user_id": a, "amount": 1})) == "permission_denied"
    )
    assert reservations_only.post(f"tables/{table}/cash-out", {"user_id": a}).status_code == 403
    assert reservations_only.post(f"tables/{table}/close").status_code == 403
    assert reservations_only.post("tables", {"table_id": "x", "currency": "EUR"}).status_code == 403
    assert reservations_only.get(f"tables/{table}").status_code == 200
    writer = Api(["tables:write"])
    assert writer.get(f"tables/{table}").status_code == 403
    assert error_code(writer.post(f"tables/{table}/close", key=None)) == "idempotency_key_missing"
    assert Table.objects.get(table_id=table).status == "open"
    assert Account.objects.filter(kind="seat").count() == 2


@pytest.mark.parametrize(
    "spelling",
    [" {a}", "{a} ", "{a}\n", "{a}\u200b", "\u202e{a}", "{a}\u0301", "\uff41{a}", "-{a}", "={a}"],
)
def test_a_player_named_in_another_spelling_is_refused(api, seated, spelling):
    """One spelling per id: surrounding spaces, a trailing newline, zero-width, bidi, combining or
    full-width characters, or a leading formula character are refused, never trimmed into
    another player (``alice`` and `` alice`` in one hand was a 500)."""
    table, [(a, _), (b, _)] = seated
    body = {"hand_id": "h-2", "contributions": {a: 10, spelling.format(a=a): 10}, "payouts": {b: 20}, "rake": 0}
    before = money_snapshot()
    response = api.post(f"tables/{table}/hands", body)
    expect(response, 400, "invalid_request")
    assert response.json()["error"]["details"]["field"] == "contributions key"
    assert money_snapshot() == before and not Hand.objects.exists()
    expect(api.post(f"tables/{table}/cash-out", {"user_id": spelling.format(a=a)}), 400, "invalid_request")
    expect(api.post("tables", {"table_id": spelling.format(a="t9"), "currency": "EUR"}), 400, "invalid_request")
    expect(api.post(f"tables/{table}/hands", {**body, "hand_id": spelling.format(a="h")}), 400, "invalid_request")
