"""The secrets key in template.yaml (issue 20, item 4): what it is, who may encrypt or decrypt with it, who is
told its ARN; and how ``dora_local.iam`` authorises KMS calls. Pure: no moto, no network."""

from __future__ import annotations

from typing import Any

import pytest

from dora_local import iam
from dora_local.iam import Decision, Request, evaluate, requests_of
from dora_local.template import Resolver, functions, load
from tests.support.template import resources

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/0000abcd-12ab-34cd-56ef-1234567890ab"
# The routes that store a secret the service reads back, and those (with the delivery function) that use one.
ENCRYPTING = {
    "SetGithubWebhookSecretFunction",
    "SetPagerdutyWebhookFunction",
    "CreateAlertDestinationFunction",
    "UpdateAlertDestinationFunction",
}
DECRYPTING = {
    "GithubWebhookFunction",
    "PagerdutyWebhookFunction",
    "TestAlertDestinationFunction",
    "AlertDeliveryFunction",
}
FUNCTIONS = sorted(n for n, r in load()["Resources"].items() if r["Type"] == "AWS::Serverless::Function")


def _resolver() -> Resolver:
    return Resolver(
        names={"Table": "dora", "SecretsKey": KEY.rsplit("/", 1)[-1]},
        arns={"Table": "arn:aws:dynamodb:us-east-1:123456789012:table/dora", "SecretsKey": KEY},
        doc=load(),
    )


def _allowed(action: str, resource: str) -> set[str]:
    return {
        f for f in FUNCTIONS if evaluate(iam.role_of(f, _resolver()).statements, action, resource) is Decision.ALLOWED
    }


def test_the_key_is_symmetric_rotated_kept_with_the_table_and_administered_by_the_account_through_iam() -> None:
    (name,) = resources("AWS::KMS::Key")
    key = resources("AWS::KMS::Key")[name]
    properties = key["Properties"]
    assert (properties["KeySpec"], properties["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert properties["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"  # as the table whose secrets it holds
    (statement,) = properties["KeyPolicy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert (statement["Action"], statement["Resource"]) == ("kms:*", "*")
    (alias,) = resources("AWS::KMS::Alias").values()
    assert alias["Properties"]["TargetKeyId"] == {"Ref": name}
    assert alias["Properties"]["AliasName"] == {"Fn::Sub": "alias/dora-insights-${Stage}-secrets"}


def test_only_the_routes_that_store_a_secret_may_encrypt_with_the_key() -> None:
    assert _allowed("kms:Encrypt", KEY) == ENCRYPTING


def test_only_the_routes_and_the_delivery_function_that_use_a_secret_may_decrypt_with_the_key() -> None:
    assert _allowed("kms:Decrypt", KEY) == DECRYPTING


@pytest.mark.parametrize(
    "action", ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DisableKey"]
)
def test_no_function_may_use_another_key_or_do_anything_else_with_this_one(action: str) -> None:
    assert _allowed(action, OTHER_KEY) == set()
    if action not in ("kms:Encrypt", "kms:Decrypt"):
        assert _allowed(action, KEY) == set()


def test_only_the_functions_that_encrypt_or_decrypt_are_told_the_keys_arn() -> None:
    doc = load()
    told = {name for name, f in functions(doc).items() if "SECRETS_KEY_ARN" in f.environment}
    assert told == ENCRYPTING | DECRYPTING
    for name in told:
        variables = doc["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["SECRETS_KEY_ARN"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}, name
    assert "SECRETS_KEY_ARN" not in doc["Globals"]["Function"]["Environment"]["Variables"]


def test_the_stack_names_the_key_for_the_admin_command() -> None:
    assert load()["Outputs"]["SecretsKeyArn"]["Value"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}


def test_the_github_webhook_receiver_may_still_ingest_and_enqueue_retries_but_not_encrypt() -> None:
    resolver = _resolver()
    queue = "arn:aws:sqs:us-east-1:123456789012:dora-retry"
    resolver.arns["RetryQueue"] = queue
    statements = iam.role_of("GithubWebhookFunction", resolver).statements
    ingest = iam.role_of("GitlabWebhookFunction", resolver).statements  # the same work, no secret to decrypt
    table = resolver.arns["Table"]
    requests = [(a, table) for a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")]
    for action, resource in [*requests, ("sqs:SendMessage", queue)]:
        assert evaluate(statements, action, resource) is Decision.ALLOWED, action
        assert evaluate(ingest, action, resource) is Decision.ALLOWED, action
    assert evaluate(statements, "sqs:SendMessage", queue + "-dlq") is Decision.IMPLICIT_DENY
    assert evaluate(statements, "kms:Encrypt", KEY) is Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------------------------- dora_local.iam
def _moto_ciphertext(key_id: str) -> bytes:
    """A ciphertext blob as moto writes one: the key's id, then IV, tag and ciphertext."""
    return key_id.encode() + bytes(12 + 16 + 8)


@pytest.mark.parametrize(
    ("operation", "params", "resource"),
    [
        ("Encrypt", {"KeyId": KEY, "Plaintext": b"x"}, KEY),
        ("Encrypt", {"KeyId": KEY.rsplit("/", 1)[-1], "Plaintext": b"x"}, KEY),  # a key id: its key's ARN
        ("Decrypt", {"KeyId": KEY, "CiphertextBlob": _moto_ciphertext(OTHER_KEY.rsplit("/", 1)[-1])}, KEY),
        ("Decrypt", {"CiphertextBlob": _moto_ciphertext(KEY.rsplit("/", 1)[-1])}, KEY),  # the key it names
        ("Decrypt", {"CiphertextBlob": b"not a moto ciphertext"}, "*"),
        # An alias is authorised as the alias: a statement on the key does not cover it (see iam's docstring).
        ("Encrypt", {"KeyId": "alias/secrets", "Plaintext": b"x"}, "arn:aws:kms:us-east-1:123456789012:alias/secrets"),
        ("ListKeys", {}, "*"),
    ],
)
def test_kms_calls_are_authorised_on_the_key_they_name(operation: str, params: dict[str, Any], resource: str) -> None:
    assert requests_of("kms", operation, params) == [Request(f"kms:{operation}", resource)]


def test_in_tests_the_key_arn_in_the_environment_stands_for_the_templates_key() -> None:
    resolver = iam.environment_resolver("PagerdutyWebhookFunction", {"TABLE_NAME": "t", "SECRETS_KEY_ARN": KEY})
    assert resolver.arns["SecretsKey"] == KEY
    statements = iam.role_of("PagerdutyWebhookFunction", resolver).statements
    assert evaluate(statements, "kms:Decrypt", KEY) is Decision.ALLOWED
    assert evaluate(statements, "kms:Encrypt", KEY) is Decision.IMPLICIT_DENY
    by_id = iam.environment_resolver("PagerdutyWebhookFunction", {"SECRETS_KEY_ARN": KEY.rsplit("/", 1)[-1]})
    assert by_id.arns["SecretsKey"] == KEY
