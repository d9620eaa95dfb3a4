"""The drain is bounded (part of #10): SIGTERM with a call blocked on a row lock, and the sidecar is
gone by grace + 1 s, the call answered with an error and its buy-in never committed, not even once
the lock is released; gunicorn likewise before its graceful_timeout.

Before: the call was cancelled toward the client at grace, went on waiting in PostgreSQL, committed
once the lock went, and the process exited only then (grace + 3.9 s in the fault workload).
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest

from accounts.keys import SCOPES, api_key_create
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from ledger.models import JournalRecord
from tests.ledger.test_deadlines import RowHolder
from tests.ops.processes_helpers import (
    BASE_DIR,
    database_url,
    locks_waited_on,
    server_env,
    start_gunicorn,
    start_sidecar,
    stop,
    wait_until,
)
from tests.tables.helpers import account, new_key, new_player, open_table

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

GRACE = 1.0
HTTP_GRACEFUL_TIMEOUT = 3


def test_sigterm_cancels_a_call_blocked_on_a_lock_at_grace_and_nothing_commits_after():
    user, wallet = new_player(funded=1000)
    table_id = open_table()
    token, _ = api_key_create(client="drain", scopes=sorted(SCOPES))
    process, address, output = start_sidecar(server_env(database_url()), "--max-workers", "2", "--grace", str(GRACE))
    key = new_key()
    try:
        with grpc.insecure_channel(address) as channel:
            stub = balance_pb2_grpc.BalanceServiceStub(channel)
            with RowHolder(wallet):
                call = stub.BuyIn.future(
                    pb.BuyInRequest(idempotency_key=key, user_id=user, table_id=table_id, amount=300),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=30,
                )
                assert wait_until(lambda: locks_waited_on() >= 1 or call.done()) and not call.done(), call.exception()
                signalled = time.monotonic()
                process.send_signal(signal.SIGTERM)
                process.wait(GRACE + 5)
                exited = time.monotonic() - signalled
                error = call.exception(timeout=5)
            # The lock is released here: a backend still waiting would take it and commit now.
            time.sleep(0.5)
    finally:
        stop(process)
    print(f"drain: exited {exited:.2f}s after SIGTERM (grace {GRACE}s); the call got {error.code()}")
    assert exited < GRACE + 1, f"exited {exited:.2f}s after SIGTERM\n{''.join(output.lines)[-3000:]}"
    # 0: every worker thread ended, its statement cancelled (1: the process left a thread behind).
    assert process.returncode == 0, "".join(output.lines)[-3000:]
    assert error is not None and error.code() != grpc.StatusCode.OK
    assert account(wallet).balance == 1000
    assert not JournalRecord.objects.filter(key=key).exists()
    assert locks_waited_on() == 0


def test_gunicorn_cancels_a_request_blocked_on_a_lock_before_its_graceful_timeout():
    """The HTTP side of the same contract: SIGTERM, a deposit blocked on a row lock; one second
    before gunicorn's graceful_timeout its statement is cancelled, the client gets an answer (not a
    connection reset from the killed worker) and the deposit never lands."""
    _, wallet = new_player(funded=1000)
    token, _ = api_key_create(client="drain", scopes=sorted(SCOPES))
    process, port = start_gunicorn(
        server_env(database_url(), GUNICORN_GRACEFUL_TIMEOUT=str(HTTP_GRACEFUL_TIMEOUT), HTTP_CALL_SECONDS="30")
    )
    key = new_key()
    answer: list = []

    def deposit() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(
                "POST",
                f"/api/v1/accounts/{wallet}/deposit",
                body=json.dumps({"amount": 10}),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": key,
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            answer.append((response.status, json.loads(response.read()), time.monotonic()))
        except OSError as exc:
            answer.append(exc)
        finally:
            connection.close()

    try:
        with RowHolder(wallet):
            caller = threading.Thread(target=deposit)
            caller.start()
            assert wait_until(lambda: locks_waited_on() >= 1 or bool(answer)) and not answer, answer
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(HTTP_GRACEFUL_TIMEOUT + 5)
            exited = time.monotonic() - signalled
            caller.join(5)
        time.sleep(0.5)  # the lock is gone: a backend still waiting would take it and commit now
    finally:
        stop(process)
    assert len(answer) == 1 and isinstance(answer[0], tuple), answer  # an answer, not a reset
    print(
        f"http drain: answered {answer[0][2] - signalled:.2f}s and exited {exited:.2f}s after SIGTERM "
        f"(graceful_timeout {HTTP_GRACEFUL_TIMEOUT}s): {answer[0][:2]}"
    )
    assert exited < HTTP_GRACEFUL_TIMEOUT
    status, body, _ = answer[0]
    assert status in (503, 504), body
    assert account(wallet).balance == 1000
    assert not JournalRecord.objects.filter(key=key).exists()


KILLED_CLIENT = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    print("sending", flush=True)
    cursor.execute("BEGIN; UPDATE drain_scratch SET v = v + 1 WHERE id = 1; COMMIT")
"""


def test_a_backend_whose_process_was_killed_gives_up_instead_of_committing_later():
    """The orchestrator's SIGKILL lands mid-call, while a batch carrying its COMMIT waits on a lock:
    the backend notices its client is gone (client_connection_check_interval, settings.py) and
    gives up. Without it the batch ran, COMMIT included, once the lock was free."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS drain_scratch (id int PRIMARY KEY, v int NOT NULL)")
        cursor.execute("INSERT INTO drain_scratch VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET v = 0")
    try:
        holder = threading.Event()
        release = threading.Event()

        def hold() -> None:
            from django.db import connections

            with connections["default"].cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT v FROM drain_scratch WHERE id = 1 FOR UPDATE")
                holder.set()
                release.wait(20)
                cursor.execute("ROLLBACK")
            connections["default"].close()

        holding = threading.Thread(target=hold)
        holding.start()
        assert holder.wait(10)
        client = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT],
            cwd=BASE_DIR,
            env=server_env(database_url(), DJANGO_SETTINGS_MODULE="balance_project.settings"),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert client.stdout.readline().strip() == "sending"
            assert wait_until(lambda: locks_waited_on() >= 1), "the batch never waited on the lock"
            client.kill()
            client.wait(10)
            time.sleep(1.5)  # past the backend's check of its client
        finally:
            release.set()
            holding.join(10)
            stop(client)
        time.sleep(0.3)
        with connection.cursor() as cursor:
            cursor.execute("SELECT v FROM drain_scratch WHERE id = 1")
            assert cursor.fetchone()[0] == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS drain_scratch")
