"""Builders and book checks shared by the reservation and table tests."""

from __future__ import annotations

import itertools
import uuid

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from accounts.models import Account
from accounts.services import account_deposit, account_open
from reservations.models import Reservation
from tables.models import Seat, Table
from tables.services import table_open

_counter = itertools.count(1)


def new_key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def open_table(currency: str = "EUR", table_id: str | None = None) -> str:
    table_id = table_id or f"tbl-{next(_counter)}-{uuid.uuid4().hex[:6]}"
    table_open(client="tests", idempotency_key=new_key("table"), table_id=table_id, currency=currency)
    return table_id


def new_player(funded: int = 0, currency: str = "EUR", user_id: str | None = None) -> tuple[str, int]:
    """A user with a wallet (optionally funded) -> (user id, wallet account id)."""
    user_id = user_id or f"player-{next(_counter)}-{uuid.uuid4().hex[:6]}"
    wallet = account_open(client="tests", idempotency_key=new_key("open"), owner_ref=user_id, currency=currency)[
        "account"
    ]["id"]
    if funded:
        account_deposit(client="tests", idempotency_key=new_key("dep"), account_id=wallet, amount=funded)
    return user_id, wallet


def account(account_id: int) -> Account:
    return Account.objects.get(pk=account_id)


def table_row(table_id: str) -> Table:
    return Table.objects.get(table_id=table_id)


def seat_chips(table_id: str, user_id: str) -> int:
    seat = (
        Seat.objects.filter(table__table_id=table_id, user_id=user_id, status=Seat.Status.ACTIVE)
        .select_related("account")
        .first()
    )
    return seat.account.balance if seat else 0


def money_snapshot() -> dict[int, tuple[int, int]]:
    """Every account's (balance, held): compare before and after a refused call."""
    return {a.pk: (a.balance, a.held) for a in Account.objects.all()}


def books_problems(*, verify_ledger: bool = True) -> list[str]:
    """Every broken invariant of the money, as readable lines (empty when the books hold).
    ``verify_ledger=False`` leaves out the full ledger verification (the slow part), for a caller
    that runs it less often."""
    problems = []
    if (Account.objects.aggregate(total=Sum("balance"))["total"] or 0) != 0:
        problems.append("the balances of all accounts do not sum to zero")
    pending = Sum("reservations__amount", filter=Q(reservations__status=Reservation.Status.PENDING))
    for a in Account.objects.annotate(pending=Coalesce(pending, 0)):
        if a.held < 0 or (not a.allow_negative and a.balance - a.held < 0):
            problems.append(f"account {a.pk} is negative: balance {a.balance} held {a.held}")
        if a.held != a.pending:
            problems.append(f"account {a.pk} holds {a.held} but its pending reservations total {a.pending}")
    for table in Table.objects.annotate(in_seats=Coalesce(Sum("seats__account__balance"), 0)):
        if table.chips != table.in_seats:
            problems.append(f"table {table.table_id} has {table.chips} chips but its seats hold {table.in_seats}")
    if verify_ledger:
        problems += ledger_problems()
    return problems


def ledger_problems() -> list[str]:
    from ledger.integrity import ledger_verify

    return [f"ledger: {p['code']} {p['message']}" for p in ledger_verify().problems]


class Api:
    """An HTTP client with one API key; ``post`` sends a fresh Idempotency-Key unless given one."""

    def __init__(self, scopes: list[str], client: str = "poker"):
        from rest_framework.test import APIClient

        from accounts.keys import api_key_create

        raw, _ = api_key_create(client=client, scopes=scopes)
        self.http = APIClient(raise_request_exception=False)
        self.http.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def get(self, path: str, params: dict | None = None):
        return self.http.get(f"/api/v1/{path}", params or {})

    def post(self, path: str, body: dict | None = None, key: str | None = "fresh"):
        headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": new_key() if key == "fresh" else key}
        return self.http.post(f"/api/v1/{path}", body if body is not None else {}, format="json", **headers)


def error_code(response) -> str:
    return response.json()["error"]["code"]
