"""Retries with one key move money once and answer the same bytes; balances read after commit."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core.cache import cache
from django.db import connection

from accounts.keys import SCOPES, api_key_create
from accounts.models import Account
from ledger.models import Entry, JournalRecord
from tests.api.conftest import Api


def _retry_five_times(api, path, body, *, clear_cache_after: int):
    answers = []
    for attempt in range(5):
        response = api.post(path, body, idem="retry-key")
        answers.append((response.status_code, response.content))
        if attempt == clear_cache_after:
            cache.clear()  # later replays come from the database record, not the cache
    return answers


@pytest.mark.django_db(transaction=True)
def test_deposit_retried_five_times_moves_money_once(api, opened):
    account_id = opened()
    answers = _retry_five_times(api, f"/api/v1/accounts/{account_id}/deposit", {"amount": 700}, clear_cache_after=2)
    assert answers[0][0] == 201
    assert answers == [answers[0]] * 5
    assert Account.objects.get(pk=account_id).balance == 700
    assert Entry.objects.filter(account_id=account_id).count() == 1
    assert JournalRecord.objects.filter(key="retry-key").count() == 1


@pytest.mark.django_db(transaction=True)
def test_transfer_retried_five_times_moves_money_once(api, opened):
    a, b = opened(funded=1000), opened()
    body = {"from_account_id": a, "to_account_id": b, "amount": 250, "metadata": {"ref": "t-1", "n": 2}}
    answers = _retry_five_times(api, "/api/v1/transfers", body, clear_cache_after=1)
    assert answers[0][0] == 201
    assert answers == [answers[0]] * 5
    assert (Account.objects.get(pk=a).balance, Account.objects.get(pk=b).balance) == (750, 250)


@pytest.mark.django_db(transaction=True)
def test_refusal_retried_gets_the_same_refusal(api, opened):
    account_id = opened(funded=100)
    answers = _retry_five_times(api, f"/api/v1/accounts/{account_id}/withdraw", {"amount": 101}, clear_cache_after=0)
    assert answers[0][0] == 422 and b"insufficient_funds" in answers[0][1]
    assert answers == [answers[0]] * 5
    # Money arriving later does not change the remembered answer to that key.
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 50}).status_code == 201
    again = api.post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 101}, idem="retry-key")
    assert (again.status_code, again.content) == answers[0]
    assert Account.objects.get(pk=account_id).balance == 150


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_move_money_once(opened):
    account_id = opened()
    raw, _ = api_key_create(client="racer", scopes=list(SCOPES))
    answers, barrier = [], threading.Barrier(5)

    def call():
        try:
            api = Api(raw)
            barrier.wait()
            response = api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 40}, idem="race")
            answers.append((response.status_code, response.content))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 5 and answers[0][0] == 201
    assert answers == [answers[0]] * 5
    assert Account.objects.get(pk=account_id).balance == 40


@pytest.mark.django_db(transaction=True)
def test_balance_is_new_right_after_a_deposit(api, opened):
    account_id = opened(funded=100)
    assert api.get(f"/api/v1/accounts/{account_id}/balance").json()["balance"] == 100
    api.get(f"/api/v1/accounts/{account_id}")
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 23}).status_code == 201
    balance = api.get(f"/api/v1/accounts/{account_id}/balance").json()
    detail = api.get(f"/api/v1/accounts/{account_id}").json()
    assert balance["balance"] == detail["balance"] == 123
    assert api.post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 3}).status_code == 201
    assert api.get(f"/api/v1/accounts/{account_id}/balance").json()["balance"] == 120


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_serves_balances_and_is_refreshed_on_commit(api, opened):
    account_id = opened(funded=100)
    first = api.get(f"/api/v1/accounts/{account_id}/balance").json()
    # The deposit's on-commit write already cached the account.
    assert (first["source"], first["balance"]) == ("cache", 100)
    cache.clear()
    assert api.get(f"/api/v1/accounts/{account_id}/balance").json()["source"] == "database"
    assert api.get(f"/api/v1/accounts/{account_id}/balance").json()["source"] == "cache"
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 23}).status_code == 201
    after = api.get(f"/api/v1/accounts/{account_id}").json()
    assert (after["source"], after["balance"], after["version"]) == ("cache", 123, first["version"] + 1)
    assert api.post(f"/api/v1/accounts/{account_id}/freeze").status_code == 200
    frozen = api.get(f"/api/v1/accounts/{account_id}").json()
    assert (frozen["source"], frozen["status"]) == ("cache", "frozen")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_older_version_never_replaces_a_newer_cached_balance(api, opened):
    from accounts.cache import balance_cache_put
    from accounts.results import account_result

    account_id = opened(funded=100)
    stale = account_result(Account.objects.get(pk=account_id))
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 1}).status_code == 201
    balance_cache_put(stale)  # a slow reader's late write
    body = api.get(f"/api/v1/accounts/{account_id}/balance").json()
    assert (body["source"], body["balance"]) == ("cache", 101)


@pytest.mark.django_db
def test_a_per_process_memory_cache_is_not_trusted_for_balances(api, opened, settings):
    """Another process (the gRPC server, another worker) posts without touching this process's
    memory, so without a shared cache every balance read goes to the database."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"api-{uuid.uuid4().hex}"}
    }
    account_id = opened(funded=100)
    for _ in range(2):
        assert api.get(f"/api/v1/accounts/{account_id}/balance").json()["source"] == "database"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_only_wallets_are_cached_so_a_settlement_writes_no_balance_to_redis():
    from accounts.cache import balance_cache_get, balance_cache_put
    from accounts.results import account_result
    from accounts.selectors import account_balance_get
    from tables.services import hand_settle, table_buy_in
    from tests.tables.helpers import new_key, new_player, open_table

    table = open_table()
    (alice, wallet), (bob, _) = new_player(funded=1_000), new_player(funded=1_000)
    for user in (alice, bob):
        table_buy_in(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=500)
    seat = Account.objects.get(kind=Account.Kind.SEAT, owner_ref=alice).pk
    assert balance_cache_get(wallet)["balance"] == 500  # the buy-in's after-commit write
    assert balance_cache_get(seat) is None
    hand_settle(
        client="poker",
        idempotency_key=new_key(),
        table_id=table,
        hand_id="h1",
        contributions={alice: 100, bob: 100},
        payouts={alice: 190},
        rake=10,
    )
    rake = Account.objects.get(kind=Account.Kind.SYSTEM, system_code="rake").pk  # opened by the first rake
    assert balance_cache_get(seat) is None and balance_cache_get(rake) is None
    # Reading a seat's balance neither comes from nor fills the cache, so no later settlement can
    # leave it stale there; a seat's entry that an older release wrote is not served either.
    for _ in range(2):
        assert (account_balance_get(account_id=seat)["source"], balance_cache_get(seat)) == ("database", None)
    outdated = account_result(Account.objects.get(pk=seat)) | {"balance": 1, "version": 10**6}
    balance_cache_put(outdated)
    served = account_balance_get(account_id=seat)
    assert (served["source"], served["balance"]) == ("database", Account.objects.get(pk=seat).balance)
    assert account_balance_get(account_id=wallet)["source"] == "cache"
