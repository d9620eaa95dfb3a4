"""HTTP routes of the accounts app, mounted under /api/v1/."""
from django.urls import path, register_converter

from accounts import api
from balance_project.money import INT64_MAX


class AccountIdConverter:
    """1 to 2**63-1: a larger number matches no route (404) instead of overflowing a query."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= INT64_MAX:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(AccountIdConverter, "account_id")

urlpatterns: list = [
    path("accounts", api.AccountsView.as_view(), name="accounts"),
    path("accounts/<account_id:account_id>", api.AccountDetailView.as_view(), name="account-detail"),
    path("accounts/<account_id:account_id>/balance", api.AccountBalanceView.as_view(), name="account-balance"),
    path("accounts/<account_id:account_id>/deposit", api.AccountDepositView.as_view(), name="account-deposit"),
    path("accounts/<account_id:account_id>/withdraw", api.AccountWithdrawView.as_view(), name="account-withdraw"),
    path("accounts/<account_id:account_id>/freeze", api.AccountFreezeView.as_view(), name="account-freeze"),
    path("accounts/<account_id:account_id>/unfreeze", api.AccountUnfreezeView.as_view(), name="account-unfreeze"),
    path("accounts/<account_id:account_id>/close", api.AccountCloseView.as_view(), name="account-close"),
    path("accounts/<account_id:account_id>/transactions", api.AccountTransactionsView.as_view(),
         name="account-transactions"),
    path("accounts/<account_id:account_id>/statement", api.AccountStatementView.as_view(), name="account-statement"),
    path("transfers", api.TransferView.as_view(), name="transfers"),
]
