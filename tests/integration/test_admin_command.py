"""``python -m dora_insights.admin`` bootstraps spaces and keys, and sets the GitHub webhook secret (encrypted),
straight against the table."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.conftest import Api, Aws

CLI_SECRET = "set-by-the-admin-command-0123"


def test_create_space_and_key_then_use_the_key(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from dora_insights.admin import main

    assert main(["create-space", "--name", "Payments"]) == 0
    space = json.loads(capsys.readouterr().out)
    assert space["id"].startswith("Spaces-")
    assert (
        main(["create-key", "--space", space["id"], "--name", "ci", "--scopes", "deployments:write,deployments:read"])
        == 0
    )
    key = json.loads(capsys.readouterr().out)
    assert key["scopes"] == ["deployments:write", "deployments:read"]
    created = Api().call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params={"spaceId": space["id"]},
        body={"project": "p", "environment": "e", "finished_at": 1},
        key=key["key"],
    )
    assert created.status == 201


def test_errors_are_reported_without_a_traceback(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from dora_insights.admin import main

    assert main(["create-key", "--space", "Spaces-404", "--name", "ci", "--scopes", "admin"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["create-key", "--space", "Spaces-404", "--name", "ci", "--scopes", "root"]) == 1


def test_set_webhook_secret_encrypts_with_the_key_in_secrets_key_arn_and_prints_no_secret(
    aws: Aws, space: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dora_insights.admin import main

    assert main(["set-webhook-secret", "--space", space, "--secret", CLI_SECRET]) == 0

    printed = capsys.readouterr()
    assert json.loads(printed.out) == {"space_id": space, "configured": True}
    assert CLI_SECRET not in printed.out + printed.err
    stored = _space_item(aws, space)
    assert "webhook_secret" not in stored and CLI_SECRET not in json.dumps(stored)
    assert _ping(space, CLI_SECRET) == 200


def test_set_webhook_secret_reads_the_secret_from_a_pipe_so_it_is_not_in_the_arguments(
    aws: Aws, space: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``printf %s "$SECRET" | ... set-webhook-secret --space S`` (README): the secret never stands in argv,
    which every user of the machine can list; a line end ``echo`` adds is not part of it."""
    from dora_insights.admin import main

    monkeypatch.setattr("sys.stdin", io.StringIO(CLI_SECRET + "\n"))

    assert main(["set-webhook-secret", "--space", space]) == 0

    printed = capsys.readouterr()
    assert json.loads(printed.out) == {"space_id": space, "configured": True}
    assert CLI_SECRET not in printed.out + printed.err
    assert _ping(space, CLI_SECRET) == 200


def test_set_webhook_secret_asks_without_echo_at_a_terminal(
    aws: Aws, space: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.admin import main

    asked: list[str] = []

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def getpass(prompt: str) -> str:
        asked.append(prompt)
        return CLI_SECRET

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", getpass)

    assert main(["set-webhook-secret", "--space", space]) == 0

    assert asked == ["GitHub webhook secret: "]
    capsys.readouterr()
    assert _ping(space, CLI_SECRET) == 200


def test_set_webhook_secret_with_nothing_piped_in_is_refused_and_stores_nothing(
    aws: Aws, space: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.admin import main

    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    assert main(["set-webhook-secret", "--space", space]) == 1

    assert "--secret: String should have at least 8 characters" in capsys.readouterr().err
    assert "webhook_secret_encrypted" not in _space_item(aws, space)


def test_set_webhook_secret_takes_the_key_from_the_secrets_key_option(
    aws: Aws, space: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.admin import main
    from dora_insights.config import reset_settings

    monkeypatch.delenv("SECRETS_KEY_ARN")
    reset_settings()
    argv = ["set-webhook-secret", "--space", space, "--secret", CLI_SECRET, "--secrets-key", aws.secrets_key_arn]

    assert main(argv) == 0

    capsys.readouterr()
    monkeypatch.setenv("SECRETS_KEY_ARN", aws.secrets_key_arn)  # the receiver's own configuration
    reset_settings()
    assert _ping(space, CLI_SECRET) == 200


def test_set_webhook_secret_without_a_key_stops_with_a_message_and_stores_nothing(
    aws: Aws, space: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.admin import main
    from dora_insights.config import reset_settings

    monkeypatch.delenv("SECRETS_KEY_ARN")
    reset_settings()

    with pytest.raises(SystemExit) as stopped:
        main(["set-webhook-secret", "--space", space, "--secret", CLI_SECRET])

    assert stopped.value.code == 2
    assert "--secrets-key or SECRETS_KEY_ARN" in capsys.readouterr().err
    assert "webhook_secret_encrypted" not in _space_item(aws, space)


def test_set_webhook_secret_of_an_unknown_space_is_an_error(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    from dora_insights.admin import main

    assert main(["set-webhook-secret", "--space", "Spaces-404", "--secret", CLI_SECRET]) == 1
    assert "not found" in capsys.readouterr().err


def _space_item(aws: Aws, space: str) -> dict[str, Any]:
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal import keys

    key = dal_aws.serialize(keys.space(space))
    found = dal_aws.client().get_item(TableName=aws.table_name, Key=key, ConsistentRead=True)
    return dal_aws.deserialize(found["Item"])


def _ping(space: str, secret: str) -> int:
    from dora_insights.dialects.github import sign

    raw = json.dumps({"zen": "Approachable is better than simple.", "hook_id": 3})
    headers = {"x-github-event": "ping", "x-hub-signature-256": sign(secret, raw.encode())}
    return (
        Api()
        .call("POST", "/webhooks/github/{spaceId}", path_params={"spaceId": space}, raw_body=raw, headers=headers)
        .status
    )
