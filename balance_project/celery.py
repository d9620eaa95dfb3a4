"""The Celery app and the beat schedule of the service's periodic jobs.

Tasks are named as strings, so the schedule loads even where a task module is missing; a beat entry
whose task is not registered fails when it fires, and tests/ops/test_celery.py reports such names.
django-celery-beat's DatabaseScheduler copies these entries into its tables at start-up, where the
admin can pause one or change its interval.
"""

import logging
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")

app = Celery("balance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# name -> (task, every N seconds). A run that waited in the queue longer than its interval is
# dropped (``expire_seconds``, DatabaseScheduler's name for ``expires``): the next run does the same
# work, so a backlog never piles up.
PERIODIC_JOBS: dict[str, tuple[str, float]] = {
    "expire-overdue-reservations": ("reservations.expire_overdue_reservations", 15.0),
    "seal-journal": ("ledger.seal_journal", 5.0),
    "verify-ledger-incremental": ("ledger.verify_ledger_incremental", 60.0),
    "verify-ledger": ("ledger.verify_ledger", 24 * 60 * 60.0),
    "reconcile-balances": ("ledger.reconcile_balances", 60 * 60.0),
    "expire-adjustment-proposals": ("accounts.expire_adjustment_proposals", 5 * 60.0),
}

app.conf.beat_schedule = {
    name: {"task": task, "schedule": every, "options": {"expire_seconds": int(every)}}
    for name, (task, every) in PERIODIC_JOBS.items()
}


@worker_init.connect
def metrics_endpoint_start(sender=None, **kwargs) -> None:
    """Serve this worker's Prometheus metrics (reservation expiries, task counters) on WORKER_METRICS_PORT.

    Counters incremented inside tasks are only visible here with ``--pool threads`` (what runall and
    the compose file use): a prefork pool would count in its child processes.
    """
    from django.conf import settings
    from prometheus_client import start_http_server

    if not settings.WORKER_METRICS_PORT:
        return
    try:
        start_http_server(settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDR)
    except OSError as exc:  # the port is taken: the worker still works, without metrics
        logging.getLogger(__name__).error(
            "worker metrics not served on %s:%s: %s", settings.WORKER_METRICS_ADDR, settings.WORKER_METRICS_PORT, exc
        )


@worker_init.connect
def tracing_start(sender=None, **kwargs) -> None:
    """Spans for every task this worker runs (and the SQL and Redis calls inside), when OTEL_* switch
    tracing on; a prefork pool's children inherit it (the span exporter's thread restarts after fork)."""
    from balance_project import tracing

    tracing.setup("worker")
