"""The Celery app and the beat schedule of the service's periodic jobs.

Tasks are named as strings, so the schedule loads even where a task module is missing; a beat entry
whose task is not registered fails when it fires, and tests/ops/test_celery.py reports such names.
django-celery-beat's DatabaseScheduler copies these entries into its tables at start-up, where the
admin can pause one or change its interval.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")

app = Celery("balance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# name -> (task, every N seconds). A run that waited in the queue longer than its interval is
# dropped (``expire_seconds``, DatabaseScheduler's name for ``expires``): the next run does the same
# work, so a backlog never piles up.
PERIODIC_JOBS: dict[str, tuple[str, float]] = {
    "expire-overdue-reservations": ("reservations.tasks.expire_overdue_reservations", 15.0),
    "ledger-checkpoint": ("ledger.tasks.ledger_checkpoint_task", 5 * 60.0),
    "verify-ledger": ("ledger.tasks.verify_ledger_task", 10 * 60.0),
    "reconcile-balances": ("ledger.tasks.reconcile_balances_task", 60 * 60.0),
}

app.conf.beat_schedule = {
    name: {"task": task, "schedule": every, "options": {"expire_seconds": int(every)}}
    for name, (task, every) in PERIODIC_JOBS.items()
}
