"""The GitHub Action (action.yml): every input reaches its flag of `dora-insights deployment`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dora_insights_cli.main import parser
from tests.unit.cli.action_step import action, run_send_step
from tests.unit.cli.ci_variables import SHA, job


def test_the_action_is_composite_and_installs_the_cli_from_its_own_path() -> None:
    metadata = action()

    assert metadata["runs"]["using"] == "composite"
    install = next(s for s in metadata["runs"]["steps"] if s.get("id") == "install")
    assert '"$GITHUB_ACTION_PATH/cli"' in install["run"]


def test_every_flag_the_action_passes_exists() -> None:
    (send,) = [s for s in action()["runs"]["steps"] if s.get("id") == "send"]
    deployment = parser()._subparsers._group_actions[0].choices["deployment"]  # argparse keeps subcommands here
    known = {option for a in deployment._actions for option in a.option_strings}

    passed = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", send["run"]))

    assert {"--env", "--service", "--custom-tags", "--dry-run", "--no-fail", "--output"} <= passed
    assert passed <= known


def test_inputs_map_to_flags(tmp_path: Path) -> None:
    output = tmp_path / "github_output"
    inputs = {
        "url": "http://dora.test",
        "api-key": "secret-key-0123456789",
        "space": "Spaces-3",
        "env": "production",
        "service": "checkout",
        "version": "2.1.0",
        "started-at": "2024-03-01T11:00:00Z",
        "finished-at": "2024-03-01T12:00:00Z",
        "state": "Failed",
        "team": "payments",
        "custom-tags": "tier:1, region:eu\nowner:ops",
        "dry-run": "true",
        "args": "--rollback --fixes 2.0.9",
    }

    done = run_send_step(inputs, job("github", run="77").variables, output, tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("POST http://dora.test/api/Spaces-3/deployments\n")
    assert "secret-key-0123456789" not in done.stdout + done.stderr
    body = json.loads(done.stdout[done.stdout.index("{") :])
    assert (body["project"], body["environment"], body["version"], body["state"]) == (
        "checkout",
        "production",
        "2.1.0",
        "Failed",
    )
    assert (body["started_at"], body["finished_at"]) == ("2024-03-01T11:00:00.000Z", "2024-03-01T12:00:00.000Z")
    assert (body["team"], body["rollback"], body["fixes"], body["commit_sha"]) == ("payments", True, "2.0.9", SHA)
    assert {"tier:1", "region:eu", "owner:ops", "branch:main"} <= set(body["tags"])
    assert output.read_text() == "deployment-id=\n"  # a dry run stores nothing
