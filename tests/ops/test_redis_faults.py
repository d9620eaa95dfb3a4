"""A frozen or restarted Redis (part of #10), against a private redis-server this test starts and
freezes with SIGSTOP: calls go on at database speed, and no stale balance is served afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from accounts.selectors import account_balance_get
from accounts.services import account_deposit
from balance_project import redis_breaker
from tests.ops.faults import free_port, wait_until
from tests.tables.helpers import new_key, new_player

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


@pytest.fixture
def private_redis(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def caches_on(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"faults-{new_key()}",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "IGNORE_EXCEPTIONS": True,
                "CONNECTION_POOL_CLASS": "balance_project.redis_breaker.CircuitBreakerConnectionPool",
            },
        }
    }


def test_a_frozen_redis_costs_calls_little_and_no_stale_balance_is_served_after(private_redis):
    process, url = private_redis
    with override_settings(CACHES=caches_on(url), REDIS_URL=url, REDIS_BREAKER_SECONDS=0.5):
        _, wallet = new_player(funded=100)
        warm = account_balance_get(account_id=wallet)
        assert (warm["balance"], warm["source"]) == (100, "cache")

        os.kill(process.pid, signal.SIGSTOP)
        started = time.monotonic()
        account_deposit(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=50)
        first = time.monotonic() - started
        started = time.monotonic()
        account_deposit(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=50)
        second = time.monotonic() - started
        assert first < 2.0, f"the first call behind a frozen Redis took {first:.2f} s"
        assert second < 0.3, f"with the breaker open a call still took {second:.2f} s"
        frozen = account_balance_get(account_id=wallet)
        assert (frozen["balance"], frozen["source"]) == (200, "database")

        os.kill(process.pid, signal.SIGCONT)  # it comes back holding the balance before both deposits
        time.sleep(settings.REDIS_BREAKER_SECONDS + 0.1)
        reads = []
        assert wait_until(lambda: reads.append(account_balance_get(account_id=wallet)) or redis_breaker.cache_trusted())
        assert all(read["balance"] == 200 for read in reads), reads  # never the stale 100
        assert account_balance_get(account_id=wallet)["balance"] == 200
