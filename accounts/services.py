"""Account services: open, deposit, withdraw, transfer, adjust, freeze, unfreeze, close.

Every function here is the one implementation behind HTTP, gRPC, admin and jobs. Each mutating
one takes the caller (``client``, the idempotency scope) and an ``idempotency_key``; it validates
its input first (nothing is stored for malformed input), then runs once per key.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.identifiers import user_id_check
from accounts.models import Account
from accounts.protection import deposit_check, protection_of, protection_select
from accounts.results import account_result, transaction_result
from balance_project.errors import ApplicationError
from balance_project.money import parse_amount, parse_currency
from balance_project.text import free_text_check
from ledger.idempotency import idempotent
from ledger.metadata import metadata_check
from ledger.models import Transaction
from ledger.rows import AccountRow
from ledger.services import (
    Leg,
    account_require,
    account_status_set,
    accounts_of,
    accounts_select,
    accounts_select_among,
    system_account_ids,
    system_account_lock,
    transaction_post,
)
from ledger.work import Work

MAX_ADJUSTMENT_REASON = 500


def account_open(*, client: str, idempotency_key: str, owner_ref: str, currency: str) -> dict[str, Any]:
    """Open a user wallet. One wallet per owner and currency: a second gets ``account_exists``."""
    owner_ref = user_id_check(owner_ref, field="owner_ref")
    currency = parse_currency(currency)

    def execute(work: Work) -> dict[str, Any]:
        existing = Account.objects.filter(kind=Account.Kind.USER, owner_ref=owner_ref, currency=currency).first()
        if existing is not None:
            raise ApplicationError(
                "account_exists", f"{owner_ref} already has a {currency} wallet", {"account_id": existing.pk}
            )
        try:
            with transaction.atomic():
                account = Account.objects.create(kind=Account.Kind.USER, owner_ref=owner_ref, currency=currency)
            work.row("accounts_account", account.pk, account)
        except IntegrityError:
            existing = Account.objects.get(kind=Account.Kind.USER, owner_ref=owner_ref, currency=currency)
            raise ApplicationError(
                "account_exists", f"{owner_ref} already has a {currency} wallet", {"account_id": existing.pk}
            ) from None
        return {"account": account_result(account)}

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="account_open",
        params={"owner_ref": owner_ref, "currency": currency},
        execute=execute,
        orm=True,
    )


def account_deposit(
    *, client: str, idempotency_key: str, account_id: int, amount: Any, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Credit a user wallet from the external-funds account (money arriving from a payment).
    Refused during a self-exclusion or time-out, above the operator's maximum single deposit and
    beyond the player's deposit limits (accounts/protection.py)."""
    amount = parse_amount(amount)
    return _external_movement(
        client=client,
        key=idempotency_key,
        account_id=account_id,
        amount=amount,
        kind=Transaction.Kind.DEPOSIT,
        metadata=metadata,
    )


def account_withdraw(
    *, client: str, idempotency_key: str, account_id: int, amount: Any, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Debit a user wallet to the external-funds account. Refused beyond the available balance."""
    amount = parse_amount(amount)
    return _external_movement(
        client=client,
        key=idempotency_key,
        account_id=account_id,
        amount=-amount,
        kind=Transaction.Kind.WITHDRAWAL,
        metadata=metadata,
    )


def account_transfer(
    *,
    client: str,
    idempotency_key: str,
    from_account_id: int,
    to_account_id: int,
    amount: Any,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move money between two user wallets of one currency: ``transfers_disabled`` unless the
    operator allows it (settings.PLAYER_TRANSFERS_ENABLED)."""
    amount = parse_amount(amount)
    if from_account_id == to_account_id:
        raise ApplicationError(
            "invalid_request", "a transfer needs two different accounts", {"account_id": from_account_id}
        )
    metadata = metadata_check(metadata)

    def execute(work: Work) -> dict[str, Any]:
        tx_ids = work.next_ids("ledger_transaction")
        found = accounts_select(work, "id IN (%s, %s)", [from_account_id, to_account_id])
        work.send()
        accounts = accounts_of(found)
        for account_id in (from_account_id, to_account_id):
            _require_wallet(account_require(accounts, account_id))
        if not settings.PLAYER_TRANSFERS_ENABLED:
            raise ApplicationError(
                "transfers_disabled",
                "player-to-player transfers are turned off by the operator",
                {"from_account_id": from_account_id, "to_account_id": to_account_id},
            )
        tx = transaction_post(
            work,
            transaction_id=work.ids(tx_ids)[0],
            kind=Transaction.Kind.TRANSFER,
            actor=client,
            metadata=metadata,
            accounts=accounts,
            legs=[Leg(from_account_id, -amount), Leg(to_account_id, amount)],
        )
        return {"transaction": transaction_result(tx)}

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="transfer",
        params={"from": from_account_id, "to": to_account_id, "amount": amount, "metadata": metadata},
        execute=execute,
    )


def account_adjust(
    *,
    actor: str,
    idempotency_key: str,
    account_id: int,
    amount: int,
    reason: str,
    scope: str = "admin",
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A manual reconciliation adjustment (signed ``amount``) of a user wallet against the
    external-funds account.

    Allowed on a frozen wallet (support fixes what froze it); refused on a closed one, and on seats
    and house accounts (their figures follow from the play and the wallets). The reason and the
    actor are recorded on the transaction, in the same database transaction as the move, and so is
    ``approval`` when a second person approved it (accounts/adjustments.py: the proposal's id, who
    proposed and who approved).
    """
    amount = adjustment_amount_check(amount)
    reason = adjustment_reason_check(reason)
    metadata = {"reason": reason, "actor": actor, **metadata_check(approval or {}, field="approval")}

    def execute(work: Work) -> dict[str, Any]:
        return _post_against_external(
            work,
            account_id=account_id,
            amount=amount,
            kind=Transaction.Kind.ADJUSTMENT,
            actor=actor,
            metadata=metadata,
            allow_frozen=True,
        )

    return idempotent(
        scope=scope,
        key=idempotency_key,
        operation="adjust",
        params={"account_id": account_id, "amount": amount, "reason": reason, "approval": approval or {}},
        execute=execute,
    )


def adjustment_amount_check(amount: Any) -> int:
    """A signed, non-zero integer of minor units, at most MAX_AMOUNT either way."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise ApplicationError(
            "invalid_amount", "an adjustment is a non-zero integer of minor units", {"field": "amount"}
        )
    parse_amount(abs(amount))
    return amount


def adjustment_reason_check(reason: Any) -> str:
    text = free_text_check(reason or "", field="reason", max_length=MAX_ADJUSTMENT_REASON, multiline=True)
    if not text:
        raise ApplicationError("invalid_request", "an adjustment needs a reason", {"field": "reason"})
    return text


def account_freeze(*, client: str, idempotency_key: str, account_id: int) -> dict[str, Any]:
    return _status_change(client, idempotency_key, account_id, Account.Status.FROZEN)


def account_unfreeze(*, client: str, idempotency_key: str, account_id: int) -> dict[str, Any]:
    return _status_change(client, idempotency_key, account_id, Account.Status.ACTIVE)


def account_close(*, client: str, idempotency_key: str, account_id: int) -> dict[str, Any]:
    """Close an account; refused while it holds money or a hold. A closed account never reopens."""
    return _status_change(client, idempotency_key, account_id, Account.Status.CLOSED)


def external_shard(account_id: int) -> int:
    """Which external-funds shard a wallet's deposits and withdrawals post against: a wallet always
    uses the same one, and wallets spread over settings.EXTERNAL_ACCOUNT_SHARDS rows, so deposits to
    different wallets stop queueing on one lock. The external funds are the sum of the shards."""
    return account_id % settings.EXTERNAL_ACCOUNT_SHARDS


def _status_change(client: str, key: str, account_id: int, status: str) -> dict[str, Any]:
    def execute(work: Work) -> dict[str, Any]:
        found = accounts_select(work, "id = %s", [account_id])
        work.send()
        account = _require_wallet(account_require(accounts_of(found), account_id))
        if account.status == Account.Status.CLOSED:
            raise ApplicationError("account_closed", f"account {account_id} is closed", {"account_id": account_id})
        if status == Account.Status.CLOSED and (account.balance != 0 or account.held != 0):
            raise ApplicationError(
                "account_not_empty",
                f"account {account_id} still holds money",
                {"account_id": account_id, "balance": account.balance, "held": account.held},
            )
        if account.status != status:
            account_status_set(work, account=account, status=status)
        return {"account": account_result(account)}

    return idempotent(
        scope=client, key=key, operation=f"account_status:{status}", params={"account_id": account_id}, execute=execute
    )


def _external_movement(
    *, client: str, key: str, account_id: int, amount: int, kind: str, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    metadata = metadata_check(metadata)

    def execute(work: Work) -> dict[str, Any]:
        return _post_against_external(
            work, account_id=account_id, amount=amount, kind=kind, actor=client, metadata=metadata
        )

    return idempotent(
        scope=client,
        key=key,
        operation=str(kind),
        params={"account_id": account_id, "amount": abs(amount), "metadata": metadata},
        execute=execute,
    )


def _post_against_external(
    work: Work,
    *,
    account_id: int,
    amount: int,
    kind: str,
    actor: str,
    metadata: dict[str, Any],
    allow_frozen: bool = False,
) -> dict[str, Any]:
    """Lock the wallet and its external-funds shard (one statement, ascending id), then post
    ``amount`` to the wallet against the shard. -> {"transaction", "account"}"""
    shard = external_shard(account_id)
    tx_ids = work.next_ids("ledger_transaction")
    external_ids = system_account_ids(
        code=Account.SystemCode.EXTERNAL,
        shard_sql="%s",
        currency_sql="(SELECT currency FROM accounts_account WHERE id = %s)",
    )
    # Parameters in the order the SQL names them: the wallet, then the shard's currency and number.
    found = accounts_select_among(work, ["SELECT %s", external_ids], [account_id, account_id, shard])
    protection = None
    if kind == Transaction.Kind.DEPOSIT:  # after the wallet's lock: it sees every earlier deposit
        protection = protection_select(
            work,
            owner_sql="(SELECT owner_ref FROM accounts_account WHERE id = %s AND kind = 'user')",
            owner_params=[account_id],
            currency_sql="(SELECT currency FROM accounts_account WHERE id = %s)",
            currency_params=[account_id],
            kinds=("deposit",),
            now=timezone.now(),
        )
    work.send()
    accounts = accounts_of(found)
    wallet = _require_wallet(account_require(accounts, account_id))
    if protection is not None:
        deposit_check(protection_of(protection), amount=amount, currency=wallet.currency)
    external = next((a for a in accounts.values() if a.kind == Account.Kind.SYSTEM), None)
    if external is None:
        external = system_account_lock(work, code=Account.SystemCode.EXTERNAL, currency=wallet.currency, shard=shard)
        accounts[external.id] = external
    tx = transaction_post(
        work,
        transaction_id=work.ids(tx_ids)[0],
        kind=kind,
        actor=actor,
        metadata=metadata,
        accounts=accounts,
        allow_frozen=allow_frozen,
        legs=[Leg(account_id, amount), Leg(external.id, -amount)],
    )
    return {"transaction": transaction_result(tx), "account": account_result(wallet)}


def _require_wallet(account: AccountRow) -> AccountRow:
    """Seats and house accounts are moved only by the play and by the wallets' own movements: a
    call meant for a user wallet (deposit, withdrawal, transfer, adjustment, freeze, unfreeze,
    close) is refused on them, so no caller can freeze a table's settlements or close the currency's
    external funds."""
    if account.kind != Account.Kind.USER:
        raise ApplicationError(
            "account_not_wallet",
            f"account {account.id} is a {account.kind} account, not a user wallet: only wallets take this call",
            {"account_id": account.id, "kind": account.kind},
        )
    return account
