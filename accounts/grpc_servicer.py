"""gRPC adapters for account reads (the same selectors as the HTTP views) and, through
``ProtectionServicer``, player protection."""

from __future__ import annotations

from accounts.protection_grpc import ProtectionServicer
from accounts.selectors import account_balance_get, account_transactions_list, wallet_balance_get
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_project.errors import ApplicationError
from balance_project.grpc.messages import account_pb, ledger_item_pb

DEFAULT_PAGE_SIZE = 50


class AccountsServicer(ProtectionServicer):
    def GetBalance(self, request: pb.GetBalanceRequest, context) -> pb.GetBalanceResponse:
        target = request.WhichOneof("target")
        if target == "account_id":
            result = account_balance_get(account_id=request.account_id)
        elif target == "wallet":
            result = wallet_balance_get(user_id=request.wallet.user_id, currency=request.wallet.currency)
        else:
            raise ApplicationError("invalid_request", "GetBalance needs an account_id or a wallet", {"field": "target"})
        return pb.GetBalanceResponse(account=account_pb(result), source=result.get("source", ""))

    def ListTransactions(self, request: pb.ListTransactionsRequest, context) -> pb.ListTransactionsResponse:
        result = account_transactions_list(
            account_id=request.account_id, cursor=request.cursor or None, limit=request.limit or DEFAULT_PAGE_SIZE
        )
        return pb.ListTransactionsResponse(
            items=[ledger_item_pb(item) for item in result["items"]], next_cursor=result.get("next_cursor") or ""
        )
