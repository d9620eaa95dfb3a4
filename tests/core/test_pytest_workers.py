"""Under pytest-xdist each worker gets its own var directory and Redis database
(balance_project/pytest_plugin.py), so one worker's cache flush never empties another's."""

from __future__ import annotations

from balance_project.pytest_plugin import XDIST_REDIS_DB_STRIDE, _own_resources_per_xdist_worker


def test_each_worker_gets_its_own_var_directory_and_redis_database():
    environ = {"PYTEST_XDIST_WORKER": "gw1", "BALANCE_VAR_DIR": "/tmp/ci-var", "REDIS_URL": "redis://h:6379/9"}
    _own_resources_per_xdist_worker(environ)
    assert environ["BALANCE_VAR_DIR"] == "/tmp/ci-var/xdist-gw1"
    assert environ["REDIS_URL"] == f"redis://h:6379/{(9 + XDIST_REDIS_DB_STRIDE) % 16}"
    other = {"PYTEST_XDIST_WORKER": "gw0", "BALANCE_VAR_DIR": "/tmp/ci-var", "REDIS_URL": "redis://h:6379/9"}
    _own_resources_per_xdist_worker(other)
    assert other["REDIS_URL"] == "redis://h:6379/9" and other["BALANCE_VAR_DIR"] != environ["BALANCE_VAR_DIR"]


def test_one_process_runs_change_nothing():
    environ = {"BALANCE_VAR_DIR": "/tmp/ci-var", "REDIS_URL": "redis://h:6379/9"}
    _own_resources_per_xdist_worker(environ)
    assert environ == {"BALANCE_VAR_DIR": "/tmp/ci-var", "REDIS_URL": "redis://h:6379/9"}
