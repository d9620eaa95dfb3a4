"""The service's real calls, run in a process whose DATABASE_URL is the runtime role
(tests/ops/test_db_roles.py starts it): ``python -m tests.ops.runtime_role_calls``.

HTTP through Django's own request cycle (API key, idempotency, throttle, the account calls), the
gRPC sidecar's server over a real channel, the table and reservation services, player protection,
a four-eyes admin adjustment with staff users and a login session, every periodic job of the beat
schedule (run inline), beat's own schedule tables, `seal_journal` and `verify_ledger`. Any refusal
by PostgreSQL fails the step and the process exits 1, naming it; on success it prints the steps as
JSON.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

STEPS: list[str] = []


def step(name: str, call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except BaseException as error:  # SystemExit of a command too
        sys.stderr.write(f"step {name!r} failed as {connection.settings_dict['USER']}:\n{traceback.format_exc()}")
        raise SystemExit(1) from error
    STEPS.append(name)
    return result


def key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def http_calls() -> int:
    from accounts.keys import SCOPES, api_key_create

    raw, _ = api_key_create(client="roles-cashier", scopes=list(SCOPES))
    client = Client(headers={"Authorization": f"Bearer {raw}"})

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(
            path, json.dumps(body), content_type="application/json", headers={"Idempotency-Key": key("http")}
        )
        assert response.status_code in (200, 201), (path, response.status_code, response.content[:500])
        return response.json()

    opened = post("/api/v1/accounts", {"owner_ref": "roles-alice", "currency": "EUR"})
    account_id = opened["account"]["id"]
    post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 50_000})
    post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 1_000})
    balance = client.get(f"/api/v1/accounts/{account_id}/balance")
    assert balance.status_code == 200, balance.content
    assert client.get(f"/api/v1/accounts/{account_id}/statement").status_code == 200
    ready = Client().get("/ready")  # the probe reads the database and the migrations table
    assert ready.status_code == 200, ready.content
    return account_id


def table_calls(wallet: int) -> None:
    from accounts.services import account_deposit, account_open
    from reservations.services import reservation_commit, reservation_release, reservation_reserve
    from tables.services import hand_settle, seat_cash_out, table_buy_in, table_close, table_open

    bob = account_open(client="roles", idempotency_key=key("open"), owner_ref="roles-bob", currency="EUR")
    account_deposit(client="roles", idempotency_key=key("dep"), account_id=bob["account"]["id"], amount=20_000)
    table_open(client="roles", idempotency_key=key("t"), table_id="roles-t1", currency="EUR")
    table_buy_in(client="roles", idempotency_key=key("b"), user_id="roles-bob", table_id="roles-t1", amount=5_000)
    held = reservation_reserve(
        client="roles", idempotency_key=key("r"), user_id="roles-alice", table_id="roles-t1", amount=4_000
    )
    reservation_commit(client="roles", idempotency_key=key("c"), reservation_id=held["reservation"]["id"], amount=3_000)
    hand_settle(
        client="roles",
        idempotency_key=key("h"),
        table_id="roles-t1",
        hand_id="hand-1",
        contributions={"roles-alice": 1_000, "roles-bob": 1_000},
        payouts={"roles-alice": 1_900},
        rake=100,
    )
    seat_cash_out(client="roles", idempotency_key=key("o"), table_id="roles-t1", user_id="roles-bob", leave=True)
    seat_cash_out(client="roles", idempotency_key=key("o"), table_id="roles-t1", user_id="roles-alice", leave=True)
    released = reservation_reserve(
        client="roles", idempotency_key=key("r"), user_id="roles-alice", table_id="roles-t1", amount=500
    )
    reservation_release(client="roles", idempotency_key=key("rel"), reservation_id=released["reservation"]["id"])
    table_close(client="roles", idempotency_key=key("close"), table_id="roles-t1")


def grpc_calls(wallet: int) -> None:
    """The sidecar's own server and interceptor chain (auth, budgets, the mutation guard) on a
    free port, called over a real channel."""
    import grpc

    from accounts.keys import api_key_create
    from balance_client._pb.balance.v1 import balance_pb2 as pb
    from balance_client._pb.balance.v1 import balance_pb2_grpc
    from balance_project.grpc.server import create_server, load_interceptors

    raw, _ = api_key_create(client="roles-poker", scopes=["accounts:read", "reservations:write", "tables:write"])
    md = (("authorization", f"Bearer {raw}"),)
    server = create_server(bind="127.0.0.1:0", max_workers=2, interceptors=load_interceptors())
    server.start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = balance_pb2_grpc.BalanceServiceStub(channel)
            stub.OpenTable(
                pb.OpenTableRequest(idempotency_key=key("g"), table_id="roles-g1", currency="EUR"), metadata=md
            )
            bought = pb.BuyInRequest(idempotency_key=key("g"), user_id="roles-alice", table_id="roles-g1", amount=800)
            stub.BuyIn(bought, metadata=md, timeout=10)
            stub.BuyIn(bought, metadata=md, timeout=10)  # the same key again: the first answer
            left = pb.CashOutRequest(idempotency_key=key("g"), table_id="roles-g1", user_id="roles-alice", leave=True)
            stub.CashOut(left, metadata=md, timeout=10)
            stub.GetBalance(pb.GetBalanceRequest(account_id=wallet), metadata=md, timeout=10)
    finally:
        server.stop(grace=None)


def expiry_calls() -> None:
    from reservations.services import reservation_expire_overdue, reservation_reserve
    from tables.services import table_open

    table_open(client="roles", idempotency_key=key("t"), table_id="roles-t2", currency="EUR")
    reservation_reserve(
        client="roles", idempotency_key=key("r"), user_id="roles-alice", table_id="roles-t2", amount=700, ttl_seconds=5
    )
    assert reservation_expire_overdue(now=timezone.now() + timedelta(hours=1)) >= 1


def protection_calls() -> None:
    from accounts.protection_services import player_limit_set, self_exclusion_start

    for value in (90_000, 80_000):  # a new limit, then a decrease in force at once (an UPDATE)
        player_limit_set(
            client="roles",
            idempotency_key=key("lim"),
            owner_ref="roles-alice",
            currency="EUR",
            kind="deposit",
            period="24h",
            value=value,
        )
    self_exclusion_start(client="roles", idempotency_key=key("ex"), owner_ref="roles-carol", kind="time_out", days=1)


def admin_calls(wallet: int) -> None:
    from accounts.adjustments import adjustment_approve, adjustment_propose, adjustment_threshold
    from accounts.services import account_adjust, account_freeze, account_unfreeze

    users = get_user_model()
    proposer = users.objects.create_user("roles-support", password=uuid.uuid4().hex, is_staff=True)
    approver = users.objects.create_user("roles-finance", password=uuid.uuid4().hex, is_staff=True)
    Client().force_login(proposer)  # a session row and last_login
    account_adjust(actor="roles-support", idempotency_key=key("adj"), account_id=wallet, amount=-25, reason="fix")
    proposal = adjustment_propose(
        account_id=wallet,
        amount=adjustment_threshold("EUR") + 1,
        reason="large correction",
        proposer=proposer,
        request_key=uuid.uuid4().hex,
    )
    adjustment_approve(proposal_id=proposal.pk, approver=approver)
    account_freeze(client="roles", idempotency_key=key("fr"), account_id=wallet)
    account_unfreeze(client="roles", idempotency_key=key("uf"), account_id=wallet)


def periodic_jobs() -> list[str]:
    from django_celery_beat.schedulers import DatabaseScheduler

    from balance_project.celery import PERIODIC_JOBS, app

    app.loader.import_default_modules()  # the tasks modules, as a worker imports them
    DatabaseScheduler(app=app, lazy=False).sync()  # what beat writes at start-up and as it runs
    ran = []
    for _name, (task, _every) in sorted(PERIODIC_JOBS.items()):
        result = app.tasks[task].apply()
        if not result.successful():
            raise RuntimeError(f"{task}: {result.traceback}")
        ran.append(task)
    return ran


def main() -> None:
    wallet = step("http: open, deposit, withdraw, balance, statement", http_calls)
    step("tables: open, buy-in, reserve, commit, settle, cash-out, release, close", lambda: table_calls(wallet))
    step("grpc: open a table, buy in (and its retry), cash out, balance", lambda: grpc_calls(wallet))
    step("reservations: expiry sweep", expiry_calls)
    step("protection: limits and a time-out", protection_calls)
    step("admin: staff users, session, adjustment, four-eyes approval, freeze", lambda: admin_calls(wallet))
    jobs = step("every periodic job, and beat's schedule tables", periodic_jobs)
    step("seal_journal", lambda: call_command("seal_journal"))
    step("verify_ledger", lambda: call_command("verify_ledger"))
    print(json.dumps({"role": connection.settings_dict["USER"], "steps": STEPS, "jobs": jobs}))


if __name__ == "__main__":
    main()
