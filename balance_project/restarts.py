"""How long a supervisor waits before starting a process in place of one that exited on its own:
at once the first time, then longer while the new ones keep failing (a database that refuses
connections, a bad setting). One that ran ``STABLE_SECONDS`` was not failing at start: the count
starts over. Used by the sidecar's parent (balance_project/grpc/processes.py) and by ``make run``'s
supervisor (balance_project/runall.py)."""

from __future__ import annotations

RESTART_BACKOFF_SECONDS = (0.0, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
STABLE_SECONDS = 30.0


def restart_delay(failures: int, ran_seconds: float) -> tuple[float, int]:
    """-> (seconds to wait, the failure count after this exit)."""
    if ran_seconds >= STABLE_SECONDS:
        failures = 0
    return RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)], failures + 1
