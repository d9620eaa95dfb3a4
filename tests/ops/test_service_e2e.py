"""`make run`'s supervisor against a fresh embedded default: every process up, then a clean stop.

Runs on a temporary SQLite file whatever DATABASE_URL says: the embedded default is what `make run`
promises to start with no configuration.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

from balance_project.celery import app
from tests.ops.processes_helpers import Output

pytestmark = pytest.mark.embedded_default

BASE_DIR = Path(__file__).resolve().parents[2]
EXPIRY_TASK = "reservations.expire_overdue_reservations"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def http_status(url: str) -> int:
    return http_get(url)[0]


def routed(path: str) -> bool:
    try:
        resolve(path)
        return True
    except Resolver404:
        return False


@pytest.fixture
def embedded_env(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(
        BALANCE_VAR_DIR=str(tmp_path / "var"),
        HTTP_BIND=f"127.0.0.1:{free_port()}",
        GRPC_BIND=f"127.0.0.1:{free_port()}",
        GRPC_METRICS_PORT=str(free_port()),
        WORKER_METRICS_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return env


def test_runall_starts_the_service_and_stops_it_cleanly(embedded_env):
    app.loader.import_default_modules()
    process = subprocess.Popen(
        [sys.executable, "-m", "balance_project.runall"],
        cwd=BASE_DIR,
        env=embedded_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = Output(process)
    base = f"http://{embedded_env['HTTP_BIND']}"
    try:
        key_line = lines.wait_for("development API key (every scope): ", 60)
        key = key_line.rsplit(" ", 1)[1].strip()
        assert (Path(embedded_env["BALANCE_VAR_DIR"]) / "dev-api-key").read_text().strip() == key
        lines.wait_for("Listening at: " + base, 60)
        lines.wait_for(" ready.", 60)  # the worker (after worker_init started its metrics endpoint)
        lines.wait_for("beat: Starting", 60)
        status, metrics = http_get(base + "/metrics")
        assert status == 200
        assert "balance_db_metrics_scrape_ok 1.0" in metrics  # registered by gunicorn.conf.py, read from the DB
        status, worker_metrics = http_get(f"http://127.0.0.1:{embedded_env['WORKER_METRICS_PORT']}/metrics")
        assert status == 200 and "python_info" in worker_metrics
        assert http_status(base + "/static/admin/css/base.css") == 200  # the admin is styled with DEBUG off
        for probe in ("/health", "/ready"):
            if routed(probe):
                assert http_status(base + probe) == 200, probe
        if "grpc" in "".join(lines.lines):
            host, port = embedded_env["GRPC_BIND"].rsplit(":", 1)
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection((host, int(port)), timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "gRPC port never opened:\n" + "".join(lines.lines)
                    time.sleep(0.5)
        if EXPIRY_TASK in app.tasks:
            # Beat sends it every 15 s through the filesystem broker; the worker runs it.
            lines.wait_for(f"Task {EXPIRY_TASK}[", 45)
            lines.wait_for("succeeded in", 15)
        assert process.poll() is None, "".join(lines.lines)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = lines.rest(5)
    assert process.returncode == 0, output[-4000:]
    assert "stop requested; stopping all processes" in output
    assert "http stopped (code 0)" in output
    assert "worker stopped (code 0)" in output
    assert "Traceback" not in output, output[-4000:]
