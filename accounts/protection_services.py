"""Setting a player's limits and starting a self-exclusion or time-out; reading them back.

One implementation behind HTTP, gRPC and the admin. Each change is idempotent by key, locks the
owner's wallets first (so it is ordered against the deposits and buy-ins it limits: a decrease
applies to the very next one), and writes its ``ProtectionEvent`` (who, when, from what to what) in
the same transaction. The rules themselves are in accounts/protection.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.identifiers import user_id_check
from accounts.models import PlayerLimit, ProtectionEvent, SelfExclusion
from accounts.protection import PERIODS, effective_value
from balance_project.errors import ApplicationError
from balance_project.money import parse_amount, parse_currency
from ledger.chain import format_timestamp
from ledger.idempotency import idempotent
from ledger.services import accounts_select
from ledger.work import Work, as_datetime

_EVENT_INSERT = (
    "INSERT INTO accounts_protectionevent (owner_ref, currency, action, kind, period, old_value, new_value, "
    "effective_at, actor, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def limit_kind_check(kind: Any, period: Any) -> tuple[str, str]:
    """(kind, period): a deposit or loss limit names its window (24h, 7d, 30d); a buy-in limit none."""
    if kind not in PlayerLimit.Kind.values:
        raise ApplicationError(
            "invalid_request", f"kind must be one of {', '.join(PlayerLimit.Kind.values)}", {"field": "kind"}
        )
    period = period or ""
    if kind == PlayerLimit.Kind.BUY_IN:
        if period:
            raise ApplicationError("invalid_request", "a buy-in limit has no period", {"field": "period"})
    elif period not in PERIODS:
        raise ApplicationError(
            "invalid_request", f"a {kind} limit's period is one of {', '.join(PERIODS)}", {"field": "period"}
        )
    return kind, period


def player_limit_set(
    *,
    client: str,
    idempotency_key: str,
    owner_ref: str,
    currency: str,
    kind: str,
    period: str | None,
    value: Any,
    actor: str | None = None,
) -> dict[str, Any]:
    """Set one limit (``value`` in minor units; None removes it). A new or lower limit applies at
    once and cancels a pending increase; a higher one, or a removal, waits for the cooling-off
    (settings.LIMIT_INCREASE_COOLING_OFF_SECONDS). -> {"limit": limit_result}

    Locks the owner's wallet in the currency (if it exists) before it reads the limit."""
    owner_ref = user_id_check(owner_ref, field="owner_ref")
    currency = parse_currency(currency)
    kind, period = limit_kind_check(kind, period)
    value = None if value is None else parse_amount(value, field="value")
    actor = (actor or client)[:128]

    def execute(work: Work) -> dict[str, Any]:
        now = timezone.now()
        accounts_select(work, "kind = 'user' AND owner_ref = %s AND currency = %s", [owner_ref, currency])
        found = work.query(
            "SELECT id, value, pending_value, pending_effective_at FROM accounts_playerlimit "
            "WHERE owner_ref = %s AND currency = %s AND kind = %s AND period = %s",
            [owner_ref, currency, kind, period],
        )
        work.send()
        row = found.one()
        in_force, pending_open = None, False
        if row is not None:
            pending_at = as_datetime(row[3])
            in_force = effective_value(int(row[1]), None if row[2] is None else int(row[2]), pending_at, now)
            pending_open = pending_at is not None and pending_at > now
        due = now + timedelta(seconds=settings.LIMIT_INCREASE_COOLING_OFF_SECONDS)
        # (in force after, pending value, pending from): what the limit's row will hold
        state: tuple[int | None, int | None, datetime | None]
        action = ""
        if value is None and in_force is None:
            state = (None, None, None)  # nothing to remove
        elif value is None:
            state, action = (in_force, None, due), ProtectionEvent.Action.LIMIT_REMOVAL_PENDING
        elif in_force is None or value <= in_force:
            state = (value, None, None)
            cancelled = pending_open and value == in_force
            action = ProtectionEvent.Action.LIMIT_PENDING_CANCELLED if cancelled else ProtectionEvent.Action.LIMIT_SET
        else:
            state, action = (in_force, value, due), ProtectionEvent.Action.LIMIT_INCREASE_PENDING
        in_force_after, pending_value, pending_at = state
        if in_force_after is not None:
            _limit_write(work, row, owner_ref, currency, kind, period, state, now)
            work.execute(
                _EVENT_INSERT,
                [
                    owner_ref,
                    currency,
                    action,
                    kind,
                    period,
                    in_force,
                    value,
                    work.time(pending_at or now),
                    actor,
                    work.time(now),
                ],
            )
        elif row is not None:  # a removal that has come into force: the row goes
            work.execute("DELETE FROM accounts_playerlimit WHERE id = %s", [row[0]])
        return {"limit": limit_result(owner_ref, currency, kind, period, in_force_after, pending_value, pending_at)}

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="player_limit_set",
        params={"owner_ref": owner_ref, "currency": currency, "kind": kind, "period": period, "value": value},
        execute=execute,
    )


def self_exclusion_start(
    *, client: str, idempotency_key: str, owner_ref: str, kind: str, days: Any, actor: str | None = None
) -> dict[str, Any]:
    """Start a self-exclusion or a time-out of ``days`` from now, at once, for every currency.
    Nothing shortens or lifts one: a new one only counts where it ends later.
    -> {"exclusion": exclusion_result, "excluded_until": ISO-8601}

    Locks the owner's wallets before it writes, so no deposit or buy-in of theirs commits after it."""
    owner_ref = user_id_check(owner_ref, field="owner_ref")
    if kind not in SelfExclusion.Kind.values:
        raise ApplicationError(
            "invalid_request", f"kind must be one of {', '.join(SelfExclusion.Kind.values)}", {"field": "kind"}
        )
    low, high = settings.SELF_EXCLUSION_DAYS if kind == SelfExclusion.Kind.SELF_EXCLUSION else settings.TIME_OUT_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise ApplicationError(
            "invalid_request", f"a {kind} lasts {low} to {high} days", {"field": "days", "min": low, "max": high}
        )
    actor = (actor or client)[:128]

    def execute(work: Work) -> dict[str, Any]:
        now = timezone.now()
        ends = now + timedelta(days=days)
        accounts_select(work, "kind = 'user' AND owner_ref = %s", [owner_ref])
        current = work.query(
            "SELECT MAX(ends_at) FROM accounts_selfexclusion WHERE owner_ref = %s AND ends_at > %s",
            [owner_ref, work.time(now)],
        )
        work.send()
        row = current.one()
        until = max(ends, as_datetime(row[0])) if row and row[0] is not None else ends
        work.execute(
            "INSERT INTO accounts_selfexclusion (owner_ref, kind, starts_at, ends_at, actor, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [owner_ref, kind, work.time(now), work.time(ends), actor, work.time(now)],
        )
        work.execute(
            _EVENT_INSERT,
            [
                owner_ref,
                "",
                ProtectionEvent.Action.EXCLUSION_STARTED,
                kind,
                "",
                None,
                days,
                work.time(ends),
                actor,
                work.time(now),
            ],
        )
        return {
            "exclusion": exclusion_result(owner_ref, kind, now, ends),
            "excluded_until": format_timestamp(until),
        }

    return idempotent(
        scope=client,
        key=idempotency_key,
        operation="self_exclusion_start",
        params={"owner_ref": owner_ref, "kind": kind, "days": days},
        execute=execute,
    )


def player_protection_get(*, owner_ref: str, currency: str | None = None) -> dict[str, Any]:
    """The owner's limits (in one currency, or all) and the exclusion in force, as of now."""
    owner_ref = user_id_check(owner_ref, field="owner_ref")
    now = timezone.now()
    limits = PlayerLimit.objects.filter(owner_ref=owner_ref).order_by("currency", "kind", "period")
    if currency is not None:
        limits = limits.filter(currency=parse_currency(currency))
    rendered = []
    for limit in limits:
        in_force = effective_value(limit.value, limit.pending_value, limit.pending_effective_at, now)
        if in_force is None:
            continue
        due = limit.pending_effective_at if limit.pending_effective_at and limit.pending_effective_at > now else None
        rendered.append(
            limit_result(
                owner_ref, limit.currency, limit.kind, limit.period, in_force, limit.pending_value if due else None, due
            )
        )
    exclusion = SelfExclusion.objects.filter(owner_ref=owner_ref, ends_at__gt=now).order_by("-ends_at").first()
    return {
        "owner_ref": owner_ref,
        "limits": rendered,
        "exclusion": exclusion_result(owner_ref, exclusion.kind, exclusion.starts_at, exclusion.ends_at)
        if exclusion
        else None,
    }


def limit_result(
    owner_ref: str,
    currency: str,
    kind: str,
    period: str,
    value: int | None,
    pending_value: int | None,
    pending_effective_at: datetime | None,
) -> dict[str, Any]:
    return {
        "owner_ref": owner_ref,
        "currency": currency,
        "kind": kind,
        "period": period,
        "value": value,
        "pending_value": pending_value,
        "pending_removal": pending_effective_at is not None and pending_value is None,
        "pending_effective_at": format_timestamp(pending_effective_at) if pending_effective_at else None,
    }


def exclusion_result(owner_ref: str, kind: str, starts_at: datetime, ends_at: datetime) -> dict[str, Any]:
    return {
        "owner_ref": owner_ref,
        "kind": kind,
        "starts_at": format_timestamp(starts_at),
        "ends_at": format_timestamp(ends_at),
    }


def _limit_write(
    work: Work,
    row: tuple[Any, ...] | None,
    owner_ref: str,
    currency: str,
    kind: str,
    period: str,
    state: tuple[int | None, int | None, datetime | None],
    now: datetime,
) -> None:
    value, pending_value, pending_at = state
    pending_sql = work.time(pending_at) if pending_at else None
    if row is None:
        work.execute(
            "INSERT INTO accounts_playerlimit (owner_ref, currency, kind, period, value, pending_value, "
            "pending_effective_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [owner_ref, currency, kind, period, value, pending_value, pending_sql, work.time(now), work.time(now)],
        )
    else:
        work.execute(
            "UPDATE accounts_playerlimit SET value = %s, pending_value = %s, pending_effective_at = %s, "
            "updated_at = %s WHERE id = %s",
            [value, pending_value, pending_sql, work.time(now), row[0]],
        )
