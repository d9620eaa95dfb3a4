"""Probes for the orchestrator. No API key; JSON only.

/health is liveness: the process answers, nothing else is touched (no database, no Redis), so a
database outage never gets healthy processes restarted. /ready is readiness: the database answers a
query, every migration is applied, and Redis (when configured) answers a ping. Redis down does not
make the service unready (reads fall back to the database): it is reported as "degraded".
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

# Once every migration is applied it stays so for the life of the process (new migrations come
# with new code, hence a new process), so the migration graph is loaded until it first passes.
_migrations_applied = False


@never_cache
@require_safe
def health(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request):
    checks = {"database": _database_check()}
    if checks["database"]["status"] == "ok":
        checks["migrations"] = _migrations_check()
    else:
        checks["migrations"] = {"status": "unknown"}
    checks["redis"] = _redis_check()
    unready = any(check["status"] not in ("ok", "degraded", "disabled") for check in checks.values())
    degraded = any(check["status"] == "degraded" for check in checks.values())
    status = "unavailable" if unready else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": checks}, status=503 if unready else 200)


def _database_check() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        log.warning("readiness: database check failed", exc_info=True)
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "vendor": connection.vendor}


def _migrations_check() -> dict:
    global _migrations_applied
    if _migrations_applied:
        return {"status": "ok"}
    try:
        loader = MigrationLoader(connection)
        # Every migration on disk, not a plan to the leaves: a plan skips a gap below an applied leaf.
        pending = sorted(f"{app}.{name}" for app, name in set(loader.graph.nodes) - set(loader.applied_migrations))
    except Exception as exc:
        log.warning("readiness: migration check failed", exc_info=True)
        return {"status": "down", "error": type(exc).__name__}
    if pending:
        return {"status": "pending", "unapplied": pending[:20], "unapplied_count": len(pending)}
    _migrations_applied = True
    return {"status": "ok"}


def _redis_check() -> dict:
    if not settings.REDIS_URL:
        return {"status": "disabled"}
    try:
        from django_redis import get_redis_connection

        get_redis_connection("default").ping()
    except Exception as exc:
        log.warning("readiness: redis ping failed", exc_info=True)
        return {"status": "degraded", "error": type(exc).__name__}
    return {"status": "ok"}
