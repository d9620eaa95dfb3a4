"""Player protection over gRPC: the three RPCs, and Reserve / BuyIn answering the specific
refusal (FAILED_PRECONDITION with ErrorInfo) so the poker service can tell the player why."""

from __future__ import annotations

import grpc
import pytest

from balance_client._pb.balance.v1 import balance_pb2 as pb
from tests.grpc.conftest import (  # noqa: F401  (fixtures)
    auth,
    channels,
    make_token,
    md,
    new_key,
    player,
    rpc_failure,
    server,
    start_server,
    stub,
    table,
    token,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def protector(make_token):  # noqa: F811
    return auth(make_token("protection:write", "accounts:read", client="cashier"))


def failure_of(call, request, metadata):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata, timeout=10)
    return rpc_failure(caught)


def test_set_a_limit_read_it_and_reserve_and_buy_in_are_refused_with_the_reason(stub, md, protector, player, table):  # noqa: F811
    user, _ = player(funded=5000)
    table_id = table()
    answer = stub.SetPlayerLimit(
        pb.SetPlayerLimitRequest(
            idempotency_key=new_key(), owner_ref=user, currency="EUR", kind="loss", period="24h", value=1000
        ),
        metadata=protector,
        timeout=10,
    )
    assert (answer.limit.value, answer.limit.HasField("pending_value"), answer.limit.kind) == (1000, False, "loss")
    read = stub.GetPlayerProtection(pb.GetPlayerProtectionRequest(owner_ref=user), metadata=md, timeout=10)
    assert [limit.value for limit in read.limits] == [1000] and not read.HasField("exclusion")
    failure = failure_of(
        stub.BuyIn, pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=1001), md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "loss_limit_exceeded")
    assert (failure.metadata["window"], failure.metadata["allowance"]) == ("24h", "1000")
    failure = failure_of(
        stub.Reserve, pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=1001), md
    )
    assert failure.reason == "loss_limit_exceeded"
    removing = stub.SetPlayerLimit(
        pb.SetPlayerLimitRequest(
            idempotency_key=new_key(), owner_ref=user, currency="EUR", kind="loss", period="24h", remove=True
        ),
        metadata=protector,
        timeout=10,
    ).limit
    assert (removing.value, removing.pending_removal, removing.HasField("pending_value")) == (1000, True, False)
    assert removing.pending_effective_at.endswith("Z")


def test_a_time_out_over_grpc_refuses_the_buy_in_with_its_end(stub, md, protector, player, table):  # noqa: F811
    user, _ = player(funded=5000)
    table_id = table()
    started = stub.StartSelfExclusion(
        pb.StartSelfExclusionRequest(idempotency_key=new_key(), owner_ref=user, kind="time_out", days=1),
        metadata=protector,
        timeout=10,
    )
    assert started.exclusion.kind == "time_out" and started.excluded_until == started.exclusion.ends_at
    failure = failure_of(
        stub.BuyIn, pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=10), md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "self_excluded")
    assert failure.metadata["until"] == started.excluded_until
    read = stub.GetPlayerProtection(pb.GetPlayerProtectionRequest(owner_ref=user), metadata=md, timeout=10)
    assert read.exclusion.ends_at == started.excluded_until


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "deposit", "period": "24h"},  # no value and no remove: never a removal by accident
        {"kind": "deposit", "period": "24h", "value": 5, "remove": True},
        {"kind": "deposit", "period": "24h", "value": 0},
        {"kind": "deposit", "period": "1h", "value": 5},
        {"kind": "bet", "period": "24h", "value": 5},
    ],
)
def test_bad_limit_requests_are_invalid_argument(stub, protector, player, fields):  # noqa: F811
    user, _ = player()
    request = pb.SetPlayerLimitRequest(idempotency_key=new_key(), owner_ref=user, currency="EUR", **fields)
    failure = failure_of(stub.SetPlayerLimit, request, protector)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    read = stub.GetPlayerProtection(pb.GetPlayerProtectionRequest(owner_ref=user), metadata=protector, timeout=10)
    assert list(read.limits) == []


def test_the_poker_token_cannot_set_limits(stub, md, player):  # noqa: F811
    user, _ = player()
    request = pb.StartSelfExclusionRequest(idempotency_key=new_key(), owner_ref=user, kind="time_out", days=1)
    assert failure_of(stub.StartSelfExclusion, request, md).code == grpc.StatusCode.PERMISSION_DENIED


def test_the_python_client_sets_reads_and_excludes(server, make_token, player):  # noqa: F811
    from balance_client import BalanceClient, BalanceError

    user, _ = player(funded=5000)
    cashier = make_token("protection:write", "accounts:read", "tables:write", "reservations:write", client="cashier")
    with BalanceClient(server.address, cashier) as client:
        limit = client.set_player_limit(owner_ref=user, currency="EUR", kind="deposit", period="24h", value=700)
        assert limit.limit.value == 700
        read = client.get_player_protection(owner_ref=user, currency="EUR")
        assert [(each.kind, each.period, each.value) for each in read.limits] == [("deposit", "24h", 700)]
        started = client.start_self_exclusion(owner_ref=user, kind="time_out", days=1)
        assert started.exclusion.kind == "time_out"
        with pytest.raises(BalanceError) as refused:
            client.reserve(user_id=user, table_id="t-none", amount=10)
        assert refused.value.reason in ("self_excluded", "table_not_found")
