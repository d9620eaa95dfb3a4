"""Slow and broken HTTP clients against a real gunicorn (balance_project/gunicorn_worker.py).

Before: as many clients as threads, each sending a byte a second, made the API unreachable while
they stayed open; a body shorter than its Content-Length was processed as a deposit once the client
hung up.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.ops.test_service_e2e import BASE_DIR, embedded_env, free_port  # noqa: F401  (fixture)

THREADS = 2
READ_TIMEOUT = 2


@pytest.fixture
def gunicorn(embedded_env):  # noqa: F811
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
