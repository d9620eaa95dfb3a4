"""What each BalanceService method needs: the scopes that admit a caller, and whether it mutates.

The scopes are the HTTP ones (accounts/keys.py SCOPES). A method missing here is refused, so a new
RPC cannot ship unauthenticated by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_NAME = "balance.v1.BalanceService"


@dataclass(frozen=True)
class MethodPolicy:
    scopes: tuple[str, ...]  # any one of them admits the caller
    mutating: bool


# Reading needs the read scope on every channel (HTTP asks accounts:read for these too): a key that
# may only write does not also read.
_READ = ("accounts:read",)

METHOD_POLICIES: dict[str, MethodPolicy] = {
    "GetBalance": MethodPolicy(("accounts:read",), mutating=False),
    "ListTransactions": MethodPolicy(("accounts:read",), mutating=False),
    "Reserve": MethodPolicy(("reservations:write",), mutating=True),
    "CommitReservation": MethodPolicy(("reservations:write",), mutating=True),
    "ReleaseReservation": MethodPolicy(("reservations:write",), mutating=True),
    "GetReservation": MethodPolicy(_READ, mutating=False),
    "OpenTable": MethodPolicy(("tables:write",), mutating=True),
    "CloseTable": MethodPolicy(("tables:write",), mutating=True),
    "GetTable": MethodPolicy(_READ, mutating=False),
    "BuyIn": MethodPolicy(("tables:write",), mutating=True),
    "SettleHand": MethodPolicy(("tables:write",), mutating=True),
    "CashOut": MethodPolicy(("tables:write",), mutating=True),
    "GetPlayerProtection": MethodPolicy(_READ, mutating=False),
    "SetPlayerLimit": MethodPolicy(("protection:write",), mutating=True),
    "StartSelfExclusion": MethodPolicy(("protection:write",), mutating=True),
}


def policy_for(full_method: str) -> MethodPolicy | None:
    """The policy of a BalanceService method, None for any other service (health, reflection)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    if service != SERVICE_NAME:
        return None
    return METHOD_POLICIES.get(method, MethodPolicy(scopes=(), mutating=True))
