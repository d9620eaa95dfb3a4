"""OpenTelemetry tracing (balance_project/tracing.py, docs/tracing.md).

Off by default: a process started without OTEL_* variables imports no OpenTelemetry module at all.
On: the standard variables switch it on in a real process, which exports OTLP to a receiver the test
runs. In-process, with an in-memory exporter and the real instrumentation: one trace from a
``balance_client`` call through the sidecar into the database, an HTTP request over its SQL, a
Celery task over its SQL, and trace ids in the configured log lines.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from balance_client import BalanceClient
from balance_project import tracing
from balance_project.grpc.interceptors import UnaryInterceptor
from tests.api.conftest import Api
from tests.grpc.conftest import make_token, player, start_server, token, wait_for  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
DB_SYSTEMS = {"postgresql", "sqlite"}

# What a process does at start, through the real hooks: the WSGI module (HTTP), serve() (the
# sidecar, stopped by its own SIGTERM once it listens, after one call to it) and the worker's
# worker_init handler; then one line logged inside a span and one outside.
PROBE = r"""
import json, logging, os, signal, sqlite3, sys, wsgiref.util
import psycopg
import balance_project.wsgi
import grpc
from django.conf import settings
from balance_client._pb.balance.v1 import balance_pb2 as pb, balance_pb2_grpc
from balance_project import tracing
from balance_project.celery import tracing_start
from balance_project.grpc.server import serve

status = []
for path in ("/ready", "/api/v1/accounts/1/balance"):  # a probe (not traced), a call (no key: 401)
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_HOST": "localhost"}
    wsgiref.util.setup_testing_defaults(environ)
    b"".join(balance_project.wsgi.application(environ, lambda s, h, e=None: status.append(s)))

def call_then_stop(running):
    stub = balance_pb2_grpc.BalanceServiceStub(grpc.insecure_channel(running.address))
    try:
        stub.GetBalance(pb.GetBalanceRequest(account_id=1), timeout=5)
    except grpc.RpcError as exc:
        status.append(exc.code().name)
    os.kill(os.getpid(), signal.SIGTERM)

serve(bind="127.0.0.1:0", max_workers=2, metrics_port=0, grace=0, on_started=call_then_stop)
tracing_start()
log = logging.getLogger("balance.probe")
if tracing.is_on():
    from opentelemetry import trace
    with trace.get_tracer("probe").start_as_current_span("probe") as span:
        log.warning("inside a span")
        print("PROBE_TRACE_ID", format(span.get_span_context().trace_id, "032x"))
log.warning("outside any span")
print(json.dumps({
    "on": tracing.is_on(),
    "status": status,
    # redis-py 8 imports OpenTelemetry's metrics SDK when installed (its own metrics, off unless
    # initialised): the API and SDK may be loaded; no instrumentation, exporter or tracing SDK.
    "otel_modules": sorted(
        m for m in sys.modules if m.startswith(("opentelemetry.instrumentation", "opentelemetry.exporter",
        "opentelemetry.sdk.trace"))
    ),
    "wrapped": [
        name
        for name, fn in [("grpc.server", grpc.server), ("grpc.insecure_channel", grpc.insecure_channel),
                         ("psycopg.connect", psycopg.connect), ("sqlite3.connect", sqlite3.connect)]
        if hasattr(fn, "__wrapped__") or fn.__module__.startswith("opentelemetry")
    ],
    "otel_middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
}))
"""


def _probe_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The embedded default on a fresh SQLite file (no migrations needed), no OTEL_* unless given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    return {**env, "BALANCE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "balance_project.settings", **extra}


def _run_probe(env: dict[str, str]) -> tuple[dict, str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout, done.stderr


def test_the_standard_variables_decide():
    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == ["otlp"]
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == ["otlp"]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "otlp, Console"}) == ["otlp", "console"]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}) == []
    assert tracing.exporter_names({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}) == []
    assert tracing.exporter_names({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}) == ["console"]
    # What is not installed refuses to start, naming the variable (never a silent "no traces").
    with pytest.raises(ImproperlyConfigured, match="OTEL_EXPORTER_OTLP_PROTOCOL=grpc"):
        tracing._exporters_from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(ImproperlyConfigured, match="OTEL_TRACES_EXPORTER=zipkin"):
        tracing._exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_off_by_default_nothing_is_imported_or_installed(tmp_path):
    report, _, stderr = _run_probe(_probe_env(tmp_path))
    assert report["on"] is False
    assert report["status"] == ["503 Service Unavailable", "401 Unauthorized", "UNAUTHENTICATED"]  # all served
    assert report["otel_modules"] == [] and report["otel_middleware"] == [] and report["wrapped"] == []
    assert " WARNING balance.probe outside any span\n" in stderr  # the log format of before


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each POSTed ExportTraceServiceRequest, answers success."""

    received: list[bytes]

    def do_POST(self):
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_switched_on_by_the_environment_a_process_exports_otlp(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    handler = type("Handler", (Collector,), {"received": []})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        env = _probe_env(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_port}",
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        report, stdout, stderr = _run_probe(env)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert report["on"] is True and report["otel_middleware"] and len(report["wrapped"]) == 4
    assert report["status"] == ["503 Service Unavailable", "401 Unauthorized", "UNAUTHENTICATED"]
    spans, services = [], set()
    for body in handler.received:  # the exit flushed the batch before the process ended
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            spans += [span for scope in resource_spans.scope_spans for span in scope.spans]
    assert services == {"balance-http"}  # the first hook named the process
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    # The probe is not traced by default; the call is, as its route.
    (http,) = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER and s.name.startswith("GET")]
    assert http.name == "GET api/v1/accounts/<id64:account_id>/balance"
    rpc = by_name["/balance.v1.BalanceService/GetBalance"]
    assert sorted(s.kind for s in rpc) == [Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT]
    client_span, server_span = sorted(rpc, key=lambda s: s.kind != Span.SPAN_KIND_CLIENT)
    assert server_span.trace_id == client_span.trace_id and server_span.parent_span_id == client_span.span_id
    # The configured log format carries the ids inside a span and stays as before outside.
    trace_id = stdout.split("PROBE_TRACE_ID ")[1].split()[0]
    assert (by_name["probe"][0].trace_id.hex()) == trace_id
    assert f" WARNING balance.probe trace_id={trace_id} span_id=" in stderr
    assert " WARNING balance.probe outside any span\n" in stderr


# --- In-process, in-memory exporter -----------------------------------------------------------------


@pytest.fixture(scope="module")
def exporter():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert not tracing.is_on(), "something else in this test process switched tracing on"
    memory = InMemorySpanExporter()
    assert tracing.setup("tests", span_exporter=memory)
    yield memory
    tracing.shutdown()
    connections.close_all()  # the connections opened while instrumented


@pytest.fixture
def traced(exporter, transactional_db):
    """Spans from here on; the database connection reopens through the instrumented driver."""
    connections.close_all()
    exporter.clear()
    return exporter


def _descends_from(span, ancestor, by_id) -> bool:
    while span.parent is not None:
        if span.parent.span_id == ancestor.context.span_id:
            return True
        span = by_id.get(span.parent.span_id)
        if span is None:
            return False
    return False


def _writes(span) -> bool:
    # Round trips carry several statements on PostgreSQL (the call's SET LOCAL timeouts first), so
    # a span is named by its first word: the statement tells.
    return "INSERT INTO" in str(span.attributes.get("db.statement", "")).upper()


def _console_handler() -> logging.Handler:
    """The root handler settings.LOGGING configured (with the trace filter)."""
    for handler in logging.getLogger().handlers:
        if any(isinstance(f, tracing.TraceContextFilter) for f in handler.filters):
            return handler
    raise AssertionError("settings.LOGGING put no TraceContextFilter on a root handler")


class LogsInsideTheCall(UnaryInterceptor):
    """Formats one line with the configured console handler while the call is served."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def around(self, full_method, request, context, proceed):
        handler = _console_handler()
        record = logging.LogRecord("balance.grpc", logging.INFO, __file__, 0, "serving %s", (full_method,), None)
        handler.filter(record)
        self.lines.append(handler.format(record))
        return proceed(request, context)


def test_one_trace_from_a_client_call_through_the_sidecar_into_the_database(traced, start_server, token, player):  # noqa: F811
    from opentelemetry.trace import SpanKind, StatusCode

    user, wallet = player(funded=1000)
    logged = LogsInsideTheCall()
    running = start_server(inner=[logged])
    traced.clear()
    with BalanceClient(running.address, token) as client:
        client.open_table(table_id=f"t-{wallet}", currency="EUR")
        assert wait_for(lambda: any(s.kind == SpanKind.SERVER for s in traced.get_finished_spans()))
        traced.clear()
        logged.lines.clear()
        answer = client.buy_in(user_id=user, table_id=f"t-{wallet}", amount=250)
        assert answer.seat.chips == 250
    assert wait_for(lambda: any(s.kind == SpanKind.SERVER for s in traced.get_finished_spans()))
    spans = traced.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    (client_span,) = [s for s in spans if s.kind == SpanKind.CLIENT and s.name.endswith("/BuyIn")]
    (server_span,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server_span.name == client_span.name == "/balance.v1.BalanceService/BuyIn"
    assert client_span.parent is None and server_span.parent.span_id == client_span.context.span_id
    sql = [s for s in spans if s.attributes.get("db.system") in DB_SYSTEMS]
    assert sql and all(_descends_from(s, server_span, by_id) for s in sql)
    assert any(_writes(s) for s in sql), [s.attributes.get("db.statement") for s in sql]
    # No value leaves in a span: the ledger's round trips carry their literals (PostgreSQL), scrubbed.
    statements = " ".join(str(s.attributes.get("db.statement")) for s in spans)
    assert user not in statements
    if settings.REDIS_URL:
        assert any(s.attributes.get("db.system") == "redis" and _descends_from(s, server_span, by_id) for s in spans)
    # Tracing changes no outcome: no span records an error (a Redis command failing only because it
    # was traced would be swallowed by the cache and never seen otherwise).
    assert [(s.name, s.events) for s in spans if s.status.status_code == StatusCode.ERROR or s.events] == []
    assert {s.context.trace_id for s in spans} == {client_span.context.trace_id}  # one trace, nothing else
    trace_id, span_id = f"{server_span.context.trace_id:032x}", f"{server_span.context.span_id:016x}"
    assert len(logged.lines) == 1 and f"balance.grpc trace_id={trace_id} span_id={span_id} serving " in logged.lines[0]


def test_an_http_request_is_a_server_span_over_its_database_spans(traced, player):  # noqa: F811
    from opentelemetry.trace import SpanKind, StatusCode

    from accounts.keys import api_key_create

    _, wallet = player(funded=0)
    raw, _ = api_key_create(client="cashier", scopes=["payments:write"])
    traced.clear()
    response = Api(raw).post(f"/api/v1/accounts/{wallet}/deposit?owner_ref=secret-owner", {"amount": 700})
    assert response.status_code == 201, response.content
    spans = traced.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    (http,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert http.name == "POST api/v1/accounts/<id64:account_id>/deposit" and http.parent is None
    assert http.attributes.get("http.status_code") == 201
    sql = [s for s in spans if s.attributes.get("db.system") in DB_SYSTEMS]
    assert any(_writes(s) for s in sql), [s.attributes.get("db.statement") for s in sql]
    assert all(_descends_from(s, http, by_id) for s in sql)
    assert {s.context.trace_id for s in spans} == {http.context.trace_id}
    assert http.attributes["http.url"].endswith(f"/api/v1/accounts/{wallet}/deposit")  # no query string
    assert "secret-owner" not in repr([dict(s.attributes) for s in spans])
    assert [(s.name, s.events) for s in spans if s.status.status_code == StatusCode.ERROR or s.events] == []


def test_a_celery_task_is_a_span_over_its_database_spans(traced):
    from opentelemetry.trace import SpanKind

    from balance_project.celery import app

    app.loader.import_default_modules()
    result = app.tasks["reservations.expire_overdue_reservations"].apply()
    assert result.successful(), result.traceback
    spans = traced.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    (task,) = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert task.name == "run/reservations.expire_overdue_reservations"
    sql = [s for s in spans if s.attributes.get("db.system") in DB_SYSTEMS]
    assert sql and all(_descends_from(s, task, by_id) for s in sql)


def test_sql_outside_any_call_makes_no_trace(traced):
    from django.db import connection

    with connection.cursor() as cursor:  # what the health prober and beat's scheduler do all day
        cursor.execute("SELECT 1")
    assert traced.get_finished_spans() == ()
