"""GetBalance and ListTransactions through a real channel: the same selectors as HTTP."""

from __future__ import annotations

import grpc
import pytest

from accounts.services import account_deposit
from balance_client._pb.balance.v1 import balance_pb2 as pb
from tests.grpc.conftest import new_key, rpc_failure

pytestmark = pytest.mark.django_db(transaction=True)


def failure_of(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as excinfo:
        call(*args, timeout=10, **kwargs)
    return rpc_failure(excinfo)


def test_get_balance_by_account_and_by_wallet(stub, md, player):
    user, wallet = player(funded=1234)
    by_id = stub.GetBalance(pb.GetBalanceRequest(account_id=wallet), metadata=md, timeout=10)
    account = by_id.account
    assert (account.id, account.balance, account.held, account.available) == (wallet, 1234, 0, 1234)
    assert (by_id.account.kind, by_id.account.owner_ref, by_id.account.currency) == ("user", user, "EUR")
    assert by_id.account.status == "active" and by_id.source in ("cache", "database")
    by_wallet = stub.GetBalance(
        pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=user, currency="EUR")), metadata=md, timeout=10
    )
    assert by_wallet.account == by_id.account


def test_get_balance_errors(stub, md, player):
    user, _ = player()
    failure = failure_of(stub.GetBalance, pb.GetBalanceRequest(account_id=999_999), metadata=md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "account_not_found")
    assert failure.metadata["account_id"] == "999999"
    failure = failure_of(
        stub.GetBalance, pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=user, currency="USD")), metadata=md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "account_not_found")
    failure = failure_of(
        stub.GetBalance, pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=user, currency="eur")), metadata=md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")
    failure = failure_of(stub.GetBalance, pb.GetBalanceRequest(), metadata=md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")
    # A user id with NUL, a control character, or of any length: refused before any lookup, and the
    # refusal does not repeat it (NOT_FOUND once echoed ids of any length into the status).
    for bad in ("a\x00b", "line\nbreak", "x" * 5000, "  "):
        failure = failure_of(
            stub.GetBalance, pb.GetBalanceRequest(wallet=pb.WalletRef(user_id=bad, currency="EUR")), metadata=md
        )
        assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")
        assert len(failure.message) < 200 and all(value != bad for value in failure.metadata.values())


def test_list_transactions_pages_newest_first(stub, md, player):
    _, wallet = player(funded=100)
    for amount in (200, 300):
        account_deposit(
            client="tests",
            idempotency_key=new_key(),
            account_id=wallet,
            amount=amount,
            metadata={"ref": f"pay-{amount}", "attempt": 1},
        )
    first = stub.ListTransactions(pb.ListTransactionsRequest(account_id=wallet, limit=2), metadata=md, timeout=10)
    assert [(i.seq, i.amount, i.balance_after) for i in first.items] == [(3, 300, 600), (2, 200, 300)]
    assert first.items[0].kind == "deposit" and dict(first.items[0].metadata) == {"ref": "pay-300", "attempt": "1"}
    assert first.next_cursor
    rest = stub.ListTransactions(
        pb.ListTransactionsRequest(account_id=wallet, limit=2, cursor=first.next_cursor), metadata=md, timeout=10
    )
    assert [i.seq for i in rest.items] == [1] and rest.next_cursor == ""


def test_list_transactions_errors(stub, md, player):
    _, wallet = player()
    failure = failure_of(stub.ListTransactions, pb.ListTransactionsRequest(account_id=424242), metadata=md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "account_not_found")
    failure = failure_of(stub.ListTransactions, pb.ListTransactionsRequest(account_id=wallet, limit=-1), metadata=md)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")
    failure = failure_of(
        stub.ListTransactions, pb.ListTransactionsRequest(account_id=wallet, cursor="garbage"), metadata=md
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request")
