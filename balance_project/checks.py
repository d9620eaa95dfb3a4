"""System checks of the service's own settings (``manage.py check --deploy``)."""

from __future__ import annotations

import os

from django.core import checks

from balance_project.secrecy import MIN_KEY_BYTES, key_problems


@checks.register(checks.Tags.security, deploy=True)
def keys_are_own(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Settings already refuse to start production on public or short keys; the embedded default
    may run on them, and a deployment check must say so."""
    return [
        checks.Warning(
            problem,
            hint=f"set DJANGO_SECRET_KEY and LEDGER_HMAC_KEY to random values of at least {MIN_KEY_BYTES} bytes",
            id="balance.W001",
        )
        for problem in key_problems(os.environ)
    ]
