"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables switch it on (docs/tracing.md).

Off (the default) costs nothing: this module imports no OpenTelemetry package, ``setup()`` returns
after reading the environment, no instrumentation wraps grpc, Django, the database driver, Redis or
Celery, and the log filter only sets empty fields. On (``OTEL_TRACES_EXPORTER`` set to an exporter,
or ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set, and
``OTEL_SDK_DISABLED`` not true), each process entry point calls ``setup(role)`` once before it
builds its server: balance_project/wsgi.py (HTTP), balance_project/grpc/server.py ``serve()`` (the
sidecar), balance_project/celery.py ``worker_init`` (the worker). Spans: the HTTP request (Django),
each gRPC call served and made (the client interceptor on every channel the process opens, which is
how ``balance_client`` is traced without a change of its own), every SQL statement (psycopg 3, or
sqlite3 on the embedded default), every Redis command, each Celery task published and run. The W3C
``traceparent`` travels in gRPC metadata, HTTP headers and task headers, so a call from a client that
traces too continues the caller's trace.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("balance.tracing")

# Probes and scrapes run every few seconds: a span for each would drown the calls worth seeing.
# OTEL_PYTHON_DJANGO_EXCLUDED_URLS (or OTEL_PYTHON_EXCLUDED_URLS) replaces this list when set.
# The instrumentation matches the whole URL (scheme and host included) with re.search.
DEFAULT_EXCLUDED_URLS = r"://[^/]+/(health|ready|metrics)/?(\?.*)?$"
EXPORTERS = ("otlp", "console")
PROTOCOLS = ("http/protobuf",)

_lock = threading.Lock()
_on = False
_provider: TracerProvider | None = None
_instrumentors: list[Any] = []
# Set while on: returns (trace_id, span_id) of the current span, (0, 0) outside any span.
_current_ids: Callable[[], tuple[int, int]] | None = None


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters the environment asks for; empty means tracing stays off.

    ``OTEL_SDK_DISABLED=true`` wins over everything. ``OTEL_TRACES_EXPORTER`` is a comma list (``none``
    alone: off); without it an OTLP endpoint means ``otlp``, as the specification's default would."""
    if _true(environ.get("OTEL_SDK_DISABLED")):
        return []
    listed = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if listed:
        return [name for name in listed if name != "none"]
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return ["otlp"]
    return []


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(exporter_names(environ))


def is_on() -> bool:
    return _on


def _exporters_from_env(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The span exporters the environment names; an unsupported choice refuses to start, naming it."""
    from django.core.exceptions import ImproperlyConfigured

    exporters: list[SpanExporter] = []
    for name in exporter_names(environ):
        if name == "otlp":
            protocol = (
                environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
            )
            if protocol.strip() not in ("", *PROTOCOLS):
                raise ImproperlyConfigured(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only {', '.join(PROTOCOLS)} is installed"
                )
            # Reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION itself.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        else:
            raise ImproperlyConfigured(f"OTEL_TRACES_EXPORTER={name}: one of {', '.join(EXPORTERS)} or none")
    return exporters


def setup(role: str, *, span_exporter: SpanExporter | None = None, environ: Mapping[str, str] = os.environ) -> bool:
    """Switch tracing on for this process when the environment asks for it; True when it is on.

    ``role`` names the process (``http``, ``grpc``, ``worker``): the service name is ``balance-<role>``
    unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise. Call it
    before the process builds its server: the Django instrumentation adds its middleware to
    settings.MIDDLEWARE, and the gRPC one wraps ``grpc.server`` and the channel constructors.
    ``span_exporter`` (tests) switches tracing on with that exporter alone, spans sent as they end.
    A second call while on does nothing."""
    global _on
    with _lock:
        if _on:
            return True
        if span_exporter is None and not wanted(environ):
            return False
        _start(role, span_exporter, environ)
        _on = True
    log.info("tracing on: service %s", _service_name())
    return True


def _start(role: str, span_exporter: SpanExporter | None, environ: Mapping[str, str]) -> None:
    global _provider, _current_ids
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if span_exporter is not None:
        processors: list[Any] = [SimpleSpanProcessor(span_exporter)]
    else:
        # Batches leave from a background thread (OTEL_BSP_* tune it): a call never waits for the collector.
        processors = [BatchSpanProcessor(exporter) for exporter in _exporters_from_env(environ)]
    if _provider is None:
        # The sampler comes from OTEL_TRACES_SAMPLER / _ARG (default: parent-based, always on).
        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: f"balance-{role}"}))
        _provider = TracerProvider(resource=resource)
        # The grpc client interceptor always uses the global provider, so this one must be it.
        trace.set_tracer_provider(_provider)
    for processor in processors:
        _provider.add_span_processor(processor)

    def current_ids() -> tuple[int, int]:
        context = trace.get_current_span().get_span_context()
        return (context.trace_id, context.span_id) if context.is_valid else (0, 0)

    _current_ids = current_ids
    _instrument(_provider, environ)


def _instrument(provider: TracerProvider, environ: Mapping[str, str]) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer, filters
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    # Health checks and reflection are probes, not calls (OTEL_PYTHON_GRPC_EXCLUDED_SERVICES adds more).
    not_probes = filters.negate(filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection.")))
    excluded_urls = None
    if "OTEL_PYTHON_DJANGO_EXCLUDED_URLS" not in environ and "OTEL_PYTHON_EXCLUDED_URLS" not in environ:
        excluded_urls = DEFAULT_EXCLUDED_URLS
    installs: list[tuple[Any, dict[str, Any]]] = [
        (DjangoInstrumentor(), {"excluded_urls": excluded_urls, "request_hook": _query_string_dropped}),
        (GrpcInstrumentorServer(filter_=not_probes), {}),
        (GrpcInstrumentorClient(filter_=not_probes), {}),
        # Connections opened from now on: setup() runs before the process's first query.
        # SQL and Redis commands outside any call (the health prober's SELECT 1 every second, beat's
        # scheduler, a breaker probe) would each be a trace of one span: only those inside a call are kept.
        (PsycopgInstrumentor(), {"tracer_provider": _child_spans_only(provider, scrub=True)}),
        (SQLite3Instrumentor(), {"tracer_provider": _child_spans_only(provider, scrub=True)}),
        # Redis spans name the command alone ("SET ? ?"): nothing to scrub.
        (RedisInstrumentor(), {"tracer_provider": _child_spans_only(provider, scrub=False)}),
        (CeleryInstrumentor(), {}),
    ]
    for instrumentor, options in installs:
        instrumentor.instrument(**{"tracer_provider": provider, **options})
        _instrumentors.append(instrumentor)


def _child_spans_only(provider: TracerProvider, *, scrub: bool) -> Any:
    """A tracer provider whose tracers start a span only inside another one (else a non-recording span);
    ``scrub``: the statements those spans record lose their literals."""
    from opentelemetry import trace

    class ChildOnlyTracer(trace.Tracer):
        def __init__(self, tracer: trace.Tracer) -> None:
            self._tracer = tracer

        def start_span(self, name, context=None, *args, **kwargs):
            if not trace.get_current_span(context).get_span_context().is_valid:
                return trace.INVALID_SPAN
            span = self._tracer.start_span(name, context, *args, **kwargs)
            return StatementsWithoutValues(span) if scrub else span

        def start_as_current_span(
            self,
            name,
            context=None,
            kind=trace.SpanKind.INTERNAL,
            attributes=None,
            links=None,
            start_time=None,
            record_exception=True,
            set_status_on_exception=True,
            end_on_exit=True,
        ):
            span = self.start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
            return trace.use_span(
                span,
                end_on_exit=end_on_exit,
                record_exception=record_exception,
                set_status_on_exception=set_status_on_exception,
            )

    class StatementsWithoutValues(trace.Span):
        """The span, with every literal of a statement it records replaced by ``?``.

        The ledger's round trips are rendered client-side, values included (amounts, owner refs, an
        journal record's whole stored answer): none of that leaves the process in a span."""

        def __init__(self, span: trace.Span) -> None:
            self._span = span

        def __getattr__(self, name):  # what an instrumentation reads besides the API (span.name, ...)
            return getattr(self._span, name)

        def set_attributes(self, attributes):
            self._span.set_attributes({key: _scrubbed(key, value) for key, value in attributes.items()})

        def set_attribute(self, key, value):
            self._span.set_attribute(key, _scrubbed(key, value))

        def end(self, end_time=None):
            self._span.end(end_time)

        def get_span_context(self):
            return self._span.get_span_context()

        def add_event(self, name, attributes=None, timestamp=None):
            self._span.add_event(name, attributes, timestamp)

        def update_name(self, name):
            self._span.update_name(name)

        def is_recording(self):
            return self._span.is_recording()

        def set_status(self, status, description=None):
            self._span.set_status(status, description)

        def record_exception(self, exception, attributes=None, timestamp=None, escaped=False):
            self._span.record_exception(exception, attributes, timestamp, escaped)

    class ChildSpansOnly(trace.TracerProvider):
        def get_tracer(self, *args, **kwargs):
            return ChildOnlyTracer(provider.get_tracer(*args, **kwargs))

    return ChildSpansOnly()


def _query_string_dropped(span: Any, request: Any) -> None:
    """An HTTP span keeps the path, not the query string (owner refs and other lookups travel there)."""
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.target", "http.url", "url.full"):
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if attributes.get("url.query"):
        span.set_attribute("url.query", "")


STATEMENT_ATTRIBUTES = frozenset({"db.statement", "db.query.text"})
# A quoted string, or a number standing alone (not part of a name like "s1401_x21", a $1 or %s).
_LITERALS = re.compile(r"'(?:[^']|'')*'|(?<![\w\"$.])-?\d+(?:\.\d+)?(?![\w\"])")


def _scrubbed(key: str, value: Any) -> Any:
    return _LITERALS.sub("?", value) if key in STATEMENT_ATTRIBUTES and isinstance(value, str) else value


def shutdown() -> None:
    """Undo setup(): remove every instrumentation and send what is still buffered (tests; the
    process's exit flushes by itself). The global tracer provider stays: OpenTelemetry sets it once
    per process, so a later setup() reuses it."""
    global _on, _current_ids
    with _lock:
        if not _on:
            return
        for instrumentor in reversed(_instrumentors):
            instrumentor.uninstrument()
        _instrumentors.clear()
        _on = False
        _current_ids = None
        if _provider is not None:
            _provider.force_flush()


def _service_name() -> str:
    if _provider is None:
        return ""
    return str(_provider.resource.attributes.get("service.name", ""))


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` (hex) and ``trace_context`` (``"trace_id=… span_id=… "``) to every
    record: empty when tracing is off or the line is logged outside a span, so the plain format
    prints exactly what it printed before tracing existed (settings.LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id = span_id = 0
        ids = _current_ids
        if ids is not None:
            trace_id, span_id = ids()
        hex_trace, hex_span = (f"{trace_id:032x}", f"{span_id:016x}") if trace_id else ("", "")
        record.trace_id, record.span_id = hex_trace, hex_span
        record.trace_context = f"trace_id={hex_trace} span_id={hex_span} " if trace_id else ""
        return True
