"""The sidecar's drain is bounded (part of #10): SIGTERM with a call blocked on a row lock, and the
process is gone by grace + 1 s, the call answered with an error and its buy-in never committed,
not even once the lock is released.

Before: the call was cancelled toward the client at grace, went on waiting in PostgreSQL, committed
once the lock went, and the process exited only then (grace + 3.9 s in the fault workload).
"""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from accounts.keys import SCOPES, api_key_create
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from ledger.models import IdempotencyRecord
from tests.ledger.test_deadlines import RowHolder
from tests.ops.processes_helpers import database_url, locks_waited_on, server_env, start_sidecar, stop, wait_until
from tests.tables.helpers import account, new_key, new_player, open_table

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

GRACE = 1.0


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
    assert not IdempotencyRecord.objects.filter(key=key).exists()
    assert locks_waited_on() == 0
