"""Service result dicts (accounts/results.py and the reservation/table contracts) -> balance.v1
messages. One place, so every servicer renders a reservation or a seat the same way."""

from __future__ import annotations

import json
from typing import Any

from balance_client._pb.balance.v1 import balance_pb2 as pb


def account_pb(result: dict[str, Any]) -> pb.Account:
    return pb.Account(
        id=result["id"],
        kind=result["kind"],
        owner_ref=result.get("owner_ref", ""),
        system_code=result.get("system_code", ""),
        currency=result["currency"],
        balance=result["balance"],
        held=result["held"],
        available=result["available"],
        status=result["status"],
        version=result.get("version", 0),
    )


def metadata_pb(metadata: dict[str, Any] | None) -> dict[str, str]:
    """JSON metadata -> map<string, string>: strings as they are, other values as their JSON text."""
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))
        for k, v in (metadata or {}).items()
    }


def transaction_pb(result: dict[str, Any] | None) -> pb.Transaction | None:
    if not result:
        return None
    return pb.Transaction(
        id=result["id"],
        kind=result["kind"],
        currency=result["currency"],
        actor=result.get("actor", ""),
        metadata=metadata_pb(result.get("metadata")),
        created_at=result.get("created_at", ""),
        entries=[
            pb.Entry(account_id=e["account_id"], seq=e["seq"], amount=e["amount"], balance_after=e["balance_after"])
            for e in result.get("entries", [])
        ],
    )


def ledger_item_pb(item: dict[str, Any]) -> pb.LedgerItem:
    return pb.LedgerItem(
        transaction_id=item["transaction_id"],
        kind=item["kind"],
        seq=item["seq"],
        amount=item["amount"],
        balance_after=item["balance_after"],
        created_at=item.get("created_at", ""),
        metadata=metadata_pb(item.get("metadata")),
    )


def _enum(enum_type: Any, prefix: str, value: str | None) -> Any:  # the enum's number, as its pb2 type
    name = f"{prefix}_{(value or '').upper()}"
    return enum_type.Value(name) if name in enum_type.keys() else 0


def reservation_pb(result: dict[str, Any]) -> pb.Reservation:
    return pb.Reservation(
        id=result["id"],
        account_id=result["account_id"],
        user_id=result["user_id"],
        table_id=result["table_id"],
        currency=result["currency"],
        amount=result["amount"],
        committed_amount=result.get("committed_amount") or 0,
        status=_enum(pb.ReservationStatus, "RESERVATION_STATUS", result["status"]),
        expires_at=result.get("expires_at") or "",
        created_at=result.get("created_at") or "",
        updated_at=result.get("updated_at") or "",
    )


def seat_pb(result: dict[str, Any]) -> pb.Seat:
    return pb.Seat(
        id=result["id"],
        table_id=result["table_id"],
        user_id=result["user_id"],
        account_id=result["account_id"],
        chips=result["chips"],
        status=_enum(pb.SeatStatus, "SEAT_STATUS", result["status"]),
    )


def table_pb(result: dict[str, Any]) -> pb.Table:
    return pb.Table(
        table_id=result["table_id"],
        currency=result["currency"],
        status=_enum(pb.TableStatus, "TABLE_STATUS", result["status"]),
        chips=result["chips"],
        seats=[seat_pb(seat) for seat in result.get("seats", [])],
    )


def optional_field(request: Any, field: str) -> Any | None:
    """The value of a proto3 ``optional`` field, or None when the caller left it unset."""
    return getattr(request, field) if request.HasField(field) else None
