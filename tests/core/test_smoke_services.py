import pytest

from accounts.models import Account
from accounts.services import account_deposit, account_transfer, account_withdraw
from balance_project.errors import ApplicationError
from ledger.models import Entry

pytestmark = pytest.mark.django_db


def test_deposit_withdraw_transfer_move_money_and_balance_books(wallet, key):
    a, b = wallet(funded=1000), wallet()
    account_transfer(client="t", idempotency_key=key(), from_account_id=a, to_account_id=b, amount=300)
    account_withdraw(client="t", idempotency_key=key(), account_id=b, amount=100)
    assert Account.objects.get(pk=a).balance == 700
    assert Account.objects.get(pk=b).balance == 200
    total = sum(Account.objects.values_list("balance", flat=True))
    assert total == 0
    for account in Account.objects.all():
        entries = list(Entry.objects.filter(account=account).order_by("seq"))
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert sum(e.amount for e in entries) == account.balance


def test_retry_with_same_key_moves_once_and_returns_same_answer(wallet, key):
    a = wallet()
    k = key()
    first = account_deposit(client="t", idempotency_key=k, account_id=a, amount=500)
    for _ in range(4):
        assert account_deposit(client="t", idempotency_key=k, account_id=a, amount=500) == first
    assert Account.objects.get(pk=a).balance == 500
    with pytest.raises(ApplicationError) as err:
        account_deposit(client="t", idempotency_key=k, account_id=a, amount=501)
    assert err.value.code == "idempotency_conflict"


def test_withdrawal_beyond_available_is_refused_and_remembered(wallet, key):
    a = wallet(funded=100)
    k = key()
    for _ in range(2):
        with pytest.raises(ApplicationError) as err:
            account_withdraw(client="t", idempotency_key=k, account_id=a, amount=101)
        assert err.value.code == "insufficient_funds"
    assert Account.objects.get(pk=a).balance == 100
