"""OpenTable, CloseTable, GetTable, BuyIn, SettleHand, CashOut through a real channel."""

from __future__ import annotations

import grpc
import pytest

from accounts.models import Account
from balance_client._pb.balance.v1 import balance_pb2 as pb
from tests.grpc.conftest import new_key, rpc_failure

pytestmark = pytest.mark.django_db(transaction=True)


def failure_of(call, request, md):
    with pytest.raises(grpc.RpcError) as excinfo:
        call(request, metadata=md, timeout=10)
    return rpc_failure(excinfo)


def buy_in(stub, md, user, table_id, amount, key=None):
    return stub.BuyIn(
        pb.BuyInRequest(idempotency_key=key or new_key(), user_id=user, table_id=table_id, amount=amount),
        metadata=md,
        timeout=10,
    )


def settle_request(table_id, hand_id, contributions, payouts, rake, key=None):
    return pb.SettleHandRequest(
        idempotency_key=new_key() if key is None else key,
        table_id=table_id,
        hand_id=hand_id,
        contributions=contributions,
        payouts=payouts,
        rake=rake,
    )


def test_a_table_session_open_buy_in_settle_cash_out_close(stub, md, player):
    alice, alice_wallet = player(funded=10_000)
    bob, bob_wallet = player(funded=10_000)
    opened = stub.OpenTable(
        pb.OpenTableRequest(idempotency_key=new_key(), table_id="t-session", currency="EUR"), metadata=md, timeout=10
    ).table
    assert (opened.table_id, opened.currency, opened.status, opened.chips, list(opened.seats)) == (
        "t-session",
        "EUR",
        pb.TABLE_STATUS_OPEN,
        0,
        [],
    )

    joined = buy_in(stub, md, alice, "t-session", 5_000)
    assert joined.reservation.status == pb.RESERVATION_STATUS_COMMITTED
    assert (joined.seat.user_id, joined.seat.chips, joined.seat.status) == (alice, 5_000, pb.SEAT_STATUS_ACTIVE)
    assert joined.transaction.kind == "buy_in"
    buy_in(stub, md, bob, "t-session", 3_000)

    settled = stub.SettleHand(
        settle_request("t-session", "hand-1", {alice: 1_000, bob: 1_000}, {alice: 1_900}, 100), metadata=md, timeout=10
    )
    assert settled.hand_id == "hand-1" and settled.transaction.kind == "hand_settlement"
    chips = {seat.user_id: seat.chips for seat in settled.table.seats}
    assert chips == {alice: 5_900, bob: 2_000} and settled.table.chips == 7_900

    part = stub.CashOut(
        pb.CashOutRequest(idempotency_key=new_key(), table_id="t-session", user_id=bob, amount=500),
        metadata=md,
        timeout=10,
    )
    assert (part.seat.chips, part.account.id, part.account.balance) == (1_500, bob_wallet, 7_500)
    for user in (alice, bob):
        left = stub.CashOut(
            pb.CashOutRequest(idempotency_key=new_key(), table_id="t-session", user_id=user, leave=True),
            metadata=md,
            timeout=10,
        )
        assert left.seat.status == pb.SEAT_STATUS_LEFT and left.seat.chips == 0
        assert left.transaction.kind == "cash_out"
    assert Account.objects.get(pk=alice_wallet).balance == 10_900
    assert Account.objects.get(pk=bob_wallet).balance == 9_000

    read = stub.GetTable(pb.GetTableRequest(table_id="t-session"), metadata=md, timeout=10).table
    assert (read.chips, list(read.seats)) == (0, [])
    closed = stub.CloseTable(
        pb.CloseTableRequest(idempotency_key=new_key(), table_id="t-session"), metadata=md, timeout=10
    ).table
    assert closed.status == pb.TABLE_STATUS_CLOSED


def test_retries_with_the_same_key_return_the_same_answer_and_move_money_once(stub, md, player, table):
    alice, wallet = player(funded=1_000)
    bob, _ = player(funded=1_000)
    table_id = table()
    key = new_key()
    first = buy_in(stub, md, alice, table_id, 400, key=key)
    assert buy_in(stub, md, alice, table_id, 400, key=key) == first
    assert Account.objects.get(pk=wallet).balance == 600
    buy_in(stub, md, bob, table_id, 400)

    request = settle_request(table_id, "h1", {alice: 100, bob: 100}, {bob: 200}, 0)
    settled = stub.SettleHand(request, metadata=md, timeout=10)
    assert stub.SettleHand(request, metadata=md, timeout=10) == settled
    cash = pb.CashOutRequest(idempotency_key=new_key(), table_id=table_id, user_id=alice, amount=50)
    cashed = stub.CashOut(cash, metadata=md, timeout=10)
    assert stub.CashOut(cash, metadata=md, timeout=10) == cashed
    assert cashed.seat.chips == 250 and Account.objects.get(pk=wallet).balance == 650

    failure = failure_of(
        stub.BuyIn, pb.BuyInRequest(idempotency_key=key, user_id=alice, table_id=table_id, amount=401), md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.ABORTED, "idempotency_conflict")


def test_buy_in_errors_change_nothing(stub, md, player, table):
    user, wallet = player(funded=100)
    table_id = table()
    cases = [
        (
            pb.BuyInRequest(user_id=user, table_id=table_id, amount=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key_missing",
        ),
        (
            pb.BuyInRequest(idempotency_key="bad\nkey", user_id=user, table_id=table_id, amount=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key_invalid",
        ),
        (
            pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_amount",
        ),
        (
            pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_amount",
        ),
        (
            pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=101),
            grpc.StatusCode.FAILED_PRECONDITION,
            "insufficient_funds",
        ),
        (
            pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id="missing", amount=10),
            grpc.StatusCode.NOT_FOUND,
            "table_not_found",
        ),
        (
            pb.BuyInRequest(idempotency_key=new_key(), user_id="nobody", table_id=table_id, amount=10),
            grpc.StatusCode.NOT_FOUND,
            "account_not_found",
        ),
    ]
    for request, code, reason in cases:
        failure = failure_of(stub.BuyIn, request, md)
        assert (failure.code, failure.reason) == (code, reason), request
    assert failure_of(stub.BuyIn, cases[4][0], md).metadata  # details travel as ErrorInfo metadata
    row = Account.objects.get(pk=wallet)
    assert (row.balance, row.held) == (100, 0)
    assert list(stub.GetTable(pb.GetTableRequest(table_id=table_id), metadata=md, timeout=10).table.seats) == []


def test_settle_cash_out_and_table_errors(stub, md, player, table):
    alice, _ = player(funded=1_000)
    bob, _ = player(funded=1_000)
    table_id = table()
    buy_in(stub, md, alice, table_id, 300)
    buy_in(stub, md, bob, table_id, 300)
    settle_cases = [
        (
            settle_request(table_id, "h", {alice: 100}, {alice: 90}, 0, key=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key_missing",
        ),
        (
            settle_request(table_id, "h", {alice: 100, bob: 100}, {alice: 150}, 0),
            grpc.StatusCode.FAILED_PRECONDITION,
            "settlement_invalid",
        ),
        (
            settle_request(table_id, "h", {alice: 400}, {bob: 400}, 0),
            grpc.StatusCode.FAILED_PRECONDITION,
            "insufficient_chips",
        ),
        (settle_request(table_id, "h", {alice: -5}, {bob: -5}, 0), grpc.StatusCode.INVALID_ARGUMENT, None),
        (
            settle_request(table_id, "h", {"stranger": 10}, {alice: 10}, 0),
            grpc.StatusCode.FAILED_PRECONDITION,
            "player_not_seated",
        ),
        (settle_request("missing", "h", {alice: 10}, {bob: 10}, 0), grpc.StatusCode.NOT_FOUND, "table_not_found"),
    ]
    for request, code, reason in settle_cases:
        failure = failure_of(stub.SettleHand, request, md)
        assert failure.code == code, (request, failure)
        assert reason is None or failure.reason == reason, (request, failure)
        assert failure.reason  # every refusal names its code
    chips = {
        s.user_id: s.chips
        for s in stub.GetTable(pb.GetTableRequest(table_id=table_id), metadata=md, timeout=10).table.seats
    }
    assert chips == {alice: 300, bob: 300}

    cash_cases = [
        (
            pb.CashOutRequest(table_id=table_id, user_id=alice),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key_missing",
        ),
        (
            pb.CashOutRequest(idempotency_key=new_key(), table_id=table_id, user_id=alice, amount=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_amount",
        ),
        (
            pb.CashOutRequest(idempotency_key=new_key(), table_id=table_id, user_id=alice, amount=301),
            grpc.StatusCode.FAILED_PRECONDITION,
            "insufficient_chips",
        ),
        (  # neither an amount nor all: never read as "all"
            pb.CashOutRequest(idempotency_key=new_key(), table_id=table_id, user_id=alice),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_request",
        ),
        (
            pb.CashOutRequest(idempotency_key=new_key(), table_id=table_id, user_id="stranger", all=True),
            grpc.StatusCode.FAILED_PRECONDITION,
            "player_not_seated",
        ),
        (
            pb.CashOutRequest(idempotency_key=new_key(), table_id="missing", user_id=alice, all=True),
            grpc.StatusCode.NOT_FOUND,
            "table_not_found",
        ),
    ]
    for request, code, reason in cash_cases:
        failure = failure_of(stub.CashOut, request, md)
        assert (failure.code, failure.reason) == (code, reason), request

    failure = failure_of(stub.CloseTable, pb.CloseTableRequest(idempotency_key=new_key(), table_id=table_id), md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "table_not_empty")
    failure = failure_of(stub.CloseTable, pb.CloseTableRequest(idempotency_key=new_key(), table_id="missing"), md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "table_not_found")
    failure = failure_of(stub.GetTable, pb.GetTableRequest(table_id="missing"), md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "table_not_found")
    failure = failure_of(
        stub.OpenTable, pb.OpenTableRequest(idempotency_key=new_key(), table_id=table_id, currency="USD"), md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "currency_mismatch")
    failure = failure_of(stub.OpenTable, pb.OpenTableRequest(table_id="x", currency="EUR"), md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key_missing")
    failure = failure_of(stub.OpenTable, pb.OpenTableRequest(idempotency_key=new_key(), table_id="x", currency="€"), md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")
