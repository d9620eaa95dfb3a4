"""HTTP API v1 of reservations: thin adapters over reservations.services and .selectors.

Each view checks its input with a small serializer, calls one service or selector and renders the
dict it returns. Every mutating call needs an ``Idempotency-Key`` header, scoped by the API client.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
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
from reservations import selectors, services
from reservations import serializers as s

_RESERVATION_ID = OpenApiParameter(
    "reservation_id", OpenApiTypes.INT64, OpenApiParameter.PATH, description="Reservation id."
)


class ReservationsView(ApiView):
    """Hold funds on a player's wallet for a buy-in at a table, until committed, released or expired."""

    required_scopes = {"POST": "reservations:write"}

    @extend_schema(
        operation_id="reservations_create",
        summary="Reserve a buy-in (hold funds on the wallet)",
        request=s.ReserveInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: s.ReservationEnvelopeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key_of(request)
        data = validated(s.ReserveInputSerializer, request.data)
        result = services.reservation_reserve(
            client=client_of(request),
            idempotency_key=key,
            user_id=data["user_id"],
            table_id=data["table_id"],
            amount=data["amount"],
            ttl_seconds=data.get("ttl_seconds"),
        )
        return render(s.ReservationEnvelopeOutputSerializer, result, status=201)


class ReservationDetailView(ApiView):
    """One reservation and how it ended (who, when, why)."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="reservations_detail",
        summary="One reservation",
        parameters=[_RESERVATION_ID],
        responses={200: s.ReservationEnvelopeOutputSerializer, **READ_ERRORS},
    )
    def get(self, request, reservation_id: int):
        return render(s.ReservationEnvelopeOutputSerializer, selectors.reservation_get(reservation_id=reservation_id))


class ReservationCommitView(ApiView):
    """Turn the hold into chips on the player's seat (all of it, or part; the rest is released)."""

    required_scopes = {"POST": "reservations:write"}
    schema = BodyRequiredSchema()

    @extend_schema(
        operation_id="reservations_commit",
        summary="Commit a reservation into the player's seat",
        request=s.COMMIT_SCHEMA,
        parameters=[_RESERVATION_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.CommitOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request, reservation_id: int):
        key = idempotency_key_of(request)
        data = validated(s.CommitInputSerializer, request.data or {})
        result = services.reservation_commit(
            client=client_of(request),
            idempotency_key=key,
            reservation_id=reservation_id,
            amount=data.get("amount"),
            whole=data.get("all", False),
        )
        return render(s.CommitOutputSerializer, result)


class ReservationReleaseView(ApiView):
    """Drop the hold. A committed reservation cannot be released (nothing moves)."""

    required_scopes = {"POST": "reservations:write"}

    @extend_schema(
        operation_id="reservations_release",
        summary="Release a reservation (drop the hold)",
        request=s.ReleaseInputSerializer,
        parameters=[_RESERVATION_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.ReservationEnvelopeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request, reservation_id: int):
        key = idempotency_key_of(request)
        data = validated(s.ReleaseInputSerializer, request.data or {})
        result = services.reservation_release(
            client=client_of(request), idempotency_key=key, reservation_id=reservation_id, reason=data.get("reason", "")
        )
        return render(s.ReservationEnvelopeOutputSerializer, result)


class ReservationExpiryRateView(ApiView):
    """Share of reservations that expired among those that ended in the period (above 1%: tune TTLs)."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="reservations_expiry_rate",
        summary="Reservation expiry rate over a period",
        parameters=[s.ExpiryRateInputSerializer],
        responses={200: s.ExpiryRateOutputSerializer, **READ_ERRORS},
    )
    def get(self, request):
        params = validated(s.ExpiryRateInputSerializer, request.query_params)
        end = params.get("to") or timezone.now()
        start = params.get("from") or end - timedelta(hours=24)
        return render(s.ExpiryRateOutputSerializer, selectors.reservation_expiry_rate(start=start, end=end))
