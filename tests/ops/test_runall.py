"""The process supervisor behind `make run`: prefixes output, restarts a child that dies, stops all on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from balance_project.runall import dev_api_key_ensure

BASE_DIR = Path(__file__).resolve().parents[2]

# A child that says it is up, and on SIGTERM says so and exits 0 (as gunicorn and celery do).
POLITE_CHILD = textwrap.dedent("""
    import signal, sys, time
    def bye(*_):
        print("got SIGTERM", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
    print("up", flush=True)
    time.sleep(120)
""")


def start_supervisor(children: dict[str, str], *, restart: bool = True) -> subprocess.Popen:
    """Run Supervisor in its own process over ``python -c <code>`` children."""
    code = textwrap.dedent(f"""
        import sys
        from balance_project.runall import Child, Supervisor
        children = [Child(name, [sys.executable, "-c", src]) for name, src in {children!r}.items()]
        sys.exit(Supervisor(children, grace_seconds=10, restart={restart!r}).run())
    """)
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def read_until(process: subprocess.Popen, seen: list[str], *needles: str) -> None:
    """Read lines into ``seen`` until every needle has been printed (the process's end fails)."""
    waiting = set(needles)
    for line in process.stdout:
        seen.append(line)
        waiting = {n for n in waiting if n not in line}
        if not waiting:
            return
    raise AssertionError(f"{sorted(waiting)} never printed:\n{''.join(seen)}")


def test_sigterm_stops_every_child_and_exits_zero():
    supervisor = start_supervisor({"alpha": POLITE_CHILD, "beta": POLITE_CHILD})
    seen: list[str] = []
    try:
        read_until(supervisor, seen, "alpha  | up", "beta   | up")
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    output = "".join(seen) + out
    assert supervisor.returncode == 0, output
    assert "alpha  | got SIGTERM" in output
    assert "beta   | got SIGTERM" in output
    assert "alpha stopped (code 0)" in output and "beta stopped (code 0)" in output


def test_a_child_that_dies_is_started_again_while_the_others_go_on():
    dying = "import time; print('starting', flush=True); time.sleep(0.5); raise SystemExit(3)"
    supervisor = start_supervisor({"steady": POLITE_CHILD, "flaky": dying})
    seen: list[str] = []
    try:
        read_until(supervisor, seen, "steady | up", "flaky exited with code 3; starting it again in 0s")
        read_until(supervisor, seen, "flaky exited with code 3; starting it again in 1s")  # failing again: later
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    output = "".join(seen) + out
    assert supervisor.returncode == 0, output
    assert output.count("flaky  | starting") >= 2, output
    assert output.count("steady | up") == 1  # never restarted
    assert "steady | got SIGTERM" in output


def test_without_restarts_one_child_dying_stops_the_rest_and_exits_non_zero():
    dying = "import time; print('starting', flush=True); time.sleep(1); raise SystemExit(3)"
    supervisor = start_supervisor({"steady": POLITE_CHILD, "flaky": dying}, restart=False)
    try:
        out, _ = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    assert supervisor.returncode == 3, out
    assert "flaky exited with code 3; stopping the rest" in out
    assert "steady | got SIGTERM" in out


def test_child_ignoring_sigterm_is_killed_after_the_grace_period():
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(120)"
    )
    code = textwrap.dedent(f"""
        import sys
        from balance_project.runall import Child, Supervisor
        sys.exit(Supervisor([Child("stubborn", [sys.executable, "-c", {stubborn!r}])], grace_seconds=1).run())
    """)
    supervisor = subprocess.Popen(
        [sys.executable, "-c", code], cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[str] = []
    try:
        read_until(supervisor, seen, "stubborn | up")
        supervisor.send_signal(signal.SIGINT)
        out, _ = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    assert supervisor.returncode == 0
    assert "did not stop in 1s; killing it" in out
    assert "stubborn stopped (code -9)" in out


@pytest.mark.django_db
def test_dev_api_key_is_made_once_and_printed_again(settings, tmp_path):
    from accounts.keys import SCOPES, api_key_authenticate

    settings.DATABASE_URL = ""
    settings.VAR_DIR = tmp_path
    first = dev_api_key_ensure()
    assert first and (tmp_path / "dev-api-key").read_text().strip() == first
    assert oct((tmp_path / "dev-api-key").stat().st_mode & 0o777) == "0o600"
    assert set(api_key_authenticate(first).scopes) == set(SCOPES)
    assert dev_api_key_ensure() == first


@pytest.mark.django_db
def test_stale_dev_key_file_is_replaced(settings, tmp_path):
    settings.DATABASE_URL = ""
    settings.VAR_DIR = tmp_path
    (tmp_path / "dev-api-key").write_text("bal_deadbeef_from-a-deleted-database\n")
    fresh = dev_api_key_ensure()
    assert fresh != "bal_deadbeef_from-a-deleted-database"
    assert (tmp_path / "dev-api-key").read_text().strip() == fresh


@pytest.mark.django_db
def test_no_dev_key_against_a_configured_database(settings, tmp_path):
    from accounts.models import ApiKey

    settings.DATABASE_URL = "postgres://postgres@127.0.0.1:5432/somewhere"
    settings.VAR_DIR = tmp_path
    before = ApiKey.objects.count()
    assert dev_api_key_ensure() is None
    assert not (tmp_path / "dev-api-key").exists()
    assert ApiKey.objects.count() == before
