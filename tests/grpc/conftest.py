"""A real gRPC server on port 0, in-process, over the test database; tokens; funded players.

The server's worker threads use their own database connections, so every test here runs with
``django_db(transaction=True)``. CONN_MAX_AGE is 0 while a test server runs: each call closes its
connection when it ends (DatabaseConnectionsInterceptor), so no worker thread keeps one open into
the next test or past the test database's teardown.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import grpc
import pytest
from django.db import connections
from prometheus_client import REGISTRY

from accounts.keys import api_key_create
from accounts.services import account_deposit, account_open
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from balance_client.errors import BalanceError
from balance_project.grpc.interceptors import UnaryInterceptor
from balance_project.grpc.server import create_server, load_interceptors

POKER_SCOPES = ("accounts:read", "reservations:write", "tables:write")
_counter = itertools.count(1)


def new_key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def rpc_failure(excinfo) -> BalanceError:
    """The BalanceError (status code, ErrorInfo reason and metadata) of a raised grpc.RpcError."""
    return BalanceError.from_rpc_error(excinfo.value)


def handled_count(method: str, code: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "balance_grpc_server_handled_total",
            {"grpc_service": "balance.v1.BalanceService", "grpc_method": method, "grpc_code": code},
        )
        or 0.0
    )


def wait_for(predicate, seconds: float = 10.0) -> bool:
    """Poll ``predicate`` until true or ``seconds`` pass: for what the server records after answering."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Gate(UnaryInterceptor):
    """Holds every call to ``method`` until ``release`` is set; says when one entered and finished."""

    def __init__(self, method: str):
        self.method = method
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.context = None  # the held call's, once it entered

    def applies_to(self, full_method):
        return full_method.endswith("/" + self.method)

    def around(self, full_method, request, context, proceed):
        self.context = context
        self.entered.set()
        assert self.release.wait(30), "the test never released the gate"
        try:
            return proceed(request, context)
        finally:
            self.finished.set()


@pytest.fixture
def start_server(transactional_db):
    """``start_server(outer=[...], inner=[...], before_guard=[...])`` -> a started RunningServer.

    Extra interceptors go after the settings' list (``inner``), before the mutation guard
    (``before_guard``) or right after metrics (``outer``)."""
    db_settings = connections.settings["default"]
    saved_max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0
    running_servers = []

    def start(*, outer=(), inner=(), before_guard=(), bind="127.0.0.1:0", max_workers=4):
        chain = load_interceptors()
        chain = chain[:1] + list(outer) + chain[1:-1] + list(before_guard) + chain[-1:] + list(inner)
        running = create_server(bind=bind, max_workers=max_workers, interceptors=chain)
        running.start()
        running_servers.append(running)
        return running

    yield start
    for running in running_servers:
        running.stop(grace=None)
    db_settings["CONN_MAX_AGE"] = saved_max_age


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def channels():
    opened = []

    def open_channel(address: str) -> grpc.Channel:
        channel = grpc.insecure_channel(address)
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()


@pytest.fixture
def stub(server, channels):
    return balance_pb2_grpc.BalanceServiceStub(channels(server.address))


@pytest.fixture
def make_token(transactional_db):
    def make(*scopes: str, client: str = "poker-service") -> str:
        raw, _ = api_key_create(client=client, scopes=list(scopes or POKER_SCOPES))
        return raw

    return make


@pytest.fixture
def token(make_token) -> str:
    return make_token()


@pytest.fixture
def md(token):
    """Call metadata carrying the poker service's token."""
    return auth(token)


@pytest.fixture
def player(transactional_db):
    """``player(funded=0, currency="EUR")`` -> (user id, wallet account id)."""

    def make(funded: int = 0, currency: str = "EUR") -> tuple[str, int]:
        user_id = f"player-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        wallet = account_open(client="tests", idempotency_key=new_key("open"), owner_ref=user_id, currency=currency)[
            "account"
        ]["id"]
        if funded:
            account_deposit(client="tests", idempotency_key=new_key("dep"), account_id=wallet, amount=funded)
        return user_id, wallet

    return make


@pytest.fixture
def table(stub, md):
    """``table(currency="EUR")`` -> the id of a table opened through the OpenTable RPC."""

    def make(currency: str = "EUR") -> str:
        table_id = f"table-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        stub.OpenTable(
            pb.OpenTableRequest(idempotency_key=new_key("open"), table_id=table_id, currency=currency),
            metadata=md,
            timeout=10,
        )
        return table_id

    return make
