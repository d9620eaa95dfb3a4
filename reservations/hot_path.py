"""Reserve, commit and release on the PostgreSQL hot path (see ledger/hot_path.py): each is one
call of its PL/pgSQL function (reservations/sql), answered through the same result functions as
the ORM path in reservations/services.py."""
from __future__ import annotations

from typing import Any

from accounts.results import transaction_result
from ledger.hot_path import account, call, from_row, posted_transaction
from reservations.metrics import reservation_outcome_count_on_commit
from reservations.models import Reservation
from reservations.results import reservation_result
from tables.models import Seat, Table
from tables.results import seat_result


def reserve(*, table_id: str, user_id: str, amount: int, ttl_seconds: int, actor: str) -> dict[str, Any]:
    answer = call("SELECT balance_reserve(%s, %s, %s::bigint, %s::integer, %s)",
                  [table_id, user_id, amount, ttl_seconds, actor])
    return {"reservation": reservation_result(_reservation(answer))}


def commit(*, reservation_id: int, amount: int | None, actor: str) -> dict[str, Any]:
    answer = call("SELECT balance_reservation_commit(%s::bigint, %s::bigint, %s)", [reservation_id, amount, actor])
    return committed(answer)


def release(*, reservation_id: int, reason: str, actor: str) -> dict[str, Any]:
    answer = call("SELECT balance_reservation_release(%s::bigint, %s, %s)", [reservation_id, reason, actor])
    reservation_outcome_count_on_commit(Reservation.Status.RELEASED)
    return {"reservation": reservation_result(_reservation(answer))}


def committed(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer of a commit (or a buy-in): {"reservation", "seat", "transaction"}."""
    reservation_outcome_count_on_commit(Reservation.Status.COMMITTED)
    reservation = _reservation(answer)
    seat = from_row(Seat, answer["seat"])
    seat.table, seat.account = reservation.table, account(answer, seat.account_id)
    return {"reservation": reservation_result(reservation), "seat": seat_result(seat),
            "transaction": transaction_result(posted_transaction(answer))}


def _reservation(answer: dict[str, Any]) -> Reservation:
    reservation = from_row(Reservation, answer["reservation"])
    reservation.table = from_row(Table, answer["table"])
    return reservation
