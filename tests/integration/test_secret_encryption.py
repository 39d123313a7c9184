"""Secrets encrypted with the stack's KMS key (issue 20, item 4): PagerDuty's webhook signing secret and alert
webhooks' signing secrets, through the routes as deployed (each under its role), against moto's KMS.

No plaintext reaches the table; a ciphertext copied into another space's item does not decrypt there; items
written before encryption keep working and are encrypted by their next write; a key the function may not
use is a 503 in the route's error shape.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dora_insights.dal import keys
from dora_insights.dal.secrets import KmsSecretBox
from dora_insights.dialects.incidents import pagerduty_signature
from dora_insights.domain.alert_destinations import signing_context as destination_context
from dora_insights.domain.incidents import IncidentSource, signing_context
from dora_insights.errors import RequestInvalidError
from dora_local.iam import Request
from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support import lambdas
from tests.support.events import http_event, load_event
from tests.support.fixtures import OTHER_KEY
from tests.support.fixtures import OTHER_SPACE as OTHER
from tests.support.receiver import Receiver, signed_with
from tests.support.table import item, put, scan

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
PD_SECRET = "pd-signing-secret-0123456789abcdef"
OTHER_PD_SECRET = "pd-other-space-secret-0123456789"
PD_CONFIG = "/api/{spaceId}/webhooks/pagerduty"
OG_CONFIG = "/api/{spaceId}/webhooks/opsgenie"
PD_HOOK = "/webhooks/pagerduty/{spaceId}"
DESTINATIONS = "/api/{spaceId}/alert-destinations"
ONE = DESTINATIONS + "/{destinationId}"
TEST = ONE + "/test"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


@pytest.fixture
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """The error records the functions' logger emits during the test."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record)

    found: list[logging.LogRecord] = []
    target = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    handler = Collect(level=logging.ERROR)
    target.addHandler(handler)
    try:
        yield found
    finally:
        target.removeHandler(handler)


# --------------------------------------------------------------------------------------------- helpers
def configure_pagerduty(api: Api, body: dict[str, Any], *, space: str = SPACE, key: str = ADMIN_KEY) -> Any:
    return api.call("PUT", PD_CONFIG, path_params={"spaceId": space}, body=body, key=key)


def pagerduty(api: Api, payload: dict[str, Any], secret: str, *, space: str = SPACE) -> Any:
    raw = json.dumps(payload)
    headers = {"x-pagerduty-signature": pagerduty_signature(secret, raw.encode())}
    return api.call("POST", PD_HOOK, path_params={"spaceId": space}, raw_body=raw, headers=headers)


def create_webhook(api: Api, url: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> dict[str, Any]:
    body = {"name": "on-call", "kind": "webhook", "url": url}
    made = api.call("POST", DESTINATIONS, path_params={"spaceId": space}, body=body, key=key)
    assert made.status == 201, made.body
    return dict(made.body)


def send_test_alert(api: Api, destination_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> Any:
    return api.call("POST", TEST, path_params={"spaceId": space, "destinationId": destination_id}, key=key)


def every_text(value: Any) -> Iterator[str]:
    """Every string (and binary value, decoded) anywhere in an attribute value, map keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, dict):
        for name, inner in value.items():
            yield str(name)
            yield from every_text(inner)
    elif isinstance(value, list | set | tuple):
        for inner in value:
            yield from every_text(inner)


# --------------------------------------------------------------------------------------------- at rest
def test_no_secrets_plaintext_is_anywhere_in_the_table_after_configuring_and_using_them(
    api: Api, aws: Aws, clock: Clock, receiver: Receiver, loopback: None
) -> None:
    assert (
        configure_pagerduty(api, {"secret": PD_SECRET, "services": {"Checkout API": {"project": "co"}}}).status == 200
    )
    opsgenie = api.call("PUT", OG_CONFIG, path_params={"spaceId": SPACE}, body={"services": {}}, key=ADMIN_KEY)
    made = create_webhook(api, f"{receiver.url}/hook")
    renamed = api.call(
        "PATCH", ONE, path_params={"spaceId": SPACE, "destinationId": made["id"]}, body={"name": "x"}, key=ADMIN_KEY
    )
    sent = send_test_alert(api, made["id"])
    delivered = pagerduty(api, load_event("pagerduty_incident_triggered.json"), PD_SECRET)

    assert (opsgenie.status, renamed.status, sent.status, delivered.status) == (200, 200, 200, 201)
    assert sent.body["status"] == "delivered" and signed_with(made["secret"], receiver.requests[-1])
    secrets = [PD_SECRET, opsgenie.body["secret"], made["secret"]]
    stored = scan(aws)
    assert len(stored) > 5
    for found in stored:
        texts = list(every_text(found))
        for secret in secrets:
            assert not [t for t in texts if secret in t], f"a secret's plaintext is in {found['PK']} {found['SK']}"
    config = item(aws, keys.incident_source(SPACE, "pagerduty"))
    destination = item(aws, keys.alert_destination(SPACE, made["id"]))
    assert "signing_secret" not in config and config["signing_secret_encrypted"]
    assert "secret" not in destination and destination["secret_encrypted"]


def test_a_decrypted_secret_is_cached_per_ciphertext_and_context_so_a_busy_receiver_calls_kms_once(
    aws: Aws,
) -> None:
    box = KmsSecretBox(aws.secrets_key_arn)
    context = signing_context(SPACE, IncidentSource.PAGERDUTY)
    sealed = box.seal(PD_SECRET, context)

    with lambdas.running_as("PagerdutyWebhookFunction") as receiver_function:
        opened = [box.open(sealed, context) for _ in range(5)]
        elsewhere = box.open(sealed, signing_context(OTHER, IncidentSource.PAGERDUTY))

    assert opened == [PD_SECRET] * 5
    assert elsewhere is None  # another context misses the cache, and KMS refuses it
    decrypts = [r for r in receiver_function.allowed if r.action == "kms:Decrypt"]
    assert decrypts == [Request("kms:Decrypt", aws.secrets_key_arn)] * 2


def test_a_secret_kms_cannot_take_is_the_callers_400_before_any_kms_call(aws: Aws) -> None:
    box = KmsSecretBox(aws.secrets_key_arn)
    context = signing_context(SPACE, IncidentSource.PAGERDUTY)

    with lambdas.running_as("SetPagerdutyWebhookFunction") as acting:
        for plaintext in ("", "x" * 4097):
            with pytest.raises(RequestInvalidError) as raised:
                box.seal(plaintext, context)
            assert (raised.value.status, raised.value.field) == (400, "secret")
        assert box.seal("x" * 4096, context)  # KMS's limit itself is taken

    assert [r.action for r in acting.allowed] == ["kms:Encrypt"]


# --------------------------------------------------------------------------------------------- tenancy
def test_a_pagerduty_ciphertext_copied_into_another_spaces_configuration_verifies_nothing_there(
    api: Api, aws: Aws, clock: Clock, other_space: str
) -> None:
    assert (
        configure_pagerduty(api, {"secret": PD_SECRET, "services": {"Checkout API": {"project": "co"}}}).status == 200
    )
    body = {"secret": OTHER_PD_SECRET, "services": {"Checkout API": {"project": "co"}}}
    assert configure_pagerduty(api, body, space=OTHER, key=OTHER_KEY).status == 200
    copied = item(aws, keys.incident_source(OTHER, "pagerduty"))
    copied["signing_secret_encrypted"] = item(aws, keys.incident_source(SPACE, "pagerduty"))["signing_secret_encrypted"]
    put(aws, copied)
    payload = load_event("pagerduty_incident_triggered.json")

    assert pagerduty(api, payload, PD_SECRET, space=OTHER).status == 401
    assert pagerduty(api, payload, OTHER_PD_SECRET, space=OTHER).status == 401
    assert pagerduty(api, payload, PD_SECRET, space=SPACE).status == 201  # where it belongs, it still verifies


def test_a_destination_ciphertext_copied_to_another_spaces_destination_signs_nothing_there(
    api: Api, aws: Aws, clock: Clock, receiver: Receiver, loopback: None, other_space: str
) -> None:
    mine = create_webhook(api, f"{receiver.url}/mine")
    theirs = create_webhook(api, f"{receiver.url}/theirs", space=OTHER, key=OTHER_KEY)
    copied = item(aws, keys.alert_destination(OTHER, theirs["id"]))
    copied["secret_encrypted"] = item(aws, keys.alert_destination(SPACE, mine["id"]))["secret_encrypted"]
    put(aws, copied)

    sent = send_test_alert(api, theirs["id"], space=OTHER, key=OTHER_KEY)

    assert sent.status == 200, sent.body
    assert sent.body["status"] == "failed" and "does not decrypt" in sent.body["error"]
    assert receiver.at("/theirs") == []  # nothing unsigned, nothing signed with the other space's secret
    box = KmsSecretBox(aws.secrets_key_arn)
    moved = copied["secret_encrypted"]
    with lambdas.running_as("TestAlertDestinationFunction"):
        assert box.open(moved, destination_context(OTHER, theirs["id"])) is None
        assert box.open(moved, destination_context(SPACE, mine["id"])) == mine["secret"]


# --------------------------------------------------------------------------------------------- legacy items
def test_a_legacy_plaintext_pagerduty_secret_still_verifies_and_the_next_configuration_encrypts_it(
    api: Api, aws: Aws, clock: Clock
) -> None:
    # As the configuration route stored it before secrets were encrypted.
    put(
        aws,
        {
            **keys.incident_source(SPACE, "pagerduty"),
            keys.TYPE: keys.T_INCIDENT_SOURCE,
            "space_id": SPACE,
            "source": "pagerduty",
            "signing_secret": PD_SECRET,
            "secret_set_at": "2024-01-01T00:00:00.000Z",
            "services": {"Checkout API": {"project": "co"}},
            "updated_at": "2024-01-01T00:00:00.000Z",
        },
    )

    opened = pagerduty(api, load_event("pagerduty_incident_triggered.json"), PD_SECRET)
    remapped = configure_pagerduty(api, {"services": {"Checkout API": {"project": "shop"}}})
    stored = item(aws, keys.incident_source(SPACE, "pagerduty"))
    resolved = pagerduty(api, load_event("pagerduty_incident_resolved.json"), PD_SECRET)

    assert (opened.status, remapped.status, resolved.status) == (201, 200, 200), resolved.body
    assert remapped.body["secret_set_at"] == "2024-01-01T00:00:00.000Z"  # the same secret, kept
    assert "signing_secret" not in stored
    assert PD_SECRET not in json.dumps(stored)
    box = KmsSecretBox(aws.secrets_key_arn)
    with lambdas.running_as("PagerdutyWebhookFunction"):
        context = signing_context(SPACE, IncidentSource.PAGERDUTY)
        assert box.open(stored["signing_secret_encrypted"], context) == PD_SECRET


def test_a_legacy_plaintext_destination_secret_still_signs_and_the_next_update_encrypts_it(
    api: Api, aws: Aws, clock: Clock, receiver: Receiver, loopback: None
) -> None:
    legacy = "whsec_legacy0123456789abcdef0123456789abcdef"
    put(
        aws,
        {
            **keys.alert_destination(SPACE, "0legacy"),
            keys.TYPE: keys.T_ALERT_DESTINATION,
            "id": "0legacy",
            "space_id": SPACE,
            "name": "before encryption",
            "kind": "webhook",
            "url": f"{receiver.url}/legacy",
            "enabled": True,
            "secret": legacy,
            "link_base": "http://localhost",
            "created_at": "2024-01-01T00:00:00.000Z",
            "created_by": "test",
        },
    )

    before = send_test_alert(api, "0legacy")
    path = {"spaceId": SPACE, "destinationId": "0legacy"}
    renamed = api.call("PATCH", ONE, path_params=path, body={"name": "renamed"}, key=ADMIN_KEY)
    stored = item(aws, keys.alert_destination(SPACE, "0legacy"))
    after = send_test_alert(api, "0legacy")

    assert (before.status, renamed.status, after.status) == (200, 200, 200)
    assert before.body["status"] == after.body["status"] == "delivered"
    assert [signed_with(legacy, r) for r in receiver.at("/legacy")] == [True, True]
    assert "secret" not in stored and stored["secret_encrypted"]
    assert legacy not in json.dumps(stored)


# --------------------------------------------------------------------------------------------- misconfiguration
def test_a_role_without_kms_decrypt_is_refused_as_aws_would_and_the_route_answers_a_503(
    api: Api, receiver: Receiver, loopback: None, errors_logged: list[logging.LogRecord], lambda_context: Any
) -> None:
    made = create_webhook(api, f"{receiver.url}/hook")
    path = {"spaceId": SPACE, "destinationId": made["id"]}
    event = http_event("POST", TEST, path_params=path, key=ADMIN_KEY)

    # The test-send route's code under the create route's role, which may encrypt but not decrypt.
    with lambdas.running_as("CreateAlertDestinationFunction", allow_denials=True) as acting:
        response = lambdas.handler("TestAlertDestinationFunction")(event, lambda_context)

    (denial,) = acting.denials
    assert denial.request == Request("kms:Decrypt", os.environ["SECRETS_KEY_ARN"])
    assert "not authorized to perform: kms:Decrypt" in denial.message
    assert response["statusCode"] == 503
    body = json.loads(response["body"])
    assert set(body) == {"message", "errors"} and "Traceback" not in response["body"]
    assert receiver.requests == []
    assert any("AccessDeniedException" in r.getMessage() and "kms:Decrypt" in r.getMessage() for r in errors_logged)


def test_a_deleted_or_missing_key_is_a_503_in_the_routes_error_shape(
    api: Api, monkeypatch: pytest.MonkeyPatch, errors_logged: list[logging.LogRecord]
) -> None:
    from dora_insights.config import reset_settings

    gone = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
    monkeypatch.setenv("SECRETS_KEY_ARN", gone)
    reset_settings()
    deleted = configure_pagerduty(api, {"secret": PD_SECRET, "services": {}})
    monkeypatch.delenv("SECRETS_KEY_ARN")
    reset_settings()
    missing = configure_pagerduty(api, {"secret": PD_SECRET, "services": {}})

    assert (deleted.status, missing.status) == (503, 503)
    assert (
        deleted.body
        == missing.body
        == {
            "message": "secrets cannot be encrypted or decrypted right now",
            "errors": ["secrets cannot be encrypted or decrypted right now"],
        }
    )
    assert any("NotFoundException" in r.getMessage() for r in errors_logged)
    assert any("SECRETS_KEY_ARN" in r.getMessage() for r in errors_logged)
    assert api.call("GET", PD_CONFIG, path_params={"spaceId": SPACE}, key=ADMIN_KEY).status == 404  # nothing stored
