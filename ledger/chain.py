"""The checksum chain: one chain per account, so writers to different accounts never queue on
one global lock, and the account row they already lock guards the chain head.

checksum(entry) = HMAC-SHA-256(LEDGER_HMAC_KEY, canonical(entry) + previous checksum). Keyed, so a
rewrite of a whole chain by someone with database access alone does not verify.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

GENESIS = ""


_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(moment: datetime) -> str:
    """``moment`` in UTC as ``_TIMESTAMP_FORMAT`` renders it, the form every checksum and MAC signs.

    Rendered with ``isoformat`` (a third of strftime's cost, and a hot call renders a few dozen):
    the same text from year 1000 on; before it, strftime does not pad the year, so it renders."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:
        return moment.strftime(_TIMESTAMP_FORMAT)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_entry(
    *,
    account_id: int,
    seq: int,
    transaction_id: int,
    amount: int,
    currency: str,
    balance_after: int,
    created_at: datetime,
) -> bytes:
    fields = ("v1", account_id, seq, transaction_id, amount, currency, balance_after, format_timestamp(created_at))
    return "|".join(str(field) for field in fields).encode()


def entry_checksum(*, prev_checksum: str, **fields: Any) -> str:
    message = canonical_entry(**fields) + b"|" + prev_checksum.encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def checksum_of(entry: Any, prev_checksum: str) -> str:
    """The checksum of an entry (an ``Entry`` read back, or a ``ledger.rows.EntryRow`` being posted)."""
    return entry_checksum(
        prev_checksum=prev_checksum,
        account_id=entry.account_id,
        seq=entry.seq,
        transaction_id=entry.transaction_id,
        amount=entry.amount,
        currency=entry.currency,
        balance_after=entry.balance_after,
        created_at=entry.created_at,
    )


def _key() -> bytes:
    return settings.LEDGER_HMAC_KEY.encode()
