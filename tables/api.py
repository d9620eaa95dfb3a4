"""HTTP API v1 of tables: thin adapters over tables.services and tables.selectors.

Each view checks its input with a small serializer, calls one service or selector and renders the
dict it returns. Every mutating call needs an ``Idempotency-Key`` header, scoped by the API client.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from balance_project.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiView,
    BodyRequiredSchema,
    client_of,
    idempotency_key_of,
    render,
    validated,
)
from reservations.serializers import CommitOutputSerializer
from tables import selectors, services
from tables import serializers as s

_TABLE_ID = OpenApiParameter(
    "table_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The poker service's table id."
)


class TablesView(ApiView):
    """Open a table (one currency; its id is the poker service's)."""

    required_scopes = {"POST": "tables:write"}

    @extend_schema(
        operation_id="tables_open",
        summary="Open a table",
        request=s.TableOpenInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: s.TableEnvelopeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key_of(request)
        data = validated(s.TableOpenInputSerializer, request.data)
        result = services.table_open(
            client=client_of(request), idempotency_key=key, table_id=data["table_id"], currency=data["currency"]
        )
        return render(s.TableEnvelopeOutputSerializer, result, status=201)


class TableDetailView(ApiView):
    """The table, its chips and its active seats."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="tables_detail",
        summary="One table with its seats",
        parameters=[_TABLE_ID],
        responses={200: s.TableEnvelopeOutputSerializer, **READ_ERRORS},
    )
    def get(self, request, table_id: str):
        return render(s.TableEnvelopeOutputSerializer, selectors.table_get(table_id=table_id))


class TableCloseView(ApiView):
    """Close the table: refused while any seat has chips."""

    required_scopes = {"POST": "tables:write"}

    @extend_schema(
        operation_id="tables_close",
        summary="Close a table (every seat must be at zero)",
        request=None,
        parameters=[_TABLE_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.TableEnvelopeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request, table_id: str):
        key = idempotency_key_of(request)
        result = services.table_close(client=client_of(request), idempotency_key=key, table_id=table_id)
        return render(s.TableEnvelopeOutputSerializer, result)


class TableBuyInView(ApiView):
    """Reserve and commit in one call: the wallet pays, the player's seat gets the chips."""

    required_scopes = {"POST": "tables:write"}

    @extend_schema(
        operation_id="tables_buy_in",
        summary="Buy in (or top up) at a table",
        request=s.BuyInInputSerializer,
        parameters=[_TABLE_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={201: CommitOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request, table_id: str):
        key = idempotency_key_of(request)
        data = validated(s.BuyInInputSerializer, request.data)
        result = services.table_buy_in(
            client=client_of(request),
            idempotency_key=key,
            user_id=data["user_id"],
            table_id=table_id,
            amount=data["amount"],
            ttl_seconds=data.get("ttl_seconds"),
        )
        return render(CommitOutputSerializer, result, status=201)


class TableHandsView(ApiView):
    """Settle one hand: contributions must equal payouts plus rake; idempotent by hand id."""

    required_scopes = {"POST": "tables:write"}

    @extend_schema(
        operation_id="tables_hand_settle",
        summary="Settle a hand",
        request=s.HandInputSerializer,
        parameters=[_TABLE_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={201: s.HandOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request, table_id: str):
        key = idempotency_key_of(request)
        data = validated(s.HandInputSerializer, request.data)
        result = services.hand_settle(
            client=client_of(request),
            idempotency_key=key,
            table_id=table_id,
            hand_id=data["hand_id"],
            contributions=data["contributions"],
            payouts=data["payouts"],
            rake=data["rake"],
        )
        return render(s.HandOutputSerializer, result, status=201)


class TableCashOutView(ApiView):
    """Move a seat's chips (all, or an amount) back to the wallet; ``leave`` also closes the seat."""

    required_scopes = {"POST": "tables:write"}
    schema = BodyRequiredSchema()

    @extend_schema(
        operation_id="tables_cash_out",
        summary="Cash a player out",
        request=s.CASH_OUT_SCHEMA,
        parameters=[_TABLE_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.CashOutOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request, table_id: str):
        key = idempotency_key_of(request)
        data = validated(s.CashOutInputSerializer, request.data)
        result = services.seat_cash_out(
            client=client_of(request),
            idempotency_key=key,
            table_id=table_id,
            user_id=data["user_id"],
            amount=data.get("amount"),
            leave=data.get("leave", False),
            whole=data.get("all", False),
        )
        return render(s.CashOutOutputSerializer, result)
