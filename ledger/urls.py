"""HTTP routes of the ledger app, mounted under /api/v1/."""

from django.urls import path

from ledger.api import LedgerExportView, TrialBalanceView

urlpatterns: list = [
    path("ledger/trial-balance", TrialBalanceView.as_view(), name="ledger-trial-balance"),
    path("ledger/export", LedgerExportView.as_view(), name="ledger-export"),
]
