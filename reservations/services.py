"""Two-phase buy-in holds: reserve, commit, release, expire.

Reserve moves funds from available to held on the player's wallet (nothing leaves it). Commit turns
the hold into a ``buy_in`` posting wallet -> seat, and releases whatever it does not commit, in the
same database transaction. Release and expiry drop the hold. Every transition is legal only from
``pending``, runs under the reservation's row lock, is idempotent by key, and is written as a
``ReservationEvent`` (who, when, why) in the same transaction.

A pending reservation past its ``expires_at`` counts as expired even before the sweep reaches it:
commit and release refuse it with ``reservation_expired`` and expire it on the spot.

Lock order: tables -> seats -> reservations -> accounts (ascending id).

Every function returns a JSON-safe dict (what idempotency stores and every channel renders) and
raises ``ApplicationError``. reservation_result: see reservations/results.py (the contract keys
{"id", "account_id", "user_id", "table_id", "currency", "amount", "committed_amount", "status",
"expires_at", "created_at", "updated_at"} plus released_amount, ended_at, ended_by, end_reason,
seat_id, transaction_id).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.models import Account
from accounts.results import transaction_result
from balance_project.errors import ApplicationError
from balance_project.money import parse_amount
from ledger import hot_path
from ledger.idempotency import idempotent
from ledger.models import Transaction
from ledger.services import Leg, accounts_lock, holds_apply, transaction_post
from reservations import hot_path as reservations_hot_path
from reservations.metrics import reservation_outcome_count_on_commit
from reservations.models import Reservation, ReservationEvent
from reservations.results import reservation_result
from tables.models import Seat, Table
from tables.results import seat_result
from tables.seating import (
    seat_lock_or_open, table_id_check, table_lock, table_require_open, user_id_check, wallet_for,
)

log = logging.getLogger(__name__)

EXPIRY_ACTOR = "expiry-job"
MAX_REASON = 255


def reservation_reserve(*, client: str, idempotency_key: str, user_id: str, table_id: str, amount: Any,
                        ttl_seconds: int | None = None) -> dict[str, Any]:
    """Hold ``amount`` on the user's wallet in the table's currency. -> {"reservation": ...}

    Locks the table (so a reserve and a close of the table do not cross), then the wallet.
    Refuses table_not_found, table_closed, currency_mismatch, account_not_found,
    account_frozen, insufficient_funds; invalid_request for a TTL outside the configured bounds."""
    user_id = user_id_check(user_id)
    table_id = table_id_check(table_id)
    amount = parse_amount(amount)
    ttl = ttl_check(ttl_seconds)

    def execute() -> dict[str, Any]:
        if hot_path.enabled():
            return reservations_hot_path.reserve(table_id=table_id, user_id=user_id, amount=amount,
                                                 ttl_seconds=ttl, actor=client)
        reservation = reservation_hold(table=table_lock(table_id), user_id=user_id, amount=amount,
                                       ttl_seconds=ttl, actor=client)
        return {"reservation": reservation_result(reservation)}

    return idempotent(scope=client, key=idempotency_key, operation="reservation_reserve",
                      params={"user_id": user_id, "table_id": table_id, "amount": amount, "ttl_seconds": ttl},
                      execute=execute)


def reservation_commit(*, client: str, idempotency_key: str, reservation_id: int,
                       amount: Any | None = None) -> dict[str, Any]:
    """Commit all (or ``amount`` <= held) into the player's seat at the reservation's table; the
    rest is released. -> {"reservation": ..., "seat": seat_result, "transaction": transaction_result}

    Locks the table, the seat, the reservation, then the wallet and seat accounts. Refuses
    reservation_not_found, reservation_expired, reservation_not_pending, table_closed,
    insufficient_funds (more than held), account_frozen."""
    reservation_id = reservation_id_check(reservation_id)
    amount = None if amount is None else parse_amount(amount)

    def execute() -> dict[str, Any]:
        if hot_path.enabled():
            return reservations_hot_path.commit(reservation_id=reservation_id, amount=amount, actor=client)
        return reservation_commit_into_seat(reservation_id=reservation_id, amount=amount, actor=client)

    return _expiring_overdue(reservation_id, client, lambda: idempotent(
        scope=client, key=idempotency_key, operation="reservation_commit",
        params={"reservation_id": reservation_id, "amount": amount}, execute=execute))


def reservation_release(*, client: str, idempotency_key: str, reservation_id: int, reason: str = "",
                        actor: str | None = None) -> dict[str, Any]:
    """Drop the hold. -> {"reservation": ...}. ``actor`` (default: the client) is who is recorded,
    e.g. the admin user behind the admin action.

    Locks the reservation, then the wallet. Refuses reservation_not_found, reservation_expired,
    reservation_not_pending (a committed one: nothing moves)."""
    reservation_id = reservation_id_check(reservation_id)
    reason = reason_check(reason)
    actor = actor or client

    def execute() -> dict[str, Any]:
        if hot_path.enabled():
            return reservations_hot_path.release(reservation_id=reservation_id, reason=reason, actor=actor)
        reservation = _reservation_lock(reservation_id)
        _require_pending(reservation)
        reservation_release_locked(reservation=reservation, actor=actor, reason=reason)
        return {"reservation": reservation_result(reservation)}

    return _expiring_overdue(reservation_id, actor, lambda: idempotent(
        scope=client, key=idempotency_key, operation="reservation_release",
        params={"reservation_id": reservation_id, "reason": reason, "actor": actor}, execute=execute))


def reservation_expire_overdue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire pending reservations past their expiry; returns how many. (The Celery job calls it.)

    Each reservation expires in its own database transaction (locks: the reservation, then its
    wallet), so one failure does not hold back the rest; the next sweep retries it."""
    cutoff = now or timezone.now()
    overdue = list(Reservation.objects.filter(status=Reservation.Status.PENDING, expires_at__lte=cutoff)
                   .order_by("expires_at", "pk").values_list("pk", flat=True)[:limit])
    expired = 0
    for reservation_id in overdue:
        try:
            expired += reservation_expire_one(reservation_id=reservation_id, now=cutoff, actor=EXPIRY_ACTOR,
                                              reason="expired by the sweep")
        except DatabaseError:
            log.exception("could not expire reservation %s; the next sweep retries", reservation_id)
    return expired


def reservation_expire_one(*, reservation_id: int, now: datetime | None = None, actor: str = EXPIRY_ACTOR,
                           reason: str = "") -> bool:
    """Expire one reservation if it is still pending and overdue at ``now``; True if it did.

    Locks the reservation, then its wallet. Idempotent by nature: a second call finds it ended."""
    cutoff = now or timezone.now()
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update(no_key=True).filter(pk=reservation_id).first()
        if reservation is None or reservation.status != Reservation.Status.PENDING \
                or reservation.expires_at > cutoff:
            return False
        holds_apply(hold_deltas={reservation.account_id: -reservation.amount})
        _end(reservation, status=Reservation.Status.EXPIRED, actor=actor, reason=reason, amount=reservation.amount)
        return True


def reservation_release_locked(*, reservation: Reservation, actor: str, reason: str) -> None:
    """Release a pending reservation the caller has already locked (with its wallet, in order)."""
    holds_apply(hold_deltas={reservation.account_id: -reservation.amount})
    _end(reservation, status=Reservation.Status.RELEASED, actor=actor, reason=reason, amount=reservation.amount)


def reservation_hold(*, table: Table, user_id: str, amount: int, ttl_seconds: int, actor: str,
                     locked: dict[int, Account] | None = None, wallet_id: int | None = None) -> Reservation:
    """Hold ``amount`` on the user's wallet for ``table`` (no idempotency: callers wrap it).

    The caller has locked the table. Locks the wallet (holds_apply refuses a frozen wallet and a hold
    beyond available), unless the caller passes the wallet's id and its row already ``locked``."""
    table_require_open(table)
    if wallet_id is None or locked is None or wallet_id not in locked:
        wallet_id = wallet_for(user_id, table.currency).pk
    holds_apply(hold_deltas={wallet_id: amount}, locked=locked)
    reservation = Reservation.objects.create(
        account_id=wallet_id, table=table, user_id=user_id, currency=table.currency, amount=amount,
        expires_at=timezone.now() + timedelta(seconds=ttl_seconds), created_by=actor,
    )
    ReservationEvent.objects.create(reservation=reservation, kind=ReservationEvent.Kind.RESERVED,
                                    to_status=Reservation.Status.PENDING, amount=amount, actor=actor,
                                    reason=f"ttl {ttl_seconds}s")
    return reservation


def reservation_commit_into_seat(*, reservation_id: int, amount: int | None, actor: str) -> dict[str, Any]:
    """Post the buy-in of a pending reservation (no idempotency: callers wrap it).

    Locks the table, the player's seat (opening one on a first buy-in), the reservation, then the
    wallet and the seat account."""
    found = Reservation.objects.select_related("table").filter(pk=reservation_id).first()
    if found is None:
        raise _not_found(reservation_id)
    table = table_lock(found.table.table_id)
    if table.status != Table.Status.OPEN:
        _require_pending(_reservation_lock(reservation_id, table=table))
        table_require_open(table)
    seat = seat_lock_or_open(table, found.user_id)
    reservation = _reservation_lock(reservation_id, table=table)
    _require_pending(reservation)
    locked = accounts_lock([reservation.account_id, seat.account_id])
    return reservation_commit_locked(reservation=reservation, table=table, seat=seat, amount=amount, actor=actor,
                                     locked=locked)


def reservation_commit_locked(*, reservation: Reservation, table: Table, seat: Seat, amount: int | None,
                              actor: str, locked: dict[int, Account]) -> dict[str, Any]:
    """Commit a pending reservation into ``seat``: the caller holds, in order, the table, the seat,
    the reservation and ``locked`` (the wallet and the seat account). Answers from those rows
    without reading anything back."""
    committed = reservation.amount if amount is None else amount
    if committed > reservation.amount:
        raise ApplicationError("insufficient_funds",
                               f"reservation {reservation.pk} holds {reservation.amount}, {committed} requested",
                               {"reservation_id": reservation.pk, "held": reservation.amount, "requested": committed})
    released = reservation.amount - committed
    tx = transaction_post(
        kind=Transaction.Kind.BUY_IN, actor=actor, locked=locked,
        legs=[Leg(reservation.account_id, -committed), Leg(seat.account_id, committed)],
        hold_deltas={reservation.account_id: -reservation.amount},
        metadata={"table_id": table.table_id, "user_id": reservation.user_id, "reservation_id": reservation.pk,
                  "seat_id": seat.pk, "released": released},
    )
    table.chips += committed
    table.save(update_fields=["chips", "updated_at"])
    reservation.committed_amount, reservation.seat, reservation.transaction = committed, seat, tx
    _end(reservation, status=Reservation.Status.COMMITTED, actor=actor, amount=committed,
         reason=f"committed {committed}, released {released}")
    seat.table, seat.account = table, locked[seat.account_id]
    return {"reservation": reservation_result(reservation), "seat": seat_result(seat),
            "transaction": transaction_result(tx)}


def ttl_check(value: Any) -> int:
    """The TTL in seconds: the configured default for None, else within the configured bounds."""
    if value is None:
        return settings.RESERVATION_DEFAULT_TTL_SECONDS
    low, high = settings.RESERVATION_MIN_TTL_SECONDS, settings.RESERVATION_MAX_TTL_SECONDS
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplicationError("invalid_request", f"ttl_seconds must be an integer from {low} to {high}",
                               {"field": "ttl_seconds", "min": low, "max": high})
    return value


def reservation_id_check(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ApplicationError("invalid_request", "reservation_id must be a positive integer",
                               {"field": "reservation_id"})
    return value


def reason_check(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise ApplicationError("invalid_request", f"reason must be text of at most {MAX_REASON} characters",
                               {"field": "reason"})
    return value.strip()


def _expiring_overdue(reservation_id: int, actor: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``call``; when it is refused because the reservation is overdue, expire it on the spot.

    The refusal rolls back everything ``call`` did (that is how a refusal is stored with its key), so
    the expiry runs after it, in its own transaction."""
    try:
        return call()
    except ApplicationError as refusal:
        if refusal.code == "reservation_expired":
            # As of its expiry: the clock that refused it (this process's, or the database's on the
            # hot path) said it was past it, whatever this process's clock says now.
            expired_at = refusal.details.get("expires_at")
            reservation_expire_one(reservation_id=reservation_id, actor=actor,
                                   now=max(timezone.now(), _parse_timestamp(expired_at)) if expired_at else None,
                                   reason="expired on the spot: past its expiry when committed or released")
        raise


def _parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reservation_lock(reservation_id: int, *, table: Table | None = None) -> Reservation:
    """Lock the reservation; ``table``: its table, if the caller already holds it."""
    reservation = Reservation.objects.select_for_update(no_key=True).filter(pk=reservation_id).first()
    if reservation is None:
        raise _not_found(reservation_id)
    if table is not None and table.pk == reservation.table_id:
        reservation.table = table
    else:
        reservation.table = Table.objects.get(pk=reservation.table_id)
    return reservation


def _require_pending(reservation: Reservation) -> None:
    details = {"reservation_id": reservation.pk, "status": reservation.status}
    if reservation.status == Reservation.Status.EXPIRED:
        raise ApplicationError("reservation_expired", f"reservation {reservation.pk} has expired", details)
    if reservation.status != Reservation.Status.PENDING:
        raise ApplicationError("reservation_not_pending",
                               f"reservation {reservation.pk} is {reservation.status}, not pending", details)
    if reservation.expires_at <= timezone.now():
        raise ApplicationError("reservation_expired", f"reservation {reservation.pk} has expired",
                               {**details, "expires_at": reservation_result(reservation)["expires_at"]})


def _end(reservation: Reservation, *, status: str, actor: str, reason: str, amount: int) -> None:
    """Record a transition out of pending, with its audit event, in the caller's transaction."""
    previous = reservation.status
    reservation.status = status
    reservation.ended_at = timezone.now()
    reservation.ended_by = actor[:128]
    reservation.end_reason = reason[:MAX_REASON]
    reservation.save(update_fields=["status", "committed_amount", "seat", "transaction", "ended_at", "ended_by",
                                    "end_reason", "updated_at"])
    ReservationEvent.objects.create(reservation=reservation, kind=status, from_status=previous, to_status=status,
                                    amount=amount, actor=actor[:128], reason=reason[:MAX_REASON])
    reservation_outcome_count_on_commit(status)


def _not_found(reservation_id: int) -> ApplicationError:
    return ApplicationError("reservation_not_found", f"reservation {reservation_id} does not exist",
                            {"reservation_id": reservation_id})
