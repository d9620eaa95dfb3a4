"""The sidecar's in-memory cache of authenticated keys: what it saves and what it costs.

A cached key is served without a database lookup; a revoked key keeps working in that process until
its entry expires (``--auth-cache-seconds``, documented in docs/grpc.md), never longer.
"""

from __future__ import annotations

import pytest

from accounts import keys
from accounts.keys import ApiKeyCache, api_key_create
from accounts.models import ApiKey
from balance_project.errors import ApplicationError

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(keys.time, "monotonic", clock)
    return clock


def test_a_cached_key_costs_no_query(clock, django_assert_num_queries):
    raw, record = api_key_create(client="poker", scopes=["tables:write"])
    cache = ApiKeyCache(5)
    assert cache.authenticate(raw).pk == record.pk
    with django_assert_num_queries(0):
        assert cache.authenticate(raw).client == "poker"


def test_a_revoked_key_stops_working_when_its_entry_expires(clock):
    raw, _ = api_key_create(client="poker", scopes=["tables:write"])
    cache = ApiKeyCache(5)
    cache.authenticate(raw)
    ApiKey.objects.update(is_active=False)
    clock.now += 4.9
    assert cache.authenticate(raw).client == "poker"  # the documented window
    clock.now += 0.2
    with pytest.raises(ApplicationError) as refused:
        cache.authenticate(raw)
    assert refused.value.code == "unauthenticated"


def test_refusals_are_not_cached_and_zero_seconds_reads_every_time(clock):
    cache = ApiKeyCache(5)
    with pytest.raises(ApplicationError):
        cache.authenticate("bal_unknown_key")
    raw, _ = api_key_create(client="poker", scopes=["tables:write"])
    assert cache.authenticate(raw).client == "poker"  # a new key works at once

    uncached = ApiKeyCache(0)
    assert uncached.authenticate(raw).client == "poker"
    ApiKey.objects.update(is_active=False)
    with pytest.raises(ApplicationError):
        uncached.authenticate(raw)
