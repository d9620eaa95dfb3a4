"""The sidecar's cross-cutting behaviour: auth, errors, deadlines, health, reflection, metrics,
draining, and the management command as a real process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from accounts.models import Account, ApiKey
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_project.grpc.interceptors import UnaryInterceptor
from ledger.models import JournalRecord
from tests.grpc.conftest import Gate, auth, handled_count, new_key, rpc_failure, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
# Long enough for the server to dispatch the call to its handler on a busy machine (a call whose
# deadline passes before dispatch never reaches the gate), short enough to keep the tests quick.
SHORT_DEADLINE = 1.5


def get_balance(stub, account_id, metadata=()):
    return stub.GetBalance(pb.GetBalanceRequest(account_id=account_id), metadata=metadata, timeout=10)


# ---- authentication and scopes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Bearer bal_0000_not-a-key"),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer "),),
        (("x-api-key", "whatever"),),
    ],
)
def test_a_call_without_a_valid_token_is_unauthenticated(stub, player, metadata):
    _, wallet = player(funded=100)
    with pytest.raises(grpc.RpcError) as excinfo:
        get_balance(stub, wallet, metadata)
    failure = rpc_failure(excinfo)
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "unauthenticated"


def test_a_deactivated_key_is_unauthenticated(stub, player, token):
    _, wallet = player()
    assert get_balance(stub, wallet, auth(token)).account.id == wallet
    ApiKey.objects.update(is_active=False)
    with pytest.raises(grpc.RpcError) as excinfo:
        get_balance(stub, wallet, auth(token))
    assert rpc_failure(excinfo).code == grpc.StatusCode.UNAUTHENTICATED


def test_a_key_without_the_methods_scope_is_permission_denied(stub, player, make_token):
    user, wallet = player(funded=100)
    cashier = make_token("payments:write", client="cashier")
    with pytest.raises(grpc.RpcError) as excinfo:
        get_balance(stub, wallet, auth(cashier))
    failure = rpc_failure(excinfo)
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert failure.reason == "permission_denied"
    assert failure.metadata["required_scope"] == "accounts:read"

    reader = make_token("accounts:read", client="reader")
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.BuyIn(
            pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id="t", amount=10),
            metadata=auth(reader),
            timeout=10,
        )
    assert rpc_failure(excinfo).code == grpc.StatusCode.PERMISSION_DENIED
    assert Account.objects.get(pk=wallet).balance == 100


def test_the_keys_client_is_the_idempotency_scope(stub, make_token, table):
    table_id = table()
    first, second = make_token(client="poker-a"), make_token(client="poker-b")
    key = new_key()
    stub.CloseTable(pb.CloseTableRequest(idempotency_key=key, table_id=table_id), metadata=auth(first), timeout=10)
    stub.CloseTable(pb.CloseTableRequest(idempotency_key=key, table_id=table_id), metadata=auth(second), timeout=10)
    assert sorted(JournalRecord.objects.filter(key=key).values_list("scope", flat=True)) == ["poker-a", "poker-b"]


# ---- errors ---------------------------------------------------------------------------------------


class Explode(UnaryInterceptor):
    def applies_to(self, full_method):
        return full_method.endswith("/GetTable")

    def around(self, full_method, request, context, proceed):
        raise RuntimeError("secret internals: password=hunter2")


def test_an_unexpected_exception_is_internal_with_no_detail_for_the_caller(start_server, channels, md, caplog):
    running = start_server(inner=[Explode()])
    stub = balance_pb2_grpc.BalanceServiceStub(channels(running.address))
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.GetTable(pb.GetTableRequest(table_id="t1"), metadata=md, timeout=10)
    failure = rpc_failure(excinfo)
    assert failure.code == grpc.StatusCode.INTERNAL
    assert failure.reason == "internal_error"
    told = excinfo.value.details() + repr(excinfo.value.trailing_metadata())
    assert "hunter2" not in told and "Traceback" not in told and "RuntimeError" not in told
    assert "hunter2" in caplog.text  # the stack trace is in the log instead


class CountWrappings(UnaryInterceptor):
    """Counts how often grpcio asks it to wrap a method, and the calls that pass through it."""

    def __init__(self):
        self.wrapped, self.calls = 0, 0

    def intercept_service(self, continuation, handler_call_details):
        self.wrapped += 1
        return super().intercept_service(continuation, handler_call_details)

    def around(self, full_method, request, context, proceed):
        self.calls += 1
        return proceed(request, context)


def test_the_interceptors_wrap_each_method_once_and_still_run_on_every_call(start_server, channels, md, table):
    table_id, counting = table(), CountWrappings()
    running = start_server(inner=[counting])
    stub = balance_pb2_grpc.BalanceServiceStub(channels(running.address))
    for _ in range(3):
        stub.GetTable(pb.GetTableRequest(table_id=table_id), metadata=md, timeout=10)
    assert (counting.wrapped, counting.calls) == (1, 3)
    # A method the server does not have is looked up afresh each time and not kept: a caller may
    # name any number of them.
    unknown = channels(running.address).unary_unary("/balance.v1.BalanceService/NoSuchMethod")
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as excinfo:
            unknown(b"", metadata=md, timeout=10)
        assert excinfo.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert counting.wrapped == 3


# ---- deadlines ------------------------------------------------------------------------------------


def buy_in_request(key, user, table_id, amount=300):
    return pb.BuyInRequest(idempotency_key=key, user_id=user, table_id=table_id, amount=amount)


def test_a_mutation_whose_deadline_expired_before_it_started_is_refused_and_leaves_no_effect(
    start_server, channels, md, player, table
):
    gate = Gate("BuyIn")
    running = start_server(before_guard=[gate])
    stub = balance_pb2_grpc.BalanceServiceStub(channels(running.address))
    user, wallet = player(funded=1000)
    table_id = table()  # OpenTable goes through the default server's channel
    refused_before = handled_count("BuyIn", "DEADLINE_EXCEEDED")
    key = new_key()

    with pytest.raises(grpc.RpcError) as excinfo:
        stub.BuyIn(buy_in_request(key, user, table_id), metadata=md, timeout=SHORT_DEADLINE)
    assert excinfo.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert gate.entered.wait(10), "the call never reached its handler"
    # The server's deadline is the client's plus the time the request took to arrive: wait it out too.
    assert wait_for(lambda: gate.context.time_remaining() <= 0)
    gate.release.set()  # the server's handler only now reaches the guard, past the deadline
    assert gate.finished.wait(10)

    # Refused by the guard itself (the metrics interceptor, outermost, records it last).
    assert wait_for(lambda: handled_count("BuyIn", "DEADLINE_EXCEEDED") == refused_before + 1)
    assert Account.objects.get(pk=wallet).balance == 1000
    assert Account.objects.get(pk=wallet).held == 0
    assert not JournalRecord.objects.filter(key=key).exists()

    # The caller retries with the same key and a fresh deadline: it happens, once.
    answer = stub.BuyIn(buy_in_request(key, user, table_id), metadata=md, timeout=10)
    assert answer.seat.chips == 300
    assert Account.objects.get(pk=wallet).balance == 700


def test_a_mutation_held_past_its_deadline_never_lands_and_a_retry_applies_it_once(
    start_server, channels, md, player, table
):
    """The caller was told DEADLINE_EXCEEDED: the call must not commit after that (its database
    round trips are bounded by the deadline, and no COMMIT is sent past it). A retry with the same
    key then moves the money exactly once."""
    gate = Gate("BuyIn")
    running = start_server(inner=[gate])  # past the guard: the mutation has been admitted
    stub = balance_pb2_grpc.BalanceServiceStub(channels(running.address))
    user, wallet = player(funded=1000)
    table_id = table()
    key = new_key()

    with pytest.raises(grpc.RpcError) as excinfo:
        stub.BuyIn(buy_in_request(key, user, table_id), metadata=md, timeout=SHORT_DEADLINE)
    assert excinfo.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert gate.entered.wait(10), "the call never reached its handler"
    gate.release.set()  # right away: the server's budget ends GRPC_DEADLINE_MARGIN_SECONDS before the caller's
    assert gate.finished.wait(10)

    assert Account.objects.get(pk=wallet).balance == 1000  # nothing landed after the deadline
    first = stub.BuyIn(buy_in_request(key, user, table_id), metadata=md, timeout=10)
    again = stub.BuyIn(buy_in_request(key, user, table_id), metadata=md, timeout=10)
    assert first == again and first.seat.chips == 300
    assert Account.objects.get(pk=wallet).balance == 700


# ---- health, reflection, metrics ------------------------------------------------------------------


def test_health_and_reflection_answer_without_a_token(server, channels):
    channel = channels(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "balance.v1.BalanceService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as excinfo:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND

    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "balance.v1.BalanceService" in services and "grpc.health.v1.Health" in services


def test_every_call_is_counted_by_method_and_code(stub, md, player):
    _, wallet = player()
    ok_before = handled_count("GetBalance", "OK")
    denied_before = handled_count("GetBalance", "UNAUTHENTICATED")
    get_balance(stub, wallet, md)
    with pytest.raises(grpc.RpcError):
        get_balance(stub, wallet, ())
    assert handled_count("GetBalance", "OK") == ok_before + 1
    assert handled_count("GetBalance", "UNAUTHENTICATED") == denied_before + 1
    from prometheus_client import REGISTRY

    assert (
        REGISTRY.get_sample_value(
            "balance_grpc_server_handling_seconds_count",
            {"grpc_service": "balance.v1.BalanceService", "grpc_method": "GetBalance"},
        )
        >= 2
    )


# ---- shutdown -------------------------------------------------------------------------------------


def test_stopping_drains_the_call_in_flight_and_refuses_new_ones(start_server, channels, md, player, table):
    gate = Gate("BuyIn")
    running = start_server(inner=[gate])
    stub = balance_pb2_grpc.BalanceServiceStub(channels(running.address))
    user, wallet = player(funded=1000)
    table_id = table()
    in_flight = stub.BuyIn.future(buy_in_request(new_key(), user, table_id), metadata=md, timeout=30)
    assert gate.entered.wait(10)

    stopper = threading.Thread(target=running.stop, kwargs={"grace": 30})
    stopper.start()
    refused = None
    try:
        for _ in range(200):  # until the server has begun its shutdown
            try:
                get_balance(stub, wallet, md)
            except grpc.RpcError as error:
                refused = error
                break
            threading.Event().wait(0.01)
    finally:
        gate.release.set()
    # A new call is turned away (grpcio cancels one that raced the shutdown, else finds no server).
    assert refused is not None and refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)

    assert in_flight.result(timeout=30).seat.chips == 300
    stopper.join(30)
    assert not stopper.is_alive()
    assert Account.objects.get(pk=wallet).balance == 700


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_management_command_serves_and_exits_cleanly_on_sigterm(tmp_path):
    metrics_port = _free_port()
    env = {**os.environ, "BALANCE_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)  # health and metrics need no database
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "grpcserver",
            "--bind",
            "127.0.0.1:0",
            "--metrics-port",
            str(metrics_port),
            "--max-workers",
            "2",
            "--grace",
            "5",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        with grpc.insecure_channel(match.group(1)) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            exposed = response.read().decode()
        assert 'balance_grpc_server_handled_total{grpc_code="OK",grpc_method="Check"' in exposed
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "gRPC server stopped" in out
    assert "draining in-flight calls" in err


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("GetBalance", b"\xff\xff\xff\xff"),  # not a protobuf message at all
        ("BuyIn", b"\x0a\x05ab"),  # a string field cut short
        ("BuyIn", b"\x12\x02\xc3\x28"),  # a string that is not UTF-8
    ],
)
def test_bytes_that_are_not_a_request_message_are_invalid_argument(server, channels, md, method, raw):
    """grpcio itself ended these INTERNAL ("Exception deserializing request!") with no ErrorInfo."""
    call = channels(server.address).unary_unary(f"/balance.v1.BalanceService/{method}")
    with pytest.raises(grpc.RpcError) as excinfo:
        call(raw, metadata=md, timeout=10)
    failure = rpc_failure(excinfo)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")


def test_undecodable_bytes_from_an_unknown_caller_are_still_unauthenticated(server, channels):
    call = channels(server.address).unary_unary("/balance.v1.BalanceService/GetBalance")
    with pytest.raises(grpc.RpcError) as excinfo:
        call(b"\xff\xff", metadata=(("authorization", "Bearer nope"),), timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
