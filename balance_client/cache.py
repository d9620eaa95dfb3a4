"""The client's balance read cache: the last balance the service gave, for when it cannot be reached.

Only a read that got no answer (the service down, too slow, busy) falls back to it, and only to an
entry younger than ``max_staleness_seconds``; the answer then says it is stale and how old it is.
An entry is dropped as soon as this client sends a mutation naming its player (whatever its
outcome), so the cache never serves a balance older than a change this client could know of.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from balance_client._pb.balance.v1 import balance_pb2 as pb

DEFAULT_MAX_STALENESS_SECONDS = 5.0


@dataclass(frozen=True)
class BalanceRead:
    """A balance as read: fresh from the service, or (``stale``) from the cache, ``age_seconds`` old."""

    response: pb.GetBalanceResponse
    stale: bool = False
    age_seconds: float = 0.0

    @property
    def account(self) -> pb.Account:
        return self.response.account


class BalanceCache:
    def __init__(
        self,
        max_staleness_seconds: float = DEFAULT_MAX_STALENESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_staleness_seconds < 0:
            raise ValueError("max_staleness_seconds must be 0 (no cache) or more")
        self.max_staleness_seconds = max_staleness_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (answer, when it was read); a wallet and its account id are two keys of one entry.
        self._entries: dict[tuple[str, ...], tuple[pb.GetBalanceResponse, float]] = {}

    def store(self, response: pb.GetBalanceResponse) -> None:
        if self.max_staleness_seconds == 0:
            return
        account = response.account
        now = self._clock()
        with self._lock:
            self._entries[("id", str(account.id))] = (response, now)
            self._entries[("wallet", account.owner_ref, account.currency)] = (response, now)

    def lookup(self, key: tuple[str, ...]) -> BalanceRead | None:
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            return None
        response, read_at = found
        age = self._clock() - read_at
        if age > self.max_staleness_seconds:
            return None
        return BalanceRead(response, stale=True, age_seconds=age)

    def forget_players(self, user_ids: Iterable[str]) -> None:
        users = {user for user in user_ids if user}
        if not users:
            return
        with self._lock:
            for key, (response, _) in list(self._entries.items()):
                if response.account.owner_ref in users:
                    del self._entries[key]


def cache_key(account_id: int | None, user_id: str | None, currency: str | None) -> tuple[str, ...]:
    if account_id is not None:
        return ("id", str(account_id))
    return ("wallet", user_id or "", currency or "")
