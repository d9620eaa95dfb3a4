"""HTTP API v1 of the accounts: thin adapters over accounts.services and accounts.selectors.

Each view checks its input with a small serializer, calls one service or selector and renders the
dict it returns. Every mutating call needs an ``Idempotency-Key`` header, scoped by the API client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from accounts import selectors, services
from accounts import serializers as s
from balance_project.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiView,
    client_of,
    idempotency_key_of,
    render,
    validated,
)

_ACCOUNT_ID = OpenApiParameter("account_id", OpenApiTypes.INT64, OpenApiParameter.PATH, description="Account id.")


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents accounts.auth.ApiKeyAuthentication: either header carries the key."""

    target_class = "accounts.auth.ApiKeyAuthentication"
    name = ["BearerApiKey", "HeaderApiKey"]

    def get_security_requirement(self, auto_schema):
        return [{"BearerApiKey": []}, {"HeaderApiKey": []}]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class AccountsView(ApiView):
    """List an owner's accounts; open a wallet."""

    required_scopes = {"GET": "accounts:read", "POST": "accounts:write"}

    @extend_schema(
        operation_id="accounts_list",
        summary="The accounts (wallets and seats) of one owner",
        parameters=[s.AccountsListInputSerializer],
        responses={200: s.AccountsListOutputSerializer, **READ_ERRORS},
    )
    def get(self, request):
        params = validated(s.AccountsListInputSerializer, request.query_params)
        result = selectors.accounts_list_by_owner(owner_ref=params["owner_ref"], kind=params.get("kind"))
        return render(s.AccountsListOutputSerializer, result)

    @extend_schema(
        operation_id="accounts_open",
        summary="Open a user wallet (one per owner and currency)",
        request=s.AccountOpenInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: s.AccountEnvelopeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key_of(request)
        data = validated(s.AccountOpenInputSerializer, request.data)
        result = services.account_open(
            client=client_of(request), idempotency_key=key, owner_ref=data["owner_ref"], currency=data["currency"]
        )
        return render(s.AccountEnvelopeOutputSerializer, result, status=201)


class AccountDetailView(ApiView):
    """The account with its balance, from the balance cache when it holds it (``source`` says which)."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="accounts_detail",
        summary="One account, served from the balance cache",
        parameters=[_ACCOUNT_ID],
        responses={200: s.AccountDetailOutputSerializer, **READ_ERRORS},
    )
    def get(self, request, account_id: int):
        return render(s.AccountDetailOutputSerializer, selectors.account_balance_get(account_id=account_id))


class AccountBalanceView(ApiView):
    """Balance, held and available, from the balance cache when it holds it (``source`` says which)."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="accounts_balance",
        summary="Balance, hold and available amount",
        parameters=[_ACCOUNT_ID],
        responses={200: s.BalanceOutputSerializer, **READ_ERRORS},
    )
    def get(self, request, account_id: int):
        return render(s.BalanceOutputSerializer, selectors.account_balance_get(account_id=account_id))


class _MovementView(ApiView):
    """Deposit or withdraw: the subclass names the service."""

    required_scopes = {"POST": "payments:write"}
    service: Callable[..., dict[str, Any]]

    def post(self, request, account_id: int):
        key = idempotency_key_of(request)
        data = validated(s.MovementInputSerializer, request.data)
        result = type(self).service(
            client=client_of(request),
            idempotency_key=key,
            account_id=account_id,
            amount=data["amount"],
            metadata=data.get("metadata"),
        )
        return render(s.MovementOutputSerializer, result, status=201)


def _movement_schema(operation_id: str, summary: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        request=s.MovementInputSerializer,
        parameters=[_ACCOUNT_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={201: s.MovementOutputSerializer, **WRITE_ERRORS},
    )


@extend_schema_view(post=_movement_schema("accounts_deposit", "Credit a wallet with money arriving from a payment"))
class AccountDepositView(_MovementView):
    """Credit the wallet from the external-funds account. Amount in minor units."""

    service = staticmethod(services.account_deposit)


@extend_schema_view(
    post=_movement_schema("accounts_withdraw", "Debit a wallet for a payout (refused beyond the available balance)")
)
class AccountWithdrawView(_MovementView):
    """Debit the wallet to the external-funds account; refused beyond the available balance."""

    service = staticmethod(services.account_withdraw)


class TransferView(ApiView):
    """Move money between two user wallets of the same currency."""

    required_scopes = {"POST": "transfers:write"}

    @extend_schema(
        operation_id="transfers_create",
        summary="Move money between two wallets of one currency",
        request=s.TransferInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: s.TransferOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key_of(request)
        data = validated(s.TransferInputSerializer, request.data)
        result = services.account_transfer(
            client=client_of(request),
            idempotency_key=key,
            from_account_id=data["from_account_id"],
            to_account_id=data["to_account_id"],
            amount=data["amount"],
            metadata=data.get("metadata"),
        )
        return render(s.TransferOutputSerializer, result, status=201)


class _StatusView(ApiView):
    """Freeze, unfreeze or close: no body, the subclass names the service."""

    required_scopes = {"POST": "accounts:write"}
    service: Callable[..., dict[str, Any]]

    def post(self, request, account_id: int):
        key = idempotency_key_of(request)
        validated(s.StrictSerializer, request.data or {})
        result = type(self).service(client=client_of(request), idempotency_key=key, account_id=account_id)
        return render(s.AccountEnvelopeOutputSerializer, result)


def _status_schema(operation_id: str, summary: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        request=None,
        parameters=[_ACCOUNT_ID, IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.AccountEnvelopeOutputSerializer, **WRITE_ERRORS},
    )


@extend_schema_view(
    post=_status_schema("accounts_freeze", "Freeze an account: no money moves in or out until unfrozen")
)
class AccountFreezeView(_StatusView):
    """No money moves in or out of a frozen account until it is unfrozen."""

    service = staticmethod(services.account_freeze)


@extend_schema_view(post=_status_schema("accounts_unfreeze", "Make a frozen account active again"))
class AccountUnfreezeView(_StatusView):
    """Make a frozen account active again."""

    service = staticmethod(services.account_unfreeze)


@extend_schema_view(post=_status_schema("accounts_close", "Close an empty account for good"))
class AccountCloseView(_StatusView):
    """Close an account that holds no money and no hold. A closed account never reopens."""

    service = staticmethod(services.account_close)


class AccountTransactionsView(ApiView):
    """The account's entries, newest first, a page at a time (pass next_cursor back as cursor)."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="accounts_transactions",
        summary="The account's entries, newest first",
        parameters=[_ACCOUNT_ID, s.TransactionsListInputSerializer],
        responses={200: s.TransactionsPageOutputSerializer, **READ_ERRORS},
    )
    def get(self, request, account_id: int):
        params = validated(s.TransactionsListInputSerializer, request.query_params)
        result = selectors.account_transactions_list(
            account_id=account_id, cursor=params.get("cursor"), limit=params["limit"]
        )
        return render(s.TransactionsPageOutputSerializer, result)


class AccountStatementView(ApiView):
    """Statement of [from, to): opening + total_in - total_out = closing."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="accounts_statement",
        summary="Opening and closing balance, totals in and out and the entries of a period",
        parameters=[_ACCOUNT_ID, s.StatementInputSerializer],
        responses={200: s.StatementOutputSerializer, **READ_ERRORS},
    )
    def get(self, request, account_id: int):
        params = validated(s.StatementInputSerializer, request.query_params)
        result = selectors.account_statement(account_id=account_id, start=params.get("from"), end=params.get("to"))
        return render(s.StatementOutputSerializer, result)
