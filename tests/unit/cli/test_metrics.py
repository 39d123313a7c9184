"""`summary` rendering and `gate` verdicts, over a summary body as the service answers it."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from dora_insights_cli.errors import USAGE, CliError
from dora_insights_cli.metrics import csv_text, metric_key, table, tier_name, verdicts

SUMMARY: dict[str, Any] = {
    "from": "2024-03-01T00:00:00Z",
    "to": "2024-04-01T00:00:00Z",
    "benchmark": "2023",
    "as_of": "2024-04-01T00:00:00.000Z",
    "pending": 0,
    "deployments": 3,
    "deployment_frequency": {"successful_deployments": 3, "deployment_days": 3, "per_day": 0.09677, "tier": "Medium"},
    "lead_time": {"count": 3, "median_seconds": 7500.0, "p95_seconds": 9000.0, "tier": "High"},
    "change_failure_rate": {"change_failures": 0, "deployments": 3, "rate": 0.0, "tier": "Elite"},
    "recovery_time": {"count": 0, "median_seconds": None, "tier": None},
    "time_to_restore": {"count": 0, "median_seconds": None, "tier": None},
    "rework_rate": {"rework_deployments": 0, "deployments": 3, "rate": 0.0},
}


def test_table_has_a_row_per_metric_with_its_tier() -> None:
    text = table(SUMMARY, "Spaces-1")

    assert "DORA summary of Spaces-1" in text
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "High" in rows["Lead time for changes"] and "2h 5m median" in rows["Lead time for changes"]
    assert "no data" in rows["Time to restore (incidents)"]
    assert rows["Change failure rate"].rstrip().endswith("Elite")


def test_csv_has_a_header_and_a_row_per_metric() -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text(SUMMARY))))

    assert [r["metric"] for r in rows] == [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "time_to_restore",
        "rework_rate",
    ]
    assert rows[1] == {"metric": "lead_time", "value": "7500.0", "unit": "seconds", "count": "3", "tier": "High"}
    assert rows[3]["tier"] == "" and rows[3]["value"] == ""


@pytest.mark.parametrize(
    ("metric", "minimum", "passed"),
    [
        ("lead_time", "High", True),
        ("lead_time", "Elite", False),
        ("deployment_frequency", "Medium", True),
        ("deployment_frequency", "High", False),
        ("change_failure_rate", "Elite", True),
        ("change_failure_rate", "Low", True),
    ],
)
def test_a_tier_passes_at_or_above_the_minimum(metric: str, minimum: str, passed: bool) -> None:
    ((verdict, line),) = verdicts(SUMMARY, [metric], minimum, no_data_passes=False)

    assert verdict is passed
    assert line.startswith("PASS" if passed else "FAIL")


@pytest.mark.parametrize("no_data_passes", [False, True])
def test_no_data_fails_unless_told_to_pass(no_data_passes: bool) -> None:
    ((verdict, line),) = verdicts(SUMMARY, ["time_to_restore"], "Low", no_data_passes=no_data_passes)

    assert verdict is no_data_passes
    assert "no data" in line


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("lead_time", "lead_time"),
        ("lead-time-for-changes", "lead_time"),
        ("time_to_restore_service", "time_to_restore"),
    ],
)
def test_metric_names_and_aliases(name: str, key: str) -> None:
    assert metric_key(name) == key


def test_rework_rate_has_no_tier_to_gate_on() -> None:
    with pytest.raises(CliError) as raised:
        metric_key("rework_rate")

    assert raised.value.code == USAGE


def test_tier_names_are_case_insensitive() -> None:
    assert tier_name("elite") == "Elite"
    with pytest.raises(CliError, match="Elite, High, Medium, Low"):
        tier_name("Great")
