"""What a failed call says, read from the gRPC status and its google.rpc.ErrorInfo."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "balance.v1"

# Answers that say nothing about the request: the service was not reached, or not to the end.
_UNREACHABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


@dataclass(eq=False)
class BalanceError(Exception):
    """A call that ended without an answer. ``reason`` is the service's stable error code
    (``insufficient_funds``, ``idempotency_conflict``, ...) when the service gave one."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    attempts: int = 1

    def __post_init__(self) -> None:
        super().__init__(f"{self.code.name}: {self.reason or '-'}: {self.message}")

    @property
    def unreachable(self) -> bool:
        """True when the service gave no verdict on the request (down, too slow, crashed, busy)."""
        # ABORTED is the service's verdict only with its reason (idempotency_conflict); without one
        # it is the transport's (a stream reset while the answer was read).
        return (
            self.code in _UNREACHABLE_CODES
            or self.reason == "idempotency_in_progress"
            or (self.code == grpc.StatusCode.ABORTED and not self.reason)
        )

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.name, "reason": self.reason, "message": self.message}

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> BalanceError:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else str(error)) or ""
        reason, metadata = "", {}
        try:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]  # a failed call's RpcError is a Call
        except (ValueError, AttributeError):
            status = None
        for detail in status.details if status is not None else ():
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                reason, metadata = info.reason, dict(info.metadata)
                break
        return cls(code=code or grpc.StatusCode.UNKNOWN, message=message, reason=reason, metadata=metadata)
