"""Where seals go outside the database: an append-only sink named by LEDGER_SEAL_SINK.

``file:///path/seals.jsonl`` (the default, in the service's var directory): one JSON line per seal,
appended with O_APPEND and fsync'd before the sealer goes on. In production point it at a file on
another volume (or host) than PostgreSQL's, which the database's roles cannot write: a database
restored from an old backup, truncated, or with its seals deleted or replayed, then no longer
reaches the newest seal here, and the verifier says so.

Every line carries the seal's own MAC, so a line someone appends without LEDGER_HMAC_KEY is named
too. Not built: an S3 object-lock or syslog sink (docs/architecture.md, "Tamper evidence").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class FileSealSink:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return f"file://{self.path}"

    def append(self, seal: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(seal, sort_keys=True, separators=(",", ":")) + "\n").encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def seals(self) -> Iterator[dict[str, Any]]:
        """Every seal appended, oldest first (a line that is not a seal is yielded as ``{"bad": line}``)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                text = raw.decode(errors="replace").strip()
                if not text:
                    continue
                try:
                    seal = json.loads(text)
                except ValueError:
                    seal = None
                yield seal if isinstance(seal, dict) else {"bad": text[:200], "line": number}

    def last(self) -> dict[str, Any] | None:
        """The newest seal, read from the end of the file (cost independent of its length)."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            end, chunk, tail = file.tell(), 4096, b""
            while end > 0:
                start = max(0, end - chunk)
                file.seek(start)
                tail = file.read(end - start) + tail
                end = start
                lines = [line for line in tail.split(b"\n") if line.strip()]
                if len(lines) > 1 or (lines and start == 0):
                    try:
                        seal = json.loads(lines[-1])
                    except ValueError:
                        return {"bad": lines[-1][:200].decode(errors="replace")}
                    return seal if isinstance(seal, dict) else {"bad": str(seal)[:200]}
        return None


def seal_sink() -> FileSealSink:
    url = settings.LEDGER_SEAL_SINK
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.path:
        return FileSealSink(Path(unquote(parsed.path)))
    raise ImproperlyConfigured(f"LEDGER_SEAL_SINK: {url!r} is not a file:// URL (the only sink built)")
