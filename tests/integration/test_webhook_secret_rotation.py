"""A rotated GitHub webhook secret takes effect at once, even in a warm function that cached the space."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, Aws

ROUTE = "/webhooks/github/{spaceId}"
OLD = "old webhook secret"
NEW = "new webhook secret"


def ping(api: Api, secret: str) -> int:
    from dora_insights.dialects.github import sign

    raw = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 7})
    headers = {"x-github-event": "ping", "x-github-delivery": "d-7", "x-hub-signature-256": sign(secret, raw.encode())}
    return api.call("POST", ROUTE, path_params={"spaceId": "Spaces-1"}, raw_body=raw, headers=headers).status


def test_after_rotation_the_old_secret_fails_and_the_new_one_verifies_at_once(api: Api, aws: Aws, store: Any) -> None:
    from dora_insights.dal.secrets import KmsSecretBox
    from dora_insights.logic import admin, spaces

    box = KmsSecretBox(aws.secrets_key_arn)
    # Given a warm function: the space, with its (encrypted) secret, is in the cache
    admin.set_webhook_secret(store, box, "Spaces-1", OLD)
    spaces.clear_cache()
    assert ping(api, OLD) == 200
    cached = spaces.get_space(store, "Spaces-1").webhook_secret_encrypted
    assert cached is not None

    # When another function instance rotates the secret (this process's cache is not cleared)
    admin.set_webhook_secret(store, box, "Spaces-1", NEW)
    assert spaces.get_space(store, "Spaces-1").webhook_secret_encrypted == cached  # the cache is still stale

    # Then the old signature fails and the new one verifies, with no wait
    assert ping(api, OLD) == 401
    assert ping(api, NEW) == 200
    assert ping(api, OLD) == 401
