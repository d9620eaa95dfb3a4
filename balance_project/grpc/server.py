"""Build and run the gRPC server.

``create_server()`` only builds (tests start one on port 0 in-process); ``serve()`` runs it as the
sidecar process: metrics endpoint, SIGTERM/SIGINT -> NOT_SERVING, drain in-flight calls within the
grace period, exit. The drain is bounded (docs/processes.md): at grace the database work of the
calls still in flight is cancelled (balance_project/drain.py), grpcio aborts what is left
ABORT_AFTER_CANCEL_SECONDS later, and the process is gone by grace + 1 s.

Health checks run on threads of their own (``HEALTH_THREADS``), not on the workers: when every
worker waits on the database, a health check is still answered at once, from the status the
database watcher keeps (health_watch.py).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc
from django.conf import settings
from django.utils.module_loading import import_string
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from accounts.grpc_servicer import AccountsServicer
from accounts.keys import ApiKeyCache
from balance_client._pb.balance.v1 import balance_pb2, balance_pb2_grpc
from balance_project import tracing
from balance_project.drain import cancel_database_work, guard_connections, in_flight
from balance_project.grpc.health_watch import DatabaseHealthWatch
from balance_project.grpc.interceptors import composed
from reservations.grpc_servicer import ReservationsServicer
from tables.grpc_servicer import TablesServicer

log = logging.getLogger("balance.grpc")

BALANCE_SERVICE = balance_pb2.DESCRIPTOR.services_by_name["BalanceService"].full_name
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# Threads that answer health checks only: they read a status in memory, so two are plenty.
HEALTH_THREADS = 2
# At grace the calls' database work is cancelled; grpcio aborts what still runs this much later.
ABORT_AFTER_CANCEL_SECONDS = 0.5
# ...and the process exits this long after grace whatever its threads are doing.
EXIT_AFTER_GRACE_SECONDS = 0.9


class BalanceServicer(AccountsServicer, ReservationsServicer, TablesServicer, balance_pb2_grpc.BalanceServiceServicer):
    """balance.v1.BalanceService: each app contributes the adapters for its own RPCs."""


def load_interceptors(paths: Sequence[str] | None = None) -> list[grpc.ServerInterceptor]:
    """Instantiate settings.GRPC_INTERCEPTORS (dotted paths, outermost first)."""
    return [import_string(path)() for path in (settings.GRPC_INTERCEPTORS if paths is None else paths)]


class _OnPool:
    """A unary behaviour grpcio runs on ``experimental_thread_pool`` instead of the server's workers."""

    def __init__(self, behavior: Callable, pool: futures.ThreadPoolExecutor) -> None:
        self.behavior, self.experimental_thread_pool = behavior, pool

    def __call__(self, request, context):
        return self.behavior(request, context)


class CountingExecutor(futures.ThreadPoolExecutor):
    """The workers' pool, counting the calls handed to it and not finished yet (running or queued)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self.active = 0

    def submit(self, fn, /, *args, **kwargs):
        with self._count_lock:
            self.active += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self._count_lock:
            self.active -= 1


class HealthOnItsOwnThreads(grpc.ServerInterceptor):
    """Outermost interceptor: health checks go to their own small pool, so calls blocked on the
    database (every worker busy, more queued behind them) never delay one. grpcio picks the pool
    from the behaviour it is handed, hence the outermost place. Watch streams stay on the workers.

    The cap on calls in flight (GRPC_MAX_CONCURRENT_RPCS) is kept here rather than by grpcio, whose
    cap counts health checks too and refuses them with the rest: a unary call past the cap is
    answered RESOURCE_EXHAUSTED at once, from the same small pool; health checks are not counted."""

    def __init__(self, pool: futures.ThreadPoolExecutor, workers: CountingExecutor, cap: int | None) -> None:
        self.pool, self.workers, self.cap = pool, workers, cap

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        if handler_call_details.method == HEALTH_CHECK:
            return handler._replace(unary_unary=_OnPool(handler.unary_unary, self.pool))
        if self.cap is not None and self.workers.active >= self.cap:
            return handler._replace(unary_unary=_OnPool(_over_the_cap, self.pool))
        return handler


def _over_the_cap(request, context):
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!")


@dataclass
class RunningServer:
    server: grpc.Server
    health: health.HealthServicer
    executor: futures.ThreadPoolExecutor
    host: str
    port: int
    health_pool: futures.ThreadPoolExecutor | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float | None = 5.0) -> bool:
        """Report NOT_SERVING, refuse new calls, let in-flight calls finish within ``grace`` seconds;
        then cancel their database work, and ABORT_AFTER_CANCEL_SECONDS later abort them. Returns
        whether every worker thread had ended by EXIT_AFTER_GRACE_SECONDS after grace (``grace``
        None: cancel at once and wait for the threads as long as they take)."""
        self.health.enter_graceful_shutdown()
        pools = [pool for pool in (self.executor, self.health_pool) if pool is not None]
        if grace is None:
            self.server.stop(None).wait()
            for pool in pools:
                pool.shutdown(wait=True)
            return True
        started = time.monotonic()
        stopped = self.server.stop(grace + ABORT_AFTER_CANCEL_SECONDS)
        if not stopped.wait(grace):
            cancelled = cancel_database_work()
            log.warning("grace over: cancelled %s database statements of the calls still in flight", cancelled)
            # Again for a statement whose cancel reached the server just before the statement did.
            while not stopped.wait(0.1) and time.monotonic() - started < grace + ABORT_AFTER_CANCEL_SECONDS:
                if in_flight():
                    cancel_database_work()
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        deadline = started + grace + EXIT_AFTER_GRACE_SECONDS
        return all(_joined(pool, deadline) for pool in pools)


def create_server(
    *,
    bind: str | None = None,
    max_workers: int | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] | None = None,
    reuse_port: bool = False,
    auth_cache_seconds: float | None = None,
) -> RunningServer:
    """A server bound to ``bind`` (port 0 picks a free port), not started yet.

    ``reuse_port``: bind with SO_REUSEPORT, so several processes share the port (``--processes``);
    off otherwise, so a second server on a taken port fails instead of silently sharing it.
    ``auth_cache_seconds``: when given, how long the auth interceptor keeps authenticated keys."""
    bind = bind or settings.GRPC_BIND
    executor = CountingExecutor(max_workers=max_workers or settings.GRPC_MAX_WORKERS, thread_name_prefix="grpc-worker")
    health_pool = futures.ThreadPoolExecutor(max_workers=HEALTH_THREADS, thread_name_prefix="grpc-health")
    interceptors = list(load_interceptors() if interceptors is None else interceptors)
    if auth_cache_seconds is not None:
        from balance_project.grpc.interceptors import AuthInterceptor

        for interceptor in interceptors:
            if isinstance(interceptor, AuthInterceptor):
                interceptor.keys = ApiKeyCache(auth_cache_seconds)
    server = grpc.server(
        executor,
        interceptors=[
            HealthOnItsOwnThreads(health_pool, executor, settings.GRPC_MAX_CONCURRENT_RPCS),
            *composed(interceptors),
        ],
        options=[
            ("grpc.so_reuseport", int(reuse_port)),
            ("grpc.max_receive_message_length", settings.GRPC_MAX_RECEIVE_MESSAGE_BYTES),
        ],
        # The cap is HealthOnItsOwnThreads': grpcio's own would refuse health checks as well.
        maximum_concurrent_rpcs=None,
    )
    balance_pb2_grpc.add_BalanceServiceServicer_to_server(BalanceServicer(), server)

    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", BALANCE_SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((BALANCE_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    port = server.add_insecure_port(bind)
    host = bind.rsplit(":", 1)[0]
    return RunningServer(
        server=server, health=health_servicer, executor=executor, host=host, port=port, health_pool=health_pool
    )


def _joined(pool: futures.ThreadPoolExecutor, deadline: float) -> bool:
    """Wait for the pool's threads until ``deadline``; whether they all ended."""
    threads = list(getattr(pool, "_threads", ()))  # CPython's ThreadPoolExecutor keeps them there
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def serve(
    *,
    bind: str,
    max_workers: int,
    metrics_port: int,
    grace: float,
    on_started: Callable[[RunningServer], None] | None = None,
    reuse_port: bool = False,
    auth_cache_seconds: float | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then drain. ``metrics_port`` 0 leaves the metrics endpoint off."""
    # Every connection opened from here on can be cancelled at grace (balance_project/drain.py).
    guard_connections()
    # Before the server is built: the gRPC instrumentation wraps grpc.server (when OTEL_* switch it on).
    tracing.setup("grpc")
    running = create_server(
        bind=bind, max_workers=max_workers, reuse_port=reuse_port, auth_cache_seconds=auth_cache_seconds
    )
    # A thread back from the database waits for the GIL until the running one yields it: by default
    # up to 5 ms, and a call that holds row locks makes every call queued on them wait as long.
    sys.setswitchinterval(settings.GRPC_GIL_SWITCH_INTERVAL_SECONDS)
    # Everything loaded so far (Django, the apps, grpc, protobuf) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks it and stalls every call in flight.
    gc.collect()
    gc.freeze()
    # A call allocates a few thousand objects and frees nearly all of them by reference count:
    # collecting the young generation every 700 allocations (the default) walked them for nothing,
    # several times per call (about 3% of the sidecar's CPU per call, bench/README.md session 8).
    gc.set_threshold(*settings.GRPC_GC_THRESHOLDS)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=_metrics_host(running.host))
    stop_requested = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %s: draining in-flight calls (grace %ss)", signal.Signals(signum).name, grace)
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    # Health follows the database: NOT_SERVING while it does not answer (health_watch.py).
    watch = DatabaseHealthWatch(running.health, ("", BALANCE_SERVICE))
    try:
        running.start()
        watch.start()
        log.info("gRPC server listening on %s (%s workers)", running.address, max_workers)
        if on_started is not None:
            on_started(running)
        while not stop_requested.wait(0.5):
            pass
    finally:
        watch.stop()
        ended = running.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not ended:
            # A thread still running Python code past grace (its statements were cancelled and
            # no new one is sent): the interpreter would wait for it at exit, so leave without it.
            log.error("gRPC server stopped with calls still running %ss after grace", EXIT_AFTER_GRACE_SECONDS)
            logging.shutdown()
            sys.stdout.flush()
            os._exit(1)
        log.info("gRPC server stopped")


def _metrics_host(grpc_host: str) -> str:
    """Serve metrics on the interface the gRPC port is on (loopback stays loopback)."""
    host = grpc_host.strip("[]")
    return "0.0.0.0" if host in ("", "::", "0.0.0.0") else host
