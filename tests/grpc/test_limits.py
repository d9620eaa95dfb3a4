"""The sidecar's stated limits: calls in flight per process, request size, and refusals that never
echo unbounded input (docs/operations.md lists them)."""

from __future__ import annotations

import time

import grpc
import pytest

from accounts.models import Account
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from tests.grpc.conftest import Gate, new_key
from tests.ledger.test_deadlines import RowHolder

pytestmark = pytest.mark.django_db(transaction=True)


def test_calls_past_the_in_flight_cap_are_resource_exhausted_at_once(settings, start_server, channels, md, player):
    settings.GRPC_MAX_CONCURRENT_RPCS = 2
    gate = Gate("GetBalance")
    server = start_server(outer=[gate], max_workers=4)
    stub = balance_pb2_grpc.BalanceServiceStub(channels(server.address))
    _, wallet = player(funded=10)
    request = pb.GetBalanceRequest(account_id=wallet)
    held = [stub.GetBalance.future(request, metadata=md, timeout=30) for _ in range(2)]
    assert gate.entered.wait(10)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetBalance(request, metadata=md, timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    gate.release.set()
    assert [call.result().account.balance for call in held] == [10, 10]
    assert stub.GetBalance(request, metadata=md, timeout=10).account.balance == 10  # the cap frees up


def test_a_request_over_the_message_limit_is_refused(settings, start_server, channels, md):
    settings.GRPC_MAX_RECEIVE_MESSAGE_BYTES = 1024
    server = start_server()
    stub = balance_pb2_grpc.BalanceServiceStub(channels(server.address))
    with pytest.raises(grpc.RpcError) as refused:
        stub.OpenTable(
            pb.OpenTableRequest(idempotency_key=new_key(), table_id="t" * 2000, currency="EUR"), metadata=md, timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("size", [129, 4096, 60_000])
def test_an_unknown_id_of_any_length_is_refused_in_a_few_bytes(stub, md, size):
    for call in (
        lambda: stub.GetTable(pb.GetTableRequest(table_id="t" * size), metadata=md, timeout=10),
        lambda: stub.GetBalance(
            pb.GetBalanceRequest(wallet=pb.WalletRef(user_id="u" * size, currency="EUR")), metadata=md, timeout=10
        ),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(refused.value.details()) < 200
        assert sum(len(value) for _, value in refused.value.trailing_metadata() or ()) < 1000


def test_the_client_backs_off_and_retries_a_sidecar_at_its_cap(settings, start_server, channels, token, md, player):
    """RESOURCE_EXHAUSTED from the in-flight cap is retried with the same key once the sidecar frees up."""
    from balance_client import BalanceClient, RetryPolicy

    settings.GRPC_MAX_CONCURRENT_RPCS = 1
    gate = Gate("GetBalance")
    server = start_server(outer=[gate], max_workers=2)
    stub = balance_pb2_grpc.BalanceServiceStub(channels(server.address))
    _, wallet = player(funded=10)
    held = stub.GetBalance.future(pb.GetBalanceRequest(account_id=wallet), metadata=md, timeout=30)
    assert gate.entered.wait(10)
    pauses: list[float] = []

    def pause_then_free(seconds: float) -> None:
        pauses.append(seconds)
        gate.release.set()
        held.result()  # the held call is done: the cap has room again
        time.sleep(seconds)

    policy = RetryPolicy(max_attempts=6, initial_backoff=0.05, max_backoff=0.2)
    with BalanceClient(server.address, token, retry=policy, sleep=pause_then_free, timeout=30) as client:
        assert client.get_balance(account_id=wallet).account.balance == 10
    assert pauses  # refused at the cap at least once, then served (the server frees its slot just after answering)


def test_a_grpc_buy_in_that_timed_out_for_its_caller_does_not_commit_after(stub, md, player):
    user, wallet = player(funded=1000)
    table_id = f"t-{new_key()[:12]}"
    stub.OpenTable(pb.OpenTableRequest(idempotency_key=new_key(), table_id=table_id, currency="EUR"), metadata=md)
    with RowHolder(wallet):
        with pytest.raises(grpc.RpcError) as failed:
            stub.BuyIn(
                pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=300),
                metadata=md,
                timeout=1,
            )
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(1)  # the server's own refusal comes at the same deadline
    time.sleep(0.5)
    assert Account.objects.get(pk=wallet).balance == 1000 and Account.objects.get(pk=wallet).held == 0
