"""DRF glue shared by every app's views: the one exception handler."""
from __future__ import annotations

import logging

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from balance_project.errors import ApplicationError

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"error": exc.as_dict()}, status=exc.spec.http_status)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    log.exception("unexpected error in %s", context.get("view"))
    return Response({"error": {"code": "internal_error", "message": "internal error", "details": {}}}, status=500)


def client_of(request) -> str:
    """The caller's name: the idempotency scope of its keys."""
    return request.auth.client


def idempotency_key_of(request) -> str:
    """The ``Idempotency-Key`` header, checked (missing, empty, oversized or non-ASCII is a 400)."""
    from ledger.idempotency import idempotency_key_check

    return idempotency_key_check(request.headers.get("Idempotency-Key"))
