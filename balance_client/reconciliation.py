"""The reconciliation log: operations let through while the balance service could not be reached.

One JSON object per line: ``{"id", "time", "mode", "operation", "request", "idempotency_key",
"error"}``. Replaying (balance_client.replay) sends each line again with its own idempotency key, so
a line that did reach the service before is answered from the stored response, never applied twice.
Replayed lines are marked in a companion file ``<log>.replayed`` (one JSON object per line:
``{"id", "idempotency_key", "outcome", "reason", "time"}``): the log itself is only ever appended to,
so the poker service may keep writing while a replay runs.
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
        self, *, operation: str, request: dict[str, Any], idempotency_key: str, mode: str, error: dict[str, str]
    ) -> dict[str, Any]:
        line = {
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

    def mark(self, entry: dict[str, Any], *, outcome: str, reason: str = "") -> None:
        self._write(
            self.marks_path,
            {
                "id": entry["id"],
                "idempotency_key": entry["idempotency_key"],
                "outcome": outcome,
                "reason": reason,
                "time": _now(),
            },
        )

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
