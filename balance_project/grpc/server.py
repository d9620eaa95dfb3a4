"""Build and run the gRPC server.

``create_server()`` only builds (tests start one on port 0 in-process); ``serve()`` runs it as the
sidecar process: metrics endpoint, SIGTERM/SIGINT -> NOT_SERVING, drain in-flight calls within the
grace period, exit.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
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
from balance_project.grpc.health_watch import DatabaseHealthWatch
from reservations.grpc_servicer import ReservationsServicer
from tables.grpc_servicer import TablesServicer

log = logging.getLogger("balance.grpc")

BALANCE_SERVICE = balance_pb2.DESCRIPTOR.services_by_name["BalanceService"].full_name


class BalanceServicer(AccountsServicer, ReservationsServicer, TablesServicer, balance_pb2_grpc.BalanceServiceServicer):
    """balance.v1.BalanceService: each app contributes the adapters for its own RPCs."""


def load_interceptors(paths: Sequence[str] | None = None) -> list[grpc.ServerInterceptor]:
    """Instantiate settings.GRPC_INTERCEPTORS (dotted paths, outermost first)."""
    return [import_string(path)() for path in (settings.GRPC_INTERCEPTORS if paths is None else paths)]


@dataclass
class RunningServer:
    server: grpc.Server
    health: health.HealthServicer
    executor: futures.ThreadPoolExecutor
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float | None = 5.0) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight calls finish within ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.executor.shutdown(wait=True)


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
    executor = futures.ThreadPoolExecutor(
        max_workers=max_workers or settings.GRPC_MAX_WORKERS, thread_name_prefix="grpc-worker"
    )
    interceptors = list(load_interceptors() if interceptors is None else interceptors)
    if auth_cache_seconds is not None:
        from balance_project.grpc.interceptors import AuthInterceptor

        for interceptor in interceptors:
            if isinstance(interceptor, AuthInterceptor):
                interceptor.keys = ApiKeyCache(auth_cache_seconds)
    server = grpc.server(
        executor,
        interceptors=interceptors,
        options=[
            ("grpc.so_reuseport", int(reuse_port)),
            ("grpc.max_receive_message_length", settings.GRPC_MAX_RECEIVE_MESSAGE_BYTES),
        ],
        maximum_concurrent_rpcs=settings.GRPC_MAX_CONCURRENT_RPCS,
    )
    balance_pb2_grpc.add_BalanceServiceServicer_to_server(BalanceServicer(), server)

    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", BALANCE_SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((BALANCE_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    port = server.add_insecure_port(bind)
    host = bind.rsplit(":", 1)[0]
    return RunningServer(server=server, health=health_servicer, executor=executor, host=host, port=port)


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
        running.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("gRPC server stopped")


def _metrics_host(grpc_host: str) -> str:
    """Serve metrics on the interface the gRPC port is on (loopback stays loopback)."""
    host = grpc_host.strip("[]")
    return "0.0.0.0" if host in ("", "::", "0.0.0.0") else host
