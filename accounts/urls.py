"""HTTP routes of the accounts app, mounted under /api/v1/."""

from django.urls import path

import balance_project.converters  # noqa: F401  (registers id64)
from accounts import api, protection_api
from ledger.finance_api import FinanceReportView

urlpatterns: list = [
    path("accounts", api.AccountsView.as_view(), name="accounts"),
    path("accounts/<id64:account_id>", api.AccountDetailView.as_view(), name="account-detail"),
    path("accounts/<id64:account_id>/balance", api.AccountBalanceView.as_view(), name="account-balance"),
    path("accounts/<id64:account_id>/deposit", api.AccountDepositView.as_view(), name="account-deposit"),
    path("accounts/<id64:account_id>/withdraw", api.AccountWithdrawView.as_view(), name="account-withdraw"),
    path("accounts/<id64:account_id>/freeze", api.AccountFreezeView.as_view(), name="account-freeze"),
    path("accounts/<id64:account_id>/unfreeze", api.AccountUnfreezeView.as_view(), name="account-unfreeze"),
    path("accounts/<id64:account_id>/close", api.AccountCloseView.as_view(), name="account-close"),
    path("accounts/<id64:account_id>/transactions", api.AccountTransactionsView.as_view(), name="account-transactions"),
    path("accounts/<id64:account_id>/statement", api.AccountStatementView.as_view(), name="account-statement"),
    path("transfers", api.TransferView.as_view(), name="transfers"),
    path("protection", protection_api.ProtectionView.as_view(), name="protection"),
    path("protection/limits", protection_api.LimitSetView.as_view(), name="protection-limits"),
    path("protection/exclusions", protection_api.ExclusionStartView.as_view(), name="protection-exclusions"),
    # The finance reports of player protection's issue (#13); their code is in ledger/.
    path("reports/<slug:report>", FinanceReportView.as_view(), name="finance-report"),
]
