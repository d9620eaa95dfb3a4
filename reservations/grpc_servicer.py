"""gRPC adapters for two-phase buy-ins: the same services and selectors as the HTTP views."""

from __future__ import annotations

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_project.grpc.caller import caller_client
from balance_project.grpc.messages import optional_field, reservation_pb, seat_pb, transaction_pb
from reservations.selectors import reservation_get
from reservations.services import reservation_commit, reservation_release, reservation_reserve


class ReservationsServicer:
    def Reserve(self, request: pb.ReserveRequest, context) -> pb.ReservationResponse:
        result = reservation_reserve(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            user_id=request.user_id,
            table_id=request.table_id,
            amount=request.amount,
            ttl_seconds=optional_field(request, "ttl_seconds"),
        )
        return pb.ReservationResponse(reservation=reservation_pb(result["reservation"]))

    def CommitReservation(self, request: pb.CommitReservationRequest, context) -> pb.CommitReservationResponse:
        result = reservation_commit(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            reservation_id=request.reservation_id,
            amount=optional_field(request, "amount"),
            whole=request.all,
        )
        return pb.CommitReservationResponse(
            reservation=reservation_pb(result["reservation"]),
            seat=seat_pb(result["seat"]),
            transaction=transaction_pb(result.get("transaction")),
        )

    def ReleaseReservation(self, request: pb.ReleaseReservationRequest, context) -> pb.ReservationResponse:
        result = reservation_release(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            reservation_id=request.reservation_id,
            reason=request.reason,
        )
        return pb.ReservationResponse(reservation=reservation_pb(result["reservation"]))

    def GetReservation(self, request: pb.GetReservationRequest, context) -> pb.ReservationResponse:
        result = reservation_get(reservation_id=request.reservation_id)
        return pb.ReservationResponse(reservation=reservation_pb(result["reservation"]))
