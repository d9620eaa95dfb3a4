"""The Celery app loads, its beat schedule names real tasks, and the broker carries a message."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from balance_project.celery import PERIODIC_JOBS, app

EXPECTED_EVERY_SECONDS = {
    "reservations.expire_overdue_reservations": 15,
    "ledger.seal_journal": 5,
    "ledger.verify_ledger_incremental": 60,
    "ledger.verify_ledger": 24 * 60 * 60,
    "ledger.reconcile_balances": 60 * 60,
    "accounts.expire_adjustment_proposals": 5 * 60,
}


def registered_tasks() -> set[str]:
    app.loader.import_default_modules()  # what a worker does at start: import every app's tasks.py
    return set(app.tasks.keys())


def test_beat_schedule_has_each_job_at_its_interval():
    by_task = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    assert set(by_task) == set(EXPECTED_EVERY_SECONDS)
    for task, seconds in EXPECTED_EVERY_SECONDS.items():
        assert by_task[task]["schedule"] == seconds
        assert by_task[task]["options"]["expire_seconds"] == seconds


BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("task_name", sorted(EXPECTED_EVERY_SECONDS))
def test_scheduled_task_is_registered(task_name):
    registered = registered_tasks()
    if task_name not in registered:
        app_label = task_name.split(".", 1)[0]
        if not (BASE_DIR / app_label / "tasks.py").exists():
            pytest.skip(
                f"{task_name} is not registered yet ({app_label}/tasks.py does not exist): "
                "beat would send it and the worker would discard it"
            )
        from_app = sorted(name for name in registered if name.startswith(app_label + "."))
        pytest.fail(
            f"{app_label}/tasks.py exists but registers no task named {task_name} "
            f"(it registers {from_app}): the beat entry would be discarded by the worker"
        )
    assert app.tasks[task_name].name == task_name


@pytest.mark.django_db(transaction=True)  # the scheduler closes the connection, as in a real beat
def test_database_scheduler_stores_the_schedule():
    """What `celery worker -B --scheduler DatabaseScheduler` does at start: copy entries into tables."""
    scheduler = DatabaseScheduler(app=app, lazy=False)
    try:
        stored = {p.name: p for p in PeriodicTask.objects.filter(name__in=PERIODIC_JOBS)}
        assert set(stored) == set(PERIODIC_JOBS)
        for name, (task, every) in PERIODIC_JOBS.items():
            assert stored[name].task == task
            assert stored[name].enabled
            assert (
                stored[name].interval.every * {"seconds": 1, "minutes": 60, "hours": 3600}[stored[name].interval.period]
                == every
            )
            assert stored[name].expire_seconds == int(every)
        assert set(PERIODIC_JOBS) <= set(scheduler.schedule)
    finally:
        scheduler.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("task_name", ["ledger.verify_ledger", "reservations.expire_overdue_reservations"])
def test_periodic_task_runs_eagerly(task_name):
    if task_name not in registered_tasks():
        pytest.skip(f"{task_name} is not registered yet")
    result = app.tasks[task_name].apply()
    assert result.successful(), result.traceback


def test_broker_carries_a_message_from_producer_to_consumer():
    """On the embedded default this is the filesystem transport: the folder written is the one read."""
    queue_name = f"ops-test-{uuid.uuid4().hex}"
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            queue.put({"probe": queue_name})
            message = queue.get(timeout=10)
            message.ack()
            assert message.payload == {"probe": queue_name}
        finally:
            queue.queue.delete()
            queue.close()
