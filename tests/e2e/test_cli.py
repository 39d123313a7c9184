"""The CI command (cli/) as a CI job runs it: ``python -m dora_insights_cli`` in a process of its own, with a
CI's variables and nothing else in its environment, against the local runtime (the session's ``local``)
or, where a test needs answers the service never gives on demand (503s, 429s), a tiny stdlib server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from dora_local.server import LocalRuntime
from tests.support.server import free_port
from tests.unit.cli.action_step import run_send_step
from tests.unit.cli.ci_variables import CIS, SHA, job

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SPACE = "Spaces-1"
TIMEOUT = 120
COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@example.com",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_COMMITTER_EMAIL": "ci@example.com",
}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _run_id() -> str:
    return str(uuid.uuid4().int % 10**12)


@dataclass
class Cli:
    """Runs the command in a clean environment (only what a test gives it), in a directory that is no checkout."""

    url: str
    key: str
    home: Path

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, connect: bool = True
    ) -> subprocess.CompletedProcess[str]:
        variables = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT / "cli" / "src"),
        }
        if connect:
            variables |= {
                "DORA_INSIGHTS_URL": self.url,
                "DORA_INSIGHTS_SPACE": SPACE,
                "DORA_INSIGHTS_API_KEY": self.key,
            }
        variables |= env or {}
        return subprocess.run(  # noqa: S603 - this interpreter running the command under test
            [sys.executable, "-m", "dora_insights_cli", *args],
            env=variables,
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


@pytest.fixture
def cli(local: LocalRuntime, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(local.url, local.api_key, home)


@pytest.fixture(scope="module")
def module_cli(local: LocalRuntime, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(local.url, local.api_key, tmp_path_factory.mktemp("home"))


def _deployments(http: requests.Session, local: LocalRuntime, project: str) -> list[dict[str, Any]]:
    response = http.get(f"{local.url}/api/{SPACE}/deployments", params={"project": project}, timeout=30)
    if response.status_code == 404:  # no deployment of it yet: the project is unknown
        return []
    response.raise_for_status()
    return list(response.json()["items"])


# ------------------------------------------------------------------------------------- deployment, per CI
@pytest.mark.parametrize("ci", CIS)
def test_deployment_takes_sha_repository_branch_and_run_url_from_each_ci(
    ci: str, cli: Cli, http: requests.Session, local: LocalRuntime
) -> None:
    given = job(ci, name=_unique(f"shop-{ci}"), run=_run_id())
    flags = [] if given.environment else ["--env", "production"]

    done = cli("deployment", *flags, "--output", "json", env=given.variables)

    assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout)
    stored = http.get(f"{local.url}/api/{SPACE}/deployments/{sent['id']}", timeout=30).json()
    assert stored["commit_sha"] == SHA
    assert stored["repository"] == given.repository_url
    assert f"branch:{given.branch}" in stored["tags"]
    assert stored["source_url"] == given.run_url
    assert stored["project"] == given.project
    assert stored["environment"] == "production"
    assert stored["source_name"] == given.source_name
    assert stored["started_at"] == given.started_at
    assert stored["metadata"]["ci"]["provider"] == ci
    assert sent["id"].startswith(f"{ci}-")
    assert "s3cr3t" not in done.stdout + json.dumps(stored)  # Jenkins' clone URL token never leaves the job


@pytest.mark.parametrize("ci", CIS)
def test_a_job_step_sent_twice_in_one_attempt_is_stored_once(
    ci: str, cli: Cli, http: requests.Session, local: LocalRuntime
) -> None:
    given = job(ci, name=_unique(f"retry-{ci}"), run=_run_id())

    first = cli("deployment", "--env", "production", env=given.variables)
    again = cli("deployment", "--env", "production", env=given.variables)  # later: another finished_at

    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout.startswith("Recorded deployment")
    assert again.stdout.startswith("Already recorded")
    assert len(_deployments(http, local, given.project)) == 1


def test_a_retried_job_is_a_deployment_of_its_own(cli: Cli, http: requests.Session, local: LocalRuntime) -> None:
    name, run = _unique("attempts"), _run_id()

    for attempt in (1, 2):
        done = cli(
            "deployment", "--env", "production", env=job("github", name=name, run=run, attempt=attempt).variables
        )
        assert done.returncode == 0, done.stderr

    stored = _deployments(http, local, name)
    assert sorted(d["source_url"].rsplit("/", 1)[1] for d in stored) == ["1", "2"]


def test_flags_override_the_ci_variables(cli: Cli, http: requests.Session, local: LocalRuntime) -> None:
    given = job("gitlab", name=_unique("flags"), run=_run_id())
    other_sha = "1234567890abcdef1234567890abcdef12345678"

    done = cli(
        "deployment",
        "--service",
        f"{given.project}-api",
        "--env",
        "staging",
        "--git-commit-sha",
        other_sha,
        "--version",
        "2.0.1",
        "--started-at",
        "2024-03-01T11:00:00Z",
        "--finished-at",
        "1709294400",
        "--state",
        "Failed",
        "--custom-tags",
        "team:payments",
        "--output",
        "json",
        env=given.variables,
    )

    assert done.returncode == 0, done.stderr
    stored = json.loads(done.stdout)
    assert (stored["project"], stored["environment"], stored["commit_sha"]) == (
        f"{given.project}-api",
        "staging",
        other_sha,
    )
    assert (stored["version"], stored["state"]) == ("2.0.1", "Failed")
    assert (stored["started_at"], stored["finished_at"]) == ("2024-03-01T11:00:00.000Z", "2024-03-01T12:00:00.000Z")
    assert "team:payments" in stored["tags"]


# ----------------------------------------------------------------------------------- retries, a fake server
@dataclass
class FakeService:
    """A stdlib HTTP server that answers from a script, one answer per request, and records the requests."""

    answers: list[tuple[int, Any, dict[str, str]]]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService(answers=[])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            service.requests.append((self.command, self.path, json.loads(raw) if raw else None))
            status, body, headers = service.answers.pop(0) if service.answers else (500, {"message": "unscripted"}, {})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((503, {"message": "Service Unavailable"}, {}), (503, {"message": "Service Unavailable"}, {})),
        ((429, {"message": "Too Many Requests"}, {"Retry-After": "0"}), (502, {"message": "Bad Gateway"}, {})),
    ],
    ids=["503-503-201", "429-502-201"],
)
def test_a_failing_service_is_retried_with_the_same_request_until_201(
    first: tuple[int, Any, dict[str, str]], second: tuple[int, Any, dict[str, str]], cli: Cli, fake: FakeService
) -> None:
    fake.answers = [first, second, (201, {"id": "github-1-1-x", "project": "shop"}, {})]
    given = job("github", name="shop", run="1")

    done = cli("deployment", "--env", "production", "--url", fake.url, "--retry-delay", "0.05", env=given.variables)

    assert done.returncode == 0, done.stderr
    assert [r[:2] for r in fake.requests] == [("POST", f"/api/{SPACE}/deployments")] * 3
    assert fake.requests[0][2] == fake.requests[1][2] == fake.requests[2][2]  # same id, same body: stored once
    assert done.stderr.count("retry ") == 2
    assert str(first[0]) in done.stderr and str(second[0]) in done.stderr


def test_a_service_that_keeps_failing_exits_6_after_the_retries(cli: Cli, fake: FakeService) -> None:
    fake.answers = [(503, {"message": "down"}, {}) for _ in range(3)]

    done = cli(
        "deployment", "--service", "shop", "--env", "prod", "--url", fake.url, "--retries", "2", "--retry-delay", "0.01"
    )

    assert done.returncode == 6
    assert len(fake.requests) == 3
    assert "503" in done.stderr and "after 3 attempt(s)" in done.stderr


def test_an_unreachable_service_exits_6(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    done = cli(
        "deployment", "--service", "shop", "--env", "prod", "--url", url, "--retries", "1", "--retry-delay", "0.01"
    )

    assert done.returncode == 6
    assert f"could not reach {url}" in done.stderr


def test_no_fail_keeps_a_pipeline_green_when_the_service_is_down(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    done = cli("deployment", "--service", "shop", "--env", "prod", "--url", url, "--retries", "0", "--no-fail")

    assert done.returncode == 0
    assert "could not reach" in done.stderr and "--no-fail" in done.stderr


# ------------------------------------------------------------------------------- dry run, keys and spaces
def test_dry_run_prints_the_request_with_the_key_redacted_and_sends_nothing(
    cli: Cli, http: requests.Session, local: LocalRuntime
) -> None:
    given = job("gitlab", name=_unique("dry"), run=_run_id())

    done = cli("deployment", "--dry-run", env=given.variables)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"POST {local.url}/api/{SPACE}/deployments\n")
    assert f"Authorization: Bearer {local.api_key[:4]}…(redacted)" in done.stdout
    assert local.api_key not in done.stdout + done.stderr
    body = json.loads(done.stdout[done.stdout.index("{") :])
    assert (body["project"], body["commit_sha"], body["source_url"]) == (given.project, SHA, given.run_url)
    assert _deployments(http, local, given.project) == []


def test_a_refused_key_exits_3_naming_its_prefix_only(cli: Cli) -> None:
    wrong = "wrong-key-abcdef123456"

    done = cli("deployment", "--service", "shop", "--env", "prod", env={"DORA_INSIGHTS_API_KEY": wrong})

    assert done.returncode == 3
    assert "401" in done.stderr and "wron…" in done.stderr and "DORA_INSIGHTS_API_KEY" in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_an_unknown_space_exits_4_naming_it(cli: Cli) -> None:
    done = cli("deployment", "--service", "shop", "--env", "prod", env={"DORA_INSIGHTS_SPACE": "Spaces-404"})

    assert done.returncode == 4
    assert "404" in done.stderr and "space 'Spaces-404'" in done.stderr
    assert cli.key not in done.stderr


def test_missing_configuration_exits_2_saying_what_to_set(cli: Cli) -> None:
    done = cli("deployment", "--service", "shop", "--env", "prod", connect=False)

    assert done.returncode == 2
    assert "DORA_INSIGHTS_URL" in done.stderr and "DORA_INSIGHTS_API_KEY" in done.stderr


def test_a_ci_without_an_environment_variable_asks_for_env(cli: Cli) -> None:
    done = cli("deployment", env=job("circleci", run=_run_id()).variables)

    assert done.returncode == 2
    assert "--env" in done.stderr and "CircleCI" in done.stderr


def test_configuration_from_a_config_file(cli: Cli, http: requests.Session, local: LocalRuntime) -> None:
    project = _unique("configured")
    config = cli.home / ".config" / "dora-insights" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'url = "{local.url}"\nspace = "{SPACE}"\napi_key = "{local.api_key}"\nenv = "production"\n')
    (cli.home / ".dora-insights.toml").write_text(f'service = "{project}"\n')

    done = cli("deployment", "--skip-git", connect=False)

    assert done.returncode == 0, done.stderr
    assert [d["environment"] for d in _deployments(http, local, project)] == ["production"]


# ---------------------------------------------------------------------------------------- summary and gate
@pytest.fixture(scope="module")
def history(module_cli: Cli) -> str:
    """A project with three successful deployments in March 2024, on three days."""
    project = _unique("summary")
    for day in ("04", "11", "18"):
        done = module_cli(
            "deployment",
            "--service",
            project,
            "--env",
            "production",
            "--skip-git",
            "--version",
            f"1.0.{day}",
            "--started-at",
            f"2024-03-{day}T11:50:00Z",
            "--finished-at",
            f"2024-03-{day}T12:00:00Z",
        )
        assert done.returncode == 0, done.stderr
    return project


RANGE = ("--from", "2024-03-01T00:00:00Z", "--to", "2024-04-01T00:00:00Z", "--env", "production")


def test_summary_as_json(cli: Cli, history: str) -> None:
    done = cli("summary", "--service", history, *RANGE, "--format", "json")

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["deployments"] == 3
    assert summary["change_failure_rate"]["tier"] == "Elite"


def test_summary_as_csv(cli: Cli, history: str) -> None:
    done = cli("summary", "--service", history, *RANGE, "--format", "csv")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "metric,value,unit,count,tier"
    assert lines[3] == "change_failure_rate,0.0,ratio,3,Elite"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "time_to_restore",
        "rework_rate",
    ]


def test_summary_as_a_table(cli: Cli, history: str) -> None:
    done = cli("summary", "--service", history, *RANGE)

    assert done.returncode == 0, done.stderr
    assert f"DORA summary of {SPACE}" in done.stdout and "3 deployment(s)" in done.stdout
    rows = {line.split("  ")[0]: line for line in done.stdout.splitlines()}
    assert rows["Change failure rate"].split()[-1] == "Elite"
    assert rows["Time to restore (incidents)"].endswith("no data")


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (("--metric", "change_failure_rate", "--min-tier", "Elite"), 0),
        (("--metric", "deployment_frequency", "--min-tier", "Elite"), 1),
        (("--metric", "change_failure_rate", "--metric", "deployment_frequency", "--min-tier", "High"), 1),
        (("--metric", "time_to_restore", "--min-tier", "Low"), 1),
        (("--metric", "time_to_restore", "--min-tier", "Low", "--on-no-data", "pass"), 0),
    ],
    ids=["cfr-elite-passes", "df-below-elite-fails", "one-of-two-fails", "no-data-fails", "no-data-passes"],
)
def test_gate(flags: tuple[str, ...], code: int, cli: Cli, history: str) -> None:
    done = cli("gate", "--service", history, *RANGE, *flags)

    assert done.returncode == code, done.stdout + done.stderr
    assert ("FAIL" in done.stdout) is (code == 1)


def test_gate_on_a_metric_without_tiers_is_a_usage_error(cli: Cli) -> None:
    done = cli("gate", "--metric", "rework_rate", "--min-tier", "High")

    assert done.returncode == 2
    assert "rework_rate has no tier" in done.stderr


# ------------------------------------------------------------------------------------------------ failures
def test_failure_open_then_resolve(cli: Cli, http: requests.Session, local: LocalRuntime) -> None:
    project, incident = _unique("incident"), _unique("INC")

    opened = cli(
        "failure", "open", "--id", incident, "--service", project, "--env", "production", "--name", "checkout down"
    )
    resolved = cli("failure", "resolve", "--id", incident)

    assert opened.returncode == 0, opened.stderr
    assert f"failure resolve --id {incident}" in opened.stdout
    assert resolved.returncode == 0, resolved.stderr
    stored = http.get(f"{local.url}/api/{SPACE}/failures", params={"project": project}, timeout=30).json()["items"]
    assert [(f["id"], f["name"], f["environment"]) for f in stored] == [(incident, "checkout down", "production")]
    assert stored[0]["finished_at"] is not None


def test_failure_resolve_of_a_failure_never_opened_records_it_whole(
    cli: Cli, http: requests.Session, local: LocalRuntime
) -> None:
    project, incident = _unique("whole"), _unique("INC")

    done = cli(
        "failure",
        "resolve",
        "--id",
        incident,
        "--service",
        project,
        "--env",
        "production",
        "--started-at",
        "2024-03-05T10:00:00Z",
        "--finished-at",
        "2024-03-05T10:45:00Z",
    )

    assert done.returncode == 0, done.stderr
    (stored,) = http.get(f"{local.url}/api/{SPACE}/failures", params={"project": project}, timeout=30).json()["items"]
    assert (stored["started_at"], stored["finished_at"]) == ("2024-03-05T10:00:00.000Z", "2024-03-05T10:45:00.000Z")


def test_failure_resolve_of_an_unknown_failure_without_its_start_exits_4(cli: Cli) -> None:
    done = cli("failure", "resolve", "--id", _unique("INC"))

    assert done.returncode == 4
    assert "--started-at" in done.stderr


def test_failure_resolve_says_so_when_the_service_cannot_replace_the_open_event(cli: Cli, fake: FakeService) -> None:
    open_event = {
        "id": "INC-9",
        "projects": ["shop"],
        "environment": "production",
        "started_at": "2024-03-05T10:00:00Z",
    }
    fake.answers = [
        (200, {**open_event, "finished_at": None}, {}),  # GET .../failures/INC-9
        (409, {"message": "this id was already used with different values"}, {}),  # POST the resolved event
        (404, {"message": "Not Found"}, {}),  # DELETE: a service without the route (or one done already)
        (409, {"message": "this id was already used with different values"}, {}),  # POST: the open one is there
    ]

    done = cli("failure", "resolve", "--id", "INC-9", "--url", fake.url)

    assert done.returncode == 5
    assert [r[0] for r in fake.requests] == ["GET", "POST", "DELETE", "POST"]
    resolved = fake.requests[1][2]
    assert (resolved["project"], resolved["started_at"]) == ("shop", "2024-03-05T10:00:00Z")  # the open event's
    assert resolved["finished_at"]
    assert "cannot replace" in done.stderr


# ------------------------------------------------------------------------------------------------- changes
def _git(path: Path, *args: str, **stamp: str) -> str:
    done = subprocess.run(  # noqa: S603 - git with fixed arguments, in a test's own directory
        ["git", "-C", str(path), *args],  # noqa: S607 - git from PATH, as the command itself runs it
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **COMMIT_ENV, **stamp},
    )
    return done.stdout


def _repository(path: Path) -> list[str]:
    """A git repository with three commits on main, a day apart; their shas, oldest first."""
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    for day in ("01", "02", "03"):
        (path / f"file{day}").write_text(day)
        _git(path, "add", ".")
        stamp = f"2024-03-{day}T10:00:00Z"
        _git(path, "commit", "-q", "-m", f"change {day}", GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    return _git(path, "log", "--reverse", "--format=%H").split()


def test_changes_pushes_the_commits_a_deployment_then_ships(
    cli: Cli, http: requests.Session, local: LocalRuntime, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    shas = _repository(checkout)
    repository = f"https://git.example.com/acme/{_unique('repo')}.git"

    pushed = cli("changes", "--git-repository-url", repository, cwd=checkout)
    again = cli("changes", "--git-repository-url", repository, cwd=checkout)
    deployed = cli(
        "deployment",
        "--service",
        _unique("changes"),
        "--env",
        "production",
        "--git-repository-url",
        repository,
        "--finished-at",
        "2024-03-04T10:00:00Z",
        "--output",
        "json",
        cwd=checkout,
    )

    assert pushed.returncode == 0, pushed.stderr
    assert "3 new" in pushed.stdout and "0 new, 3 already known" in again.stdout
    assert deployed.returncode == 0, deployed.stderr
    sent = json.loads(deployed.stdout)
    assert sent["commit_sha"] == shas[-1]  # git's HEAD, the CI naming none
    stored = http.get(f"{local.url}/api/{SPACE}/deployments/{sent['id']}", timeout=30).json()
    assert stored["attribution"]["commits"] == [shas[-1]]  # a stream's first deployment ships its own commit
    assert stored["attribution"]["change_started_at"] == "2024-03-03T10:00:00.000Z"


def test_changes_dry_run_lists_the_range_oldest_first(cli: Cli, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shas = _repository(checkout)

    done = cli(
        "changes", "HEAD~2..HEAD", "--git-repository-url", "https://git.example.com/a/b", "--dry-run", cwd=checkout
    )

    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout[done.stdout.index("{") :])
    assert [c["sha"] for c in body["commits"]] == shas[1:]
    assert {c["branch"] for c in body["commits"]} == {"main"}
    assert body["commits"][0]["timestamp"] == "2024-03-02T10:00:00+00:00"  # git's committer date


def test_changes_outside_a_checkout_is_a_usage_error(cli: Cli) -> None:
    done = cli("changes", "--git-repository-url", "https://git.example.com/a/b", "--branch", "main")

    assert done.returncode == 2
    assert "git" in done.stderr


# -------------------------------------------------------------------------------------- the GitHub Action
def test_the_action_records_the_deployment_and_outputs_its_id(
    local: LocalRuntime, http: requests.Session, tmp_path: Path
) -> None:
    given = job("github", name=_unique("action"), run=_run_id())
    output = tmp_path / "github_output"
    inputs = {"url": local.url, "api-key": local.api_key, "space": SPACE, "env": "production", "version": "3.0.0"}

    done = run_send_step(inputs, given.variables, output, tmp_path)

    assert done.returncode == 0, done.stderr
    deployment_id = output.read_text().removeprefix("deployment-id=").strip()
    assert deployment_id.startswith("github-")
    stored = http.get(f"{local.url}/api/{SPACE}/deployments/{deployment_id}", timeout=30).json()
    assert (stored["project"], stored["version"], stored["commit_sha"]) == (given.project, "3.0.0", SHA)
    assert stored["source_url"] == given.run_url


# ------------------------------------------------------------------------------------------------ the command
def test_version_and_help(cli: Cli) -> None:
    version, helped = cli("--cli-version", connect=False), cli("--help", connect=False)

    assert version.returncode == 0 and version.stdout.startswith("dora-insights ")
    assert helped.returncode == 0 and "exit codes:" in helped.stdout
