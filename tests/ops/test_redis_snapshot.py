"""A Redis restarted from an older snapshot never makes a process serve an old balance (part of
#10), even a process that never saw Redis fail: its connections were closed before the restart,
so the breaker never tripped, and only the run_id check on its next new connection
(accounts/cache.py) stands between it and the dump's older balance."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
from django.test import override_settings

from accounts.selectors import account_balance_get
from accounts.services import account_deposit
from balance_project import redis_breaker
from balance_project.shared_cache import shared_cache
from tests.ops.faults import PrivateRedis, redis_caches
from tests.tables.helpers import new_key, new_player

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


def cached_balances(server: PrivateRedis, account_id: int) -> list[int]:
    """Every balance of the account the server holds, in any generation."""
    client = server.client()
    return [
        json.loads(client.get(key))["balance"] for key in client.scan_iter(match=f"*account-balance:v2:*:{account_id}")
    ]


def test_a_redis_back_from_an_old_snapshot_never_serves_the_balance_before_it(private_redis):
    with override_settings(CACHES=redis_caches(private_redis.url, f"snap-{uuid.uuid4().hex[:8]}")):
        redis_breaker.reset_for_tests()
        _, wallet = new_player(funded=100)
        warm = account_balance_get(account_id=wallet)
        assert (warm["balance"], warm["source"]) == (100, "cache")
        private_redis.save()  # the snapshot holds 100
        account_deposit(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=50)
        assert account_balance_get(account_id=wallet)["balance"] == 150  # the cache now holds 150

        # This process sees nothing fail: no connection of its pool is open across the restart.
        shared_cache().client.get_client(write=True).connection_pool.disconnect()
        private_redis.restart_from_dump()
        assert cached_balances(private_redis, wallet) == [100]  # the old balance is back in Redis

        read = account_balance_get(account_id=wallet)
        assert read["balance"] == 150, read  # never the snapshot's 100
        assert redis_breaker.cache_trusted() and not redis_breaker.is_open()  # no failure was seen
        again = account_balance_get(account_id=wallet)
        assert (again["balance"], again["source"]) == (150, "cache")  # cached anew, in the new generation


def test_a_second_restart_on_the_same_dump_starts_yet_another_generation(private_redis):
    """The generation is a random token, not a counter the dump could carry forward."""
    with override_settings(CACHES=redis_caches(private_redis.url, f"snap-{uuid.uuid4().hex[:8]}")):
        redis_breaker.reset_for_tests()
        _, wallet = new_player(funded=100)
        account_balance_get(account_id=wallet)
        private_redis.save()
        pool = shared_cache().client.get_client(write=True).connection_pool
        for amount in (10, 20):
            account_deposit(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=amount)
            assert account_balance_get(account_id=wallet)["source"] == "cache"
            pool.disconnect()
            private_redis.restart_from_dump()
            assert account_balance_get(account_id=wallet)["balance"] == 100 + 10 + (20 if amount == 20 else 0)
