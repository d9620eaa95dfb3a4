"""gRPC adapters of player protection: the services of accounts/protection_services.py, the same
as HTTP. ``AccountsServicer`` (accounts/grpc_servicer.py) carries these methods."""

from __future__ import annotations

from typing import Any

from accounts.protection_services import player_limit_set, player_protection_get, self_exclusion_start
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_project.errors import ApplicationError
from balance_project.grpc.caller import caller_client
from balance_project.grpc.messages import optional_field


def limit_pb(result: dict[str, Any]) -> pb.PlayerLimit:
    return pb.PlayerLimit(
        owner_ref=result["owner_ref"],
        currency=result["currency"],
        kind=result["kind"],
        period=result["period"],
        value=result["value"],
        pending_value=result["pending_value"],
        pending_removal=result["pending_removal"],
        pending_effective_at=result["pending_effective_at"] or "",
    )


def exclusion_pb(result: dict[str, Any] | None) -> pb.Exclusion | None:
    if result is None:
        return None
    return pb.Exclusion(
        owner_ref=result["owner_ref"], kind=result["kind"], starts_at=result["starts_at"], ends_at=result["ends_at"]
    )


class ProtectionServicer:
    def GetPlayerProtection(self, request: pb.GetPlayerProtectionRequest, context) -> pb.GetPlayerProtectionResponse:
        result = player_protection_get(owner_ref=request.owner_ref, currency=optional_field(request, "currency"))
        return pb.GetPlayerProtectionResponse(
            owner_ref=result["owner_ref"],
            limits=[limit_pb(limit) for limit in result["limits"]],
            exclusion=exclusion_pb(result["exclusion"]),
        )

    def SetPlayerLimit(self, request: pb.SetPlayerLimitRequest, context) -> pb.SetPlayerLimitResponse:
        value = optional_field(request, "value")
        if request.remove == (value is not None):  # a missing value never means "remove" by accident
            raise ApplicationError(
                "invalid_request",
                "give either a value or remove=true",
                {"field": "value" if value is None else "remove"},
            )
        result = player_limit_set(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            owner_ref=request.owner_ref,
            currency=request.currency,
            kind=request.kind,
            period=request.period,
            value=value,
        )
        return pb.SetPlayerLimitResponse(limit=limit_pb(result["limit"]))

    def StartSelfExclusion(self, request: pb.StartSelfExclusionRequest, context) -> pb.StartSelfExclusionResponse:
        result = self_exclusion_start(
            client=caller_client(),
            idempotency_key=request.idempotency_key,
            owner_ref=request.owner_ref,
            kind=request.kind,
            days=request.days,
        )
        return pb.StartSelfExclusionResponse(
            exclusion=exclusion_pb(result["exclusion"]), excluded_until=result["excluded_until"]
        )
