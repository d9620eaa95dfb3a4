"""Slow and broken HTTP clients against a real gunicorn (balance_project/gunicorn_worker.py).

Before: as many clients as threads, each sending a byte a second, made the API unreachable while
they stayed open; a body shorter than its Content-Length was processed as a deposit once the client
hung up.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.ops.test_service_e2e import BASE_DIR, free_port

pytestmark = pytest.mark.embedded_default

THREADS = 2
READ_TIMEOUT = 2


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory) -> dict[str, str]:
    drop = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(BALANCE_VAR_DIR=str(tmp_path_factory.mktemp("slow") / "var"), PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=240)
    return env


@pytest.fixture(scope="module")
def gunicorn(embedded_env):
    key = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "--client", "slow", "--all-scopes"],
        cwd=BASE_DIR,
        env=embedded_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    port = free_port()
    env = {
        **embedded_env,
        "HTTP_BIND": f"127.0.0.1:{port}",
        "GUNICORN_THREADS": str(THREADS),
        "HTTP_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
        "GUNICORN_ACCESSLOG": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "balance_project/gunicorn.conf.py", "balance_project.wsgi"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if request(port, "GET", "/health")[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.3)
    try:
        yield port, key
    finally:
        process.terminate()
        process.wait(timeout=30)


def request(port: int, method: str, path: str, body: dict | None = None, key: str = "", timeout: float = 10):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"k-{time.monotonic_ns()}"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    connection.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_clients_sending_a_byte_a_second_do_not_take_the_api_down(gunicorn):
    port, _key = gunicorn
    stop = threading.Event()

    def slowloris() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            try:
                for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200:
                    if stop.wait(1):
                        return
                    sock.sendall(bytes([byte]))
            except OSError:  # closed by the server: what we want
                return

    slow = [threading.Thread(target=slowloris, daemon=True) for _ in range(THREADS * 3)]
    for thread in slow:
        thread.start()
    try:
        time.sleep(1.5)  # every worker thread now holds a slow client
        started = time.monotonic()
        status, _ = request(port, "GET", "/health", timeout=READ_TIMEOUT * 4)
        waited = time.monotonic() - started
        assert status == 200
        assert waited < READ_TIMEOUT * 3, f"a normal request waited {waited:.1f} s behind slow clients"
    finally:
        stop.set()


def test_a_body_shorter_than_its_content_length_is_refused(gunicorn):
    port, key = gunicorn
    status, body = request(port, "POST", "/api/v1/accounts", {"owner_ref": "slow-1", "currency": "EUR"}, key=key)
    assert status == 201, body
    account_id = json.loads(body)["account"]["id"]
    whole = b'{"amount": 100000}'
    sent = b'{"amount": 1}'  # valid JSON on its own: the start of what the client meant to send
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /api/v1/accounts/{account_id}/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nIdempotency-Key: short-1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(whole) + 20}\r\n\r\n".encode()
            + sent
        )
        sock.shutdown(socket.SHUT_WR)  # the client hangs up mid-body
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b'"invalid_request"' in answer
    status, body = request(port, "GET", f"/api/v1/accounts/{account_id}/balance", key=key)
    assert status == 200 and json.loads(body)["balance"] == 0, body


@pytest.mark.parametrize(
    "raw",
    [b"GARBAGE\r\n\r\n", b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"],
)
def test_what_gunicorn_cannot_parse_is_answered_in_the_json_envelope(gunicorn, raw):
    port, _key = gunicorn
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] in (b"400", b"414", b"431"), head
    assert b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_request" and b"GARBAGE" not in body and b"aaaa" not in body
