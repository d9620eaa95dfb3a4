"""Reserve, CommitReservation, ReleaseReservation, GetReservation through a real channel."""

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


def reserve(stub, md, user, table_id, amount, key=None, **extra):
    return stub.Reserve(
        pb.ReserveRequest(idempotency_key=key or new_key(), user_id=user, table_id=table_id, amount=amount, **extra),
        metadata=md,
        timeout=10,
    ).reservation


def test_reserve_commit_part_and_read(stub, md, player, table):
    user, wallet = player(funded=1000)
    table_id = table()
    held = reserve(stub, md, user, table_id, 600, ttl_seconds=60)
    assert (held.status, held.amount, held.user_id, held.table_id, held.currency, held.account_id) == (
        pb.RESERVATION_STATUS_PENDING,
        600,
        user,
        table_id,
        "EUR",
        wallet,
    )
    assert held.expires_at and held.created_at
    assert Account.objects.get(pk=wallet).held == 600

    committed = stub.CommitReservation(
        pb.CommitReservationRequest(idempotency_key=new_key(), reservation_id=held.id, amount=400),
        metadata=md,
        timeout=10,
    )
    assert committed.reservation.status == pb.RESERVATION_STATUS_COMMITTED
    assert committed.reservation.committed_amount == 400
    assert (committed.seat.chips, committed.seat.user_id, committed.seat.status) == (400, user, pb.SEAT_STATUS_ACTIVE)
    assert committed.transaction.kind == "buy_in"
    assert sorted(e.amount for e in committed.transaction.entries) == [-400, 400]
    wallet_row = Account.objects.get(pk=wallet)
    assert (wallet_row.balance, wallet_row.held) == (600, 0)

    read = stub.GetReservation(pb.GetReservationRequest(reservation_id=held.id), metadata=md, timeout=10)
    assert read.reservation == committed.reservation


def test_release_drops_the_hold_and_a_retry_answers_the_same(stub, md, player, table):
    user, wallet = player(funded=1000)
    held = reserve(stub, md, user, table(), 700)
    request = pb.ReleaseReservationRequest(idempotency_key=new_key(), reservation_id=held.id, reason="player left")
    first = stub.ReleaseReservation(request, metadata=md, timeout=10)
    assert first.reservation.status == pb.RESERVATION_STATUS_RELEASED
    assert stub.ReleaseReservation(request, metadata=md, timeout=10) == first
    assert Account.objects.get(pk=wallet).held == 0

    failure = failure_of(
        stub.CommitReservation,
        pb.CommitReservationRequest(idempotency_key=new_key(), reservation_id=held.id, all=True),
        md,
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "reservation_not_pending")


def test_a_reserve_retried_with_its_key_holds_once(stub, md, player, table):
    user, wallet = player(funded=1000)
    table_id, key = table(), new_key()
    first = reserve(stub, md, user, table_id, 300, key=key)
    assert reserve(stub, md, user, table_id, 300, key=key) == first
    assert Account.objects.get(pk=wallet).held == 300
    failure = failure_of(
        stub.Reserve, pb.ReserveRequest(idempotency_key=key, user_id=user, table_id=table_id, amount=301), md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.ABORTED, "idempotency_conflict")


def test_reservation_errors(stub, md, player, table):
    user, wallet = player(funded=100)
    table_id = table()
    cases = [
        (
            stub.Reserve,
            pb.ReserveRequest(user_id=user, table_id=table_id, amount=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key_missing",
        ),
        (
            stub.Reserve,
            pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_amount",
        ),
        (
            stub.Reserve,
            pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=-5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_amount",
        ),
        (
            stub.Reserve,
            pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=10, ttl_seconds=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_request",
        ),
        (
            stub.Reserve,
            pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=101),
            grpc.StatusCode.FAILED_PRECONDITION,
            "insufficient_funds",
        ),
        (
            stub.Reserve,
            pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id="no-such-table", amount=10),
            grpc.StatusCode.NOT_FOUND,
            "table_not_found",
        ),
        (
            stub.Reserve,
            pb.ReserveRequest(idempotency_key=new_key(), user_id="nobody", table_id=table_id, amount=10),
            grpc.StatusCode.NOT_FOUND,
            "account_not_found",
        ),
        (
            stub.CommitReservation,
            pb.CommitReservationRequest(idempotency_key=new_key(), reservation_id=987654, all=True),
            grpc.StatusCode.NOT_FOUND,
            "reservation_not_found",
        ),
        (
            stub.CommitReservation,
            pb.CommitReservationRequest(reservation_id=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key_missing",
        ),
        (  # neither an amount nor all: never read as "all"
            stub.CommitReservation,
            pb.CommitReservationRequest(idempotency_key=new_key(), reservation_id=987654),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_request",
        ),
        (
            stub.ReleaseReservation,
            pb.ReleaseReservationRequest(idempotency_key=new_key(), reservation_id=987654),
            grpc.StatusCode.NOT_FOUND,
            "reservation_not_found",
        ),
        (
            stub.GetReservation,
            pb.GetReservationRequest(reservation_id=987654),
            grpc.StatusCode.NOT_FOUND,
            "reservation_not_found",
        ),
    ]
    for call, request, code, reason in cases:
        failure = failure_of(call, request, md)
        assert (failure.code, failure.reason) == (code, reason), request
    held = reserve(stub, md, user, table_id, 60)
    for amount in (0, 61):
        failure = failure_of(
            stub.CommitReservation,
            pb.CommitReservationRequest(idempotency_key=new_key(), reservation_id=held.id, amount=amount),
            md,
        )
        assert failure.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
        assert failure.reason == ("invalid_amount" if amount == 0 else "insufficient_funds")
    row = Account.objects.get(pk=wallet)
    assert (row.balance, row.held) == (100, 60)
