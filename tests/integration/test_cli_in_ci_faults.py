"""The CI command (cli/) as CI jobs meet it, against the service: faults around each request (an answer
lost after the write, 5xx, resets, odd answers), hostile CI variables and values longer than the service
takes, clock skew between the CI server and the runner, force pushes, the GitHub Action's inputs, and
odd environments (no home, a Windows console's code page). The command runs in process
(``main(argv, ctx)``) with urllib's opener replaced by a bridge to the route functions (moto), so what
it sends is what the service stores; the Action and the odd environments run as processes against a
loopback server in front of the same route functions. 23 of these failed before 2026-12-07's fixes."""

from __future__ import annotations

import argparse
import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from dora_insights_cli import context as context_module
from dora_insights_cli.context import Context
from dora_insights_cli.main import main
from tests.conftest import ADMIN_KEY, NOW

URL = "https://dora.example.test"
SPACE = "Spaces-1"
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"


class _Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = Message()
        for name, value in headers.items():
            self.headers[name] = value
        self._body = body

    def read(self, *args: Any) -> bytes:
        return self._body


def _route_of(routes: Any, method: str, path: str) -> tuple[str, dict[str, str]] | None:
    for m, template in routes:
        if m != method:
            continue
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        found = re.match(pattern, path)
        if found:
            return template, found.groupdict()
    return None


class Bridge:
    """An opener for the CLI's Api: urllib requests become route-function calls. ``faults`` is a list of
    callables run before (``before``) or after (``after``) the real call, to lose answers etc."""

    def __init__(self, api: Any, prefix: str = "") -> None:
        self.api = api
        self.prefix = prefix
        self.seen: list[dict[str, Any]] = []
        self.after: list[Callable[[int, bytes], tuple[int, bytes, dict[str, str]] | BaseException | None]] = []
        self.before: list[Callable[[], tuple[int, bytes, dict[str, str]] | BaseException | None]] = []
        # (method, fault): the first entry for a request's method is used once, after the real call
        self.on: list[tuple[str, Callable[[int, bytes], Any]]] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
        return self._open(request)

    @contextmanager
    def _open(self, request: urllib.request.Request) -> Iterator[Any]:
        parts = urlsplit(request.full_url)
        data = request.data or b""
        headers = {k.lower(): v for k, v in request.header_items()}
        self.seen.append({"method": request.get_method(), "url": request.full_url, "headers": headers, "body": data})
        if self.before:
            fault = self.before.pop(0)()
            if isinstance(fault, BaseException):
                raise fault
            if fault is not None:
                yield from self._answer(request, *fault)
                return
        path = parts.path
        assert path.startswith(self.prefix), path
        path = path[len(self.prefix) :]
        found = _route_of(self.api.routes, request.get_method(), path)
        if found is None:
            yield from self._answer(request, 404, b'{"message":"Not Found"}', {"content-type": "application/json"})
            return
        template, params = found
        call_headers = {k: v for k, v in headers.items() if k in ("authorization", "x-api-key")}
        result = self.api.call(
            request.get_method(),
            template,
            path_params=params,
            query=dict(parse_qsl(parts.query)) or None,
            raw_body=data or None,
            headers=call_headers,
        )
        raw = json.dumps(result.body).encode() if result.body is not None else b""
        out_headers = {"content-type": "application/json"}
        for index, (method, hook) in enumerate(self.on):
            if method == request.get_method():
                del self.on[index]
                fault = hook(result.status, raw)
                if isinstance(fault, BaseException):
                    raise fault
                if fault is not None:
                    yield from self._answer(request, *fault)
                    return
                break
        if self.after:
            fault = self.after.pop(0)(result.status, raw)
            if isinstance(fault, BaseException):
                raise fault
            if fault is not None:
                yield from self._answer(request, *fault)
                return
        yield from self._answer(request, result.status, raw, out_headers)

    @staticmethod
    def _answer(request: Any, status: int, body: bytes, headers: dict[str, str]) -> Iterator[Any]:
        if status >= 300:
            msg = Message()
            for k, v in headers.items():
                msg[k] = v
            raise urllib.error.HTTPError(request.full_url, status, "x", msg, io.BytesIO(body))
        yield _Answer(status, body, headers)


@pytest.fixture
def bridge(api: Any, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Bridge:
    made = Bridge(api)
    original = context_module.Context.api

    def patched(self: Context, args: argparse.Namespace, *, need_key: bool = True) -> Any:
        client = original(self, args, need_key=need_key)
        client.opener = made
        return client

    monkeypatch.setattr(context_module.Context, "api", patched)
    return made


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(*argv: str, env: dict[str, str] | None = None, cwd: Path, url: str = URL, key: str = ADMIN_KEY) -> Run:
    out, err = io.StringIO(), io.StringIO()
    variables = {"DORA_INSIGHTS_URL": url, "DORA_INSIGHTS_SPACE": SPACE, "DORA_INSIGHTS_API_KEY": key}
    variables.update(env or {})
    variables = {k: v for k, v in variables.items() if v is not None}
    ctx = Context(env=variables, cwd=cwd, home=cwd, out=out, err=err, sleep=lambda s: None, now=lambda: NOW)
    try:
        code = main(list(argv), ctx)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    except Exception as error:  # what a CI log would show as a Python traceback
        return Run(-1, out.getvalue(), err.getvalue() + f"Traceback: {type(error).__name__}: {error}")
    return Run(code, out.getvalue(), err.getvalue())


def deployments(api: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": SPACE}, query=query, key=ADMIN_KEY)
        assert page.status == 200, page.body
        items += page.body["items"]
        cursor = page.body.get("next_cursor")
        if not cursor:
            return items


def github(run: str = "777", attempt: str = "1", **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_RUN_ID": run,
        "GITHUB_RUN_ATTEMPT": attempt,
        "GITHUB_JOB": "deploy",
        **extra,
    }


# ----------------------------------------------------------------------------------------------- basics
def test_a_github_deployment_is_stored_once_when_sent_twice(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    first = cli("deployment", "--env", "production", env=github(), cwd=tmp_path)
    assert first.code == 0, first.text
    second = cli("deployment", "--env", "production", env=github(), cwd=tmp_path)
    assert second.code == 0, second.text
    stored = deployments(api)
    assert len(stored) == 1, stored
    assert stored[0]["project"] == "shop" and stored[0]["commit_sha"] == SHA
    assert "Already recorded" in second.out


def test_a_lost_answer_503_after_the_store_is_retried_and_stored_once(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    """The POST is applied but its answer is a 503 (docs/API.md: an internal error may come after the
    write): the retry must not fail the job nor store twice."""
    bridge.after.append(lambda status, raw: (503, b'{"message":"retry the request"}', {"retry-after": "1"}))
    done = cli("deployment", "--env", "production", env=github(), cwd=tmp_path)
    assert done.code == 0, done.text
    assert len(deployments(api)) == 1


def test_a_connection_reset_after_the_store_is_retried_and_stored_once(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    bridge.after.append(lambda status, raw: ConnectionResetError(104, "Connection reset by peer"))
    done = cli("deployment", "--env", "production", "--no-ci", "--skip-git", "--service", "shop", cwd=tmp_path)
    assert done.code == 0, done.text
    assert len(deployments(api)) == 1


def test_a_second_send_later_from_the_same_job_is_already_recorded(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    first = cli(
        "deployment", "--env", "production", "--finished-at", "2024-03-01T11:00:00Z", env=github(), cwd=tmp_path
    )
    second = cli(
        "deployment", "--env", "production", "--finished-at", "2024-03-01T11:05:00Z", env=github(), cwd=tmp_path
    )
    assert (first.code, second.code) == (0, 0), first.text + second.text
    assert "Already recorded" in second.out
    assert len(deployments(api)) == 1


def _key(api: Any, *scopes: str) -> str:
    made = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": SPACE},
        body={"name": "ci", "scopes": list(scopes)},
        key=ADMIN_KEY,
    )
    assert made.status in (200, 201), made.body
    return str(made.body.get("key") or made.body.get("api_key") or made.body.get("secret"))


def test_a_write_only_key_sending_twice_is_already_recorded(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    key = _key(api, "deployments:write")
    first = cli(
        "deployment",
        "--env",
        "production",
        "--finished-at",
        "2024-03-01T11:00:00Z",
        env=github(),
        cwd=tmp_path,
        key=key,
    )
    second = cli(
        "deployment",
        "--env",
        "production",
        "--finished-at",
        "2024-03-01T11:05:00Z",
        env=github(),
        cwd=tmp_path,
        key=key,
    )
    assert (first.code, second.code) == (0, 0), first.text + second.text
    assert key not in first.text + second.text
    assert len(deployments(api)) == 1


def test_a_url_with_a_path_prefix_and_trailing_slash(api: Any, clock: Any, bridge: Bridge, tmp_path: Path) -> None:
    bridge.prefix = "/prod"
    done = cli("deployment", "--env", "production", env=github(), cwd=tmp_path, url=URL + "/prod/")
    assert done.code == 0, done.text
    assert bridge.seen[0]["url"].startswith(URL + "/prod/api/Spaces-1/deployments")
    assert len(deployments(api)) == 1


def test_the_key_in_the_url_is_used_and_never_shown(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli(
        "deployment",
        "--env",
        "production",
        "--output",
        "json",
        env={**github(), "DORA_INSIGHTS_API_KEY": None},  # type: ignore[dict-item]
        cwd=tmp_path,
        url=URL.replace("https://", f"https://ci:{ADMIN_KEY}@"),
    )
    assert done.code == 0, done.text
    assert ADMIN_KEY not in done.text
    assert bridge.seen[0]["headers"]["authorization"] == f"Bearer {ADMIN_KEY}"
    assert ADMIN_KEY not in bridge.seen[0]["url"]


def test_gitlab_job_environment_and_start_time_are_stored(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_ID": "991",
        "CI_JOB_ID": "99101",
        "CI_JOB_NAME": "deploy",
        "CI_COMMIT_SHA": SHA,
        "CI_PROJECT_URL": "https://gitlab.com/acme/shop",
        "CI_PROJECT_NAME": "shop",
        "CI_COMMIT_BRANCH": "main",
        "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/99101",
        "CI_ENVIRONMENT_NAME": "staging",
        "CI_JOB_STARTED_AT": "2024-03-01T11:00:00+01:00",
    }
    done = cli("deployment", "--finished-at", "2024-03-01T10:30:00Z", env=env, cwd=tmp_path)
    assert done.code == 0, done.text
    (stored,) = deployments(api)
    assert stored["environment"].lower() == "staging"
    assert stored["started_at"].startswith("2024-03-01T10:00:00")
    assert stored["source_url"] == "https://gitlab.com/acme/shop/-/jobs/99101"
    assert "branch:main" in stored["tags"]


@pytest.mark.parametrize("length", [190, 230])
def test_a_long_ci_branch_name_does_not_lose_the_deployment(
    bridge: Bridge, api: Any, tmp_path: Path, length: int
) -> None:
    """GitHub allows branch names up to 255 bytes; the CLI adds the tag ``branch:<name>`` by itself. A long
    (legal) branch must not make the service refuse the whole deployment."""
    branch = "feature/" + "x" * (length - 8)
    env = github(GITHUB_REF=f"refs/heads/{branch}")
    done = cli("deployment", "--env", "production", env=env, cwd=tmp_path)
    assert done.code == 0, done.text
    assert len(deployments(api)) == 1


def test_a_long_tag_name_on_a_tag_build_does_not_lose_the_deployment(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    tag = "release-" + "1" * 220
    done = cli("deployment", "--env", "production", env=github(GITHUB_REF=f"refs/tags/{tag}"), cwd=tmp_path)
    assert done.code == 0, done.text
    assert len(deployments(api)) == 1


def test_an_offset_finish_time_is_stored_in_utc(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli(
        "deployment",
        "--env",
        "production",
        "--finished-at",
        "2024-03-01T13:00:00+01:00",
        "--started-at",
        "1709290800",
        env=github(),
        cwd=tmp_path,
    )
    assert done.code == 0, done.text
    (stored,) = deployments(api)
    assert stored["finished_at"].startswith("2024-03-01T12:00:00")
    assert stored["started_at"].startswith("2024-03-01T11:00:00")


def test_a_start_after_the_finish_is_a_clear_rejection(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli(
        "deployment",
        "--env",
        "production",
        "--finished-at",
        "2024-03-01T10:00:00Z",
        "--started-at",
        "2024-03-01T11:00:00Z",
        env=github(),
        cwd=tmp_path,
    )
    assert done.code == 5, done.text
    assert "started_at" in done.err and "Traceback" not in done.text
    assert deployments(api) == []


def test_output_json_prints_the_stored_deployment(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli("deployment", "--env", "production", "--output", "json", env=github(), cwd=tmp_path)
    assert done.code == 0, done.text
    printed = json.loads(done.out)
    (stored,) = deployments(api)
    assert printed["id"] == stored["id"]
    again = cli("deployment", "--env", "production", "--output", "json", env=github(), cwd=tmp_path)
    assert again.code == 0 and json.loads(again.out)["id"] == stored["id"], again.text


# ----------------------------------------------------------------------------------------------- failures
def _failures(api: Any) -> list[dict[str, Any]]:
    page = api.call(
        "GET", "/api/{spaceId}/failures", path_params={"spaceId": SPACE}, query={"limit": "500"}, key=ADMIN_KEY
    )
    assert page.status == 200, page.body
    return list(page.body["items"])


def test_failure_open_then_resolve_by_id_only(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    opened = cli(
        "failure",
        "open",
        "--service",
        "shop",
        "--env",
        "production",
        "--name",
        "checkout errors",
        "--started-at",
        "2024-03-01T10:00:00Z",
        "--no-ci",
        cwd=tmp_path,
    )
    assert opened.code == 0, opened.text
    failure_id = re.search(r"Opened failure (\S+):", opened.out).group(1)  # type: ignore[union-attr]
    resolved = cli("failure", "resolve", "--id", failure_id, "--finished-at", "2024-03-01T11:00:00Z", cwd=tmp_path)
    assert resolved.code == 0, resolved.text
    (stored,) = _failures(api)
    assert stored["id"] == failure_id
    assert stored["finished_at"].startswith("2024-03-01T11:00:00")
    assert stored["started_at"].startswith("2024-03-01T10:00:00")
    assert stored["name"] == "checkout errors" and stored["projects"] == ["shop"]
    again = cli("failure", "resolve", "--id", failure_id, cwd=tmp_path)
    assert again.code == 0 and "Already resolved" in again.out, again.text


def test_failure_open_twice_from_one_job_is_stored_once(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    args = ("failure", "open", "--service", "shop", "--name", "errors")
    first = cli(*args, "--started-at", "2024-03-01T10:00:00Z", env=github(), cwd=tmp_path)
    second = cli(*args, "--started-at", "2024-03-01T10:01:00Z", env=github(), cwd=tmp_path)
    assert (first.code, second.code) == (0, 0), first.text + second.text
    assert "Already open" in second.out
    assert len(_failures(api)) == 1


def test_failure_resolve_of_an_unknown_id_without_service_is_not_found(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    done = cli("failure", "resolve", "--id", "never-opened-0123456789", "--no-ci", cwd=tmp_path)
    assert done.code == 4, done.text
    assert "Traceback" not in done.text


def test_failure_resolve_of_an_unknown_id_records_it_whole(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli(
        "failure",
        "resolve",
        "--id",
        "whole-failure-0123456789",
        "--service",
        "shop",
        "--started-at",
        "2024-03-01T09:00:00Z",
        "--finished-at",
        "2024-03-01T09:30:00Z",
        "--no-ci",
        cwd=tmp_path,
    )
    assert done.code == 0, done.text
    (stored,) = _failures(api)
    assert stored["finished_at"].startswith("2024-03-01T09:30:00")


# ----------------------------------------------------------------------------------------------- changes
import os  # noqa: E402
import subprocess  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@example.com",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_COMMITTER_EMAIL": "ci@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607 - git from PATH, as the CLI runs it
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HOME": str(cwd), **GIT_ENV, **(env or {})},
    )
    return done.stdout.strip()


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", "https://x-access-token:ghs_SECRETTOKEN123@github.com/acme/shop.git")
    return repo


def _commit(repo: Path, message: str, when: str) -> str:
    _git(
        repo, "commit", "-q", "--allow-empty", "-m", message, env={"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when}
    )
    return _git(repo, "rev-parse", "HEAD")


def test_changes_sends_the_commits_of_a_range_once(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    base = _commit(repo, "first", "2024-03-01T08:00:00+05:30")
    _commit(repo, "second \u00e9\u00e8 \U0001f600", "2024-03-01T09:00:00-07:00")
    _commit(repo, "third " + "y" * 1500, "2024-03-01T10:00:00Z")
    done = cli("changes", f"{base}..HEAD", "--no-ci", cwd=repo)
    assert done.code == 0, done.text
    assert "ghs_SECRETTOKEN123" not in done.text
    sent = json.loads(bridge.seen[0]["body"])["commits"]
    assert [c["message"][:6] for c in sent] == ["second", "third "]
    assert all(c["repository"] == "https://github.com/acme/shop.git" for c in sent)
    assert "2 new" in done.out, done.out
    again = cli("changes", f"{base}..HEAD", "--no-ci", cwd=repo)
    assert again.code == 0 and "0 new, 2 already known" in again.out, again.text


def test_changes_on_github_push_uses_the_event_range(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = _commit(repo, "old", "2024-03-01T08:00:00Z")
    _commit(repo, "new one", "2024-03-01T09:00:00Z")
    head = _commit(repo, "new two", "2024-03-01T09:30:00Z")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": before, "repository": {"default_branch": "main"}}))
    env = github(GITHUB_SHA=head, GITHUB_EVENT_PATH=str(event))
    done = cli("changes", env=env, cwd=repo)
    assert done.code == 0, done.text
    sent = json.loads(bridge.seen[0]["body"])["commits"]
    assert [c["message"] for c in sent] == ["new one", "new two"]
    assert {c["branch"] for c in sent} == {"main"} and {c["default_branch"] for c in sent} == {"main"}


def test_changes_outside_a_checkout_is_a_usage_error(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli(
        "changes", "--no-ci", "--git-repository-url", "https://github.com/acme/shop", "--branch", "main", cwd=tmp_path
    )
    assert done.code == 2, done.text
    assert "Traceback" not in done.text


def test_deployment_outside_ci_reads_git_and_strips_clone_credentials(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    head = _commit(repo, "x", "2024-03-01T08:00:00Z")
    done = cli("deployment", "--service", "shop", "--env", "production", "--no-ci", cwd=repo)
    assert done.code == 0, done.text
    (stored,) = deployments(api)
    assert stored["commit_sha"] == head
    assert "SECRETTOKEN" not in json.dumps(stored) and "SECRETTOKEN" not in done.text
    assert "branch:main" in stored["tags"]


# ----------------------------------------------------------------------------------------------- summary / gate
RANGE = ("--from", "2024-02-01T00:00:00Z", "--to", "2024-03-02T00:00:00Z")


def _seed(tmp_path: Path, n: int = 3) -> None:
    for i in range(n):
        done = cli(
            "deployment",
            "--env",
            "production",
            "--service",
            "shop",
            "--no-ci",
            "--skip-git",
            "--finished-at",
            f"2024-02-2{i}T10:00:00Z",
            cwd=tmp_path,
        )
        assert done.code == 0, done.text


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_summary_reads_the_service(bridge: Bridge, api: Any, tmp_path: Path, fmt: str) -> None:
    _seed(tmp_path)
    done = cli("summary", "--service", "shop", "--env", "production", *RANGE, "--format", fmt, cwd=tmp_path)
    assert done.code == 0, done.text
    if fmt == "json":
        assert json.loads(done.out)["deployment_frequency"]["successful_deployments"] == 3
    elif fmt == "csv":
        rows = {line.split(",")[0]: line.split(",") for line in done.out.splitlines()}
        assert rows["deployment_frequency"][3] == "3", done.out
    else:
        assert "3 successful" in done.out, done.out


def test_gate_passes_and_fails_on_the_services_tiers(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    _seed(tmp_path)
    low = cli(
        "gate",
        "--service",
        "shop",
        "--env",
        "production",
        *RANGE,
        "--metric",
        "deployment_frequency",
        "--min-tier",
        "low",
        cwd=tmp_path,
    )
    assert low.code == 0, low.text
    elite = cli(
        "gate",
        "--service",
        "shop",
        "--env",
        "production",
        *RANGE,
        "--metric",
        "deploy-frequency",
        "--min-tier",
        "Elite",
        cwd=tmp_path,
    )
    summary = json.loads(
        cli("summary", "--service", "shop", "--env", "production", *RANGE, "--format", "json", cwd=tmp_path).out
    )
    expected = 0 if summary["deployment_frequency"]["tier"] == "Elite" else 1
    assert elite.code == expected, elite.text
    nodata = cli(
        "gate",
        "--service",
        "shop",
        "--env",
        "production",
        *RANGE,
        "--metric",
        "time_to_restore",
        "--min-tier",
        "Low",
        cwd=tmp_path,
    )
    assert nodata.code == 1 and "no data" in nodata.out, nodata.text
    passes = cli(
        "gate",
        "--service",
        "shop",
        "--env",
        "production",
        *RANGE,
        "--metric",
        "time_to_restore",
        "--min-tier",
        "Low",
        "--on-no-data",
        "pass",
        cwd=tmp_path,
    )
    assert passes.code == 0, passes.text


def test_gate_on_an_unknown_service_does_not_pass_silently(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    _seed(tmp_path)
    done = cli(
        "gate", "--service", "no-such-service", *RANGE, "--metric", "lead_time", "--min-tier", "Low", cwd=tmp_path
    )
    assert done.code != 0, done.text
    assert "Traceback" not in done.text


def test_summary_with_days_and_a_write_only_key_is_an_auth_error(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    key = _key(api, "deployments:write")
    done = cli("summary", "--days", "30", cwd=tmp_path, key=key)
    assert done.code == 3, done.text
    assert key not in done.text


# ----------------------------------------------------------------------------------------------- odd answers
def _replace_body(body: Any, status: int = 200) -> Callable[[int, bytes], tuple[int, bytes, dict[str, str]]]:
    return lambda s, raw: (status, json.dumps(body).encode(), {"content-type": "application/json"})


@pytest.mark.parametrize(
    "answer",
    [
        {"commits": {"received": "many", "stored": 1}},
        {"commits": {"received": None, "stored": None}},
        {"commits": {"received": 1.5, "stored": "x"}},
    ],
)
def test_changes_with_an_odd_count_answer_ends_cleanly(bridge: Bridge, api: Any, tmp_path: Path, answer: Any) -> None:
    repo = _repo(tmp_path)
    _commit(repo, "one", "2024-03-01T08:00:00Z")
    bridge.after.append(_replace_body(answer))
    done = cli("changes", "HEAD", "--no-ci", cwd=repo)
    assert "Traceback" not in done.text, done.text
    assert done.code in (0, 5), done.text


@pytest.mark.parametrize(
    "answer",
    [
        {"deployment_frequency": {"per_day": None, "tier": "High"}},
        {"deployment_frequency": {"per_day": "0.5", "tier": "High"}},
        {"lead_time": {"median_seconds": "3600", "tier": "High"}},
        {"lead_time": {"median_seconds": 3600, "p95_seconds": "x", "tier": "High"}},
        {"change_failure_rate": {"rate": None, "tier": None}},
    ],
)
@pytest.mark.parametrize("command", [("summary",), ("gate", "--metric", "lead_time", "--min-tier", "Low")])
def test_summary_and_gate_with_odd_figures_end_cleanly(
    bridge: Bridge, api: Any, tmp_path: Path, answer: Any, command: tuple[str, ...]
) -> None:
    bridge.after.append(_replace_body(answer))
    done = cli(*command, "--days", "7", cwd=tmp_path)
    assert "Traceback" not in done.text, done.text
    assert done.code in (0, 1, 5), done.text


@pytest.mark.parametrize("items", [5, "x", [1, None, "a"]])
def test_failure_resolve_with_an_odd_list_answer_ends_cleanly(
    bridge: Bridge, api: Any, tmp_path: Path, items: Any
) -> None:
    bridge.after.append(lambda s, raw: (404, b'{"message":"Not Found"}', {"content-type": "application/json"}))
    bridge.after.append(_replace_body({"items": items, "next_cursor": None}))
    done = cli("failure", "resolve", "--id", "some-failure-0123456789", "--service", "shop", "--no-ci", cwd=tmp_path)
    assert "Traceback" not in done.text, done.text
    assert done.code in (4, 5), done.text


# ------------------------------------------------------------------------------------ the Action, as a process
import sys  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from tests.unit.cli.action_step import run_send_step  # noqa: E402


class HttpBridge:
    """A loopback HTTP server whose requests go to the route functions (one at a time: moto in process)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.seen: list[dict[str, Any]] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                data = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                outer.seen.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": data}
                )
                found = _route_of(outer.api.routes, self.command, parts.path)
                if found is None:
                    status, raw = 404, b'{"message":"Not Found"}'
                else:
                    template, params = found
                    auth = {
                        k.lower(): v for k, v in self.headers.items() if k.lower() in ("authorization", "x-api-key")
                    }
                    with lock:
                        result = outer.api.call(
                            self.command,
                            template,
                            path_params=params,
                            query=dict(parse_qsl(parts.query)) or None,
                            raw_body=data or None,
                            headers=auth,
                        )
                    status = result.status
                    raw = json.dumps(result.body).encode() if result.body is not None else b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_bridge(api: Any, clock: Any) -> Iterator[HttpBridge]:
    made = HttpBridge(api)
    yield made
    made.close()


def _action(
    http_bridge: HttpBridge, tmp_path: Path, inputs: dict[str, str], variables: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    output = tmp_path / "github_output"
    output.write_text("")
    given = {"url": http_bridge.url, "api-key": ADMIN_KEY, "space": SPACE, "env": "production", **inputs}
    done = run_send_step(given, variables if variables is not None else github(), output, tmp_path)
    return done, output.read_text()


def test_the_action_stores_the_deployment_and_outputs_its_id(http_bridge: HttpBridge, api: Any, tmp_path: Path) -> None:
    done, output = _action(
        http_bridge, tmp_path, {"custom-tags": "tier:1, region:eu", "finished-at": "2024-03-01T11:00:00Z"}
    )
    assert done.returncode == 0, done.stderr
    (stored,) = deployments(api)
    assert output == f"deployment-id={stored['id']}\n"
    assert {"tier:1", "region:eu", "branch:main"} <= set(stored["tags"])
    assert ADMIN_KEY not in done.stdout + done.stderr
    again, output2 = _action(http_bridge, tmp_path, {"finished-at": "2024-03-01T11:02:00Z"})
    assert again.returncode == 0, again.stderr
    assert output2 == f"deployment-id={stored['id']}\n"
    assert len(deployments(api)) == 1


def test_the_action_args_input_takes_a_quoted_value(http_bridge: HttpBridge, api: Any, tmp_path: Path) -> None:
    """``args`` is "more flags, as one line": a flag whose value has a space (quoted as in a shell) must reach
    the command as one value, not be split into stray arguments that fail the deploy job (exit 2)."""
    done, _output = _action(http_bridge, tmp_path, {"args": '--source-name "Release pipeline" --rollback'})
    assert done.returncode == 0, done.stderr
    (stored,) = deployments(api)
    assert stored["source_name"] == "Release pipeline"


def test_the_action_fails_the_step_with_the_commands_code(http_bridge: HttpBridge, api: Any, tmp_path: Path) -> None:
    done, output = _action(
        http_bridge, tmp_path, {"started-at": "2024-03-01T13:00:00Z", "finished-at": "2024-03-01T12:00:00Z"}
    )
    assert done.returncode == 5, done.stderr
    assert "started_at" in done.stderr
    nofail, output = _action(
        http_bridge,
        tmp_path,
        {"started-at": "2024-03-01T13:00:00Z", "finished-at": "2024-03-01T12:00:00Z", "no-fail": "true"},
    )
    assert nofail.returncode == 0, nofail.stderr
    assert output == "deployment-id=\n"


def test_the_action_with_no_fail_and_a_mistyped_state_does_not_fail_the_job(
    http_bridge: HttpBridge, api: Any, tmp_path: Path
) -> None:
    """README: ``--no-fail`` exits 0 whatever happens (the error still printed): it never fails a deploy."""
    done, _output = _action(http_bridge, tmp_path, {"state": "failed", "no-fail": "true"})
    assert done.returncode == 0, done.stderr


def test_no_fail_covers_a_bad_flag_value_too(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli("deployment", "--env", "production", "--no-fail", "--retries", "-1", env=github(), cwd=tmp_path)
    assert done.code == 0, done.text


# ----------------------------------------------------------------------------------------------- end to end: lead time
def test_changes_then_deployments_give_a_lead_time(
    bridge: Bridge, api: Any, aws: Any, clock: Any, lambda_context: Any, tmp_path: Path
) -> None:
    from tests.support.retries import settle

    repo = _repo(tmp_path)
    first = _commit(repo, "a", "2024-03-01T06:00:00Z")
    _commit(repo, "b", "2024-03-01T07:00:00Z")
    third = _commit(repo, "c", "2024-03-01T08:00:00Z")
    sent = cli("changes", "--no-ci", cwd=repo)
    assert sent.code == 0 and "3 new" in sent.out, sent.text
    one = cli(
        "deployment",
        "--no-ci",
        "--service",
        "shop",
        "--env",
        "production",
        "--git-commit-sha",
        first,
        "--finished-at",
        "2024-03-01T06:30:00Z",
        cwd=repo,
    )
    two = cli(
        "deployment",
        "--no-ci",
        "--service",
        "shop",
        "--env",
        "production",
        "--git-commit-sha",
        third,
        "--finished-at",
        "2024-03-01T09:00:00Z",
        "--output",
        "json",
        cwd=repo,
    )
    assert (one.code, two.code) == (0, 0), one.text + two.text
    settle(aws, clock, lambda_context)
    deployment_id = json.loads(two.out)["id"]
    got = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": SPACE, "deploymentId": deployment_id},
        key=ADMIN_KEY,
    ).body
    assert (
        got["attribution"]["state"] in ("resolved", "Resolved", "complete", "done")
        or got["figures"]["lead_time_seconds"]
    ), got
    assert got["figures"]["lead_time_source"] == "Commits", got["figures"]
    assert got["figures"]["lead_time_seconds"] == pytest.approx(7200, abs=1), got["figures"]


# ----------------------------------------------------------------------------------------------- CI edges
def _gitlab(**extra: str) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_PIPELINE_ID": "991",
        "CI_JOB_ID": "99101",
        "CI_JOB_NAME": "deploy",
        "CI_COMMIT_SHA": SHA,
        "CI_PROJECT_URL": "https://gitlab.com/acme/shop",
        "CI_PROJECT_NAME": "shop",
        "CI_COMMIT_BRANCH": "main",
        "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/99101",
        "CI_ENVIRONMENT_NAME": "production",
        **extra,
    }


def test_a_ci_start_time_a_few_seconds_ahead_of_the_runner_clock_does_not_lose_the_deployment(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    """GitLab writes CI_JOB_STARTED_AT with its server's clock; the finish defaults to the runner's clock. A runner
    a few seconds behind, on a short job, gives a start after the finish: the service refuses that (400), so the
    deployment the job made is lost. A start the CI gave (not a flag) should never cost the deployment."""
    ahead = NOW.replace(second=5).strftime("%Y-%m-%dT%H:%M:%SZ")  # NOW is the CLI's clock here
    done = cli("deployment", env=_gitlab(CI_JOB_STARTED_AT=ahead), cwd=tmp_path)
    assert done.code == 0, done.text
    assert len(deployments(api)) == 1


def test_a_github_pull_request_run_sends_the_head_commit(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    head = "1" * 40
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": head}}}))
    env = github(GITHUB_REF="refs/pull/12/merge", GITHUB_HEAD_REF="feature/x", GITHUB_EVENT_PATH=str(event))
    done = cli("deployment", "--env", "preview", env=env, cwd=tmp_path)
    assert done.code == 0, done.text
    (stored,) = deployments(api)
    assert stored["commit_sha"] == head and "branch:feature/x" in stored["tags"]


def test_changes_after_a_force_push_does_not_fail_the_job(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    """A force push: the event's ``before`` is a commit the (full) checkout no longer has. The run's commits
    should still be sent (or the command end 0 with a note), not fail the pipeline with exit 2."""
    repo = _repo(tmp_path)
    _commit(repo, "base", "2024-03-01T08:00:00Z")
    head = _commit(repo, "rewritten", "2024-03-01T09:00:00Z")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": "ab" * 20, "repository": {"default_branch": "main"}}))
    done = cli("changes", env=github(GITHUB_SHA=head, GITHUB_EVENT_PATH=str(event)), cwd=repo)
    assert done.code == 0, done.text


def test_a_client_id_in_mixed_case_sent_twice_is_already_recorded(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    args = (
        "deployment",
        "--env",
        "production",
        "--id",
        "Matrix-Run-77-Attempt-1-Leg-3",
        "--no-ci",
        "--service",
        "shop",
        "--skip-git",
    )
    first = cli(*args, "--finished-at", "2024-03-01T11:00:00Z", cwd=tmp_path)
    second = cli(*args, "--finished-at", "2024-03-01T11:00:00Z", cwd=tmp_path)
    third = cli(*args, "--finished-at", "2024-03-01T11:01:00Z", cwd=tmp_path)
    assert (first.code, second.code, third.code) == (0, 0, 0), first.text + second.text + third.text
    assert len(deployments(api)) == 1


def test_429_then_success_is_retried_and_stored_once(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    bridge.before.append(lambda: (429, b'{"message":"Too Many Requests"}', {"retry-after": "2"}))
    bridge.before.append(lambda: TimeoutError("timed out"))
    done = cli("deployment", "--env", "production", env=github(), cwd=tmp_path)
    assert done.code == 0, done.text
    assert len(deployments(api)) == 1
    assert len([s for s in bridge.seen if s["method"] == "POST"]) == 3


def test_a_blank_variable_falls_back_to_the_config_file(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    (tmp_path / ".dora-insights.toml").write_text(f'url = "{URL}"\nspace = "{SPACE}"\nservice = "shop"\nenv = "qa"\n')
    done = cli(
        "deployment", "--no-ci", "--skip-git", env={"DORA_INSIGHTS_URL": "", "DORA_INSIGHTS_SPACE": " "}, cwd=tmp_path
    )
    assert done.code == 0, done.text
    (stored,) = deployments(api)
    assert (stored["project"], stored["environment"].lower()) == ("shop", "qa")


def test_unreachable_service_exits_6_after_the_retries(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    for _ in range(3):
        bridge.before.append(lambda: ConnectionRefusedError(111, "Connection refused"))
    done = cli("deployment", "--env", "production", "--retries", "2", env=github(), cwd=tmp_path)
    assert done.code == 6, done.text
    assert "3 attempt(s)" in done.err and ADMIN_KEY not in done.text


def _fast_commits(repo: Path, count: int, subject: str) -> None:
    """``count`` commits on main, each with ``subject``, made in one ``git fast-import``."""
    stream = b""
    for i in range(count):
        message = f"{subject} {i}".encode()
        stream += b"commit refs/heads/main\n"
        stream += f"committer ci <ci@example.com> {1709280000 + i * 60} +0000\n".encode()
        stream += f"data {len(message)}\n".encode() + message + b"\n\n"
    subprocess.run(
        ["git", "fast-import", "--quiet"],  # noqa: S607
        cwd=repo,
        input=stream,
        check=True,
        capture_output=True,
        env={**os.environ, "HOME": str(repo), **GIT_ENV},
    )
    _git(repo, "reset", "-q", "--hard", "main")


def test_changes_with_long_non_ascii_subjects_fit_the_services_body_limit(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    """500 commits a batch, each subject up to 1,000 characters: with non-ASCII subjects (3 bytes a character
    in UTF-8) a batch is well over the route's 1 MiB body limit, so every retry gets a 413 and nothing is sent."""
    repo = _repo(tmp_path)
    _fast_commits(repo, 500, "\u5909\u66f4" * 495)  # ~990 CJK characters: ~3 KB of UTF-8 a subject
    done = cli("changes", "--no-ci", cwd=repo)
    assert done.code == 0, done.text[:600]
    assert "500 new" in done.out, done.out


# ------------------------------------------------------------------------------- odd environments (a process)
ROOT = Path(__file__).resolve().parents[2]


def _process(*args: str, env: dict[str, str], cwd: Path, uid: int | None = None) -> subprocess.CompletedProcess[str]:
    start = ["-m", "dora_insights_cli"]
    if uid is not None:  # become that user once the interpreter runs (the venv's own files stay root's)
        start = [
            "-c",
            "import os, sys, ssl, tomllib, encodings.idna, http.client, urllib.request;"
            f" import dora_insights_cli.main as m; os.setuid({uid}); sys.exit(m.main(sys.argv[1:]))",
        ]
    return subprocess.run(  # noqa: S603
        [sys.executable, *start, *args],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "cli" / "src"), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(
    not hasattr(os, "getuid") or os.getuid() != 0, reason="needs to run as a user without a passwd entry"
)
def test_no_home_and_no_passwd_entry_is_not_a_traceback(http_bridge: HttpBridge, api: Any, tmp_path: Path) -> None:
    """A container running as an arbitrary uid without HOME (no passwd entry): every setting is given in the
    environment, so the command should send the deployment rather than crash looking for ~/.config."""
    tmp_path.chmod(0o777)
    done = _process(
        "deployment",
        "--env",
        "production",
        "--service",
        "shop",
        "--no-ci",
        "--skip-git",
        env={"DORA_INSIGHTS_URL": http_bridge.url, "DORA_INSIGHTS_SPACE": SPACE, "DORA_INSIGHTS_API_KEY": ADMIN_KEY},
        cwd=tmp_path,
        uid=54321,
    )
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert done.returncode == 0, done.stderr[-800:]
    assert len(deployments(api)) == 1


def test_a_windows_runner_console_encoding_does_not_fail_a_stored_deployment(
    http_bridge: HttpBridge, api: Any, tmp_path: Path
) -> None:
    """The Action supports Windows runners (Scripts/python.exe); there Python writes a pipe in the ANSI code page
    (cp1252, strict). A service named in another script is stored, so printing its name must not end the
    command with a traceback and exit 1 (emulated with PYTHONIOENCODING=cp1252)."""
    done = _process(
        "deployment",
        "--env",
        "production",
        "--service",
        "\u5546\u5e97",
        "--no-ci",
        "--skip-git",
        env={
            "DORA_INSIGHTS_URL": http_bridge.url,
            "DORA_INSIGHTS_SPACE": SPACE,
            "DORA_INSIGHTS_API_KEY": ADMIN_KEY,
            "HOME": str(tmp_path),
            "PYTHONIOENCODING": "cp1252",
        },
        cwd=tmp_path,
    )
    assert len(deployments(api)) == 1
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert done.returncode == 0, done.stderr[-800:]


def test_failure_resolve_keeps_the_open_events_values(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    opened = cli(
        "failure",
        "open",
        "--id",
        "incident-2024-03-01-a",
        "--service",
        "shop",
        "--service",
        "cart",
        "--env",
        "production",
        "--name",
        "errors",
        "--severity",
        "sev1",
        "--team",
        "payments",
        "--custom-tags",
        "source:pager",
        "--started-at",
        "2024-03-01T10:00:00Z",
        "--no-ci",
        cwd=tmp_path,
    )
    assert opened.code == 0, opened.text
    resolved = cli(
        "failure", "resolve", "--id", "incident-2024-03-01-a", "--finished-at", "2024-03-01T10:45:00Z", cwd=tmp_path
    )
    assert resolved.code == 0, resolved.text
    (stored,) = _failures(api)
    assert sorted(stored["projects"]) == ["cart", "shop"]
    assert (stored["severity"], stored["team"], stored["tags"], stored["name"]) == (
        "sev1",
        "payments",
        ["source:pager"],
        "errors",
    )
    assert stored["environment"].lower() == "production"


def test_failure_resolve_with_a_lost_delete_answer_does_not_lose_the_failure(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    """resolve replaces the open event (DELETE, then POST). The DELETE is applied but its answer is lost (a 503
    or a reset, which the client retries): the retried DELETE answers 404. The command must go on to store the
    resolved event, not stop with "cannot replace" after deleting the open one (the failure would be gone)."""
    opened = cli(
        "failure",
        "open",
        "--id",
        "incident-2024-03-01-b",
        "--service",
        "shop",
        "--name",
        "errors",
        "--started-at",
        "2024-03-01T10:00:00Z",
        "--no-ci",
        cwd=tmp_path,
    )
    assert opened.code == 0, opened.text
    bridge.on.append(("DELETE", lambda status, raw: (503, b'{"message":"retry the request"}', {"retry-after": "1"})))
    resolved = cli(
        "failure", "resolve", "--id", "incident-2024-03-01-b", "--finished-at", "2024-03-01T10:45:00Z", cwd=tmp_path
    )
    stored = _failures(api)
    assert len(stored) == 1, (resolved.text, stored)
    assert stored[0]["finished_at"], stored
    assert resolved.code == 0, resolved.text


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("benchmark", [None, "2021", "2024"])
def test_summary_of_an_empty_space(bridge: Bridge, api: Any, tmp_path: Path, fmt: str, benchmark: str | None) -> None:
    extra = ("--benchmark", benchmark) if benchmark else ()
    done = cli("summary", "--days", "30", "--format", fmt, *extra, cwd=tmp_path)
    assert done.code == 0, done.text
    assert "Traceback" not in done.text


def test_summary_with_an_unknown_benchmark_is_a_clear_rejection(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli("summary", "--days", "30", "--benchmark", "1999", cwd=tmp_path)
    assert done.code == 5, done.text
    assert "benchmark" in done.err


def test_integration_branch_without_value_uses_the_branch_built(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli("deployment", "--env", "production", "--integration-branch", env=github(), cwd=tmp_path)
    assert done.code == 0, done.text
    sent = json.loads(bridge.seen[0]["body"])
    assert sent["integration_branch"] == "main"


def test_dry_run_shows_no_key_and_sends_nothing(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    done = cli("deployment", "--env", "production", "--dry-run", env=github(), cwd=tmp_path)
    assert done.code == 0 and bridge.seen == [], done.text
    assert ADMIN_KEY not in done.text and "(redacted)" in done.out
    body = json.loads(done.out[done.out.index("{") :])
    assert body["metadata"]["ci"]["run_id"] == "777" and body["source_url"].endswith("/actions/runs/777/attempts/1")


def test_the_action_args_on_several_lines_are_not_silently_dropped(
    http_bridge: HttpBridge, api: Any, tmp_path: Path
) -> None:
    """``args`` written as a YAML block (one flag a line, as workflows often do): flags after the first line must
    reach the command, or the step must say it cannot take them; never a deployment stored without them."""
    done, _output = _action(http_bridge, tmp_path, {"args": "--rollback\n--fixes 1.4.2\n"})
    stored = deployments(api)
    if done.returncode == 0:
        assert len(stored) == 1 and stored[0].get("fixes") == "1.4.2", stored


@pytest.mark.parametrize(
    "variables",
    [
        {"GITHUB_ACTIONS": "true"},
        {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "1", "GITHUB_SHA": "HEAD", "GITHUB_REF": "refs/heads/"},
        {"GITLAB_CI": "true", "CI_PIPELINE_ID": "\u00e9\u00e9", "CI_JOB_STARTED_AT": "not a time"},
        {"JENKINS_URL": "http://j", "BUILD_NUMBER": "7", "JOB_NAME": "a/b/c" * 40, "GIT_URL": "https://u:p@h/x/y.git"},
        {"TF_BUILD": "True", "BUILD_BUILDID": "9", "SYSTEM_PIPELINESTARTTIME": "2024-03-01 11:00:00.1234567+00:00"},
        {"BITBUCKET_BUILD_NUMBER": "3", "BITBUCKET_STEP_UUID": "{" + "a" * 36 + "}"},
        {"BUILDKITE": "true", "BUILDKITE_BUILD_ID": "x" * 300, "BUILDKITE_COMMIT": "HEAD"},
        {"CIRCLECI": "true", "CIRCLE_WORKFLOW_ID": "w", "CIRCLE_BRANCH": "feat\nline", "CIRCLE_SHA1": ""},
    ],
)
def test_sparse_or_odd_ci_variables_still_record_the_deployment(
    bridge: Bridge, api: Any, tmp_path: Path, variables: dict[str, str]
) -> None:
    done = cli("deployment", "--service", "shop", "--env", "production", env=variables, cwd=tmp_path)
    assert "Traceback" not in done.text, done.text
    assert done.code == 0, done.text
    (stored,) = deployments(api)
    assert "u:p@" not in json.dumps(stored)


def test_no_fail_also_covers_an_unexpected_error(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    """``--no-fail`` "exits 0 whatever happens": an answer the command cannot read must not fail the job either."""
    repo = _repo(tmp_path)
    _commit(repo, "one", "2024-03-01T08:00:00Z")
    bridge.after.append(_replace_body({"commits": {"received": "many"}}))
    done = cli("changes", "HEAD", "--no-ci", "--no-fail", cwd=repo)
    assert done.code == 0, done.text
