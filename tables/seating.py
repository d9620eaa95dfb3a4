"""Checks, lookups and row locks shared by the table and reservation services. No money moves here.

Lock order for the whole service: tables -> seats -> reservations -> accounts (ascending id).
The lock helpers here take the first two; callers must take them before any reservation or account.
Table, seat and reservation rows are locked ``FOR NO KEY UPDATE`` (see ``table_lock``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from accounts.models import Account
from balance_project.errors import ApplicationError
from tables.models import Seat, Table

TABLE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_USER_ID = 128


def table_id_check(value: Any, *, field: str = "table_id") -> str:
    if not isinstance(value, str) or not TABLE_ID_RE.match(value):
        raise ApplicationError("invalid_request",
                               f"{field} must be 1 to 64 characters of letters, digits and . _ : -",
                               {"field": field})
    return value


def user_id_check(value: Any, *, field: str = "user_id") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_ID or not value.isprintable():
        raise ApplicationError("invalid_request", f"{field} must be 1 to {MAX_USER_ID} printable characters",
                               {"field": field})
    return value.strip()


def table_find(table_id: str) -> Table:
    """The table, unlocked; ``table_not_found`` if unknown."""
    table = Table.objects.filter(table_id=table_id).first()
    if table is None:
        raise ApplicationError("table_not_found", f"table {table_id} does not exist", {"table_id": table_id})
    return table


def table_lock(table_id: str) -> Table:
    """Lock the table row: every chip movement and every reservation at a table holds it, so its
    seats, its hands and its ``chips`` change one call at a time.

    ``FOR NO KEY UPDATE`` rather than ``FOR UPDATE`` (on PostgreSQL): the row's key never changes,
    and a plain ``FOR UPDATE`` would also block the ``KEY SHARE`` lock that inserting a row with a
    foreign key to the table takes, which lets an unrelated insert wait in the middle of the order."""
    table = Table.objects.select_for_update(no_key=True).filter(table_id=table_id).first()
    if table is None:
        raise ApplicationError("table_not_found", f"table {table_id} does not exist", {"table_id": table_id})
    return table


def table_require_open(table: Table) -> None:
    if table.status != Table.Status.OPEN:
        raise ApplicationError("table_closed", f"table {table.table_id} is closed", {"table_id": table.table_id})


def seats_lock(table: Table, user_ids: Iterable[str]) -> dict[str, Seat]:
    """Lock the active seats of ``user_ids`` at ``table`` (ascending id); ``player_not_seated``
    names the players without one. The table must already be locked."""
    wanted = sorted(set(user_ids))
    seats = {seat.user_id: seat for seat in Seat.objects.select_for_update(no_key=True)
             .filter(table=table, user_id__in=wanted, status=Seat.Status.ACTIVE).order_by("pk")}
    missing = [user_id for user_id in wanted if user_id not in seats]
    if missing:
        raise ApplicationError("player_not_seated", f"not seated at table {table.table_id}: {', '.join(missing)}",
                               {"table_id": table.table_id, "user_ids": missing})
    for seat in seats.values():
        seat.table = table
    return seats


def seat_lock_or_open(table: Table, user_id: str) -> Seat:
    """The player's active seat at ``table``, locked, or a new one with a new seat account.

    The table must already be locked, so two buy-ins cannot both open a seat (the partial unique
    constraint on active seats would refuse the second anyway)."""
    seat = Seat.objects.select_for_update(no_key=True) \
        .filter(table=table, user_id=user_id, status=Seat.Status.ACTIVE).first()
    if seat is None:
        account = Account.objects.create(kind=Account.Kind.SEAT, owner_ref=user_id, currency=table.currency)
        seat = Seat.objects.create(table=table, user_id=user_id, account=account)
    seat.table = table
    return seat


def seat_leave(seat: Seat, account: Account) -> None:
    """Mark a seat left; its account (locked by the caller, at zero) is closed with it."""
    from ledger.services import account_status_set

    account_status_set(account=account, status=Account.Status.CLOSED)
    seat.status = Seat.Status.LEFT
    seat.left_at = timezone.now()
    seat.save(update_fields=["status", "left_at"])


def wallet_for(user_id: str, currency: str) -> Account:
    """The user's wallet in ``currency``: ``currency_mismatch`` if they only hold other currencies,
    ``account_not_found`` if they hold none."""
    wallet = Account.objects.filter(kind=Account.Kind.USER, owner_ref=user_id, currency=currency).first()
    if wallet is not None:
        return wallet
    others = sorted(Account.objects.filter(kind=Account.Kind.USER, owner_ref=user_id)
                    .values_list("currency", flat=True))
    if others:
        raise ApplicationError("currency_mismatch",
                               f"the table plays in {currency}; {user_id} has wallets in {', '.join(others)}",
                               {"user_id": user_id, "table_currency": currency, "wallet_currencies": others})
    raise ApplicationError("account_not_found", f"{user_id} has no {currency} wallet",
                           {"user_id": user_id, "currency": currency})
