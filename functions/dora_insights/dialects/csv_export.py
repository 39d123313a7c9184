"""CSV documents the service answers (``format=csv``): one helper, so every export is safe to open.

Spreadsheet software runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and
drops a leading tab or carriage return before doing so (OWASP "CSV Injection"). A text cell starting
with one of those characters gets a single quote in front (``'=HYPERLINK(...)``), which spreadsheets
show as text and hide; the csv module then quotes the cell as needed (commas, quotes, newlines).
Rows end with CRLF (RFC 4180, what spreadsheets write): the csv module quotes a cell holding any
character of the line terminator, so with CRLF a bare carriage return inside a cell is quoted too
(with ``\n`` alone it was written unquoted and split the row for CR-aware readers).

Numbers stay numbers: a cell whose value is a number (``int``, ``float``, ``Decimal``) (a numeric field of the answer,
e.g. ``last_value`` ``-3.5``) is written as is, since the service formats it and it cannot hold a
formula. A *text* value that looks like a number (a name ``-3.5``) is escaped like any other text:
the decision is by the value's type, never by its look.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """Text as a cell spreadsheets show verbatim: a quote in front when it would start a formula."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def cell(value: Any) -> str:
    """One cell: empty for null, numbers as they are, JSON for objects and lists, other values as safe text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return safe_text(json.dumps(value, separators=(",", ":")))
    return safe_text(str(value))


def document(rows: Iterable[Mapping[str, Any]]) -> str:
    """A header row (every key in first-seen order) and one row per mapping, every cell made safe."""
    materialised = list(rows)
    columns: list[str] = []
    for row in materialised:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_text(c) for c in columns])
    for row in materialised:
        writer.writerow([cell(row.get(c)) for c in columns])
    return buffer.getvalue()
