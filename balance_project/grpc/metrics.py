"""Prometheus metrics of the gRPC server, exposed by ``serve()`` on settings.GRPC_METRICS_PORT."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Buckets around the 50 ms P99 target, fine below it and coarse above.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HANDLING_SECONDS = Histogram(
    "balance_grpc_server_handling_seconds",
    "Time to handle a gRPC call, by method, from the first interceptor to the answer.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
HANDLED_TOTAL = Counter(
    "balance_grpc_server_handled_total",
    "gRPC calls completed, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)


def split_method(full_method: str) -> tuple[str, str]:
    """'/balance.v1.BalanceService/BuyIn' -> ('balance.v1.BalanceService', 'BuyIn')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method
