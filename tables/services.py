"""Tables, seats, buy-ins, hand settlement, cash-out.

A seat's chips are the balance of its seat account; ``Table.chips`` moves with them under the
table's row lock, so the table's chips always equal the sum of its seats. Every chip movement is
one ledger posting: ``buy_in`` (wallet -> seat), ``hand_settlement`` (seats -> seats and the rake
account), ``cash_out`` (seat -> wallet).

Lock order: tables -> seats -> reservations -> accounts (ascending id). Every function here takes
the table's lock first.

seat_result: {"id", "table_id", "user_id", "account_id", "chips", "status": "active|left"}
table_result: {"table_id", "currency", "status": "open|closed", "chips", "seats": [active seats]}
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.identifiers import MAX_HAND_ID, identifier_check, user_id_check
from accounts.models import Account
from accounts.protection import buy_in_check, protection_of
from accounts.results import account_result, transaction_result
from balance_project.errors import ApplicationError
from balance_project.money import amount_or_all, parse_amount, parse_currency
from ledger.idempotency import idempotent, request_hash
from ledger.models import Transaction
from ledger.services import (
    Leg,
    accounts_of,
    accounts_select_among,
    system_account_ids,
    system_account_lock,
    transaction_post,
)
from ledger.work import Work, as_json
from reservations.holds import (
    player_protection_select,
    reservation_commit_locked,
    reservation_new,
    reservation_release_locked,
)
from reservations.rows import RESERVATION_COLUMNS, ReservationRow
from reservations.services import ttl_check
from tables.models import Table
from tables.results import seat_result, table_result
from tables.rows import SEAT_COLUMNS, SeatRow, TableRow, table_write
from tables.seating import (
    TABLE_CURRENCY,
    TABLE_PK,
    player_at_table_select,
    seat_account_ids,
    seat_leave,
    seat_open,
    seats_of,
    seats_require,
    seats_select,
    table_id_check,
    table_of,
    table_require_open,
    table_select,
    wallet_of,
)

MAX_PLAYERS_PER_HAND = 64


def table_open(*, client: str, idempotency_key: str, table_id: str, currency: str) -> dict[str, Any]:
    """Open a table. Opening one that is already open in the same currency answers with it;
    another currency is ``currency_mismatch``, a closed one ``table_closed`` (ids are not reused).
    -> {"table": table_result}"""
    table_id = table_id_check(table_id)
    currency = parse_currency(currency)

    def execute(work: Work) -> dict[str, Any]:
        table = Table.objects.filter(table_id=table_id).first()
        if table is None:
            try:
                with transaction.atomic():
                    table = Table.objects.create(table_id=table_id, currency=currency, opened_by=client)
                work.row("tables_table", table.pk, table)
            except IntegrityError:
                table = Table.objects.get(table_id=table_id)
        if table.currency != currency:
            raise ApplicationError(
                "currency_mismatch",
                f"table {table_id} plays in {table.currency}",
                {"table_id": table_id, "table_currency": table.currency, "currency": currency},
            )
        table_require_open(table)
        return {"table": table_result(table)}

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="table_open",
        params={"table_id": table_id, "currency": currency},
        execute=execute,
        orm=True,
    )


def table_close(*, client: str, idempotency_key: str, table_id: str) -> dict[str, Any]:
    """Close a table: refused (table_not_empty) unless every seat is at zero. Its empty seats are
    left and their accounts closed; pending reservations for it are released. Closing a closed
    table answers with it. -> {"table": table_result}

    Locks the table, its active seats, its pending reservations, then their accounts."""
    table_id = table_id_check(table_id)

    def execute(work: Work) -> dict[str, Any]:
        no_key = work.lock("FOR NO KEY UPDATE")
        table_found = table_select(work, table_id)
        seats_found = work.query(
            f"SELECT {SEAT_COLUMNS} FROM tables_seat WHERE table_id = {TABLE_PK} "
            f"AND status = 'active' ORDER BY id{no_key}",
            [table_id],
        )
        pending_found = work.query(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations_reservation "
            f"WHERE table_id = {TABLE_PK} AND status = 'pending' ORDER BY id{no_key}",
            [table_id],
        )
        accounts_found = accounts_select_among(
            work,
            [
                f"SELECT account_id FROM tables_seat WHERE table_id = {TABLE_PK} AND status = 'active'",
                f"SELECT account_id FROM reservations_reservation WHERE table_id = {TABLE_PK} AND status = 'pending'",
            ],
            [table_id, table_id],
        )
        work.send()
        table = table_of(table_found, table_id)
        if table.status == Table.Status.CLOSED:
            return {"table": table_result(Table.objects.get(pk=table.id))}
        seats = [SeatRow.from_db(row, table) for row in seats_found.all()]
        pending = [ReservationRow.from_db(row, table) for row in pending_found.all()]
        accounts = accounts_of(accounts_found)
        loaded = {
            seat.user_id: accounts[seat.account_id].balance for seat in seats if accounts[seat.account_id].balance != 0
        }
        if loaded or table.chips != 0:
            raise ApplicationError(
                "table_not_empty",
                f"table {table_id} still has chips on its seats",
                {"table_id": table_id, "chips": table.chips, "seats": loaded},
            )
        for reservation in pending:
            reservation_release_locked(
                work, reservation=reservation, accounts=accounts, actor=client, reason="table closed"
            )
        for seat in seats:
            seat_leave(work, seat, accounts[seat.account_id])
        table.status, now = Table.Status.CLOSED, timezone.now()
        work.row("tables_table", table.id, table)
        work.execute(
            "UPDATE tables_table SET status = 'closed', closed_at = %s, updated_at = %s WHERE id = %s",
            [work.time(now), work.time(now), table.id],
        )
        return {"table": table_result(table, seats=[])}

    return idempotent(
        scope=client, key=idempotency_key, operation="table_close", params={"table_id": table_id}, execute=execute
    )


def table_buy_in(
    *, client: str, idempotency_key: str, user_id: str, table_id: str, amount: Any, ttl_seconds: int | None = None
) -> dict[str, Any]:
    """Reserve and commit in one call. -> {"reservation": ..., "seat": ..., "transaction": ...}

    Locks the table, the seat (opened on a first buy-in), the wallet and seat accounts. Refuses
    table_not_found, table_closed, currency_mismatch, account_not_found, account_frozen,
    insufficient_funds; self_excluded, buy_in_limit_exceeded, loss_limit_exceeded
    (accounts/protection.py)."""
    user_id = user_id_check(user_id)
    table_id = table_id_check(table_id)
    amount = parse_amount(amount)
    ttl = ttl_check(ttl_seconds)

    def execute(work: Work) -> dict[str, Any]:
        reservation_ids, tx_ids = work.next_ids("reservations_reservation"), work.next_ids("ledger_transaction")
        table_found, seats_found, accounts_found = player_at_table_select(work, table_id, user_id)
        protection = player_protection_select(work, user_id=user_id, table_id=table_id)
        work.send()
        table = table_of(table_found, table_id)
        table_require_open(table)
        accounts = accounts_of(accounts_found)
        wallet = wallet_of(accounts, user_id, table.currency)
        buy_in_check(protection_of(protection), amount=amount, pending_holds=wallet.held)
        seat = seats_of(seats_found, table).get(user_id)
        if seat is None:  # its rows are only queued: a refusal of the posting drops them
            seat = seat_open(work, table, user_id)
            assert seat.account is not None  # seat_open builds the seat with its new account
            accounts[seat.account_id] = seat.account
        # The reservation is created in this transaction, so no one else can see it, let alone lock it.
        reservation = reservation_new(
            work,
            reservation_id=work.ids(reservation_ids)[0],
            table=table,
            wallet=wallet,
            user_id=user_id,
            amount=amount,
            ttl_seconds=ttl,
            actor=client,
            ends_in_this_work=True,
        )
        return reservation_commit_locked(
            work,
            reservation=reservation,
            table=table,
            seat=seat,
            amount=None,
            actor=client,
            accounts=accounts,
            transaction_id=work.ids(tx_ids)[0],
            held=False,
        )

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="table_buy_in",
        params={"user_id": user_id, "table_id": table_id, "amount": amount, "ttl_seconds": ttl},
        execute=execute,
    )


def hand_settle(
    *,
    client: str,
    idempotency_key: str,
    table_id: str,
    hand_id: str,
    contributions: dict[str, Any],
    payouts: dict[str, Any],
    rake: Any,
) -> dict[str, Any]:
    """Settle one hand atomically; idempotent by (table, hand id) as well as by key.
    -> {"hand_id": str, "table": table_result, "transaction": transaction_result | None}

    Each seat's legs are netted (payout - contribution) into one ``hand_settlement`` posting with
    the rake to the rake account; a hand whose nets are all zero and has no rake posts nothing but
    is still recorded. The same hand id again answers with the first answer if the figures are the
    same, else ``hand_conflict``. Refuses invalid_amount, settlement_invalid (contributions !=
    payouts + rake), player_not_seated, insufficient_chips (a contribution above the seat's chips).

    Locks the table, the players' seats, then the seat accounts and the rake account shard."""
    table_id = table_id_check(table_id)
    hand_id = _hand_id_check(hand_id)
    contributions = _amounts_by_player(contributions, "contributions")
    payouts = _amounts_by_player(payouts, "payouts")
    rake = parse_amount(rake, field="rake", allow_zero=True)
    players = sorted(set(contributions) | set(payouts))
    if not players or len(players) > MAX_PLAYERS_PER_HAND:
        raise ApplicationError(
            "settlement_invalid", f"a hand names 1 to {MAX_PLAYERS_PER_HAND} players", {"players": len(players)}
        )
    if sum(contributions.values()) != sum(payouts.values()) + rake:
        raise ApplicationError(
            "settlement_invalid",
            "contributions must equal payouts plus rake",
            {"contributions": sum(contributions.values()), "payouts": sum(payouts.values()), "rake": rake},
        )
    figures = {"contributions": contributions, "payouts": payouts, "rake": rake}
    figures_hash = request_hash("hand", figures)

    def execute(work: Work) -> dict[str, Any]:
        tx_ids = work.next_ids("ledger_transaction")
        table_found = table_select(work, table_id)
        hand_found = work.query(
            f"SELECT figures_hash, response FROM tables_hand WHERE table_id = {TABLE_PK} AND hand_id = %s",
            [table_id, hand_id],
        )
        seats_found = seats_select(work, table_id, players)
        sources = [seat_account_ids(len(players))]
        params: list[Any] = [table_id, *players]
        if rake:
            sources.append(
                system_account_ids(
                    code=Account.SystemCode.RAKE, currency_sql=TABLE_CURRENCY, shard_sql=f"({TABLE_PK} %% %s)"
                )
            )
            params += [table_id, table_id, settings.RAKE_ACCOUNT_SHARDS]
        accounts_found = accounts_select_among(work, sources, params)
        all_seats_found = work.query(
            f"SELECT s.id, s.user_id, s.account_id, s.status, a.balance FROM tables_seat s "
            f"JOIN accounts_account a ON a.id = s.account_id WHERE s.table_id = {TABLE_PK} AND s.status = 'active' "
            "ORDER BY s.id",
            [table_id],
        )
        work.send()
        table = table_of(table_found, table_id)
        settled = hand_found.one()
        if settled is not None:
            if settled[0] != figures_hash:
                raise ApplicationError(
                    "hand_conflict",
                    f"hand {hand_id} was already settled with other figures",
                    {"table_id": table_id, "hand_id": hand_id},
                )
            replayed: dict[str, Any] = as_json(settled[1])
            return replayed
        table_require_open(table)
        seats = seats_of(seats_found, table)
        seats_require(seats, table, players)
        accounts = accounts_of(accounts_found)
        short = {
            user: {"contribution": amount, "chips": accounts[seats[user].account_id].balance}
            for user, amount in contributions.items()
            if amount > accounts[seats[user].account_id].balance
        }
        if short:
            raise ApplicationError(
                "insufficient_chips",
                "a contribution exceeds the seat's chips",
                {"table_id": table_id, "hand_id": hand_id, "players": short},
            )
        legs = [Leg(seats[user].account_id, payouts.get(user, 0) - contributions.get(user, 0)) for user in players]
        legs = [leg for leg in legs if leg.amount != 0]
        if rake:
            rake_account = next((a for a in accounts.values() if a.kind == Account.Kind.SYSTEM), None)
            if rake_account is None:
                rake_account = system_account_lock(
                    work, code=Account.SystemCode.RAKE, currency=table.currency, shard=rake_shard(table)
                )
                accounts[rake_account.id] = rake_account
            legs.append(Leg(rake_account.id, rake))
        tx = None
        if legs:
            tx = transaction_post(
                work,
                transaction_id=work.ids(tx_ids)[0],
                kind=Transaction.Kind.HAND_SETTLEMENT,
                legs=legs,
                actor=client,
                accounts=accounts,
                metadata={"table_id": table_id, "hand_id": hand_id, **figures},
            )
        table.chips -= rake
        now = tx.created_at if tx else timezone.now()
        table_write(work, table, now)
        table_seats = []
        for pk, user, account_id, status, balance in all_seats_found.all():
            seat = SeatRow(int(pk), user, int(account_id), status, table)
            seat.account = accounts.get(seat.account_id) or SimpleNamespace(balance=int(balance))  # type: ignore[assignment]  # only its balance is rendered
            table_seats.append(seat)
        response = {
            "hand_id": hand_id,
            "table": table_result(table, seats=table_seats),
            "transaction": transaction_result(tx) if tx else None,
        }
        hand = {"figures_hash": figures_hash, "rake": rake, "transaction_id": tx.id if tx else None}
        hand |= {"response": response, "settled_by": client, "created_at": now}
        work.row("tables_hand", f"{table.id}:{hand_id}", hand)
        work.execute(
            "INSERT INTO tables_hand (table_id, hand_id, figures_hash, rake, transaction_id, response, "
            "settled_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                table.id,
                hand_id,
                figures_hash,
                rake,
                tx.id if tx else None,
                json.dumps(response),
                client,
                work.time(now),
            ],
        )
        return response

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="hand_settle",
        params={"table_id": table_id, "hand_id": hand_id, **figures},
        execute=execute,
    )


def seat_cash_out(
    *,
    client: str,
    idempotency_key: str,
    table_id: str,
    user_id: str,
    amount: Any | None = None,
    leave: bool = False,
    whole: Any = False,
) -> dict[str, Any]:
    """Move ``amount`` of the seat's chips back to the wallet, or all of them with ``whole``;
    ``leave`` cashes out everything and closes the seat (exactly one of the three).
    -> {"seat": ..., "transaction": transaction_result | None, "account": account_result}

    A frozen wallet still receives its chips back (they stay frozen there). Refuses
    player_not_seated, insufficient_chips (above the seat's chips), invalid_request (leave with an
    amount other than all the chips). Locks the table, the seat, then the seat account and wallet."""
    table_id = table_id_check(table_id)
    user_id = user_id_check(user_id)
    if not isinstance(leave, bool):
        raise ApplicationError("invalid_request", "leave must be true or false", {"field": "leave"})
    if leave and (amount is not None or whole):
        raise ApplicationError("invalid_request", "leave cashes out every chip: give leave alone", {"field": "leave"})
    amount = None if leave else amount_or_all(amount, whole)

    def execute(work: Work) -> dict[str, Any]:
        tx_ids = work.next_ids("ledger_transaction")
        table_found, seats_found, accounts_found = player_at_table_select(work, table_id, user_id)
        work.send()
        table = table_of(table_found, table_id)
        seats = seats_of(seats_found, table)
        seats_require(seats, table, [user_id])
        seat, accounts = seats[user_id], accounts_of(accounts_found)
        wallet = wallet_of(accounts, user_id, table.currency)
        seat_account = seat.account = accounts[seat.account_id]
        chips = seat_account.balance
        if amount is not None and amount > chips:
            raise ApplicationError(
                "insufficient_chips",
                f"the seat holds {chips}, {amount} requested",
                {"table_id": table_id, "user_id": user_id, "chips": chips, "requested": amount},
            )
        moved = chips if amount is None else amount
        tx = None
        if moved:
            tx = transaction_post(
                work,
                transaction_id=work.ids(tx_ids)[0],
                kind=Transaction.Kind.CASH_OUT,
                actor=client,
                allow_frozen=True,
                accounts=accounts,
                legs=[Leg(seat.account_id, -moved), Leg(wallet.id, moved)],
                metadata={"table_id": table_id, "user_id": user_id, "seat_id": seat.id, "leave": leave},
                closing=[seat.account_id] if leave else (),
            )
            table.chips -= moved
            table_write(work, table, tx.created_at)
        if leave:
            seat_leave(work, seat, seat_account)
        return {
            "seat": seat_result(seat),
            "transaction": transaction_result(tx) if tx else None,
            "account": account_result(wallet),
        }

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="seat_cash_out",
        params={"table_id": table_id, "user_id": user_id, "amount": amount, "leave": leave},
        execute=execute,
    )


def rake_shard(table: TableRow | Table) -> int:
    """Which rake account shard a table's rake goes to (settings.RAKE_ACCOUNT_SHARDS; accounts.models)."""
    return table.pk % settings.RAKE_ACCOUNT_SHARDS


def _hand_id_check(value: Any) -> str:
    return identifier_check(value, field="hand_id", max_length=MAX_HAND_ID)


def _amounts_by_player(value: Any, field: str) -> dict[str, int]:
    """``{user_id: amount}`` with every amount a non-negative integer (``invalid_amount`` otherwise)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApplicationError("invalid_request", f"{field} must be an object of user id -> amount", {"field": field})
    amounts: dict[str, int] = {}
    for user, amount in value.items():
        user = user_id_check(user, field=f"{field} key")
        amounts[user] = amounts.get(user, 0) + parse_amount(amount, field=f"{field}.{user}", allow_zero=True)
    return amounts
