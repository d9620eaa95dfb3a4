"""/metrics shows house balances: behind a bearer token when METRICS_TOKEN is set, off in production
without one (balance_project/metrics_view.py)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

TOKEN = "m" * 40


def test_without_a_token_metrics_are_served_off_production_only():
    with override_settings(METRICS_TOKEN="", SECURE=False):
        assert Client().get("/metrics").status_code == 200
    with override_settings(METRICS_TOKEN="", SECURE=True):
        response = Client().get("/metrics", secure=True)
        assert response.status_code == 404 and b"balance_" not in response.content


@pytest.mark.parametrize("secure", [False, True])
def test_with_a_token_a_scrape_must_send_it(secure):
    with override_settings(METRICS_TOKEN=TOKEN, SECURE=secure):
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"X-API-Key": TOKEN}):
            response = Client().get("/metrics", headers=header, secure=True)
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
        response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, secure=True)
        assert response.status_code == 200 and b"python_info" in response.content
