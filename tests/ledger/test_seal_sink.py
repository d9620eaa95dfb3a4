"""The external sink of the seals: what the sealer and the verifier do with a line someone wrote
there without the key, a seal the sink has not got yet, and a sink that is not a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.services import account_deposit
from ledger.integrity import ledger_verify
from ledger.seal_sink import seal_sink
from ledger.sealing import SealRefused, journal_seal

pytestmark = pytest.mark.django_db


def sink_path(settings) -> Path:
    return Path(settings.LEDGER_SEAL_SINK.removeprefix("file://"))


def test_a_line_appended_without_the_key_stops_the_sealer_and_is_named(books, settings):
    journal_seal()
    path = sink_path(settings)
    forged = json.loads(path.read_text().splitlines()[-1]) | {"id": 2, "head": "0" * 64}
    with path.open("a") as sink:
        sink.write("not a seal\n")
        sink.write(json.dumps(forged) + "\n")
    with pytest.raises(SealRefused, match="does not verify"):
        journal_seal()
    problems = ledger_verify().problems
    assert sum(p["code"] == "external_seal_invalid" for p in problems) == 2  # the junk line and the forgery


def test_an_unreadable_newest_line_stops_the_sealer(books, settings):
    journal_seal()
    with sink_path(settings).open("a") as sink:
        sink.write('{"id": 2, "truncated\n')
    with pytest.raises(SealRefused, match="does not verify"):
        journal_seal()


def test_a_seal_the_sink_missed_is_appended_by_the_next_round(books, settings, key):
    journal_seal()
    path = sink_path(settings)
    path.unlink()  # as if the append after the commit had failed (the sink starts over empty)
    account_deposit(client="t", idempotency_key=key(), account_id=books["a"], amount=3)
    assert journal_seal() == {"seal": 2, "records": 1, "anchored": 2}
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [1, 2]
    assert seal_sink().last()["id"] == 2
    assert ledger_verify().ok


def test_a_sink_that_is_not_a_file_is_refused(settings):
    settings.LEDGER_SEAL_SINK = "s3://bucket/seals"
    with pytest.raises(ImproperlyConfigured, match="file://"):
        seal_sink()
