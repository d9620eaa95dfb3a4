"""Rate limits per key on mutating calls (balance_project/throttling.py), and methods a view lacks."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_refused

pytestmark = pytest.mark.django_db


def test_a_key_over_its_rate_is_429_with_retry_after_and_nothing_moves(settings, api, make_api, opened):
    account_id = opened()
    settings.API_RATE_LIMIT_PER_SECOND = 3
    burst = make_api(client="burst")
    answers = [burst.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 1}) for _ in range(10)]
    statuses = [response.status_code for response in answers]
    # Ten calls in well under a second span at most two one-second windows: at most 6 go through.
    assert 3 <= statuses.count(201) <= 6 and statuses.count(429) == 10 - statuses.count(201), statuses
    limited = next(response for response in answers if response.status_code == 429)
    error = assert_refused(limited, 429, "rate_limited")
    assert limited["Retry-After"] == "1" and error["details"]["retry_after"] == 1
    balance = api.get(f"/api/v1/accounts/{account_id}/balance").json()["balance"]
    assert balance == statuses.count(201)  # a refused call moved nothing
    # Reads are not counted, and another key has its own allowance.
    assert all(burst.get(f"/api/v1/accounts/{account_id}").status_code == 200 for _ in range(5))
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 1}).status_code == 201


def test_a_zero_rate_turns_the_limit_off(settings, api, opened):
    settings.API_RATE_LIMIT_PER_SECOND = 0
    account_id = opened()
    assert all(api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 1}).status_code == 201 for _ in range(20))


def test_options_is_405_with_the_allowed_methods_before_any_credential(client):
    response = client.options("/api/v1/transfers")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"
    response = client.options("/api/v1/accounts")
    assert response.status_code == 405 and set(response["Allow"].split(", ")) == {"GET", "POST", "HEAD"}
