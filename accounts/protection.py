"""Player protection on the money path: limits, self-exclusion and time-outs, the operator's policy.

Each rule exists here once, as pure functions over the rows a call read; the services (deposits in
accounts/services.py, reservations and buy-ins in reservations/services.py and tables/services.py)
queue ``protection_select`` in their first batch, after the wallet's row lock, and call the
``*_check`` functions on what it answered before they write. So a limit is decided in the same
transaction as the movement it limits, from sums that include every movement committed before the
lock was granted: two concurrent deposits cannot both fit in the last of an allowance.

The rules (docs/player-protection.md):
- Deposit limits over rolling 24 h / 7 d / 30 d windows: the deposits in the window plus this one
  may not exceed the limit; each window is checked, so the lowest allowance applies.
- Loss limits over the same windows: a player's loss is buy-ins minus cash-outs. A buy-in (or a
  reservation, which may become one) is allowed if, for every start of a window that ends now, the
  net loss since then plus the wallet's pending holds plus this amount stays within the limit. That
  is the largest suffix sum of the window's movements (not only the window's net), so a cash-out
  that drops out of the window later can never make an earlier window overshoot.
- The maximum buy-in: one buy-in or reservation at a table may not exceed it.
- A window is (now - period, now]: a movement exactly one period old no longer counts.
- A self-exclusion or time-out refuses deposits, reservations, commits and buy-ins until it ends;
  withdrawals and cash-outs are never refused by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from balance_project.errors import ApplicationError
from ledger.chain import format_timestamp
from ledger.work import Result, Work, as_datetime

PERIODS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
WINDOW_KINDS = ("deposit", "loss")

# The wallet's entries of one kind (or kinds) inside the limit's window; ``l`` is the limit row and
# ``w`` the wallet, in the statement below.
_WINDOW_START = "(CASE l.period WHEN '24h' THEN %s WHEN '7d' THEN %s ELSE %s END)"
_WINDOW_ENTRIES = (
    "FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id "
    "WHERE e.account_id = w.id AND t.kind IN ({kinds}) AND e.created_at > " + _WINDOW_START
)
# Deposits: their sum. Losses: the largest sum of (buy-ins - cash-outs) from any movement in the
# window to now (running total from the newest entry backwards).
_DEPOSITS_USED = "(SELECT COALESCE(SUM(e.amount), 0) " + _WINDOW_ENTRIES.format(kinds="'deposit'") + ")"
_LOSS_USED = (
    "(SELECT COALESCE(MAX(x.suffix), 0) FROM (SELECT SUM(-e.amount) OVER (ORDER BY e.seq DESC "
    "ROWS UNBOUNDED PRECEDING) AS suffix " + _WINDOW_ENTRIES.format(kinds="'buy_in', 'cash_out'") + ") x)"
)
# When the allowance next rises: a deposit limit's, when its oldest deposit leaves the window; a
# loss limit's, when the movement that starts the largest loss leaves it (of equal ones, the latest).
_OLDEST_DEPOSIT = "(SELECT MIN(e.created_at) " + _WINDOW_ENTRIES.format(kinds="'deposit'") + ")"
_LARGEST_LOSS_START = (
    "(SELECT x.created_at FROM (SELECT e.created_at, e.seq, SUM(-e.amount) OVER (ORDER BY e.seq DESC "
    "ROWS UNBOUNDED PRECEDING) AS suffix "
    + _WINDOW_ENTRIES.format(kinds="'buy_in', 'cash_out'")
    + ") x WHERE x.suffix > 0 ORDER BY x.suffix DESC, x.seq DESC LIMIT 1)"
)
_OLDEST_COUNTED = f"CASE l.kind WHEN 'deposit' THEN {_OLDEST_DEPOSIT} WHEN 'loss' THEN {_LARGEST_LOSS_START} END"
_LIMITS_SQL = (
    "SELECT l.kind, l.period, l.value, l.pending_value, l.pending_effective_at, "
    f"CASE l.kind WHEN 'deposit' THEN {_DEPOSITS_USED} WHEN 'loss' THEN {_LOSS_USED} ELSE 0 END, "
    f"{_OLDEST_COUNTED} "
    "FROM accounts_playerlimit l LEFT JOIN accounts_account w "
    "ON w.kind = 'user' AND w.owner_ref = l.owner_ref AND w.currency = l.currency "
    "WHERE l.owner_ref = {owner} AND l.currency = {currency} AND l.kind IN ({kinds}) ORDER BY l.kind, l.period"
)
_EXCLUSION_SQL = (
    "SELECT kind, ends_at FROM accounts_selfexclusion WHERE owner_ref = {owner} AND ends_at > %s "
    "ORDER BY ends_at DESC LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit as a call sees it: what is in force now and how much of its window is used."""

    kind: str
    period: str
    value: int | None  # in force now; None: a removal has come into force
    pending_value: int | None
    pending_effective_at: datetime | None
    used: int
    oldest_counted: datetime | None


@dataclass(frozen=True, slots=True)
class Protection:
    """What ``protection_select`` answered for one owner and currency."""

    limits: tuple[LimitState, ...]
    excluded_kind: str | None
    excluded_until: datetime | None
    now: datetime


@dataclass(frozen=True, slots=True)
class ProtectionQuery:
    limits: Result | None
    exclusion: Result
    now: datetime


def effective_value(
    value: int, pending_value: int | None, pending_effective_at: datetime | None, now: datetime
) -> int | None:
    """The limit in force at ``now``: a pending change applies once its cooling-off has passed
    (``pending_value`` None then means the limit is gone)."""
    if pending_effective_at is not None and pending_effective_at <= now:
        return pending_value
    return value


def protection_select(
    work: Work,
    *,
    owner_sql: str,
    owner_params: list[Any],
    currency_sql: str,
    currency_params: list[Any],
    kinds: tuple[str, ...],
    now: datetime,
) -> ProtectionQuery:
    """Queue the reads of the owner's ``kinds`` of limits in the currency (with their windows' use)
    and of their exclusion in force at ``now``. Queue it after the wallet's row lock. ``owner_sql``
    and ``currency_sql`` are SQL expressions (``%s`` or a subquery) with their parameters; a
    player without limits costs an index lookup that finds nothing."""
    limits = None
    if kinds:
        starts = [work.time(now - PERIODS[p]) for p in ("24h", "7d", "30d")]
        kinds_sql = ", ".join(f"'{kind}'" for kind in kinds)
        limits = work.query(
            _LIMITS_SQL.format(owner=owner_sql, currency=currency_sql, kinds=kinds_sql),
            # deposits used, loss used, oldest deposit, oldest buy-in: each its window's three starts
            [*starts, *starts, *starts, *starts, *owner_params, *currency_params],
        )
    exclusion = work.query(_EXCLUSION_SQL.format(owner=owner_sql), [*owner_params, work.time(now)])
    return ProtectionQuery(limits, exclusion, now)


def protection_of(query: ProtectionQuery) -> Protection:
    now = query.now
    limits = []
    for kind, period, value, pending_value, pending_at, used, oldest in query.limits.all() if query.limits else ():
        pending_at = as_datetime(pending_at)
        pending = None if pending_value is None else int(pending_value)
        limits.append(
            LimitState(
                kind,
                period,
                effective_value(int(value), pending, pending_at, now),
                pending,
                pending_at,
                int(used or 0),
                as_datetime(oldest),
            )
        )
    row = query.exclusion.one()
    return Protection(tuple(limits), row[0] if row else None, as_datetime(row[1]) if row else None, now)


def exclusion_check(protection: Protection) -> None:
    """Refuse with ``self_excluded`` while a self-exclusion or time-out is in force."""
    if protection.excluded_until is not None:
        raise ApplicationError(
            "self_excluded",
            f"the player is excluded until {format_timestamp(protection.excluded_until)}",
            {"kind": protection.excluded_kind, "until": format_timestamp(protection.excluded_until)},
        )


def deposit_check(protection: Protection, *, amount: int, currency: str) -> None:
    """A deposit: the exclusion, the operator's maximum single deposit, then each deposit window."""
    exclusion_check(protection)
    maximum = settings.MAX_SINGLE_DEPOSIT.get(currency)
    if maximum is not None and amount > maximum:
        raise ApplicationError(
            "deposit_too_large",
            f"a single deposit in {currency} may be at most {maximum}",
            {"currency": currency, "maximum": maximum, "requested": amount},
        )
    _windows_check(protection, kind="deposit", amount=amount, extra=0, code="deposit_limit_exceeded")


def buy_in_check(protection: Protection, *, amount: int, pending_holds: int) -> None:
    """A reservation or a buy-in: the exclusion, the maximum buy-in, then each loss window with the
    wallet's ``pending_holds`` (reservations that may still become buy-ins) counted as lost."""
    exclusion_check(protection)
    for limit in protection.limits:
        if limit.kind == "buy_in" and limit.value is not None and amount > limit.value:
            raise ApplicationError(
                "buy_in_limit_exceeded",
                f"a buy-in may be at most {limit.value}",
                {
                    "window": "per_buy_in",
                    "limit": limit.value,
                    "allowance": limit.value,
                    "requested": amount,
                    "resets_at": None,
                },
            )
    _windows_check(protection, kind="loss", amount=amount, extra=pending_holds, code="loss_limit_exceeded")


def _windows_check(protection: Protection, *, kind: str, amount: int, extra: int, code: str) -> None:
    tightest: tuple[int, LimitState] | None = None
    for limit in protection.limits:
        if limit.kind != kind or limit.value is None:
            continue
        allowance = max(0, limit.value - max(0, limit.used) - extra)
        if tightest is None or allowance < tightest[0]:
            tightest = (allowance, limit)
    if tightest is None or amount <= tightest[0]:
        return
    allowance, limit = tightest
    resets_at = limit.oldest_counted + PERIODS[limit.period] if limit.oldest_counted else None
    raise ApplicationError(
        code,
        f"the {limit.period} {kind} limit of {limit.value} leaves {allowance}, {amount} requested",
        {
            "window": limit.period,
            "limit": limit.value,
            "used": max(0, limit.used) + extra,
            "allowance": allowance,
            "requested": amount,
            "resets_at": format_timestamp(resets_at) if resets_at else None,
        },
    )
