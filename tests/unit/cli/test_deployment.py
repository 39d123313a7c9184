"""`deployment --dry-run` in process: what the body says, from flags, variables, config files and the CI."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dora_insights_cli.context import Context
from dora_insights_cli.main import main
from tests.unit.cli.ci_variables import SHA, job

NOW = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
CONNECTION = {"DORA_INSIGHTS_URL": "http://dora.test", "DORA_INSIGHTS_SPACE": "Spaces-1"}


def _dry_run(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(env={**CONNECTION, **(env or {})}, cwd=tmp_path, home=tmp_path, out=out, err=err, now=lambda: NOW)
    code = main(["deployment", "--dry-run", *flags], ctx)
    text = out.getvalue()
    return code, json.loads(text[text.index("{") :]) if "{" in text else {}, err.getvalue()


def test_the_ci_fills_the_body(tmp_path: Path) -> None:
    code, body, _ = _dry_run(tmp_path, env=job("gitlab").variables)

    assert code == 0
    assert (body["project"], body["environment"], body["commit_sha"]) == ("shop", "production", SHA)
    assert (body["started_at"], body["finished_at"]) == ("2024-03-01T11:50:00.000Z", "2024-03-01T12:30:00.000Z")
    assert body["tags"] == ["branch:main"]
    assert "integration_branch" not in body  # it would switch attribution to pull requests only


def test_the_same_job_gets_the_same_id_at_another_time(tmp_path: Path) -> None:
    variables = job("github").variables
    _, first, _ = _dry_run(tmp_path, "--env", "prod", env=variables)
    _, later, _ = _dry_run(tmp_path, "--env", "prod", "--finished-at", "2024-03-01T13:00:00Z", env=variables)

    assert first["id"] == later["id"] and first["id"].startswith("github-4242-1-")


def test_outside_ci_each_invocation_has_its_own_id(tmp_path: Path) -> None:
    _, first, _ = _dry_run(tmp_path, "--service", "shop", "--env", "prod")
    _, second, _ = _dry_run(tmp_path, "--service", "shop", "--env", "prod")

    assert first["id"] != second["id"] and first["id"].startswith("cli-")


def test_environment_variables_win_over_the_ci_and_the_ci_over_config_files(tmp_path: Path) -> None:
    (tmp_path / ".dora-insights.toml").write_text('env = "from-file"\nservice = "from-file"\n')
    variables = job("gitlab").variables

    _, from_ci, _ = _dry_run(tmp_path, env=variables)
    _, from_env, _ = _dry_run(tmp_path, env={**variables, "DORA_INSIGHTS_ENV": "from-env", "DD_SERVICE": "dd"})
    _, from_file, _ = _dry_run(tmp_path, env=job("github").variables)

    assert (from_ci["environment"], from_ci["project"]) == ("production", "from-file")
    assert (from_env["environment"], from_env["project"]) == ("from-env", "dd")
    assert from_file["environment"] == "from-file"


def test_skip_git_sends_no_sha_and_no_repository(tmp_path: Path) -> None:
    _, body, err = _dry_run(tmp_path, "--skip-git", env=job("gitlab").variables)

    assert "commit_sha" not in body and "repository" not in body
    assert err == ""


def test_integration_branch_without_a_value_is_the_branch_built(tmp_path: Path) -> None:
    _, body, _ = _dry_run(tmp_path, "--integration-branch", env=job("gitlab").variables)

    assert body["integration_branch"] == "main"


def test_no_sha_is_warned_about(tmp_path: Path) -> None:
    _, body, err = _dry_run(tmp_path, "--service", "shop", "--env", "prod")

    assert "commit_sha" not in body
    assert "no commit sha" in err and "lead time" in err


def test_a_bad_time_is_a_usage_error_naming_the_flag(tmp_path: Path) -> None:
    code, _, err = _dry_run(tmp_path, "--service", "s", "--env", "e", "--started-at", "yesterday")

    assert code == 2
    assert "--started-at" in err


@pytest.mark.parametrize("ci", ["github", "circleci", "jenkins", "buildkite"])
def test_cis_without_an_environment_variable_need_env(ci: str, tmp_path: Path) -> None:
    code, _, err = _dry_run(tmp_path, env=job(ci).variables)

    assert code == 2
    assert "--env" in err


def test_dry_run_needs_no_key(tmp_path: Path) -> None:
    code, body, _ = _dry_run(tmp_path, "--service", "s", "--env", "e")

    assert code == 0 and body["project"] == "s"
