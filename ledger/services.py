"""Every money movement goes through ``transaction_post``; every hold change through ``holds_apply``.

Lock order, for the whole service, so two calls never wait on each other in a cycle:
tables -> seats -> reservations -> accounts (ascending id). Account rows are locked with
``SELECT ... FOR UPDATE`` by ``accounts_lock``; on SQLite the IMMEDIATE transaction mode takes the
database write lock at BEGIN instead.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.cache import balance_cache_refresh_on_commit
from accounts.models import Account
from balance_project.errors import ApplicationError
from ledger import chain
from ledger.models import Entry, Transaction


@dataclass(frozen=True)
class Leg:
    """One side of a posting: ``amount`` is signed, positive raises the account's balance."""

    account_id: int
    amount: int


def accounts_lock(account_ids: Iterable[int], *,
                  system: tuple[str, str, int] | None = None) -> dict[int, Account]:
    """Lock the named accounts (``SELECT ... FOR UPDATE``, ascending id) and return them by id.

    Must run inside ``transaction.atomic``. Raises ``account_not_found`` naming the first missing id.
    ``system=(code, currency, shard)`` also locks that house account, if it exists, in the same statement
    and the same ascending order (one round trip instead of a lookup and a lock).
    """
    ids = sorted(set(account_ids))
    wanted = Q(pk__in=ids)
    if system is not None:
        wanted |= Q(kind=Account.Kind.SYSTEM, system_code=system[0], currency=system[1], shard=system[2])
    locked = {a.pk: a for a in Account.objects.select_for_update().filter(wanted).order_by("pk")}
    for account_id in ids:
        if account_id not in locked:
            raise ApplicationError("account_not_found", f"account {account_id} does not exist",
                                   {"account_id": account_id})
    return locked


def ensure_usable(account: Account, *, allow_frozen: bool = False) -> None:
    if account.status == Account.Status.CLOSED:
        raise ApplicationError("account_closed", f"account {account.pk} is closed", {"account_id": account.pk})
    if account.status == Account.Status.FROZEN and not allow_frozen:
        raise ApplicationError("account_frozen", f"account {account.pk} is frozen", {"account_id": account.pk})


def transaction_post(
    *,
    kind: str,
    legs: Sequence[Leg],
    actor: str,
    metadata: Mapping[str, Any] | None = None,
    hold_deltas: Mapping[int, int] | None = None,
    allow_frozen: bool = False,
    locked: Mapping[int, Account] | None = None,
) -> Transaction:
    """Post one balanced transaction and return it, its entries in ``tx.posted_entries``.

    Locks every account in ``legs`` and ``hold_deltas`` (ascending id) for the rest of the
    enclosing database transaction, then checks status, currency and available funds against the
    locked rows, writes the entries with their chain checksums, and updates balances, holds,
    versions and chain heads. ``hold_deltas`` changes ``held`` in the same step (a reservation
    commit drops its hold while it moves the money).

    ``locked``: rows the caller has already locked with ``accounts_lock`` in this database
    transaction (and changed only through these instances); they are used as they are instead of
    being selected again. A refusal leaves the enclosing transaction to be rolled back (no savepoint
    of its own: every caller runs inside the transaction of ``idempotent``).
    """
    hold_deltas = dict(hold_deltas or {})
    _check_legs(legs)
    with transaction.atomic(savepoint=False):
        locked = _locked_or_lock([leg.account_id for leg in legs] + list(hold_deltas), locked)
        currencies = {account.currency for account in locked.values()}
        if len(currencies) > 1:
            raise ApplicationError("currency_mismatch", "all accounts of a transaction must share one currency",
                                   {"accounts": {str(a.pk): a.currency for a in locked.values()}})
        for account in locked.values():
            ensure_usable(account, allow_frozen=allow_frozen)

        amounts = {leg.account_id: leg.amount for leg in legs}
        for account in locked.values():
            account.held += hold_deltas.get(account.pk, 0)
            account.balance += amounts.get(account.pk, 0)
            _check_funds(account, requested=-amounts.get(account.pk, 0) + hold_deltas.get(account.pk, 0))

        tx = Transaction.objects.create(kind=kind, currency=currencies.pop(), actor=actor, metadata=dict(metadata or {}))
        now = timezone.now()
        entries = []
        for account_id in sorted(amounts):
            account = locked[account_id]
            account.entry_seq += 1
            fields = dict(account_id=account_id, seq=account.entry_seq, transaction_id=tx.pk,
                          amount=amounts[account_id], currency=account.currency,
                          balance_after=account.balance, created_at=now)
            account.chain_head = chain.entry_checksum(prev_checksum=account.chain_head, **fields)
            entries.append(Entry(checksum=account.chain_head, **fields))
        Entry.objects.bulk_create(entries)
        for account in locked.values():
            _save_money_fields(account)
        tx.posted_entries = entries
        return tx


def holds_apply(*, hold_deltas: Mapping[int, int], allow_frozen: bool = False,
                locked: Mapping[int, Account] | None = None) -> dict[int, Account]:
    """Raise or drop holds without moving money (reserve, release, expire). Returns the accounts.

    Locks the accounts (ascending id); ``locked`` as in ``transaction_post``. A positive delta must
    fit in the available balance.
    """
    with transaction.atomic(savepoint=False):
        locked = _locked_or_lock(hold_deltas, locked)
        for account_id, delta in hold_deltas.items():
            account = locked[account_id]
            if delta > 0:
                ensure_usable(account, allow_frozen=allow_frozen)
            account.held += delta
            if account.held < 0:
                raise RuntimeError(f"hold on account {account_id} would go below zero")
            _check_funds(account, requested=delta)
        for account in locked.values():
            _save_money_fields(account)
        return locked


def _locked_or_lock(account_ids: Iterable[int], locked: Mapping[int, Account] | None) -> dict[int, Account]:
    """The caller's already locked rows when they cover ``account_ids``, else lock them now."""
    ids = set(account_ids)
    if locked is not None and ids <= locked.keys():
        return {account_id: locked[account_id] for account_id in sorted(ids)}
    return accounts_lock(ids)


def account_status_set(*, account: Account, status: str) -> Account:
    """Change the status of an account already locked by the caller."""
    account.status = status
    _save_money_fields(account, extra=("status",))
    return account


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise ValueError("a transaction needs at least two legs")
    seen: set[int] = set()
    for leg in legs:
        if leg.amount == 0 or isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise ValueError(f"leg amounts must be non-zero integers: {leg!r}")
        if leg.account_id in seen:
            raise ValueError(f"account {leg.account_id} appears twice: net its legs first")
        seen.add(leg.account_id)
    if sum(leg.amount for leg in legs) != 0:
        raise ApplicationError("unbalanced_transaction", "the legs of a transaction must sum to zero",
                               {"sum": sum(leg.amount for leg in legs)})


def _check_funds(account: Account, *, requested: int) -> None:
    if account.allow_negative or account.balance - account.held >= 0:
        return
    raise ApplicationError(
        "insufficient_funds",
        f"account {account.pk} has {account.balance - account.held + requested} available, {requested} requested",
        {"account_id": account.pk, "available": account.balance - account.held + requested, "requested": requested},
    )


def _save_money_fields(account: Account, extra: tuple[str, ...] = ()) -> None:
    account.version += 1
    account.save(update_fields=["balance", "held", "version", "entry_seq", "chain_head", "updated_at", *extra])
    balance_cache_refresh_on_commit(account)
