"""The time budget of the call being served, so every database wait of it ends by its deadline.

A gRPC call's deadline is the caller's (``context.time_remaining()``; ``GRPC_DEFAULT_CALL_SECONDS``
when it sent none); an HTTP call has ``HTTP_CALL_SECONDS``. ``call_budget`` holds it for the call
(a context variable: each gRPC call and each HTTP request runs in its own context), and
``ledger.work.Work`` turns what is left into ``statement_timeout`` and ``lock_timeout`` for each
round trip on PostgreSQL (SQLite: its busy timeout), and refuses to send a COMMIT once nothing is
left: a caller told ``deadline_exceeded`` never sees the call land later. Every other ORM statement
of the call (reads, key authentication) gets the same bound from balance_project/query_budget.py,
installed on the call's connection by ``call_budget``. Jobs and commands run with no budget and wait
as long as their statements take.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from balance_project import outage
from balance_project.errors import ApplicationError

_deadline: ContextVar[float | None] = ContextVar("balance_call_deadline", default=None)


@contextmanager
def call_budget(seconds: float | None) -> Iterator[None]:
    """Within the block, the call must end ``seconds`` from now (None: no budget), and every ORM
    statement on the default connection is bounded by what is left."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        with _statements_bounded():
            yield
    finally:
        _deadline.reset(token)


@contextmanager
def narrowed(seconds: float) -> Iterator[None]:
    """Within the block, at most ``seconds`` more of the call's budget (a wait that has a fallback,
    such as the key lookup: accounts/keys.py)."""
    current = _deadline.get()
    mine = time.monotonic() + seconds
    token = _deadline.set(mine if current is None else min(current, mine))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def _statements_bounded() -> Iterator[None]:
    from django.db import connections

    from balance_project.query_budget import bounded_statement

    wrappers = connections["default"].execute_wrappers
    if bounded_statement in wrappers:  # an enclosing budget installed it
        yield
        return
    wrappers.append(bounded_statement)
    try:
        yield
    finally:
        wrappers.remove(bounded_statement)


def time_left() -> float | None:
    """Seconds left of the call's budget (negative once past it); None when it has none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def deadline_exceeded(what: str) -> ApplicationError:
    return ApplicationError(
        "deadline_exceeded", f"the call's deadline passed {what}; nothing was committed", {"retryable": True}
    )


class CallBudgetMiddleware:
    """Every HTTP request gets ``HTTP_CALL_SECONDS`` (settings.MIDDLEWARE), and its own outage
    state: an answer served from the cache while the database was down says so in a header."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with outage.call_state(), call_budget(settings.HTTP_CALL_SECONDS):
            response = self.get_response(request)
            if outage.served_stale():
                response[outage.STALE_HEADER] = "true"
            return response
