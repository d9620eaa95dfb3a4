"""The Celery app. Beat schedules live in settings (CELERY_BEAT_SCHEDULE) and django-celery-beat."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")

app = Celery("balance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
