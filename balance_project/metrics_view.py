"""``/metrics`` on the API port: the Prometheus export, which shows house balances and the ledger's
integrity, so it is not public in production.

With ``METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <METRICS_TOKEN>`` (Prometheus:
``authorization.credentials_file``); without one, ``/metrics`` is served only off production
(``DJANGO_SECURE`` unset: the embedded default, a laptop's compose) and is a 404 in production.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView

from balance_project.api import _error_response
from balance_project.errors import ApplicationError


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        if settings.SECURE:
            return _error_response(ApplicationError("not_found", "no such resource"))
        return ExportToDjangoView(request)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _error_response(ApplicationError("unauthenticated", "/metrics needs its bearer token (METRICS_TOKEN)"))
    return ExportToDjangoView(request)
