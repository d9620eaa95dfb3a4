"""Real threads, each on its own database connection, released together by a barrier."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection

from balance_project.errors import ApplicationError


def run_concurrently(calls: Sequence[Callable[[], Any]], *, threads: int | None = None) -> list[tuple[str, Any]]:
    """Run ``calls`` on ``threads`` worker threads (one per call by default), started together.

    Returns, in call order, ("ok", result) or ("error", ApplicationError). Any other exception in
    a worker is raised here. Each worker closes its own database connection when it is done.
    """
    threads = min(threads or len(calls), len(calls))
    outcomes: list[tuple[str, Any] | None] = [None] * len(calls)
    todo: queue.Queue = queue.Queue()
    for index, call in enumerate(calls):
        todo.put((index, call))
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(timeout=60)
            while True:
                try:
                    index, call = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcomes[index] = ("ok", call())
                except ApplicationError as refusal:
                    outcomes[index] = ("error", refusal)
        except BaseException as failure:  # reported to the test below
            failures.append(failure)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, name=f"worker-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert not worker.is_alive(), f"{worker.name} is stuck"
    if failures:
        raise failures[0]
    return outcomes  # type: ignore[return-value]
