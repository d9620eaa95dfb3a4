"""The authenticated caller of the gRPC call running on this thread, set by AuthInterceptor."""

from __future__ import annotations

from contextvars import ContextVar

from accounts.models import ApiKey
from balance_project.errors import ApplicationError

current_key: ContextVar[ApiKey | None] = ContextVar("balance_grpc_caller", default=None)


def caller_client() -> str:
    """The calling client's name: the idempotency scope, exactly as on HTTP (``request.auth.client``)."""
    record = current_key.get()
    if record is None:
        # Only reachable if the auth interceptor was left out of GRPC_INTERCEPTORS.
        raise ApplicationError("unauthenticated", "no authenticated caller")
    return record.client
