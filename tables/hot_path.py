"""Buy-in, hand settlement and cash-out on the PostgreSQL hot path (see ledger/hot_path.py): each
is one call of its PL/pgSQL function (tables/sql), answered through the same result functions as
the ORM path in tables/services.py."""
from __future__ import annotations

import json
from typing import Any

from accounts.models import Account
from accounts.results import account_result, transaction_result
from ledger.hot_path import account, call, deferred_add, from_row, posted_transaction
from reservations.hot_path import committed
from tables.models import Seat, Table
from tables.results import seat_result, table_result


def buy_in(*, table_id: str, user_id: str, amount: int, ttl_seconds: int, actor: str) -> dict[str, Any]:
    return committed(call("SELECT balance_buy_in(%s, %s, %s::bigint, %s::integer, %s)",
                          [table_id, user_id, amount, ttl_seconds, actor]))


def hand_settle(*, table_id: str, hand_id: str, players: list[str], figures: dict[str, Any], figures_hash: str,
                rake_shards: int, actor: str) -> dict[str, Any]:
    """``players`` sorted; ``figures``: {"contributions", "payouts", "rake"} as validated; the rake
    goes to shard (table pk % ``rake_shards``), as tables.services.rake_shard."""
    contributions, payouts = figures["contributions"], figures["payouts"]
    answer = call(
        "SELECT balance_hand_settle(%s, %s, %s, %s::text[], %s::bigint[], %s::bigint[], %s::bigint, %s::integer, "
        "%s::jsonb, %s)",
        [table_id, hand_id, figures_hash, players, [contributions.get(user, 0) for user in players],
         [payouts.get(user, 0) for user in players], figures["rake"], rake_shards,
         json.dumps({"table_id": table_id, "hand_id": hand_id, **figures}), actor])
    if "settled" in answer:
        return answer["settled"]
    table = from_row(Table, answer["table"])
    tx = posted_transaction(answer)
    response = {"hand_id": hand_id, "table": table_result(table, seats=_seats(table, answer["seats"])),
                "transaction": transaction_result(tx) if tx else None}
    deferred_add("SELECT balance_hand_record(%s, %s, %s, %s::bigint, %s::bigint, %s::jsonb, %s)",
                 [table_id, hand_id, figures_hash, figures["rake"], tx.pk if tx else None, json.dumps(response), actor])
    return response


def cash_out(*, table_id: str, user_id: str, amount: int | None, leave: bool, actor: str) -> dict[str, Any]:
    answer = call("SELECT balance_cash_out(%s, %s, %s::bigint, %s::boolean, %s)",
                  [table_id, user_id, amount, leave, actor])
    seat = from_row(Seat, answer["seat"])
    seat.table, seat.account = from_row(Table, answer["table"]), account(answer, seat.account_id)
    wallet_id = next(int(pk) for pk in answer["accounts"] if int(pk) != seat.account_id)
    tx = posted_transaction(answer)
    return {"seat": seat_result(seat), "transaction": transaction_result(tx) if tx else None,
            "account": account_result(account(answer, wallet_id))}


def _seats(table: Table, rows: list[dict[str, Any]]) -> list[Seat]:
    seats = []
    for row in rows:
        seat = from_row(Seat, row)
        seat.table, seat.account = table, Account(pk=seat.account_id, balance=row["chips"])
        seats.append(seat)
    return seats
