"""The GitHub webhook secret encrypted with the stack's KMS key (issue 20, item 4), through the routes as
deployed (each under its role), against moto's KMS.

No plaintext reaches the table; a ciphertext copied into another space's item verifies nothing there; a space
written before encryption keeps verifying and its next set encrypts it; neither the secret nor its ciphertext
is in an API answer or a log line; the receiver calls KMS once per secret, not once per delivery.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from dora_insights.dal import keys
from dora_insights.dal.secrets import KmsSecretBox
from dora_insights.dialects.github import sign
from dora_local.iam import Request
from tests.conftest import ADMIN_KEY, Api, Aws
from tests.support import lambdas
from tests.support.events import http_event
from tests.support.fixtures import OTHER_KEY
from tests.support.fixtures import OTHER_SPACE as OTHER
from tests.support.table import item, put, scan

SPACE = "Spaces-1"
SECRET = "github-webhook-secret-0123456789"
OTHER_SECRET = "other-space-github-secret-98765"
SET = "/api/{spaceId}/webhooks/github"
HOOK = "/webhooks/github/{spaceId}"


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every record the functions' logger emits during the test, message and extra fields as text."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(f"{record.getMessage()} {record.__dict__!r}")

    found: list[str] = []
    target = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    handler = Collect(level=logging.DEBUG)
    previous = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)


# --------------------------------------------------------------------------------------------- helpers
def set_secret(api: Api, secret: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> Any:
    return api.call("PUT", SET, path_params={"spaceId": space}, body={"secret": secret}, key=key)


def ping_event(secret: str, *, space: str = SPACE, delivery: str = "d-1") -> dict[str, Any]:
    raw = json.dumps({"zen": "Encourage flow.", "hook_id": 1})
    headers = {
        "x-github-event": "ping",
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(secret, raw.encode()),
    }
    return http_event("POST", HOOK, path_params={"spaceId": space}, raw_body=raw, headers=headers)


def ping(api: Api, secret: str, *, space: str = SPACE) -> int:
    raw = json.dumps({"zen": "Encourage flow.", "hook_id": 1})
    headers = {"x-github-event": "ping", "x-hub-signature-256": sign(secret, raw.encode())}
    return api.call("POST", HOOK, path_params={"spaceId": space}, raw_body=raw, headers=headers).status


def space_item(aws: Aws, space: str = SPACE) -> dict[str, Any]:
    """The space item as stored (read outside any function)."""
    return item(aws, keys.space(space))


def scan_text(aws: Aws) -> list[tuple[str, str]]:
    """Every item of the table as (its key, its whole JSON text)."""
    return [(f"{i['PK']} {i['SK']}", json.dumps(i, default=str)) for i in scan(aws)]


def signed_ping(secret: str) -> dict[str, Any]:
    raw = json.dumps({"zen": "x"})
    headers = {"x-github-event": "ping", "x-hub-signature-256": sign(secret, raw.encode())}
    return {"path_params": {"spaceId": SPACE}, "raw_body": raw, "headers": headers}


def decrypts_of(acting: Any) -> list[Request]:
    return [r for r in acting.allowed if r.action == "kms:Decrypt"]


# --------------------------------------------------------------------------------------------- at rest
def test_after_setting_the_secret_its_plaintext_is_nowhere_in_the_table_and_deliveries_verify(
    api: Api, aws: Aws
) -> None:
    answer = set_secret(api, SECRET)

    assert answer.status == 200 and answer.body == {"space_id": SPACE, "configured": True}
    assert ping(api, SECRET) == 200
    for where, text in scan_text(aws):
        assert SECRET not in text, f"the secret's plaintext is in {where}"
    stored = space_item(aws)
    assert "webhook_secret" not in stored and stored["webhook_secret_encrypted"]
    with lambdas.running_as("GithubWebhookFunction"):
        box = KmsSecretBox(aws.secrets_key_arn)
        context = {"space": SPACE, "purpose": "github-webhook"}
        assert box.open(stored["webhook_secret_encrypted"], context) == SECRET


def test_the_set_route_encrypts_and_never_decrypts(api: Api, aws: Aws, lambda_context: Any) -> None:
    event = http_event("PUT", SET, path_params={"spaceId": SPACE}, body={"secret": SECRET}, key=ADMIN_KEY)

    with lambdas.running_as("SetGithubWebhookSecretFunction") as acting:
        response = lambdas.handler("SetGithubWebhookSecretFunction")(event, lambda_context)

    assert response["statusCode"] == 200
    assert [r.action for r in acting.allowed if r.action.startswith("kms:")] == ["kms:Encrypt"]


def test_a_space_that_does_not_exist_is_a_404_and_nothing_is_stored(api: Api, aws: Aws) -> None:
    assert set_secret(api, SECRET, space="Spaces-77").status == 404
    assert not [where for where, text in scan_text(aws) if "Spaces-77" in where]


# --------------------------------------------------------------------------------------------- tenancy
def test_a_ciphertext_copied_into_another_spaces_item_verifies_nothing_there(
    api: Api, aws: Aws, other_space: str
) -> None:
    assert set_secret(api, SECRET).status == 200
    assert set_secret(api, OTHER_SECRET, space=OTHER, key=OTHER_KEY).status == 200
    moved = space_item(aws, OTHER)
    moved["webhook_secret_encrypted"] = space_item(aws)["webhook_secret_encrypted"]
    put(aws, moved)

    assert ping(api, SECRET, space=OTHER) == 401
    assert ping(api, OTHER_SECRET, space=OTHER) == 401
    assert ping(api, SECRET) == 200  # where it belongs, it still verifies


def test_a_ciphertext_that_does_not_decrypt_answers_githubs_usual_401(api: Api, aws: Aws) -> None:
    assert set_secret(api, SECRET).status == 200
    unknown = api.call(
        "POST", HOOK, path_params={"spaceId": "Spaces-404"}, raw_body="{}", headers={"x-github-event": "ping"}
    )
    altered = space_item(aws)
    altered["webhook_secret_encrypted"] = "bm90IGEgY2lwaGVydGV4dA=="  # base64, but no KMS ciphertext
    put(aws, altered)
    raw = json.dumps({"zen": "x"})
    headers = {"x-github-event": "ping", "x-hub-signature-256": sign(SECRET, raw.encode())}
    refused = api.call("POST", HOOK, path_params={"spaceId": SPACE}, raw_body=raw, headers=headers)

    assert (refused.status, refused.body) == (401, unknown.body)


# --------------------------------------------------------------------------------------------- legacy items
def test_a_legacy_plaintext_secret_still_verifies_and_the_next_set_encrypts_it_and_removes_the_plaintext(
    api: Api, aws: Aws
) -> None:
    # As the set route stored it before secrets were encrypted.
    put(aws, {**space_item(aws), "webhook_secret": SECRET})

    before = ping(api, SECRET)
    replaced = set_secret(api, OTHER_SECRET)
    stored = space_item(aws)

    assert (before, replaced.status) == (200, 200)
    assert "webhook_secret" not in stored and stored["webhook_secret_encrypted"]
    assert SECRET not in json.dumps(stored) and OTHER_SECRET not in json.dumps(stored)
    assert ping(api, OTHER_SECRET) == 200
    assert ping(api, SECRET) == 401


# --------------------------------------------------------------------------------------------- answers, logs
def test_neither_the_secret_nor_its_ciphertext_is_in_an_answer_or_a_log_line(
    api: Api, aws: Aws, store: Any, logged: list[str]
) -> None:
    from dora_insights.logic import spaces

    answers = [set_secret(api, SECRET)]
    ciphertext = space_item(aws)["webhook_secret_encrypted"]
    answers.append(api.call("GET", "/api/{spaceId}/settings", path_params={"spaceId": SPACE}, key=ADMIN_KEY))
    answers.append(api.call("GET", "/api/{spaceId}/apikeys", path_params={"spaceId": SPACE}, key=ADMIN_KEY))
    answers.append(api.call("GET", "/api/{spaceId}/health", path_params={"spaceId": SPACE}, key=ADMIN_KEY))
    for secret in (SECRET, "wrong secret"):
        raw = json.dumps({"zen": "x"})
        headers = {"x-github-event": "ping", "x-hub-signature-256": sign(secret, raw.encode())}
        answers.append(api.call("POST", HOOK, path_params={"spaceId": SPACE}, raw_body=raw, headers=headers))

    assert [a.status for a in answers] == [200, 200, 200, 200, 200, 401]
    assert logged  # the functions did log
    for text in [json.dumps(a.body) for a in answers] + logged:
        assert SECRET not in text and ciphertext not in text
    record = spaces.get_space(store, SPACE, fresh=True)
    assert record.webhook_secret_encrypted == ciphertext
    assert ciphertext not in repr(record) and "webhook_secret" not in repr(record)


# --------------------------------------------------------------------------------------------- KMS calls
def test_a_busy_receiver_decrypts_the_secret_once_and_an_unsigned_delivery_never(
    api: Api, aws: Aws, lambda_context: Any
) -> None:
    assert set_secret(api, SECRET).status == 200
    receive = lambdas.handler("GithubWebhookFunction")
    unsigned = http_event(
        "POST", HOOK, path_params={"spaceId": SPACE}, raw_body="{}", headers={"x-github-event": "ping"}
    )

    with lambdas.running_as("GithubWebhookFunction") as acting:
        statuses = [receive(ping_event(SECRET, delivery=f"d-{n}"), lambda_context)["statusCode"] for n in range(4)]
    with lambdas.running_as("GithubWebhookFunction") as refusing:
        refused = receive(unsigned, lambda_context)["statusCode"]

    assert statuses == [200] * 4 and refused == 401
    assert decrypts_of(acting) == [Request("kms:Decrypt", aws.secrets_key_arn)]
    assert decrypts_of(refusing) == []


def test_a_receiver_without_the_key_answers_503_for_a_signed_delivery(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.config import reset_settings

    assert set_secret(api, SECRET).status == 200
    monkeypatch.delenv("SECRETS_KEY_ARN")
    reset_settings()

    answer = api.call("POST", HOOK, **signed_ping(SECRET))

    assert answer.status == 503
    assert answer.body["message"] == "secrets cannot be encrypted or decrypted right now"
