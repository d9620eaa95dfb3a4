"""One error model for every channel.

A service raises ``ApplicationError`` (or a subclass) with a stable code; the HTTP exception handler
and the gRPC interceptor both translate it through ``ERROR_TABLE``, so a code means the same thing
on every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc


@dataclass(frozen=True)
class ErrorSpec:
    http_status: int
    grpc_code: grpc.StatusCode
    retryable: bool = False


# code -> how each channel reports it. Add a code here before raising it anywhere.
ERROR_TABLE: dict[str, ErrorSpec] = {
    # Malformed input.
    "invalid_request": ErrorSpec(400, grpc.StatusCode.INVALID_ARGUMENT),
    "invalid_amount": ErrorSpec(400, grpc.StatusCode.INVALID_ARGUMENT),
    "malformed_json": ErrorSpec(400, grpc.StatusCode.INVALID_ARGUMENT),
    "idempotency_key_missing": ErrorSpec(400, grpc.StatusCode.INVALID_ARGUMENT),
    "idempotency_key_invalid": ErrorSpec(400, grpc.StatusCode.INVALID_ARGUMENT),
    "request_too_large": ErrorSpec(413, grpc.StatusCode.INVALID_ARGUMENT),
    # HTTP only: the method, the Accept or the Content-Type does not fit the endpoint.
    "method_not_allowed": ErrorSpec(405, grpc.StatusCode.UNIMPLEMENTED),
    "not_acceptable": ErrorSpec(406, grpc.StatusCode.INVALID_ARGUMENT),
    "unsupported_media_type": ErrorSpec(415, grpc.StatusCode.INVALID_ARGUMENT),
    # Credentials and scopes.
    "unauthenticated": ErrorSpec(401, grpc.StatusCode.UNAUTHENTICATED),
    "permission_denied": ErrorSpec(403, grpc.StatusCode.PERMISSION_DENIED),
    # Unknown ids.
    "not_found": ErrorSpec(404, grpc.StatusCode.NOT_FOUND),
    "account_not_found": ErrorSpec(404, grpc.StatusCode.NOT_FOUND),
    "reservation_not_found": ErrorSpec(404, grpc.StatusCode.NOT_FOUND),
    "table_not_found": ErrorSpec(404, grpc.StatusCode.NOT_FOUND),
    "seat_not_found": ErrorSpec(404, grpc.StatusCode.NOT_FOUND),
    # Conflicts: the key was used for something else, or the state forbids the call.
    "idempotency_conflict": ErrorSpec(409, grpc.StatusCode.ABORTED),
    "idempotency_in_progress": ErrorSpec(409, grpc.StatusCode.ABORTED, retryable=True),
    "account_exists": ErrorSpec(409, grpc.StatusCode.ALREADY_EXISTS),
    "reservation_not_pending": ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION),
    "reservation_expired": ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION),
    "hand_conflict": ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION),
    "table_closed": ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION),
    "table_not_empty": ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION),
    # Business rules refused.
    "insufficient_funds": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "account_frozen": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "account_closed": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "account_not_empty": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "account_not_wallet": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "currency_mismatch": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "unbalanced_transaction": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "settlement_invalid": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "player_not_seated": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "insufficient_chips": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "invalid_state": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    # Player protection (accounts/protection.py): a limit, an exclusion or the operator's policy.
    "deposit_limit_exceeded": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "loss_limit_exceeded": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "buy_in_limit_exceeded": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "deposit_too_large": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "self_excluded": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    "transfers_disabled": ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION),
    # Dependencies.
    "rate_limited": ErrorSpec(429, grpc.StatusCode.RESOURCE_EXHAUSTED, retryable=True),
    "unavailable": ErrorSpec(503, grpc.StatusCode.UNAVAILABLE, retryable=True),
    "deadline_exceeded": ErrorSpec(504, grpc.StatusCode.DEADLINE_EXCEEDED, retryable=True),
    "internal_error": ErrorSpec(500, grpc.StatusCode.INTERNAL),
}

ERROR_DOMAIN = "balance.v1"


class ApplicationError(Exception):
    """A refusal the caller can act on: stable ``code``, human ``message``, JSON-safe ``details``."""

    remembered = False  # set by ledger.idempotency once the refusal is stored under its key

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        if code not in ERROR_TABLE:
            raise ValueError(f"unknown error code {code!r}: add it to ERROR_TABLE")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def spec(self) -> ErrorSpec:
        return ERROR_TABLE[self.code]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApplicationError:
        return cls(data["code"], data["message"], data.get("details") or {})

    def __repr__(self) -> str:
        return f"ApplicationError({self.code!r}, {self.message!r}, {self.details!r})"
