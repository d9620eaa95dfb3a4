"""A clock the tests move (every service reads django.utils.timezone.now), and small builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.protection_services import player_limit_set, self_exclusion_start
from tests.tables.helpers import new_key


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(timezone, "now", lambda: moving.now)
    return moving


def set_limit(owner, kind, period, value, currency="EUR"):
    return player_limit_set(
        client="tests",
        idempotency_key=new_key("limit"),
        owner_ref=owner,
        currency=currency,
        kind=kind,
        period=period,
        value=value,
    )["limit"]


def exclude(owner, kind="time_out", days=1):
    return self_exclusion_start(client="tests", idempotency_key=new_key("excl"), owner_ref=owner, kind=kind, days=days)
