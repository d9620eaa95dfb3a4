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

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from accounts.results import account_result, transaction_result
from accounts.services import system_account_get
from balance_project.errors import ApplicationError
from balance_project.money import parse_amount, parse_currency
from ledger import hot_path
from ledger.idempotency import idempotent, request_hash
from ledger.models import Transaction
from ledger.services import Leg, accounts_lock, transaction_post
from reservations.models import Reservation
from reservations.services import (
    reservation_commit_locked, reservation_hold, reservation_release_locked, ttl_check,
)
from tables import hot_path as tables_hot_path
from tables.models import Hand, Seat, Table
from tables.results import seat_result, table_result
from tables.seating import (
    seat_leave, seat_lock_or_open, seats_lock, table_id_check, table_lock, table_require_open, user_id_check,
    wallet_for,
)

MAX_HAND_ID = 128
MAX_PLAYERS_PER_HAND = 64


def table_open(*, client: str, idempotency_key: str, table_id: str, currency: str) -> dict[str, Any]:
    """Open a table. Opening one that is already open in the same currency answers with it;
    another currency is ``currency_mismatch``, a closed one ``table_closed`` (ids are not reused).
    -> {"table": table_result}"""
    table_id = table_id_check(table_id)
    currency = parse_currency(currency)

    def execute() -> dict[str, Any]:
        table = Table.objects.filter(table_id=table_id).first()
        if table is None:
            try:
                with transaction.atomic():
                    table = Table.objects.create(table_id=table_id, currency=currency, opened_by=client)
            except IntegrityError:
                table = Table.objects.get(table_id=table_id)
        if table.currency != currency:
            raise ApplicationError("currency_mismatch", f"table {table_id} plays in {table.currency}",
                                   {"table_id": table_id, "table_currency": table.currency, "currency": currency})
        table_require_open(table)
        return {"table": table_result(table)}

    return idempotent(scope=client, key=idempotency_key, operation="table_open",
                      params={"table_id": table_id, "currency": currency}, execute=execute)


def table_close(*, client: str, idempotency_key: str, table_id: str) -> dict[str, Any]:
    """Close a table: refused (table_not_empty) unless every seat is at zero. Its empty seats are
    left and their accounts closed; pending reservations for it are released. Closing a closed
    table answers with it. -> {"table": table_result}

    Locks the table, its active seats, its pending reservations, then their accounts."""
    table_id = table_id_check(table_id)

    def execute() -> dict[str, Any]:
        table = table_lock(table_id)
        if table.status == Table.Status.CLOSED:
            return {"table": table_result(table)}
        seats = list(Seat.objects.select_for_update(no_key=True)
                     .filter(table=table, status=Seat.Status.ACTIVE).order_by("pk"))
        pending = list(Reservation.objects.select_for_update(no_key=True)
                       .filter(table=table, status=Reservation.Status.PENDING).order_by("pk"))
        accounts = accounts_lock([seat.account_id for seat in seats] + [r.account_id for r in pending])
        loaded = {seat.user_id: accounts[seat.account_id].balance for seat in seats
                  if accounts[seat.account_id].balance != 0}
        if loaded or table.chips != 0:
            raise ApplicationError("table_not_empty", f"table {table_id} still has chips on its seats",
                                   {"table_id": table_id, "chips": table.chips, "seats": loaded})
        for reservation in pending:
            reservation.table = table
            reservation_release_locked(reservation=reservation, actor=client, reason="table closed")
        for seat in seats:
            seat_leave(seat, accounts[seat.account_id])
        table.status, table.closed_at = Table.Status.CLOSED, timezone.now()
        table.save(update_fields=["status", "closed_at", "updated_at"])
        return {"table": table_result(table)}

    return idempotent(scope=client, key=idempotency_key, operation="table_close", params={"table_id": table_id},
                      execute=execute)


def table_buy_in(*, client: str, idempotency_key: str, user_id: str, table_id: str, amount: Any,
                 ttl_seconds: int | None = None) -> dict[str, Any]:
    """Reserve and commit in one call. -> {"reservation": ..., "seat": ..., "transaction": ...}

    Locks the table, the seat (opened on a first buy-in), the wallet and seat accounts. Refuses
    table_not_found, table_closed, currency_mismatch, account_not_found, account_frozen,
    insufficient_funds."""
    user_id = user_id_check(user_id)
    table_id = table_id_check(table_id)
    amount = parse_amount(amount)
    ttl = ttl_check(ttl_seconds)

    def execute() -> dict[str, Any]:
        if hot_path.enabled():
            return tables_hot_path.buy_in(table_id=table_id, user_id=user_id, amount=amount, ttl_seconds=ttl,
                                          actor=client)
        table = table_lock(table_id)
        table_require_open(table)
        seat = seat_lock_or_open(table, user_id)
        wallet = wallet_for(user_id, table.currency)
        locked = accounts_lock([wallet.pk, seat.account_id])
        # The reservation is created in this transaction, so no one else can see it, let alone lock it.
        reservation = reservation_hold(table=table, user_id=user_id, amount=amount, ttl_seconds=ttl, actor=client,
                                       locked=locked, wallet_id=wallet.pk)
        return reservation_commit_locked(reservation=reservation, table=table, seat=seat, amount=None, actor=client,
                                         locked=locked)

    return idempotent(scope=client, key=idempotency_key, operation="table_buy_in",
                      params={"user_id": user_id, "table_id": table_id, "amount": amount, "ttl_seconds": ttl},
                      execute=execute)


def hand_settle(*, client: str, idempotency_key: str, table_id: str, hand_id: str,
                contributions: dict[str, Any], payouts: dict[str, Any], rake: Any) -> dict[str, Any]:
    """Settle one hand atomically; idempotent by (table, hand id) as well as by key.
    -> {"hand_id": str, "table": table_result, "transaction": transaction_result | None}

    Each seat's legs are netted (payout - contribution) into one ``hand_settlement`` posting with
    the rake to the rake account; a hand whose nets are all zero and has no rake posts nothing but
    is still recorded. The same hand id again answers with the first answer if the figures are the
    same, else ``hand_conflict``. Refuses invalid_amount, settlement_invalid (contributions !=
    payouts + rake), player_not_seated, insufficient_chips (a contribution above the seat's chips).

    Locks the table, the players' seats, then the seat accounts and the rake account."""
    table_id = table_id_check(table_id)
    hand_id = _hand_id_check(hand_id)
    contributions = _amounts_by_player(contributions, "contributions")
    payouts = _amounts_by_player(payouts, "payouts")
    rake = parse_amount(rake, field="rake", allow_zero=True)
    players = sorted(set(contributions) | set(payouts))
    if not players or len(players) > MAX_PLAYERS_PER_HAND:
        raise ApplicationError("settlement_invalid", f"a hand names 1 to {MAX_PLAYERS_PER_HAND} players",
                               {"players": len(players)})
    if sum(contributions.values()) != sum(payouts.values()) + rake:
        raise ApplicationError(
            "settlement_invalid", "contributions must equal payouts plus rake",
            {"contributions": sum(contributions.values()), "payouts": sum(payouts.values()), "rake": rake},
        )
    figures = {"contributions": contributions, "payouts": payouts, "rake": rake}
    figures_hash = request_hash("hand", figures)

    def execute() -> dict[str, Any]:
        if hot_path.enabled():
            return tables_hot_path.hand_settle(table_id=table_id, hand_id=hand_id, players=players, figures=figures,
                                               figures_hash=figures_hash, rake_shards=settings.RAKE_ACCOUNT_SHARDS,
                                               actor=client)
        table = table_lock(table_id)
        settled = Hand.objects.filter(table=table, hand_id=hand_id).first()
        if settled is not None:
            if settled.figures_hash != figures_hash:
                raise ApplicationError("hand_conflict", f"hand {hand_id} was already settled with other figures",
                                       {"table_id": table_id, "hand_id": hand_id})
            return settled.response
        table_require_open(table)
        seats = seats_lock(table, players)
        accounts, rake_account = _seat_accounts_and_rake_lock(seats, table, rake)
        short = {user: {"contribution": amount, "chips": accounts[seats[user].account_id].balance}
                 for user, amount in contributions.items() if amount > accounts[seats[user].account_id].balance}
        if short:
            raise ApplicationError("insufficient_chips", "a contribution exceeds the seat's chips",
                                   {"table_id": table_id, "hand_id": hand_id, "players": short})
        legs = [Leg(seats[user].account_id, payouts.get(user, 0) - contributions.get(user, 0)) for user in players]
        legs = [leg for leg in legs if leg.amount != 0] + ([Leg(rake_account.pk, rake)] if rake_account else [])
        tx = None
        if legs:
            tx = transaction_post(kind=Transaction.Kind.HAND_SETTLEMENT, legs=legs, actor=client, locked=accounts,
                                  metadata={"table_id": table_id, "hand_id": hand_id, **figures})
        table.chips -= rake
        table.save(update_fields=["chips", "updated_at"])
        response = {"hand_id": hand_id, "table": table_result(table),
                    "transaction": transaction_result(tx) if tx else None}
        Hand.objects.create(table=table, hand_id=hand_id, figures_hash=figures_hash, rake=rake, transaction=tx,
                            response=response, settled_by=client)
        return response

    return idempotent(scope=client, key=idempotency_key, operation="hand_settle",
                      params={"table_id": table_id, "hand_id": hand_id, **figures}, execute=execute)


def seat_cash_out(*, client: str, idempotency_key: str, table_id: str, user_id: str,
                  amount: Any | None = None, leave: bool = False) -> dict[str, Any]:
    """Move ``amount`` (default all) of the seat's chips back to the wallet; ``leave`` cashes out
    everything and closes the seat. -> {"seat": ..., "transaction": transaction_result | None,
    "account": account_result}

    A frozen wallet still receives its chips back (they stay frozen there). Refuses
    player_not_seated, insufficient_chips (above the seat's chips), invalid_request (leave with an
    amount other than all the chips). Locks the table, the seat, then the seat account and wallet."""
    table_id = table_id_check(table_id)
    user_id = user_id_check(user_id)
    amount = None if amount is None else parse_amount(amount)
    if not isinstance(leave, bool):
        raise ApplicationError("invalid_request", "leave must be true or false", {"field": "leave"})

    def execute() -> dict[str, Any]:
        if hot_path.enabled():
            return tables_hot_path.cash_out(table_id=table_id, user_id=user_id, amount=amount, leave=leave,
                                            actor=client)
        table = table_lock(table_id)
        seat = seats_lock(table, [user_id])[user_id]
        wallet_id = wallet_for(user_id, table.currency).pk
        locked = accounts_lock([seat.account_id, wallet_id])
        seat_account, wallet = locked[seat.account_id], locked[wallet_id]
        chips = seat_account.balance
        if amount is not None and amount > chips:
            raise ApplicationError("insufficient_chips", f"the seat holds {chips}, {amount} requested",
                                   {"table_id": table_id, "user_id": user_id, "chips": chips, "requested": amount})
        if leave and amount is not None and amount != chips:
            raise ApplicationError("invalid_request", "leaving cashes out all the chips: omit amount",
                                   {"field": "amount", "chips": chips})
        moved = chips if amount is None else amount
        tx = None
        if moved:
            tx = transaction_post(kind=Transaction.Kind.CASH_OUT, actor=client, allow_frozen=True, locked=locked,
                                  legs=[Leg(seat.account_id, -moved), Leg(wallet.pk, moved)],
                                  metadata={"table_id": table_id, "user_id": user_id, "seat_id": seat.pk,
                                            "leave": leave})
            table.chips -= moved
            table.save(update_fields=["chips", "updated_at"])
        if leave:
            seat_leave(seat, seat_account)
        seat.account = seat_account  # the locked rows hold the figures just written: nothing to read back
        return {"seat": seat_result(seat), "transaction": transaction_result(tx) if tx else None,
                "account": account_result(wallet)}

    return idempotent(scope=client, key=idempotency_key, operation="seat_cash_out",
                      params={"table_id": table_id, "user_id": user_id, "amount": amount, "leave": leave},
                      execute=execute)


def rake_shard(table: Table) -> int:
    """Which rake account shard a table's rake goes to (settings.RAKE_ACCOUNT_SHARDS; accounts.models)."""
    return table.pk % settings.RAKE_ACCOUNT_SHARDS


def _seat_accounts_and_rake_lock(seats: dict[str, Seat], table: Table,
                                  rake: int) -> tuple[dict[int, Account], Account | None]:
    """Lock the seats' accounts and, when there is rake, the table's rake account shard, in one
    ascending-id statement. A rake shard is created on its first rake in a currency, then locked:
    being the newest account it has the highest id, so the ascending order still holds."""
    seat_account_ids = [seat.account_id for seat in seats.values()]
    if not rake:
        return accounts_lock(seat_account_ids), None
    code, shard = Account.SystemCode.RAKE, rake_shard(table)
    accounts = accounts_lock(seat_account_ids, system=(code, table.currency, shard))
    rake_account = next((a for a in accounts.values() if a.kind == Account.Kind.SYSTEM), None)
    if rake_account is None:
        rake_account = system_account_get(code=code, currency=table.currency, shard=shard)
        accounts = accounts_lock(seat_account_ids + [rake_account.pk])
        rake_account = accounts[rake_account.pk]
    return accounts, rake_account


def _hand_id_check(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_HAND_ID or not value.isprintable():
        raise ApplicationError("invalid_request", f"hand_id must be 1 to {MAX_HAND_ID} printable characters",
                               {"field": "hand_id"})
    return value.strip()


def _amounts_by_player(value: Any, field: str) -> dict[str, int]:
    """``{user_id: amount}`` with every amount a non-negative integer (``invalid_amount`` otherwise)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApplicationError("invalid_request", f"{field} must be an object of user id -> amount",
                               {"field": field})
    amounts: dict[str, int] = {}
    for user, amount in value.items():
        user = user_id_check(user, field=f"{field} key")
        amounts[user] = amounts.get(user, 0) + parse_amount(amount, field=f"{field}.{user}", allow_zero=True)
    return amounts
