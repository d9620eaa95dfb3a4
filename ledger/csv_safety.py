"""CSV that a spreadsheet opens as data, never as formulas (CSV / formula injection, OWASP).

A spreadsheet reads a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and also one
that begins with a tab or a carriage return followed by one of those. Text in an export can come
from a caller (owner refs, reasons, metadata, actors), so every CSV writer in the service goes
through this module: a text cell beginning with one of those characters is written with a leading
apostrophe, which spreadsheets show as text and hide.

Rule (decided once, here):
- Only ``str`` cells are escaped. Amounts and ids are ``int`` and are written as they are, so
  ``-250`` stays a number in every spreadsheet.
- A ``str`` that is a canonical integer (``0``, ``-250``; no leading zeros, no ``+``, no ``-0``) is left as it
  is too: it is read as the number it spells and runs nothing.
- Every other ``str`` that begins with ``=``, ``+``, ``-``, ``@``, tab or CR gets the apostrophe.
  A reader who needs the exact bytes strips one leading ``'`` from such a cell.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE_PREFIX = "'"
_CANONICAL_INTEGER = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")


def csv_cell_safe(value: Any) -> Any:
    """``value`` as it may go into a CSV cell: a text cell that a spreadsheet would run as a formula
    gets a leading apostrophe; anything else (numbers, None, safe text) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _CANONICAL_INTEGER.match(value):
        return ESCAPE_PREFIX + value
    return value


def csv_row_safe(row: Iterable[Any]) -> list[Any]:
    """Every cell of ``row`` through ``csv_cell_safe``."""
    return [csv_cell_safe(value) for value in row]


class SafeCsvWriter:
    """``csv.writer`` whose rows are escaped cell by cell; the one writer for every CSV export."""

    def __init__(self, file: Any, **options: Any) -> None:
        options.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(file, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(csv_row_safe(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_lines(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text one line at a time (header first), every cell escaped: for a streaming response or a
    file, in constant memory."""
    buffer = _LineBuffer()
    writer = SafeCsvWriter(buffer)
    writer.writerow(header)
    yield buffer.take()
    for row in rows:
        writer.writerow(row)
        yield buffer.take()


class _LineBuffer:
    """A write-only file for csv.writer that hands back what was written since the last take()."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text, self._parts = "".join(self._parts), []
        return text
