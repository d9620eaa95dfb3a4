"""Python client of the balance service's gRPC API (balance.v1). Needs grpcio, not Django.

    from balance_client import BalanceClient, BalanceGate, RolloutMode

    client = BalanceClient("127.0.0.1:50051", token, timeout=2.0)
    seat = client.buy_in(user_id="alice", table_id="t1", amount=5_000).seat

The generated messages live in balance_client._pb (``make proto``); ``balance_client.pb`` names them.
"""

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client.cache import BalanceRead
from balance_client.client import BalanceClient, RetryPolicy
from balance_client.errors import BalanceError
from balance_client.keys import idempotency_key
from balance_client.outbox import Outbox
from balance_client.reconciliation import ReconciliationLog
from balance_client.rollout import BalanceGate, Decision, RolloutMode

__all__ = [
    "BalanceClient",
    "BalanceError",
    "BalanceGate",
    "BalanceRead",
    "Decision",
    "Outbox",
    "ReconciliationLog",
    "RetryPolicy",
    "RolloutMode",
    "idempotency_key",
    "pb",
]
