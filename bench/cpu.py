"""CPU time of the processes a benchmark measures, read from Linux's /proc (None where unreadable).

The PostgreSQL a benchmark runs against is on loopback (bench/ceiling.py refuses any other), so its
processes are on this machine: the CPU it spends per call is the database's share of the work."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> tuple[str, list[str]]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of process ``pid`` and its live descendants (the children of
    ``grpcserver --processes N``)."""
    try:
        fields = _stat(pid)[1]  # type: ignore[arg-type]
        own = (int(fields[11]) + int(fields[12])) / TICKS
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return own + sum(process_cpu_seconds(int(child)) or 0.0 for child in children)
    except (OSError, ValueError, IndexError, TypeError):
        return None


def postgres_cpu_seconds() -> float | None:
    """User + system CPU of every PostgreSQL process on this machine (postmaster, backends, WAL
    writer, checkpointer...) and of the backends that have exited (the postmaster's reaped
    children, as pgbench's are when it ends), None when there is none to read."""
    total, found = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, fields = _stat(entry.name)
        except (OSError, ValueError):
            continue  # gone meanwhile
        if name.startswith(("postgres", "postmaster")):
            total, found = total + sum(int(field) for field in fields[11:15]), True
    return total / TICKS if found else None


def per_call_ms(before: float | None, after: float | None, calls: int) -> float | None:
    if before is None or after is None or not calls:
        return None
    return (after - before) * 1000 / calls


def database_note(ms: float | None, unit: str = "call") -> str:
    """``, PostgreSQL CPU 0.82 ms/call`` (nothing when it could not be read)."""
    return f", PostgreSQL CPU {ms:.2f} ms/{unit}" if ms is not None else ""
