"""The outbox: the reconciliation log resent in the background until the service has answered every line.

    gate = BalanceGate(client, "enforce", reconciliation_log="balance-recon.jsonl")
    gate.start_outbox(interval=1.0, on_answer=seat_service.resolve)   # a daemon thread
    ...
    gate.stop_outbox()

A line is sent with its own idempotency key, in log order, so an operation that had reached the
service is answered from its stored response and never applied twice; the answer is recorded in the
log's marks (with the response) and handed to ``on_answer(line, mark)``, which is how the poker side
learns the verdict of an operation it was told is pending. ``python -m balance_client.replay LOG
--follow SECONDS`` is the same loop as a process.

The outbox also knows which tables have lines still pending: an operation on such a table is not
sent ahead of them (a settlement may need a buy-in still in the log) but queued behind them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from balance_client.client import BalanceClient
from balance_client.reconciliation import ReconciliationLog

if TYPE_CHECKING:
    from balance_client.replay import OnAnswer, ReplayReport

log = logging.getLogger("balance_client.outbox")


class Outbox:
    def __init__(self, reconciliation_log: ReconciliationLog, client: BalanceClient):
        self.log = reconciliation_log
        self.client = client
        self.on_answer: OnAnswer | None = None
        self._drain_lock = threading.Lock()  # one replay at a time: the thread's or a caller's
        self._state_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._tables: set[str] = set()
        self._added_since_read: set[str] = set()
        self._refresh()

    # ---- what is pending ------------------------------------------------------------------------

    def holds(self, table_id: str) -> bool:
        """Whether lines of this table wait for an answer (as this process last saw the log)."""
        with self._state_lock:
            return bool(table_id) and table_id in self._tables

    def added(self, entry: dict[str, Any]) -> None:
        """A line was just appended: note its table and wake the retrier."""
        with self._state_lock:
            self._tables.add(_table_of(entry))
            self._added_since_read.add(_table_of(entry))
        self._wake.set()

    def _refresh(self) -> None:
        # A line appended while the log is read may be missing from what is read: keep its table.
        with self._state_lock:
            self._added_since_read = set()
        tables = {_table_of(entry) for entry in self.log.pending()}
        with self._state_lock:
            self._tables = tables | self._added_since_read

    # ---- sending ----------------------------------------------------------------------------------

    def drain(self, *, deadline: float | None = None) -> ReplayReport | None:
        """One pass over the pending lines, in order, within ``deadline`` (time.monotonic()). None
        when another pass (the retrier's) still runs at the deadline: a caller never waits past it."""
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._drain_lock.acquire(timeout=wait):
            return None
        # Imported here: the package imports this module, and `python -m balance_client.replay` must
        # find replay not yet imported.
        from balance_client.replay import replay

        try:
            return replay(self.log, self.client, deadline=deadline, on_answer=self._answered)
        finally:
            self._refresh()
            self._drain_lock.release()

    def _answered(self, entry: dict[str, Any], mark: dict[str, Any]) -> None:
        if self.on_answer is None:
            return
        try:
            self.on_answer(entry, mark)
        except Exception:  # the caller's hook must not stop the retrier
            log.exception("balance outbox: on_answer failed for key=%s", entry["idempotency_key"])

    def start(self, *, interval: float = 1.0, on_answer: OnAnswer | None = None) -> Outbox:
        if on_answer is not None:
            self.on_answer = on_answer
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="balance-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, interval: float) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                report = self.drain(deadline=time.monotonic() + max(interval, self.client.timeout) * 4)
                if report is not None and report.pending:
                    log.info("balance outbox: %d line(s) still pending", report.pending)
            except Exception:  # e.g. the log's disk: try again next round
                log.exception("balance outbox: replay failed")
            self._wake.wait(interval)


def _table_of(entry: dict[str, Any]) -> str:
    request = entry.get("request") or {}
    # The TypeScript client writes the request in the protobuf JSON mapping (tableId).
    return str(request.get("table_id") or request.get("tableId") or "")
