"""Two-phase buy-in holds: reserve, commit, release, expire.

Reserve moves funds from available to held on the player's wallet (nothing leaves it). Commit turns
the hold into a ``buy_in`` posting wallet -> seat, and releases whatever it does not commit, in the
same database transaction. Release and expiry drop the hold. Every transition is legal only from
``pending``, runs under the reservation's row lock, is idempotent by key, and is written as a
``ReservationEvent`` (who, when, why) in the same transaction.

A pending reservation past its ``expires_at`` counts as expired even before the sweep reaches it:
commit and release refuse it with ``reservation_expired`` and expire it on the spot.

Lock order: tables -> seats -> reservations -> accounts (ascending id). The transitions on rows a
call holds locked, which table buy-ins share, are in reservations/holds.py.

Every function returns a JSON-safe dict (what idempotency stores and every channel renders) and
raises ``ApplicationError``. reservation_result: see reservations/results.py (the contract keys
{"id", "account_id", "user_id", "table_id", "currency", "amount", "committed_amount", "status",
"expires_at", "created_at", "updated_at"} plus released_amount, ended_at, ended_by, end_reason,
seat_id, transaction_id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from accounts.identifiers import user_id_check
from accounts.protection import buy_in_check, exclusion_check, protection_of, protection_select
from balance_project.errors import ApplicationError
from balance_project.money import amount_or_all, parse_amount
from balance_project.text import free_text_check
from ledger.idempotency import idempotent
from ledger.rows import AccountRow
from ledger.services import accounts_of, accounts_select, accounts_select_among, holds_change
from ledger.work import Work
from reservations.holds import (
    MAX_REASON,
    player_protection_select,
    require_pending,
    reservation_commit_locked,
    reservation_end,
    reservation_new,
    reservation_release_locked,
    reservation_select,
)
from reservations.models import Reservation
from reservations.results import reservation_result
from reservations.rows import ReservationRow
from tables.models import Table
from tables.rows import SEAT_COLUMNS, TABLE_COLUMNS, SeatRow, TableRow
from tables.seating import (
    seat_open,
    table_id_check,
    table_of,
    table_require_open,
    table_select,
    wallet_at_table_ids,
    wallet_of,
)

log = logging.getLogger(__name__)

EXPIRY_ACTOR = "expiry-job"
# The reservation's columns by its id, for statements queued before it was read.
_OF_RESERVATION = "(SELECT {} FROM reservations_reservation WHERE id = %s)"


def reservation_reserve(
    *, client: str, idempotency_key: str, user_id: str, table_id: str, amount: Any, ttl_seconds: int | None = None
) -> dict[str, Any]:
    """Hold ``amount`` on the user's wallet in the table's currency. -> {"reservation": ...}

    Locks the table (so a reserve and a close of the table do not cross), then the wallet.
    Refuses table_not_found, table_closed, currency_mismatch, account_not_found,
    account_frozen, insufficient_funds; self_excluded, buy_in_limit_exceeded, loss_limit_exceeded
    (accounts/protection.py); invalid_request for a TTL outside the configured bounds."""
    user_id = user_id_check(user_id)
    table_id = table_id_check(table_id)
    amount = parse_amount(amount)
    ttl = ttl_check(ttl_seconds)

    def execute(work: Work) -> dict[str, Any]:
        reservation_ids = work.next_ids("reservations_reservation")
        table_found = table_select(work, table_id)
        wallet_found = accounts_select_among(work, [wallet_at_table_ids()], [user_id, table_id])
        protection = player_protection_select(work, user_id=user_id, table_id=table_id)
        work.send()
        table = table_of(table_found, table_id)
        table_require_open(table)
        accounts = accounts_of(wallet_found)
        wallet = wallet_of(accounts, user_id, table.currency)
        buy_in_check(protection_of(protection), amount=amount, pending_holds=wallet.held)
        holds_change(work, accounts=accounts, hold_deltas={wallet.id: amount})
        reservation = reservation_new(
            work,
            reservation_id=work.ids(reservation_ids)[0],
            table=table,
            wallet=wallet,
            user_id=user_id,
            amount=amount,
            ttl_seconds=ttl,
            actor=client,
        )
        return {"reservation": reservation_result(reservation)}

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="reservation_reserve",
        params={"user_id": user_id, "table_id": table_id, "amount": amount, "ttl_seconds": ttl},
        execute=execute,
    )


def reservation_commit(
    *, client: str, idempotency_key: str, reservation_id: int, amount: Any | None = None, whole: Any = False
) -> dict[str, Any]:
    """Commit ``amount`` (<= held), or everything held with ``whole`` (one of the two), into the
    player's seat at the reservation's table; the rest is released.
    -> {"reservation": ..., "seat": seat_result, "transaction": transaction_result}

    Locks the table, the seat, the reservation, then the wallet and seat accounts (one round trip),
    opening the seat on a first buy-in (one more). Refuses reservation_not_found,
    reservation_expired, reservation_not_pending, table_closed, insufficient_funds (more than held),
    account_frozen, self_excluded (an exclusion started since the reserve)."""
    reservation_id = reservation_id_check(reservation_id)
    amount = amount_or_all(amount, whole)

    def execute(work: Work) -> dict[str, Any]:
        of_reservation = _OF_RESERVATION.format
        seat_where = (
            f"table_id = {of_reservation('table_id')} AND user_id = {of_reservation('user_id')} AND status = 'active'"
        )
        tx_ids = work.next_ids("ledger_transaction")
        table_found = work.query(
            f"SELECT {TABLE_COLUMNS} FROM tables_table WHERE id = {of_reservation('table_id')}"
            f"{work.lock('FOR NO KEY UPDATE')}",
            [reservation_id],
        )
        seat_found = work.query(
            f"SELECT {SEAT_COLUMNS} FROM tables_seat WHERE {seat_where}{work.lock('FOR NO KEY UPDATE')}",
            [reservation_id, reservation_id],
        )
        reservation_found = reservation_select(work, reservation_id)
        accounts_found = accounts_select(
            work,
            f"id = {of_reservation('account_id')} OR id = (SELECT account_id FROM tables_seat WHERE {seat_where})",
            [reservation_id, reservation_id, reservation_id],
        )
        # A commit is a buy-in: an exclusion started since the reserve refuses it (the hold then
        # waits for its release or expiry). The limits were checked when the hold was raised.
        protection = protection_select(
            work,
            owner_sql=of_reservation("user_id"),
            owner_params=[reservation_id],
            currency_sql="''",
            currency_params=[],
            kinds=(),
            now=timezone.now(),
        )
        work.send()
        reservation_row, table_row = reservation_found.one(), table_found.one()
        if reservation_row is None or table_row is None:  # a reservation always has its table (a foreign key)
            raise _not_found(reservation_id)
        table = TableRow.from_db(table_row)
        reservation = ReservationRow.from_db(reservation_row, table)
        if table.status != Table.Status.OPEN:
            require_pending(reservation)
            table_require_open(table)
        require_pending(reservation)
        exclusion_check(protection_of(protection))
        seat_row = seat_found.one()
        seat = SeatRow.from_db(seat_row, table) if seat_row else seat_open(work, table, reservation.user_id)
        accounts = accounts_of(accounts_found)
        if seat.account is not None:
            accounts[seat.account_id] = seat.account
        return reservation_commit_locked(
            work,
            reservation=reservation,
            table=table,
            seat=seat,
            amount=amount,
            actor=client,
            accounts=accounts,
            transaction_id=work.ids(tx_ids)[0],
        )

    return _expiring_overdue(
        reservation_id,
        client,
        lambda: idempotent(
            scope=client,
            key=idempotency_key,
            operation="reservation_commit",
            params={"reservation_id": reservation_id, "amount": amount},
            execute=execute,
        ),
    )


def reservation_release(
    *, client: str, idempotency_key: str, reservation_id: int, reason: str = "", actor: str | None = None
) -> dict[str, Any]:
    """Drop the hold. -> {"reservation": ...}. ``actor`` (default: the client) is who is recorded,
    e.g. the admin user behind the admin action.

    Locks the reservation, then the wallet. Refuses reservation_not_found, reservation_expired,
    reservation_not_pending (a committed one: nothing moves)."""
    reservation_id = reservation_id_check(reservation_id)
    reason = reason_check(reason)
    actor = actor or client

    def execute(work: Work) -> dict[str, Any]:
        reservation, accounts = _reservation_and_wallet_lock(work, reservation_id)
        if reservation is None:
            raise _not_found(reservation_id)
        require_pending(reservation)
        reservation_release_locked(work, reservation=reservation, accounts=accounts, actor=actor, reason=reason)
        return {"reservation": reservation_result(reservation)}

    return _expiring_overdue(
        reservation_id,
        actor,
        lambda: idempotent(
            scope=client,
            key=idempotency_key,
            operation="reservation_release",
            params={"reservation_id": reservation_id, "reason": reason, "actor": actor},
            execute=execute,
        ),
    )


def reservation_expire_overdue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire pending reservations past their expiry; returns how many. (The Celery job calls it.)

    Each reservation expires in its own database transaction (locks: the reservation, then its
    wallet), so one failure does not hold back the rest; the next sweep retries it."""
    cutoff = now or timezone.now()
    overdue = list(
        Reservation.objects.filter(status=Reservation.Status.PENDING, expires_at__lte=cutoff)
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for reservation_id in overdue:
        try:
            expired += reservation_expire_one(
                reservation_id=reservation_id, now=cutoff, actor=EXPIRY_ACTOR, reason="expired by the sweep"
            )
        except DatabaseError:
            log.exception("could not expire reservation %s; the next sweep retries", reservation_id)
    return expired


def reservation_expire_one(
    *, reservation_id: int, now: datetime | None = None, actor: str = EXPIRY_ACTOR, reason: str = ""
) -> bool:
    """Expire one reservation if it is still pending and overdue at ``now``; True if it did.

    Locks the reservation, then its wallet. Idempotent by nature: a second call finds it ended."""
    cutoff = now or timezone.now()
    with Work() as work:
        reservation, accounts = _reservation_and_wallet_lock(work, reservation_id)
        if reservation is None or reservation.status != Reservation.Status.PENDING or reservation.expires_at > cutoff:
            work.commit()
            return False
        holds_change(work, accounts=accounts, hold_deltas={reservation.account_id: -reservation.amount})
        reservation_end(
            work, reservation, status=Reservation.Status.EXPIRED, actor=actor, reason=reason, amount=reservation.amount
        )
        work.commit()
        return True


def ttl_check(value: Any) -> int:
    """The TTL in seconds: the configured default for None, else within the configured bounds."""
    if value is None:
        return settings.RESERVATION_DEFAULT_TTL_SECONDS
    low, high = settings.RESERVATION_MIN_TTL_SECONDS, settings.RESERVATION_MAX_TTL_SECONDS
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplicationError(
            "invalid_request",
            f"ttl_seconds must be an integer from {low} to {high}",
            {"field": "ttl_seconds", "min": low, "max": high},
        )
    return value


def reservation_id_check(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ApplicationError(
            "invalid_request", "reservation_id must be a positive integer", {"field": "reservation_id"}
        )
    return value


def reason_check(value: Any) -> str:
    return "" if value is None else free_text_check(value, field="reason", max_length=MAX_REASON)


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
            reservation_expire_one(
                reservation_id=reservation_id,
                actor=actor,
                now=max(timezone.now(), _parse_timestamp(expired_at)) if expired_at else None,
                reason="expired on the spot: past its expiry when committed or released",
            )
        raise


def _parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reservation_and_wallet_lock(
    work: Work, reservation_id: int
) -> tuple[ReservationRow | None, dict[int, AccountRow]]:
    """Lock the reservation, then its wallet, in one round trip (its table is read, not locked)."""
    reservation_found = reservation_select(work, reservation_id)
    table_found = work.query(
        f"SELECT {TABLE_COLUMNS} FROM tables_table WHERE id = {_OF_RESERVATION.format('table_id')}", [reservation_id]
    )
    wallet_found = accounts_select(work, f"id = {_OF_RESERVATION.format('account_id')}", [reservation_id])
    work.send()
    reservation_row, table_row = reservation_found.one(), table_found.one()
    if reservation_row is None or table_row is None:  # a reservation always has its table (a foreign key)
        return None, {}
    return (
        ReservationRow.from_db(reservation_row, TableRow.from_db(table_row)),
        accounts_of(wallet_found),
    )


def _not_found(reservation_id: int) -> ApplicationError:
    return ApplicationError(
        "reservation_not_found", f"reservation {reservation_id} does not exist", {"reservation_id": reservation_id}
    )
