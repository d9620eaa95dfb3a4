"""Rolling the balance service in behind the poker tables: ``off``, ``shadow``, ``enforce``.

- ``off``: no calls at all; every operation is allowed.
- ``shadow``: the service is called and its verdict compared with the poker side's own
  (``expected_allowed``); a disagreement is logged, but a seat is never blocked. What the poker side
  goes ahead with without the service's yes (no answer, or a refusal) goes to the reconciliation
  log, to be resent until answered: a later refusal of it is a divergence.
- ``enforce``: the service decides. A definite refusal (the service answered) refuses. An unknown
  outcome (no answer after the client's same-key retries) is never a refusal: the operation goes to
  the reconciliation log and the decision is ``pending`` (not allowed yet: hold the seat and wait for
  the outbox's answer), or, with ``permissive_fallback``, allowed and logged.

The reconciliation log is the durable outbox (balance_client.outbox): ``start_outbox()`` resends its
lines in the background with their own keys, and an operation on a table with lines still pending
is queued behind them rather than sent ahead (a settlement may need a buy-in still in the log).
Contract: docs/clients.md.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from balance_client.client import BalanceClient
from balance_client.errors import BalanceError
from balance_client.keys import idempotency_key as make_key
from balance_client.outbox import Outbox
from balance_client.reconciliation import ReconciliationLog

if TYPE_CHECKING:
    from balance_client.replay import OnAnswer

log = logging.getLogger("balance_client.rollout")


class RolloutMode(str, enum.Enum):
    OFF = "off"
    SHADOW = "shadow"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class Decision:
    """``allowed``: whether the poker side may go ahead now. ``outcome``: "skipped" (off), "ok",
    "refused" (the service answered no), or "pending" (no answer: it may or may not have happened;
    the outbox will learn it with the same key). A pending decision is never a refusal."""

    allowed: bool
    mode: RolloutMode
    outcome: str
    idempotency_key: str
    reason: str = ""  # the service's error code, or the status code name when there was none
    response: Any = None  # the service's answer when outcome == "ok"
    reconciliation_logged: bool = False  # written to the log (the outbox), to be resent until answered

    @property
    def pending(self) -> bool:
        return self.outcome == "pending"


class BalanceGate:
    def __init__(
        self,
        client: BalanceClient | None,
        mode: RolloutMode | str,
        *,
        permissive_fallback: bool = False,
        reconciliation_log: ReconciliationLog | str | None = None,
    ):
        self.client = client
        self.mode = RolloutMode(mode)
        self.permissive_fallback = permissive_fallback
        if isinstance(reconciliation_log, str):
            reconciliation_log = ReconciliationLog(reconciliation_log)
        self.reconciliation_log = reconciliation_log
        if self.mode is not RolloutMode.OFF and client is None:
            raise ValueError(f"mode {self.mode.value} needs a BalanceClient")
        if self.mode is not RolloutMode.OFF and reconciliation_log is None:
            raise ValueError("operations let through or left pending need a reconciliation log (the outbox)")
        self.outbox = (
            Outbox(reconciliation_log, client) if client is not None and reconciliation_log is not None else None
        )

    def start_outbox(self, *, interval: float = 1.0, on_answer: OnAnswer | None = None) -> Outbox:
        """Resends the log's pending lines every ``interval`` s in a daemon thread; ``on_answer(line,
        mark)`` gets each answer (how the poker side learns a pending operation's verdict)."""
        assert self.outbox is not None, "mode off has no outbox"
        return self.outbox.start(interval=interval, on_answer=on_answer)

    def stop_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.stop()

    def buy_in(
        self,
        *,
        user_id: str,
        table_id: str,
        amount: int,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
        expected_allowed: bool = True,
    ) -> Decision:
        request = {"user_id": user_id, "table_id": table_id, "amount": amount, "ttl_seconds": ttl_seconds}
        key = idempotency_key or make_key("buy_in", table_id, user_id)
        return self._decide("buy_in", request, key, expected_allowed)

    def settle_hand(
        self,
        *,
        table_id: str,
        hand_id: str,
        contributions: Mapping[str, int],
        payouts: Mapping[str, int],
        rake: int = 0,
        idempotency_key: str | None = None,
        expected_allowed: bool = True,
    ) -> Decision:
        request = {
            "table_id": table_id,
            "hand_id": hand_id,
            "contributions": dict(contributions),
            "payouts": dict(payouts),
            "rake": rake,
        }
        key = idempotency_key or make_key("settle_hand", table_id, f"hand-{hand_id}")
        return self._decide("settle_hand", request, key, expected_allowed)

    def cash_out(
        self,
        *,
        table_id: str,
        user_id: str,
        amount: int | None = None,
        leave: bool = False,
        whole: bool = False,
        idempotency_key: str | None = None,
        expected_allowed: bool = True,
    ) -> Decision:
        request = {"table_id": table_id, "user_id": user_id, "amount": amount, "leave": leave, "whole": whole}
        key = idempotency_key or make_key("cash_out", table_id, user_id)
        return self._decide("cash_out", request, key, expected_allowed)

    def _may_let_through(self) -> bool:
        return self.mode is RolloutMode.SHADOW or (self.mode is RolloutMode.ENFORCE and self.permissive_fallback)

    def _decide(self, operation: str, request: dict[str, Any], key: str, expected_allowed: bool) -> Decision:
        if self.mode is RolloutMode.OFF:
            return Decision(True, self.mode, "skipped", key)
        assert self.client is not None and self.outbox is not None
        table_id = request.get("table_id", "")
        deadline = time.monotonic() + self.client.timeout  # the drain and the call share one budget
        if self.outbox.holds(table_id):
            # Earlier operations of this table wait in the log: they go first, or this one waits too.
            self.outbox.drain(deadline=deadline)
            if self.outbox.holds(table_id):
                behind = BalanceError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"queued behind earlier operations of table {table_id} still pending",
                    reason="queued_behind",
                )
                return self._pending(operation, request, key, behind)
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BalanceError(grpc.StatusCode.DEADLINE_EXCEEDED, "the budget went on earlier lines of the table")
            response = getattr(self.client, operation)(**request, idempotency_key=key, timeout=remaining)
        except BalanceError as error:
            if error.unreachable:
                return self._pending(operation, request, key, error)
            return self._refused(operation, request, key, error, expected_allowed)
        except Exception as exc:  # a bug on this side is no verdict, and must not block a seat in shadow mode
            log.exception("balance %s failed in the client", operation)
            return self._pending(operation, request, key, BalanceError(grpc.StatusCode.UNKNOWN, repr(exc)))
        if self.mode is RolloutMode.SHADOW and not expected_allowed:
            log.warning(
                "balance shadow disagreement: %s %s refused by the poker side, allowed by the balance service key=%s",
                operation,
                _describe(request),
                key,
            )
        return Decision(True, self.mode, "ok", key, response=response)

    def _refused(
        self, operation: str, request: dict[str, Any], key: str, error: BalanceError, expected_allowed: bool
    ) -> Decision:
        reason = error.reason or error.code.name
        if self.mode is not RolloutMode.SHADOW:
            return Decision(False, self.mode, "refused", key, reason=reason)
        if not expected_allowed:  # both sides say no: nothing was let through
            return Decision(True, self.mode, "refused", key, reason=reason)
        log.warning(
            "balance shadow disagreement: %s %s allowed by the poker side, refused by the balance service (%s: %s) "
            "key=%s",
            operation,
            _describe(request),
            error.reason,
            error.message,
            key,
        )
        # The poker side goes ahead against the service's no: logged and resent, so a refusal that only
        # came from order (a settlement before its buy-in was replayed) heals, and a lasting one is a
        # divergence in the reconciliation report.
        logged = self._log(operation, request, key, error, let_through=True)
        return Decision(True, self.mode, "refused", key, reason=reason, reconciliation_logged=logged)

    def _pending(self, operation: str, request: dict[str, Any], key: str, error: BalanceError) -> Decision:
        reason = error.reason or error.code.name
        let_through = self._may_let_through()
        logged = self._log(operation, request, key, error, let_through=let_through)
        if let_through:
            log.warning(
                "balance %s let through without the service's answer (%s); logged for reconciliation key=%s",
                operation,
                reason,
                key,
            )
            # Without its log line a let-through cannot be reconciled: only shadow mode (where the poker
            # side's books still decide) goes ahead without one.
            allowed = logged or self.mode is RolloutMode.SHADOW
        else:
            log.warning(
                "balance %s pending: no answer from the service (%s); queued for the outbox key=%s",
                operation,
                reason,
                key,
            )
            allowed = False
        return Decision(allowed, self.mode, "pending", key, reason=reason, reconciliation_logged=logged)

    def _log(
        self, operation: str, request: dict[str, Any], key: str, error: BalanceError, *, let_through: bool
    ) -> bool:
        assert self.reconciliation_log is not None and self.outbox is not None
        try:
            entry = self.reconciliation_log.append(
                operation=operation,
                request=request,
                idempotency_key=key,
                mode=self.mode.value,
                error=error.as_dict(),
                let_through=let_through,
            )
        except OSError:
            log.exception("balance %s could not be written to the reconciliation log key=%s", operation, key)
            return False
        self.outbox.added(entry)
        return True


def _describe(request: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in request.items() if v is not None)
