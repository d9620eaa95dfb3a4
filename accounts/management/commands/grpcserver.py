"""``python manage.py grpcserver [--bind 127.0.0.1:50051] [--max-workers N]``: the gRPC sidecar.

Plain grpcio (see docs/grpc.md for why not djangogrpcframework); the server itself is
balance_project/grpc/server.py.
"""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from balance_project.grpc.server import serve


class Command(BaseCommand):
    help = "Serve balance.v1.BalanceService over gRPC, with health checking, reflection and metrics."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.GRPC_BIND,
                            help="host:port to listen on; port 0 picks a free one (default: %(default)s)")
        parser.add_argument("--max-workers", type=int, default=settings.GRPC_MAX_WORKERS,
                            help="worker threads, each with its own database connection (default: %(default)s)")
        parser.add_argument("--metrics-port", type=int, default=settings.GRPC_METRICS_PORT,
                            help="Prometheus metrics port, 0 for none (default: %(default)s)")
        parser.add_argument("--grace", type=float, default=10.0,
                            help="seconds in-flight calls get to finish after SIGTERM (default: %(default)s)")

    def handle(self, *args, bind, max_workers, metrics_port, grace, **options):
        if max_workers < 1:
            raise CommandError("--max-workers must be at least 1")

        def announce(running):
            # One line scripts can wait for; with port 0 it carries the port actually bound.
            self.stdout.write(f"gRPC server listening on {running.address}")
            self.stdout.flush()

        try:
            serve(bind=bind, max_workers=max_workers, metrics_port=metrics_port, grace=grace, on_started=announce)
        except RuntimeError as exc:  # grpcio: the address could not be bound
            raise CommandError(f"cannot serve on {bind}: {exc}") from exc
        self.stdout.write("gRPC server stopped")
