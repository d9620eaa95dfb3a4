"""Rolling the balance service in behind the poker tables: ``off``, ``shadow``, ``enforce``.

- ``off``: no calls at all; every operation is allowed.
- ``shadow``: the service is called and its verdict compared with the poker side's own
  (``expected_allowed``); a disagreement is logged, but a seat is never blocked: on any failure the
  operation is allowed, and one let through while the service was unreachable goes to the
  reconciliation log.
- ``enforce``: the service decides. When it cannot be reached the operation is refused, unless
  ``permissive_fallback`` is on: then it is allowed and goes to the reconciliation log.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from balance_client.client import BalanceClient
from balance_client.errors import BalanceError
from balance_client.keys import idempotency_key as make_key
from balance_client.reconciliation import ReconciliationLog

log = logging.getLogger("balance_client.rollout")


class RolloutMode(str, enum.Enum):
    OFF = "off"
    SHADOW = "shadow"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    mode: RolloutMode
    outcome: str  # "skipped" (off), "ok", "refused" (the service said no), "unreachable"
    idempotency_key: str
    reason: str = ""  # the service's error code, or the status code name when there was none
    response: Any = None  # the service's answer when outcome == "ok"
    reconciliation_logged: bool = False


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
        if self._may_let_through() and reconciliation_log is None:
            raise ValueError("operations let through while the service is down need a reconciliation log")

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
        try:
            response = getattr(self.client, operation)(**request, idempotency_key=key)
        except BalanceError as error:
            if error.unreachable:
                return self._unreachable(operation, request, key, error)
            if self.mode is RolloutMode.SHADOW:
                if expected_allowed:
                    log.warning(
                        "balance shadow disagreement: %s %s allowed by the poker side, refused by the "
                        "balance service (%s: %s) key=%s",
                        operation,
                        _describe(request),
                        error.reason,
                        error.message,
                        key,
                    )
                return Decision(True, self.mode, "refused", key, reason=error.reason or error.code.name)
            return Decision(False, self.mode, "refused", key, reason=error.reason or error.code.name)
        except Exception as exc:  # a bug on this side must not block a seat in shadow mode either
            log.exception("balance %s failed in the client", operation)
            return self._unreachable(operation, request, key, BalanceError(grpc.StatusCode.UNKNOWN, repr(exc)))
        if self.mode is RolloutMode.SHADOW and not expected_allowed:
            log.warning(
                "balance shadow disagreement: %s %s refused by the poker side, allowed by the balance service key=%s",
                operation,
                _describe(request),
                key,
            )
        return Decision(True, self.mode, "ok", key, response=response)

    def _unreachable(self, operation: str, request: dict[str, Any], key: str, error: BalanceError) -> Decision:
        reason = error.reason or error.code.name
        if not self._may_let_through():
            log.warning("balance %s refused: service unreachable (%s) key=%s", operation, reason, key)
            return Decision(False, self.mode, "unreachable", key, reason=reason)
        assert self.reconciliation_log is not None  # __init__ refuses a gate that lets through without one
        self.reconciliation_log.append(
            operation=operation, request=request, idempotency_key=key, mode=self.mode.value, error=error.as_dict()
        )
        log.warning(
            "balance %s let through while the service is unreachable (%s); logged for reconciliation key=%s",
            operation,
            reason,
            key,
        )
        return Decision(True, self.mode, "unreachable", key, reason=reason, reconciliation_logged=True)


def _describe(request: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in request.items() if v is not None)
