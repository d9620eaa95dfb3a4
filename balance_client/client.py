"""BalanceClient: typed calls to balance.v1.BalanceService with deadlines and safe retries.

Every call has a deadline (``timeout`` seconds, per call or the client's default) that covers all its
attempts. UNAVAILABLE, ABORTED, RESOURCE_EXHAUSTED and (with ``RetryPolicy.attempt_timeout``)
DEADLINE_EXCEEDED are retried with exponential backoff and full jitter, always with the same
idempotency key, so a retry can never apply an operation twice; ABORTED with reason
``idempotency_conflict`` is final (the key was used for a different request: retrying cannot help).
Answers are the generated messages (balance_client.pb), whose .pyi stubs type them.
``read_balance`` falls back to the last balance read (balance_client.cache) when the service cannot
be reached, marked stale with its age, never older than ``max_staleness_seconds``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_client.cache import DEFAULT_MAX_STALENESS_SECONDS, BalanceCache, BalanceRead, cache_key
from balance_client.errors import BalanceError
from balance_client.keys import idempotency_key

# After a failed connection the channel waits before dialling again; keep that wait within the
# retry budget, so a retry after a restart of the service finds it rather than the channel's backoff.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
# RESOURCE_EXHAUSTED: the sidecar is at its cap of calls in flight (GRPC_MAX_CONCURRENT_RPCS); backing
# off helps, and the same key makes the retry safe.
# DEADLINE_EXCEEDED: an attempt cut short by attempt_timeout, retried while the call's deadline lasts.
_RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_FINAL_REASONS = frozenset({"idempotency_conflict"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0
    # Deadline of one attempt within the call's: an attempt lost in a hung connection ends
    # DEADLINE_EXCEEDED and is retried (same key) while time remains. None: one attempt may use it all.
    attempt_timeout: float | None = None

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, initial * multiplier ** n)]."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier**retry_number)
        return rng.uniform(0, ceiling)


class BalanceClient:
    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float = 2.0,
        retry: RetryPolicy | None = None,
        channel: grpc.Channel | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_staleness_seconds: float = DEFAULT_MAX_STALENESS_SECONDS,
    ):
        self.target = target
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._channel = channel or grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = balance_pb2_grpc.BalanceServiceStub(self._channel)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.balance_cache = BalanceCache(max_staleness_seconds)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> BalanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reads ----------------------------------------------------------------------------------

    def get_balance(
        self,
        *,
        account_id: int | None = None,
        user_id: str | None = None,
        currency: str | None = None,
        timeout: float | None = None,
    ) -> pb.GetBalanceResponse:
        if account_id is not None:
            request = pb.GetBalanceRequest(account_id=account_id)
        else:
            request = pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=user_id or "", currency=currency or ""))
        response: pb.GetBalanceResponse = self._call("GetBalance", request, timeout)
        self.balance_cache.store(response)
        return response

    def read_balance(
        self,
        *,
        account_id: int | None = None,
        user_id: str | None = None,
        currency: str | None = None,
        timeout: float | None = None,
    ) -> BalanceRead:
        """The balance from the service; when it cannot be reached, the last one read if it is at most
        ``max_staleness_seconds`` old (``stale=True``, ``age_seconds``); else the error is raised."""
        try:
            return BalanceRead(
                self.get_balance(account_id=account_id, user_id=user_id, currency=currency, timeout=timeout)
            )
        except BalanceError as error:
            cached = self.balance_cache.lookup(cache_key(account_id, user_id, currency)) if error.unreachable else None
            if cached is None:
                raise
            return cached

    def list_transactions(
        self, *, account_id: int, cursor: str = "", limit: int = 0, timeout: float | None = None
    ) -> pb.ListTransactionsResponse:
        request = pb.ListTransactionsRequest(account_id=account_id, cursor=cursor, limit=limit)
        return self._call("ListTransactions", request, timeout)

    def get_reservation(self, *, reservation_id: int, timeout: float | None = None) -> pb.ReservationResponse:
        return self._call("GetReservation", pb.GetReservationRequest(reservation_id=reservation_id), timeout)

    def get_table(self, *, table_id: str, timeout: float | None = None) -> pb.TableResponse:
        return self._call("GetTable", pb.GetTableRequest(table_id=table_id), timeout)

    # ---- mutations: the key is made once here and reused by every retry --------------------------

    def reserve(
        self,
        *,
        user_id: str,
        table_id: str,
        amount: int,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.ReservationResponse:
        request = pb.ReserveRequest(
            idempotency_key=idempotency_key or _key("reserve", table_id, user_id),
            user_id=user_id,
            table_id=table_id,
            amount=amount,
            ttl_seconds=ttl_seconds,
        )
        return self._call("Reserve", request, timeout)

    def commit_reservation(
        self,
        *,
        reservation_id: int,
        amount: int | None = None,
        whole: bool = False,
        table_id: str = "",
        user_id: str = "",
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.CommitReservationResponse:
        """Commit ``amount``, or everything held with ``whole=True`` (one of the two: the service
        never reads a missing amount as "all")."""
        key = idempotency_key or _key("commit_reservation", table_id or f"reservation-{reservation_id}", user_id)
        request = pb.CommitReservationRequest(
            idempotency_key=key, reservation_id=reservation_id, amount=amount, all=whole
        )
        return self._call("CommitReservation", request, timeout)

    def release_reservation(
        self,
        *,
        reservation_id: int,
        reason: str = "",
        table_id: str = "",
        user_id: str = "",
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.ReservationResponse:
        key = idempotency_key or _key("release_reservation", table_id or f"reservation-{reservation_id}", user_id)
        request = pb.ReleaseReservationRequest(idempotency_key=key, reservation_id=reservation_id, reason=reason)
        return self._call("ReleaseReservation", request, timeout)

    def open_table(
        self, *, table_id: str, currency: str, idempotency_key: str | None = None, timeout: float | None = None
    ) -> pb.TableResponse:
        request = pb.OpenTableRequest(
            idempotency_key=idempotency_key or _key("open_table", table_id), table_id=table_id, currency=currency
        )
        return self._call("OpenTable", request, timeout)

    def close_table(
        self, *, table_id: str, idempotency_key: str | None = None, timeout: float | None = None
    ) -> pb.TableResponse:
        request = pb.CloseTableRequest(
            idempotency_key=idempotency_key or _key("close_table", table_id), table_id=table_id
        )
        return self._call("CloseTable", request, timeout)

    def buy_in(
        self,
        *,
        user_id: str,
        table_id: str,
        amount: int,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.BuyInResponse:
        request = pb.BuyInRequest(
            idempotency_key=idempotency_key or _key("buy_in", table_id, user_id),
            user_id=user_id,
            table_id=table_id,
            amount=amount,
            ttl_seconds=ttl_seconds,
        )
        return self._call("BuyIn", request, timeout)

    def settle_hand(
        self,
        *,
        table_id: str,
        hand_id: str,
        contributions: Mapping[str, int],
        payouts: Mapping[str, int],
        rake: int = 0,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.SettleHandResponse:
        """The key's user slot holds ``hand-<hand id>``: a settlement concerns the whole table."""
        key = idempotency_key or _key("settle_hand", table_id, f"hand-{hand_id}")
        request = pb.SettleHandRequest(
            idempotency_key=key,
            table_id=table_id,
            hand_id=hand_id,
            contributions=dict(contributions),
            payouts=dict(payouts),
            rake=rake,
        )
        return self._call("SettleHand", request, timeout)

    def cash_out(
        self,
        *,
        table_id: str,
        user_id: str,
        amount: int | None = None,
        leave: bool = False,
        whole: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.CashOutResponse:
        """Cash out ``amount``, or every chip with ``whole=True`` (keeping the seat) or ``leave=True``
        (closing it): one of the three."""
        request = pb.CashOutRequest(
            idempotency_key=idempotency_key or _key("cash_out", table_id, user_id),
            table_id=table_id,
            user_id=user_id,
            amount=amount,
            leave=leave,
            all=whole,
        )
        return self._call("CashOut", request, timeout)

    # ---- player protection (docs/player-protection.md) -------------------------------------------

    def get_player_protection(
        self, *, owner_ref: str, currency: str | None = None, timeout: float | None = None
    ) -> pb.GetPlayerProtectionResponse:
        request = pb.GetPlayerProtectionRequest(owner_ref=owner_ref, currency=currency)
        return self._call("GetPlayerProtection", request, timeout)

    def set_player_limit(
        self,
        *,
        owner_ref: str,
        currency: str,
        kind: str,
        period: str = "",
        value: int | None = None,
        remove: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.SetPlayerLimitResponse:
        """A new or lower limit applies at once; a higher one, or ``remove``, after the cooling-off."""
        request = pb.SetPlayerLimitRequest(
            idempotency_key=idempotency_key or _key("set_limit", f"{kind}-{period or 'table'}", owner_ref),
            owner_ref=owner_ref,
            currency=currency,
            kind=kind,
            period=period,
            value=value,
            remove=remove,
        )
        return self._call("SetPlayerLimit", request, timeout)

    def start_self_exclusion(
        self,
        *,
        owner_ref: str,
        kind: str,
        days: int,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> pb.StartSelfExclusionResponse:
        """``kind``: "time_out" or "self_exclusion"; nothing shortens or lifts one once started."""
        request = pb.StartSelfExclusionRequest(
            idempotency_key=idempotency_key or _key("exclude", kind, owner_ref),
            owner_ref=owner_ref,
            kind=kind,
            days=days,
        )
        return self._call("StartSelfExclusion", request, timeout)

    # ---- the one place calls are made -----------------------------------------------------------

    def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        if getattr(request, "idempotency_key", ""):
            # A mutation (whatever its outcome) makes the players' cached balances older than a change
            # this client could know of: they are not served again.
            self.balance_cache.forget_players(_players_of(request))
        rpc = getattr(self._stub, method)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BalanceError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    "the call's deadline passed before an answer",
                    attempts=attempt - 1,
                )
            if self.retry.attempt_timeout is not None:
                remaining = min(remaining, self.retry.attempt_timeout)
            try:
                return rpc(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as rpc_error:
                error = BalanceError.from_rpc_error(rpc_error)
                error.attempts = attempt
                if not self._should_retry(error, attempt):
                    raise error from None
                pause = self.retry.backoff(attempt - 1, self._rng)
                if time.monotonic() + pause >= deadline:
                    raise error from None
                self._sleep(pause)

    def _should_retry(self, error: BalanceError, attempt: int) -> bool:
        if error.code is grpc.StatusCode.DEADLINE_EXCEEDED and self.retry.attempt_timeout is None:
            return False  # the attempt had the whole budget: none is left
        return (
            attempt < self.retry.max_attempts and error.code in _RETRYABLE_CODES and error.reason not in _FINAL_REASONS
        )


def _players_of(request: Any) -> set[str]:
    players = {getattr(request, "user_id", "")}
    for name in ("contributions", "payouts"):
        players.update(getattr(request, name, {}))
    return players


def _key(operation: str, table_id: str, user_id: str = "") -> str:
    return idempotency_key(operation, table_id, user_id)
