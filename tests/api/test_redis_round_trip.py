"""The hot calls' own Redis commands (balance_project.shared_cache.redis_round_trip): the idempotency
fast path stores JSON, never a pickle, and one round trip hands its connection back clean."""

from __future__ import annotations

import json
import os
import pickle
import threading

import pytest
import redis

from balance_project.shared_cache import redis_pool, redis_round_trip, shared_cache
from ledger.idempotency import _cache_key
from ledger.models import JournalRecord


class _Payload:
    """A pickle that, once loaded, would create ``path``: what anyone able to write to Redis could
    run in the service if the idempotency fast path unpickled what it reads there."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_replay_is_answered_from_json_in_redis_and_a_pickle_there_is_never_loaded(api, opened, tmp_path):
    account_id = opened()
    first = api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 700}, idem="json-key")
    assert first.status_code == 201
    (record,) = JournalRecord.objects.filter(key="json-key")
    redis_key = shared_cache().make_key(_cache_key(record.scope, "json-key"))
    (stored,) = redis_round_trip(redis_pool(), [("GET", redis_key)])
    entry = json.loads(stored)
    assert (entry["hash"], entry["is_error"], entry["response"]) == (
        record.request_hash,
        False,
        json.loads(record.response),
    )

    planted = tmp_path / "planted"
    redis_round_trip(redis_pool(), [("SET", redis_key, pickle.dumps(_Payload(str(planted))))])
    again = api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 700}, idem="json-key")
    assert (again.status_code, again.content) == (first.status_code, first.content)  # the stored record answered
    assert not planted.exists()
    assert api.get(f"/api/v1/accounts/{account_id}/balance").json()["balance"] == 700  # moved once


@pytest.mark.redis
@pytest.mark.django_db
def test_a_script_error_is_raised_after_every_reply_is_read_and_the_connection_is_kept():
    pool = redis_pool()
    key = shared_cache().make_key("round-trip-test")
    (connection_id, _) = redis_round_trip(pool, [("CLIENT", "ID"), ("DEL", key)])
    with pytest.raises(redis.exceptions.ResponseError, match="refused on purpose"):
        redis_round_trip(pool, [("EVAL", "return redis.error_reply('refused on purpose')", 0), ("SET", key, "1")])
    # The SET after the failing script in the same round trip ran, and its reply was read: the same
    # connection answers the next command with that command's own reply.
    assert redis_round_trip(pool, [("INCR", key), ("GET", key)]) == [2, b"2"]
    assert redis_round_trip(pool, [("CLIENT", "ID")]) == [connection_id]  # kept, not made anew


@pytest.mark.redis
@pytest.mark.django_db
def test_a_forked_process_talks_to_redis_on_a_connection_of_its_own():
    """A Celery prefork worker inherits the thread that forked it: sharing its socket with the
    parent would hand each process the other's replies."""
    pool = redis_pool()
    (parent_id,) = redis_round_trip(pool, [("CLIENT", "ID")])
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        try:
            (child_id,) = redis_round_trip(pool, [("CLIENT", "ID")])
            os.write(write_end, str(child_id).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 100)
    os.waitpid(child, 0)
    assert answer and int(answer) != parent_id
    assert redis_round_trip(pool, [("CLIENT", "ID")]) == [parent_id]  # the parent's is untouched


@pytest.mark.redis
@pytest.mark.django_db
def test_threads_that_come_and_go_leave_no_connection_counted_or_open_behind():
    """More short-lived threads than redis-py lets a pool count (100): a connection each thread
    kept out of the pool would exhaust it and fail every command after (MaxConnectionsError)."""
    pool = redis_pool()
    created_before = pool._created_connections
    answers: list[list] = []
    ids: list[int] = []

    def once() -> None:
        answers.append(redis_round_trip(pool, [("PING",)]))
        ids.extend(redis_round_trip(pool, [("CLIENT", "ID")]))

    for _ in range(150):
        thread = threading.Thread(target=once)
        thread.start()
        thread.join()
    assert len(answers) == 150 and all(answer == [answers[0][0]] for answer in answers)
    assert pool._created_connections == created_before
    # Each ended thread's connection was closed: none of them is still connected to Redis.
    (listing,) = redis_round_trip(pool, [("CLIENT", "LIST")])
    still_open = {int(field[3:]) for field in listing.decode().split() if field.startswith("id=")}
    assert still_open.isdisjoint(ids)
