"""What a DEBUG error page may show (settings.DEFAULT_EXCEPTION_REPORTER_FILTER)."""

from __future__ import annotations

import re

from django.utils.regex_helper import _lazy_re_compile
from django.views.debug import SafeExceptionReporterFilter


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter hides settings named like a key or a password; connection URLs carry a
    password inside their value (``DATABASE_URL``, ``REDIS_URL``, ``CELERY_BROKER_URL``), so any
    setting whose name says URL or DATABASE is hidden too."""

    hidden_settings = _lazy_re_compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DATABASE|BROKER", flags=re.IGNORECASE
    )
