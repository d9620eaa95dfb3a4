"""Signed integrity runs: which recorded verification may be believed.

An ``IntegrityRun`` row is only as good as whoever wrote it. A database insider can insert an "ok"
run dated 2036, and anything that reads "the latest run" would then report a clean, freshly verified
ledger. So ``_record`` (ledger/integrity_runs.py) signs every run with LEDGER_HMAC_KEY (kept outside
the database) over every field it states, and readers trust only a run that

- carries a signature that verifies over its fields as they are now, and
- is not dated in the future (beyond ``CLOCK_SKEW``): a signed run from a wrong clock is no more
  believable than a forged one.

Any other row is *forged*: never trusted, and itself a problem to show (the admin banner, the
``balance_ledger_recorded_runs_forged`` gauge). Deleting the newer runs leaves an older trusted one,
which then shows as stale; copying a signed run changes nothing it says.

Only the forged rows newer than the latest trusted run are looked at (at most ``SCAN_LIMIT``):
a forged row older than it can never be taken for the latest, so it misleads no reader.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ledger import chain
from ledger.models import IntegrityRun

log = logging.getLogger(__name__)

# A run finished further than this in the future is not trusted, signed or not.
CLOCK_SKEW = timedelta(minutes=1)
# At most this many untrusted rows are examined before the reader gives up (and trusts none).
SCAN_LIMIT = 1000
# At most this many forged rows are described; ``forged_count`` counts them all.
FORGED_LISTED = 20

_DOMAIN = b"integrity-run|v1|"


def run_payload(run: IntegrityRun) -> bytes:
    """The canonical bytes a run's signature covers: every field it states, not its id."""
    fields: dict[str, Any] = {
        "kind": run.kind,
        "started_at": chain.format_timestamp(run.started_at),
        "finished_at": chain.format_timestamp(run.finished_at),
        "ok": bool(run.ok),
        "problem_count": int(run.problem_count),
        "problems": run.problems,
        "accounts_checked": int(run.accounts_checked),
        "entries_checked": int(run.entries_checked),
        "transactions_checked": int(run.transactions_checked),
        "through_seal": None if run.through_seal is None else int(run.through_seal),
    }
    return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def run_signature(run: IntegrityRun) -> str:
    """HMAC-SHA-256 of ``run_payload(run)`` with LEDGER_HMAC_KEY (the key of ledger/chain.py)."""
    return hmac.new(chain._key(), run_payload(run), hashlib.sha256).hexdigest()


def run_signature_valid(run: IntegrityRun) -> bool:
    return bool(run.signature) and hmac.compare_digest(run.signature.encode(), run_signature(run).encode())


@dataclass(frozen=True)
class ForgedRun:
    """A row that claims to be an integrity run and must not be believed."""

    id: int
    kind: str
    finished_at: datetime
    ok: bool
    reason: str  # "signature" (missing or does not verify) or "future" (dated after now + CLOCK_SKEW)

    @property
    def message(self) -> str:
        claim = "ok" if self.ok else "failed"
        why = "is dated in the future" if self.reason == "future" else "has no valid signature"
        return f"{self.kind} run #{self.id} ({claim}, finished {chain.format_timestamp(self.finished_at)}) {why}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "finished_at": chain.format_timestamp(self.finished_at),
            "ok": self.ok,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass
class RunTrust:
    """What the recorded runs of one kind may be believed to say."""

    kind: str
    latest: IntegrityRun | None  # the latest run whose signature verifies (None: no such run)
    forged_count: int = 0  # untrusted rows newer than ``latest``
    forged: list[ForgedRun] = field(default_factory=list)  # the first FORGED_LISTED of them, newest first
    scan_exhausted: bool = False  # SCAN_LIMIT untrusted rows were read without finding a trusted one


def integrity_run_trust(kind: str = IntegrityRun.Kind.VERIFY, *, now: datetime | None = None) -> RunTrust:
    """The latest trusted run of ``kind`` and the forged rows that would otherwise pass for it.

    Two queries when nothing is forged (the future-dated rows, then the newest run, which verifies).
    """
    now = now or timezone.now()
    horizon = now + CLOCK_SKEW
    runs = IntegrityRun.objects.filter(kind=kind).order_by("-finished_at", "-pk")
    trust = RunTrust(kind=kind, latest=None)

    future = list(runs.filter(finished_at__gt=horizon)[: FORGED_LISTED + 1])
    trust.forged_count = len(future)
    if len(future) > FORGED_LISTED:
        trust.forged_count = runs.filter(finished_at__gt=horizon).count()
    trust.forged = [_forged(run, "future") for run in future[:FORGED_LISTED]]

    examined = 0
    for run in runs.filter(finished_at__lte=horizon)[:SCAN_LIMIT].iterator(chunk_size=50):
        examined += 1
        if run_signature_valid(run):
            trust.latest = run
            break
        trust.forged_count += 1
        if len(trust.forged) < FORGED_LISTED:
            trust.forged.append(_forged(run, "signature"))
    else:
        trust.scan_exhausted = examined >= SCAN_LIMIT
    if trust.forged_count:
        log.error(
            "%s untrusted %s integrity run rows (forged or unsigned), newest: %s",
            trust.forged_count,
            kind,
            trust.forged[0].message if trust.forged else "-",
        )
    return trust


def integrity_run_latest_trusted(kind: str = IntegrityRun.Kind.VERIFY) -> IntegrityRun | None:
    """The latest run of ``kind`` whose signature verifies and that is not dated in the future.

    What a reader may build on (for example the seal an incremental verification starts after:
    ``run.through_seal``). Forged rows newer than it are logged at ERROR; ``integrity_run_trust``
    also returns them.
    """
    return integrity_run_trust(kind).latest


def _forged(run: IntegrityRun, reason: str) -> ForgedRun:
    if reason == "future" and not run_signature_valid(run):
        reason = "signature"
    return ForgedRun(id=run.pk, kind=run.kind, finished_at=run.finished_at, ok=run.ok, reason=reason)
