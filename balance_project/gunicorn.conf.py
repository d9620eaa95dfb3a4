"""Gunicorn settings for the HTTP API: ``gunicorn -c balance_project/gunicorn.conf.py balance_project.wsgi``.

Threads, not processes, by default: one worker process with ``GUNICORN_THREADS`` threads keeps
Prometheus metrics in one registry, so /metrics is whole. ``WEB_CONCURRENCY`` > 1 adds processes;
then metrics go through prometheus_client's multiprocess mode (a folder of memory-mapped files that
/metrics sums), and only metric objects (counters, histograms, gauges) are exported, not collectors
registered on the default registry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

bind = [os.environ.get("HTTP_BIND", "127.0.0.1:3002")]
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gthread with one deadline for reading each request, so slow clients cannot hold the threads.
worker_class = "balance_project.gunicorn_worker.DeadlineThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Clients (the cashier, the benchmark) keep connections open between calls.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Shorter than the supervisor's and Docker's stop grace, so in-flight requests finish first. A
# request still in the database 1 s before it has its statement cancelled (gunicorn_worker.py):
# it answers an error and commits nothing, and the worker is gone by this timeout (docs/processes.md).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
proc_name = "balance-http"
# The control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl): two servers on one
# machine (the service and a benchmark, say) would fight over it. Nothing here uses it.
control_socket_disable = True
# Behind a proxy (Docker, a load balancer): trust X-Forwarded-* only from the addresses listed.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if workers > 1 and not _metrics_dir:
    var_dir = Path(os.environ.get("BALANCE_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    _metrics_dir = str(var_dir / "prometheus-http")
    # Set before any worker imports prometheus_client (workers are forked from this process).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server) -> None:
    if _metrics_dir:
        # Files left by a previous run would be summed into this run's counters.
        shutil.rmtree(_metrics_dir, ignore_errors=True)
        os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker) -> None:
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    # The database gauges (ledger integrity, house balances) are served by the HTTP /metrics.
    from balance_project import db_metrics

    db_metrics.register()
