"""``python manage.py grpcserver [--bind 127.0.0.1:50051] [--max-workers N] [--processes N]``: the gRPC sidecar.

Plain grpcio (see docs/grpc.md for why not djangogrpcframework); the server itself is
balance_project/grpc/server.py, the multi-process parent balance_project/grpc/processes.py; what
SIGTERM does and how long it takes: docs/processes.md.
"""

from __future__ import annotations

import argparse
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from balance_project.grpc.processes import LISTENING, run_processes
from balance_project.grpc.server import serve


class Command(BaseCommand):
    help = "Serve balance.v1.BalanceService over gRPC, with health checking, reflection and metrics."

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=settings.GRPC_BIND,
            help="host:port to listen on; port 0 picks a free one (default: %(default)s)",
        )
        parser.add_argument(
            "--max-workers",
            type=int,
            default=settings.GRPC_MAX_WORKERS,
            help="worker threads per process, each with its own database connection (default: %(default)s)",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="server processes sharing the port (SO_REUSEPORT), e.g. one per core; with 2 or more a "
            "child that dies is replaced while the others serve (default: %(default)s)",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.GRPC_METRICS_PORT,
            help="Prometheus metrics port, 0 for none; process i of --processes uses this + i (default: %(default)s)",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=10.0,
            help="seconds in-flight calls get to finish after SIGTERM; then their database work is "
            "cancelled and the process exits by grace + 1 s (docs/processes.md) (default: %(default)s)",
        )
        parser.add_argument(
            "--auth-cache-seconds",
            type=float,
            default=5.0,
            help="keep authenticated API keys in memory this long; a revoked key stops "
            "working within it; 0 reads the database on every call (default: %(default)s)",
        )
        parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)

    def handle(
        self, *args, bind, max_workers, processes, metrics_port, grace, auth_cache_seconds, reuse_port, **options
    ):
        if max_workers < 1:
            raise CommandError("--max-workers must be at least 1")
        if processes < 1:
            raise CommandError("--processes must be at least 1")

        def announce(address: str) -> None:
            # One line scripts can wait for; with port 0 it carries the port actually bound.
            self.stdout.write(f"{LISTENING}{address}")
            self.stdout.flush()

        if processes > 1:
            try:
                status = run_processes(
                    processes=processes,
                    bind=bind,
                    max_workers=max_workers,
                    metrics_port=metrics_port,
                    grace=grace,
                    auth_cache_seconds=auth_cache_seconds,
                    announce=announce,
                )
            except OSError as exc:
                raise CommandError(f"cannot serve on {bind}: {exc}") from exc
            self.stdout.write("gRPC server stopped")
            if status:
                sys.exit(status)
            return
        try:
            serve(
                bind=bind,
                max_workers=max_workers,
                metrics_port=metrics_port,
                grace=grace,
                on_started=lambda running: announce(running.address),
                reuse_port=reuse_port,
                auth_cache_seconds=auth_cache_seconds,
            )
        except RuntimeError as exc:  # grpcio: the address could not be bound
            raise CommandError(f"cannot serve on {bind}: {exc}") from exc
        self.stdout.write("gRPC server stopped")
