"""The reconciliation log: every operation whose outcome the poker side does not have from the service.

That is one let through while the service could not be reached (shadow, permissive fallback), one
the poker side went ahead with though the service refused it (shadow), and one left pending in
enforce mode (the caller was told "pending", not "refused"). The log is the client's durable
outbox: each line is sent again with its own idempotency key until the service answers.

One JSON object per line: ``{"id", "time", "mode", "operation", "request", "idempotency_key",
"error", "let_through"}`` (``let_through`` false: the poker side did not go ahead and waits for the
answer; a line without the field was let through). Replaying (balance_client.replay, the outbox)
sends each line again with its own idempotency key, so a line that did reach the service before is
answered from the stored response, never applied twice. Answered lines are marked in a companion
file ``<log>.replayed`` (one JSON object per line: ``{"id", "idempotency_key", "outcome",
"reason", "time", "response", "let_through", "divergence"}``; ``divergence`` true: the poker side
went ahead and the service refused): the log itself is only ever appended to, so the poker service
may keep writing while a replay runs. Both clients (Python, TypeScript) read and write this format.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReconciliationLog:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.marks_path = self.path.with_name(self.path.name + ".replayed")
        self._lock = threading.Lock()

    def append(
        self,
        *,
        operation: str,
        request: dict[str, Any],
        idempotency_key: str,
        mode: str,
        error: dict[str, str],
        let_through: bool = True,
    ) -> dict[str, Any]:
        line = {
            "let_through": let_through,
            "id": uuid.uuid4().hex,
            "time": _now(),
            "mode": mode,
            "operation": operation,
            "request": request,
            "idempotency_key": idempotency_key,
            "error": error,
        }
        self._write(self.path, line)
        return line

    def entries(self) -> Iterator[dict[str, Any]]:
        yield from _read(self.path)

    def marked_ids(self) -> set[str]:
        return {mark["id"] for mark in _read(self.marks_path)}

    def marks(self) -> dict[str, dict[str, Any]]:
        """The answer recorded for each answered line, by line id (the first, if marked twice)."""
        recorded: dict[str, dict[str, Any]] = {}
        for mark in _read(self.marks_path):
            recorded.setdefault(mark["id"], mark)
        return recorded

    def mark(
        self, entry: dict[str, Any], *, outcome: str, reason: str = "", response: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Records the service's answer to a line: ``ok`` (with its response) or ``refused``."""
        let_through = let_through_of(entry)
        mark = {
            "id": entry["id"],
            "idempotency_key": entry["idempotency_key"],
            "outcome": outcome,
            "reason": reason,
            "time": _now(),
            "response": response,
            "let_through": let_through,
            "divergence": let_through and outcome == "refused",
        }
        self._write(self.marks_path, mark)
        return mark

    def pending(self) -> list[dict[str, Any]]:
        done = self.marked_ids()
        return [entry for entry in self.entries() if entry["id"] not in done]

    def _write(self, path: Path, record: dict[str, Any]) -> None:
        data = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One write in append mode per line, then fsync: a line is whole and durable, or absent.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)


def let_through_of(entry: dict[str, Any]) -> bool:
    """Whether the poker side went ahead with a logged operation (lines from before the field: yes)."""
    return bool(entry.get("let_through", True))


def _read(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                # A torn last line from a crash mid-write: the operation it described was not logged whole.
                continue
