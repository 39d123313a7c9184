"""The CLI's exit codes where a flag or an answer is not what it seems, and the local runtime's reading of
its data directory's journal.

CLI (``python -m dora_insights_cli`` against a fake service that answers what a test sets):

- ``--no-fail`` belongs to the sending commands only: ``gate`` and ``summary`` refuse it (exit 2), as a
  flag or as another flag's value, and it never turns a failing gate green; a sending command still
  takes it when argparse refuses the rest (cli/README.md);
- a summary figure that is not a finite number (``Infinity``, ``NaN``, ``1e999``, an integer beyond any
  float) is not the service's answer: exit 5, never a traceback;
- an answer shorter than its ``Content-Length`` is a network error, retried, exit 6, for every command;
- ``--days`` counts back from ``--to`` when given; ``--days`` with ``--from`` is a usage error.

Local runtime (``dora_local.persistence``, and ``python -m dora_local --data``): only the journal's last
line may be torn (dropped); a damaged line with lines after it, or an item that is not an item, stops the
start with ``cannot use the data directory: <file>: line N`` and leaves the file as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dora_insights_cli.main import main
from tests.support.server import ROOT, free_port, runtime_environment

CLI_PATH = str(ROOT / "cli" / "src")
KEY = "gate-journal-key"


class Fake:
    """What the fake service answers (reset before each test)."""

    status = 200
    raw: bytes = b"{}"
    short = 0  # announce this many more bytes than are sent: an answer cut short
    queries: list[dict[str, list[str]]] = []
    requests = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _answer(self) -> None:
        Fake.requests += 1
        Fake.queries.append(parse_qs(urlsplit(self.path).query))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            self.send_response(Fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(Fake.raw) + Fake.short))
            self.end_headers()
            self.wfile.write(Fake.raw)
        except OSError:
            pass

    do_GET = _answer  # noqa: N815
    do_POST = _answer  # noqa: N815


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SUMMARY: dict[str, Any] = {
    "from": "2024-03-01T00:00:00Z",
    "to": "2024-04-01T00:00:00Z",
    "deployments": 3,
    "benchmark": "2023",
    "as_of": "2024-04-01T00:00:00.000Z",
    "pending": 0,
    "deployment_frequency": {"per_day": 0.0967, "successful_deployments": 3, "deployment_days": 3, "tier": "Medium"},
    "lead_time": {"median_seconds": 7500, "p95_seconds": 9000, "count": 3, "tier": "High"},
    "change_failure_rate": {"rate": 0.0, "change_failures": 0, "deployments": 3, "tier": "Elite"},
    "recovery_time": {"median_seconds": None, "count": 0, "tier": None},
    "time_to_restore": {"median_seconds": None, "count": 0, "tier": None},
    "rework_rate": {"rate": 0.0, "rework_deployments": 0, "deployments": 3},
}


@pytest.fixture(autouse=True)
def reset_fake() -> None:
    Fake.status, Fake.raw, Fake.short, Fake.queries, Fake.requests = 200, json.dumps(SUMMARY).encode(), 0, [], 0


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    variables = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": CLI_PATH, "HOME": str(ROOT / "tests")}
    variables.update(env or {})
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "dora_insights_cli", *args],
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/tmp",
        check=False,
    )


def conn(url: str) -> dict[str, str]:
    return {"DORA_INSIGHTS_URL": url, "DORA_INSIGHTS_SPACE": "Spaces-1", "DORA_INSIGHTS_API_KEY": KEY}


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


GATE_BELOW = ("gate", "--metric", "lead_time", "--min-tier", "Elite")  # lead_time is High: the gate fails


# --- --no-fail: the sending commands' flag only ------------------------------------------------------
def test_a_failing_gate_fails_without_no_fail(fake: str) -> None:
    result = cli(*GATE_BELOW, env=conn(fake))
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr


def test_a_failing_gate_says_which_metrics_are_below_and_which_have_no_data(fake: str) -> None:
    """The last line of a failed gate counts the metrics below the tier apart from those without data (a
    metric with no data is not "below" anything)."""
    result = cli("gate", "--metric", "lead_time", "--metric", "recovery_time", "--min-tier", "Elite", env=conn(fake))
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gate failed: 1 metric(s) below Elite, 1 without data in space Spaces-1" in result.stderr, result.stderr
    alone = cli("gate", "--metric", "recovery_time", "--min-tier", "Low", env=conn(fake))
    assert "gate failed: 1 without data in space Spaces-1" in alone.stderr, alone.stderr


@pytest.mark.parametrize("command", [GATE_BELOW, ("summary",)])
def test_no_fail_is_refused_by_gate_and_summary(fake: str, command: tuple[str, ...]) -> None:
    """cli/README.md: only the sending commands take ``--no-fail``; argparse refuses it (exit 2), and that
    exit is not turned into a pass."""
    result = cli(*command, "--no-fail", env=conn(fake))
    no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ignored (--no-fail)" not in result.stderr
    assert Fake.requests == 0


def test_no_fail_as_another_flags_value_does_not_pass_a_failing_gate(fake: str) -> None:
    result = cli(*GATE_BELOW, "--benchmark", "--no-fail", env=conn(fake))
    no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ignored (--no-fail)" not in result.stderr


@pytest.mark.parametrize(
    ("words", "code"),
    [
        (["deployment", "--env", "prod", "--retries", "-1", "--no-fail"], 0),  # the command's flag: kept
        (["failure", "resolve", "--no-fail"], 0),  # --id missing: refused, and --no-fail covers it
        (["--no-fail", "deployment", "--retries", "-1"], 2),  # before the command: not the command's flag
        (["deployment", "--retries", "-1", "--", "--no-fail"], 2),  # after --: a value, not a flag
        (["summary", "--days", "x", "--no-fail"], 2),
    ],
)
def test_no_fail_covers_a_refused_flag_only_as_a_flag_of_a_sending_command(
    words: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        got = main(words)
    except SystemExit as exit_:
        got = int(exit_.code or 0)
    assert got == code, capsys.readouterr().err


# --- figures that are not finite numbers ------------------------------------------------------------
@pytest.mark.parametrize("figure", ["Infinity", "NaN", "1e999", "-Infinity", "1" + "0" * 400])
@pytest.mark.parametrize("command", [("gate", "--metric", "lead_time", "--min-tier", "Low"), ("summary",)])
def test_a_figure_that_is_not_a_finite_number_is_exit_5(fake: str, figure: str, command: tuple[str, ...]) -> None:
    """Python's json reads ``NaN``, ``Infinity`` and ``1e999`` (the service never writes them): not the
    service's answer, exit 5, never a traceback (nor exit 1, which means "gate failed")."""
    text = json.dumps({**SUMMARY, "lead_time": {"median_seconds": 1, "p95_seconds": 2, "count": 3, "tier": "High"}})
    Fake.raw = text.replace('"median_seconds": 1', f'"median_seconds": {figure}').encode()
    result = cli(*command, env=conn(fake))
    no_traceback(result)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "lead_time.median_seconds" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_every_format_refuses_a_non_finite_figure(fake: str, fmt: str) -> None:
    Fake.raw = json.dumps({**SUMMARY, "deployment_frequency": {"per_day": float("nan"), "tier": "Low"}}).encode()
    result = cli("summary", "--format", fmt, env=conn(fake))
    no_traceback(result)
    assert result.returncode == 5, result.stdout + result.stderr


# --- answers cut short ------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [0, 40])
def test_an_answer_cut_short_is_retried_then_exit_6(fake: str, cut: int) -> None:
    """cli/README.md (Retries): an answer cut short (fewer bytes than its Content-Length before the
    connection closed) is a network error, retried, exit 6. cut=0: the JSON is whole but 50 announced bytes
    never came; cut=40: the body stops mid-JSON."""
    whole = json.dumps(SUMMARY).encode()
    Fake.raw, Fake.short = (whole[:-cut], cut) if cut else (whole, 50)
    result = cli(
        "gate", "--metric", "lead_time", "--min-tier", "Low", "--retries", "1", "--retry-delay", "0", env=conn(fake)
    )
    no_traceback(result)
    assert result.returncode == 6, (result.returncode, result.stdout, result.stderr)
    assert Fake.requests == 2
    assert "cut short" in result.stderr and "retry 1 of 1" in result.stderr


def test_a_create_answered_cut_short_is_exit_6(fake: str) -> None:
    """A deployment's answer cut short: nothing is known to be stored; retried (the id makes it safe)."""
    Fake.status, Fake.short = 201, 20
    Fake.raw = json.dumps({"id": "cut-1", "project": "shop"}).encode()
    result = cli(
        "deployment", "--service", "shop", "--env", "prod", "--skip-git", "--no-ci", "--id", "cut-1",
        "--retries", "0", env=conn(fake),
    )  # fmt: skip
    no_traceback(result)
    assert result.returncode == 6, (result.returncode, result.stdout, result.stderr)


def test_an_answer_of_its_whole_length_is_read(fake: str) -> None:
    result = cli("summary", "--format", "json", env=conn(fake))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == SUMMARY


# --- --days ----------------------------------------------------------------------------------------
def test_days_with_to_counts_back_from_to(fake: str) -> None:
    result = cli("summary", "--to", "2024-04-01T00:00:00Z", "--days", "31", env=conn(fake))
    assert result.returncode == 0, result.stderr
    assert Fake.queries[-1]["from"] == ["2024-03-01T00:00:00.000Z"]
    assert Fake.queries[-1]["to"] == ["2024-04-01T00:00:00.000Z"]


def test_days_without_to_counts_back_from_now(fake: str) -> None:
    before = datetime.now(UTC)
    result = cli("summary", "--days", "7", env=conn(fake))
    assert result.returncode == 0, result.stderr
    start = datetime.fromisoformat(Fake.queries[-1]["from"][0].replace("Z", "+00:00"))
    assert before - timedelta(days=7, seconds=5) <= start <= datetime.now(UTC) - timedelta(days=7)
    assert "to" not in Fake.queries[-1]


@pytest.mark.parametrize(
    "flags",
    [
        ["--from", "2024-03-01T00:00:00Z", "--days", "7"],  # two starts
        ["--to", "0001-01-05T00:00:00Z", "--days", "31"],  # a start before the year 1
    ],
)
def test_days_that_cannot_start_the_range_is_usage_exit_2(fake: str, flags: list[str]) -> None:
    result = cli("gate", "--metric", "lead_time", "--min-tier", "Low", *flags, env=conn(fake))
    no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert Fake.requests == 0


# --- the local runtime's journal -------------------------------------------------------------------
def _unit(pk: str) -> str:
    item = {"pk": {"S": pk}, "sk": {"S": "x"}, "v": {"S": pk}}
    return json.dumps({"w": [{"t": "T", "k": {"pk": {"S": pk}, "sk": {"S": "x"}}, "i": item}]}) + "\n"


def _open(path: Path) -> Any:
    from dora_local.persistence import DataDirectory

    return DataDirectory.open(path)


@pytest.mark.parametrize("damaged", ["{garbage\n", "[]\n", '{"w": 1}\n', _unit("z")[:25] + "\n"])
def test_a_damaged_line_with_lines_after_it_is_refused_and_left_alone(tmp_path: Path, damaged: str) -> None:
    """No crash leaves a damaged line before whole ones (a line is written whole or cut back off): the start
    stops naming the line, and the later writes are neither dropped nor cut off the file."""
    from dora_local.persistence import DataDirectoryError

    data = tmp_path / "d"
    data.mkdir()
    journal = data / "dynamodb.0.log"
    journal.write_text(_unit("a") + damaged + _unit("b") + _unit("c"))
    before = journal.read_bytes()
    with pytest.raises(DataDirectoryError, match=r"dynamodb\.0\.log: line 2 "):
        _open(data).close()
    assert journal.read_bytes() == before


@pytest.mark.parametrize("torn", [_unit("c")[:20], "{garbage\n"])
def test_a_damaged_last_line_is_dropped_and_cut_off(tmp_path: Path, torn: str) -> None:
    data = tmp_path / "d"
    data.mkdir()
    journal = data / "dynamodb.0.log"
    journal.write_text(_unit("a") + _unit("b") + torn)
    opened = _open(data)
    try:
        assert opened.replayed_units == 2
        assert len(opened.tables["T"].items) == 2
    finally:
        opened.close()
    assert journal.read_text() == _unit("a") + _unit("b")


def _start_on(data: Path) -> subprocess.CompletedProcess[str] | None:
    """``python -m dora_local --data DATA`` run to its end, or None when it is still running after 60 s
    (it started serving)."""
    env = runtime_environment(PORT=str(free_port()), DORA_LOCAL_QUIET="1", SCHEDULE_SECONDS="0")
    try:
        return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "dora_local", "--data", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


KEY_XY = {"PK": {"S": "x"}, "SK": {"S": "y"}}


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ({"PK": {"S": "x"}}, KEY_XY),  # without the sort key its record names
        ({"PK": {"S": "x"}}, {"PK": {"S": "x"}}),  # without the table's sort key
        ("oops", KEY_XY),
        ({**KEY_XY, "n": {"N": "not-a-number"}}, KEY_XY),
        ({**KEY_XY, "n": {"Q": "unknown type"}}, KEY_XY),
        ({**KEY_XY, "m": {"M": {"deep": {"S": 5}}}}, KEY_XY),
    ],
    ids=["record-key-missing", "table-key-missing", "not-a-dict", "bad-number", "unknown-type", "nested-bad-value"],
)
def test_a_journal_item_that_is_not_an_item_stops_the_start_naming_its_line(
    tmp_path: Path, item: Any, key: dict[str, Any]
) -> None:
    """README: a data directory that is not this format stops the start with ``cannot use the data
    directory: <file>: line N``: never a traceback, never a start that serves something else."""
    data = tmp_path / "d"
    data.mkdir()
    unit = {"w": [{"t": "dora-insights-local", "k": key, "i": item}]}
    journal = data / "dynamodb.0.log"
    journal.write_text(_unit("a").replace('"T"', '"other-table"') + json.dumps(unit) + "\n")
    before = journal.read_bytes()
    result = _start_on(data)
    assert result is not None, "started serving a journal whose item is not an item"
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"cannot use the data directory: {journal}: line 2 " in result.stderr, result.stderr[-3000:]
    assert journal.read_bytes() == before
