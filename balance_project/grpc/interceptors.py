"""Cross-cutting work of every gRPC call, as server interceptors listed in settings.GRPC_INTERCEPTORS.

The first listed is the outermost. The default order (settings.py):
metrics -> database connections -> errors -> call budget -> auth -> request decoding -> mutation guard
-> servicer; composed once per method (``ComposedOncePerMethod``).

grpcio calls ``intercept_service`` on its polling thread; the wrapped behaviour below runs on the
worker thread that serves the call, which is where database work and the caller context belong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

from accounts.keys import ApiKeyCache, api_key_require
from balance_project import outage
from balance_project.deadlines import call_budget
from balance_project.errors import ApplicationError
from balance_project.grpc import metrics
from balance_project.grpc.caller import current_key
from balance_project.grpc.errors import abort_with
from balance_project.grpc.policies import policy_for
from ledger.idempotency import idempotency_key_check

log = logging.getLogger("balance.grpc")

Behavior = Callable[[Any, grpc.ServicerContext], Any]

# Below this much time left, a mutation is not started: it could not answer in time anyway, and a
# caller that has given up must not find an effect it was told had failed.
MIN_TIME_FOR_MUTATION_SECONDS = 0.005
# A call sent without a deadline: grpcio's time_remaining() is then not None but its infinite future
# (about 3e8 s); no caller means a deadline a year away.
NO_DEADLINE_ABOVE_SECONDS = 365 * 24 * 3600


class UnaryInterceptor(grpc.ServerInterceptor):
    """Wraps the unary-unary behaviour of the calls ``applies_to`` accepts; passes the rest through."""

    def applies_to(self, full_method: str) -> bool:
        return True

    def around(self, full_method: str, request: Any, context: grpc.ServicerContext, proceed: Behavior) -> Any:
        raise NotImplementedError

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        full_method = handler_call_details.method
        if handler is None or handler.unary_unary is None or not self.applies_to(full_method):
            return handler
        inner = handler.unary_unary

        def behavior(request, context):
            return self.around(full_method, request, context, inner)

        return handler._replace(unary_unary=behavior)


class ComposedOncePerMethod(grpc.ServerInterceptor):
    """``UnaryInterceptor``s composed once per method instead of on every call.

    grpcio runs its interceptor chain for each call: every ``intercept_service`` looks the handler
    up again and wraps it in a new closure. A ``UnaryInterceptor`` wraps a given method the same way
    every time, so the wrapped handler of each method the server serves is kept and handed out as
    is. A method the server does not know (None) is not kept: a caller may name any number."""

    def __init__(self, interceptors: list[UnaryInterceptor]) -> None:
        self.interceptors = tuple(interceptors)
        self._handlers: dict[str, Any] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = self._handlers.get(handler_call_details.method)
        if handler is None:
            handler = self._compose(0, continuation, handler_call_details)
            if handler is not None:
                self._handlers[handler_call_details.method] = handler
        return handler

    def _compose(self, index: int, continuation, handler_call_details):
        if index == len(self.interceptors):
            return continuation(handler_call_details)
        return self.interceptors[index].intercept_service(
            lambda details: self._compose(index + 1, continuation, details), handler_call_details
        )


def composed(interceptors: list[grpc.ServerInterceptor]) -> list[grpc.ServerInterceptor]:
    """``interceptors`` as one ``ComposedOncePerMethod`` when they are all ``UnaryInterceptor``s (the
    default list); any other kind in the list keeps grpcio's chain per call, unchanged."""
    if interceptors and all(isinstance(each, UnaryInterceptor) for each in interceptors):
        return [ComposedOncePerMethod(interceptors)]  # type: ignore[arg-type]  # checked just above
    return interceptors


class MetricsInterceptor(UnaryInterceptor):
    """Latency histogram per method and a counter by method and status code."""

    def around(self, full_method, request, context, proceed):
        service, method = metrics.split_method(full_method)
        started = time.perf_counter()
        code = "UNKNOWN"
        try:
            response = proceed(request, context)
            code = _code_name(context.code()) or "OK"
            return response
        except BaseException:
            code = _code_name(context.code()) or "UNKNOWN"
            raise
        finally:
            metrics.HANDLING_SECONDS.labels(service, method).observe(time.perf_counter() - started)
            metrics.HANDLED_TOTAL.labels(service, method, code).inc()


class DatabaseConnectionsInterceptor(UnaryInterceptor):
    """What Django's request_started/request_finished do for HTTP, on the worker thread that owns
    the connections: before and after each call, drop a connection past CONN_MAX_AGE, one left
    outside autocommit, or one that raised a database error and no longer answers.

    Unlike ``close_old_connections`` it does not reset CONN_HEALTH_CHECKS on every call, which cost
    a ``SELECT 1`` round trip at the start of each: a connection that broke while idle fails its
    call with UNAVAILABLE (retryable, same idempotency key) and is replaced after it."""

    def around(self, full_method, request, context, proceed):
        _recycle_connections()
        try:
            return proceed(request, context)
        finally:
            _recycle_connections()


def _recycle_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if (
            conn.errors_occurred
            or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]
            or (conn.close_at is not None and time.monotonic() >= conn.close_at)
        ):
            conn.close_if_unusable_or_obsolete()


class ErrorsInterceptor(UnaryInterceptor):
    """ApplicationError -> its status and ErrorInfo; a database outage -> UNAVAILABLE (retryable);
    anything else -> INTERNAL with no detail for the caller and the stack trace in the log."""

    def around(self, full_method, request, context, proceed):
        try:
            return proceed(request, context)
        except ApplicationError as error:
            abort_with(context, error)
        except (OperationalError, InterfaceError) as exc:
            log.warning("database unavailable during %s: %s", full_method, exc)
            abort_with(context, ApplicationError("unavailable", "the balance database is unavailable, retry"))
        except Exception as exc:
            if _already_aborted(context, exc):
                raise
            log.exception("unexpected error in %s", full_method)
            abort_with(context, ApplicationError("internal_error", "internal error"))


class CallBudgetInterceptor(UnaryInterceptor):
    """The call's deadline bounds its database waits (balance_project/deadlines.py); a caller that
    sent none gets GRPC_DEFAULT_CALL_SECONDS. The server learns the deadline as a timeout relative
    to when the request arrived, so it ends a little later than the caller's own: the budget stops
    GRPC_DEADLINE_MARGIN_SECONDS short of it, so the server gives up first."""

    def around(self, full_method, request, context, proceed):
        remaining = context.time_remaining()
        if remaining is None or remaining > NO_DEADLINE_ABOVE_SECONDS:
            seconds = settings.GRPC_DEFAULT_CALL_SECONDS
        else:
            seconds = remaining - settings.GRPC_DEADLINE_MARGIN_SECONDS
        with outage.call_state(), call_budget(seconds):
            response = proceed(request, context)
            if outage.served_stale():  # answered from the cache while the database was down
                context.set_trailing_metadata(((outage.STALE_METADATA, "true"),))
            return response


class AuthInterceptor(UnaryInterceptor):
    """``authorization: Bearer <key>``: the same ApiKey records and scopes as HTTP. The key's client
    becomes the caller (the idempotency scope) for the rest of the call.

    ``cache_seconds`` > 0 keeps authenticated keys in process memory that long (``ApiKeyCache``): a
    revoked key then stops working within that time. 0, the default here, reads the database on
    every call; ``grpcserver --auth-cache-seconds`` sets it for the sidecar. While the database does
    not answer, a recently verified key still authenticates (accounts/keys.py) and a mutating call
    answers UNAVAILABLE at once (balance_project/outage.py)."""

    def __init__(self, cache_seconds: float = 0.0):
        self.keys = ApiKeyCache(cache_seconds)

    def applies_to(self, full_method):
        return policy_for(full_method) is not None

    def around(self, full_method, request, context, proceed):
        policy = policy_for(full_method)
        assert policy is not None  # applies_to() said so
        record = self.keys.authenticate(_bearer_token(context))
        if not any(scope in record.scopes for scope in policy.scopes):
            api_key_require(record, policy.scopes[0] if policy.scopes else "undeclared")
        if policy.mutating and outage.database_down():
            raise outage.database_unavailable()
        token = current_key.set(record)
        try:
            return proceed(request, context)
        finally:
            current_key.reset(token)


class UndecodableRequest:
    """What a request that is not a valid message of its type decodes to (see ``RequestDecodingInterceptor``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class RequestDecodingInterceptor(UnaryInterceptor):
    """Bytes that are not a valid request message (truncated, wrong wire types, strings that are not
    UTF-8) answer INVALID_ARGUMENT with ErrorInfo ``invalid_request``, like any other bad input:
    grpcio would end the call INTERNAL ("Exception deserializing request!") before any interceptor
    ran. Listed after authentication, so an unknown caller still learns nothing but UNAUTHENTICATED."""

    def intercept_service(self, continuation, handler_call_details):
        handler = super().intercept_service(continuation, handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer

        def lenient(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception as exc:  # protobuf's DecodeError, or a UnicodeDecodeError inside it
                return UndecodableRequest(type(exc).__name__)

        return handler._replace(request_deserializer=lenient)

    def around(self, full_method, request, context, proceed):
        if isinstance(request, UndecodableRequest):
            raise ApplicationError(
                "invalid_request",
                "the request is not a valid message of this method's request type",
                {"reason": request.reason},
            )
        return proceed(request, context)


class MutationGuardInterceptor(UnaryInterceptor):
    """Before a mutating call starts: a valid idempotency key, and enough time left on the deadline.

    The mutation itself is one database transaction (ledger.idempotency.idempotent), so once started
    it either lands whole with its key or not at all; a caller whose deadline expired meanwhile gets
    the stored answer by retrying with the same key.
    """

    def applies_to(self, full_method):
        policy = policy_for(full_method)
        return policy is not None and policy.mutating

    def around(self, full_method, request, context, proceed):
        idempotency_key_check(getattr(request, "idempotency_key", None))
        remaining = context.time_remaining()
        if remaining is not None and remaining < MIN_TIME_FOR_MUTATION_SECONDS:
            raise ApplicationError(
                "deadline_exceeded",
                "the deadline expired before the call could start",
                {"remaining_seconds": f"{max(remaining, 0):.3f}"},
            )
        return proceed(request, context)


def _bearer_token(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _code_name(code: grpc.StatusCode | None) -> str | None:
    return code.name if code is not None else None


def _already_aborted(context: grpc.ServicerContext, exc: Exception) -> bool:
    """``context.abort`` raises a bare Exception after setting the code: let it through as it is."""
    return type(exc) is Exception and context.code() is not None  # type: ignore[attr-defined]  # grpcio>=1.38


__all__ = [
    "AuthInterceptor",
    "ComposedOncePerMethod",
    "DatabaseConnectionsInterceptor",
    "ErrorsInterceptor",
    "MetricsInterceptor",
    "MutationGuardInterceptor",
    "UnaryInterceptor",
]
