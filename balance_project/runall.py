"""Run the whole service from one command: ``python -m balance_project.runall`` (what ``make run`` does).

Starts the HTTP API (gunicorn), the admin on its own port when ``ADMIN_BIND`` is set, the gRPC
sidecar (when ``manage.py grpcserver`` exists) and a Celery worker with an embedded beat, prefixes
each line they print with the process name, and stops them all on Ctrl-C or SIGTERM. When one of
them dies on its own it is started again while the others go on, at once the first time and later
when it keeps failing (balance_project/restarts.py); with ``--no-restart`` the rest are stopped
instead and this exits non-zero, for a process manager above it that restarts the whole.

On the embedded default (no ``DATABASE_URL``) it also makes sure a development API key with every
scope exists, prints it, and keeps it in ``$BALANCE_VAR_DIR/dev-api-key`` so the next run prints the
same key. It never does that against a configured database.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from balance_project.restarts import restart_delay

BASE_DIR = Path(__file__).resolve().parent.parent
GUNICORN_CONF = BASE_DIR / "balance_project" / "gunicorn.conf.py"
DEV_KEY_CLIENT = "dev"
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    """One supervised process: a name for the prefix and the command that starts it."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None  # when it exited on its own: when to start it again


def _own_session_dying_with_parent() -> None:
    """Run in the child before exec: its own process group, and SIGTERM if the supervisor vanishes.

    The own group keeps a terminal's Ctrl-C away from the children, so they stop in the order the
    supervisor chooses; the parent-death signal covers a supervisor killed with SIGKILL.
    """
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the group alone still lets us stop them
        pass


class Supervisor:
    """Start children, relay their output, restart one that dies (or, without ``restart``, stop
    them all when any of them exits), stop them all when asked."""

    def __init__(self, children: list[Child], *, grace_seconds: float = 25.0, out=None, restart: bool = True) -> None:
        self.children = children
        self.grace_seconds = grace_seconds
        self.restart = restart
        self.out = out or sys.stdout
        self.stop_requested = threading.Event()
        self._write_lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._width = max([len(c.name) for c in children] + [len("runall")])

    def say(self, name: str, line: str) -> None:
        with self._write_lock:
            self.out.write(f"{name.ljust(self._width)} | {line.rstrip()}\n")
            self.out.flush()

    def _relay(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None  # started, stdout=PIPE
        for raw in iter(child.process.stdout.readline, b""):
            self.say(child.name, raw.decode("utf-8", "replace"))

    def _request_stop(self, signum, _frame) -> None:
        self.stop_requested.set()

    def run(self) -> int:
        """Run until a signal or a child's exit; return the exit code for this process."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request_stop)
        code = 0
        for child in self.children:
            if not self._start(child):
                code = 1
                break
        if code == 0:
            code = self._watch()
        self._stop_all()
        return code

    def _start(self, child: Child) -> bool:
        try:
            child.process = subprocess.Popen(
                child.argv,
                cwd=BASE_DIR,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_own_session_dying_with_parent,
            )
        except OSError as exc:
            self.say("runall", f"cannot start {child.name}: {exc}")
            return False
        child.started_at, child.restart_at = time.monotonic(), None
        self.say("runall", f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv)}")
        reader = threading.Thread(target=self._relay, args=(child,), name=f"relay-{child.name}", daemon=True)
        reader.start()
        self._readers.append(reader)
        return True

    def _watch(self) -> int:
        while not self.stop_requested.wait(0.2):
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at and not self._start(child):
                        return 1
                    continue
                assert child.process is not None  # all started before the watch
                returncode = child.process.poll()
                if returncode is None:
                    continue
                if not self.restart:
                    self.say("runall", f"{child.name} exited with code {returncode}; stopping the rest")
                    return returncode if returncode > 0 else 1
                _signal_group_quietly(child.process.pid, signal.SIGKILL)  # what it left in its group
                delay, child.failures = restart_delay(child.failures, now - child.started_at)
                child.restart_at = now + delay
                self.say("runall", f"{child.name} exited with code {returncode}; starting it again in {delay:.0f}s")
        self.say("runall", "stop requested; stopping all processes")
        return 0

    def _stop_all(self) -> None:
        running = [(c, c.process) for c in self.children if c.process is not None and c.process.poll() is None]
        for _, process in running:
            # The group leader gets SIGTERM and shuts its own workers down gracefully.
            _signal_quietly(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child, process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("runall", f"{child.name} did not stop in {self.grace_seconds:.0f}s; killing it")
        for child in self.children:
            if child.process is not None:
                # Anything left in the child's own group (an orphaned worker) goes too.
                _signal_group_quietly(child.process.pid, signal.SIGKILL)
                child.process.wait()
        for reader in self._readers:
            reader.join(timeout=2)
        for child in self.children:
            if child.process is not None:
                self.say("runall", f"{child.name} stopped (code {child.process.returncode})")


def _signal_quietly(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _signal_group_quietly(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def service_children() -> list[Child]:
    """The processes of the service, as configured by settings and the environment."""
    from django.conf import settings
    from django.core.management import get_commands

    python = sys.executable
    children = [
        Child("http", [python, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "balance_project.wsgi_static:application"]),
    ]
    if settings.ADMIN_BIND:
        # The admin on its own port (balance_project/urls_admin.py), apart from the public API's.
        admin_argv = [python, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", settings.ADMIN_BIND]
        children.append(Child("admin", [*admin_argv, "-n", "balance-admin", "balance_project.wsgi_admin:application"]))
    if "grpcserver" in get_commands():
        children.append(Child("grpc", [python, "manage.py", "grpcserver"]))
    children.append(
        Child(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "balance_project",
                "worker",
                "-B",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pool",
                "threads",
                "--concurrency",
                os.environ.get("CELERY_CONCURRENCY", "4"),
                "--loglevel",
                os.environ.get("LOG_LEVEL", "INFO"),
            ],
        )
    )
    return children


def dev_api_key_ensure() -> str | None:
    """The development API key (every scope) for the embedded default, made on the first run.

    Returns None when ``DATABASE_URL`` is set: keys for a real database are made on purpose, by
    ``accounts.keys.api_key_create``, never as a side effect of starting the service.
    """
    from django.conf import settings

    from accounts.keys import SCOPES, api_key_authenticate, api_key_create
    from balance_project.errors import ApplicationError

    if settings.DATABASE_URL:
        return None
    path = Path(settings.VAR_DIR) / "dev-api-key"
    if path.exists():
        stored = path.read_text().strip()
        try:
            api_key_authenticate(stored)
            return stored
        except ApplicationError:
            pass  # the database was reset since: make a new key
    raw, _record = api_key_create(client=DEV_KEY_CLIENT, scopes=sorted(SCOPES))
    path.write_text(raw + "\n")
    path.chmod(0o600)
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-dev-key", action="store_true", help="do not create or print the development API key")
    parser.add_argument(
        "--no-restart", action="store_true", help="stop them all when one dies, instead of starting it again"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")
    import django
    from django.db import connections

    django.setup()
    supervisor = Supervisor(service_children(), restart=not args.no_restart)
    if not args.no_dev_key:
        key = dev_api_key_ensure()
        if key:
            from django.conf import settings

            supervisor.say("runall", f"development API key (every scope): {key}")
            supervisor.say(
                "runall", f"  kept in {Path(settings.VAR_DIR) / 'dev-api-key'}; send it as  Authorization: Bearer <key>"
            )
    connections.close_all()
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
