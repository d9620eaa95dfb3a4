"""gRPC adapters for tables, seats and hands: the same services and selectors as the HTTP views."""

from __future__ import annotations

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_project.grpc.caller import caller_client
from balance_project.grpc.messages import account_pb, optional_field, reservation_pb, seat_pb, table_pb, transaction_pb
from tables.selectors import table_get
from tables.services import hand_settle, seat_cash_out, table_buy_in, table_close, table_open


class TablesServicer:
    def OpenTable(self, request: pb.OpenTableRequest, context) -> pb.TableResponse:
        result = table_open(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            table_id=request.table_id,
            currency=request.currency,
        )
        return pb.TableResponse(table=table_pb(result["table"]))

    def CloseTable(self, request: pb.CloseTableRequest, context) -> pb.TableResponse:
        result = table_close(client=caller_client(), idempotency_key=request.idempotency_key, table_id=request.table_id)
        return pb.TableResponse(table=table_pb(result["table"]))

    def GetTable(self, request: pb.GetTableRequest, context) -> pb.TableResponse:
        return pb.TableResponse(table=table_pb(table_get(table_id=request.table_id)["table"]))

    def BuyIn(self, request: pb.BuyInRequest, context) -> pb.BuyInResponse:
        result = table_buy_in(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            user_id=request.user_id,
            table_id=request.table_id,
            amount=request.amount,
            ttl_seconds=optional_field(request, "ttl_seconds"),
        )
        return pb.BuyInResponse(
            reservation=reservation_pb(result["reservation"]),
            seat=seat_pb(result["seat"]),
            transaction=transaction_pb(result.get("transaction")),
        )

    def SettleHand(self, request: pb.SettleHandRequest, context) -> pb.SettleHandResponse:
        result = hand_settle(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            table_id=request.table_id,
            hand_id=request.hand_id,
            contributions=dict(request.contributions),
            payouts=dict(request.payouts),
            rake=request.rake,
        )
        return pb.SettleHandResponse(
            hand_id=result["hand_id"],
            table=table_pb(result["table"]),
            transaction=transaction_pb(result.get("transaction")),
        )

    def CashOut(self, request: pb.CashOutRequest, context) -> pb.CashOutResponse:
        result = seat_cash_out(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            table_id=request.table_id,
            user_id=request.user_id,
            amount=optional_field(request, "amount"),
            leave=request.leave,
            whole=request.all,
        )
        return pb.CashOutResponse(
            seat=seat_pb(result["seat"]),
            transaction=transaction_pb(result.get("transaction")),
            account=account_pb(result["account"]),
        )
