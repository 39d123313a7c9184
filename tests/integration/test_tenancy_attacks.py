"""Tenancy under attack (every key starts with the space; no path reads or writes across spaces).

The attacks test_auth_and_tenancy.py does not cover: cursors carried or forged across spaces, share
sessions and Orlo tokens replayed in another space, webhook credentials of one space sent to another,
viewer names shared by two spaces. Each is refused; these tests keep it so.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import create_deployment

SP1 = {"spaceId": "Spaces-1"}
SP2 = {"spaceId": OTHER_SPACE}
DEPLOYMENTS = "/api/{spaceId}/deployments"
INSIGHTS = "/api/projects/{spaceId}/insights"


def _b64(plain: dict[str, Any]) -> str:
    raw = json.dumps(plain, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def test_a_native_list_cursor_of_one_space_reads_nothing_in_another(api: Api, other_space: str) -> None:
    """A cursor space A's list issued, given to space B's list (or re-pointed at A's items under B's
    partition), is a 400: never a page of A's deployments."""
    for hour in range(3):
        create_deployment(api, finished_at=f"2024-03-01T0{hour}:00:00Z")
    first = api.call("GET", DEPLOYMENTS, path_params=SP1, query={"limit": "1"}, key=ADMIN_KEY)
    assert first.status == 200 and first.body["next_cursor"], first.body
    cursor = first.body["next_cursor"]
    replayed = api.call("GET", DEPLOYMENTS, path_params=SP2, query={"limit": "5", "cursor": cursor}, key=OTHER_KEY)
    assert replayed.status == 400, replayed.body
    forged = _unb64(cursor)
    forged["GSI1PK"] = f"S#{OTHER_SPACE}#DEPS"  # B's partition, A's table key
    crafted = api.call("GET", DEPLOYMENTS, path_params=SP2, query={"limit": "5", "cursor": _b64(forged)}, key=OTHER_KEY)
    assert crafted.status == 400, crafted.body


def test_a_datadog_list_cursor_of_one_space_reads_nothing_in_another(api: Api, other_space: str) -> None:
    """Datadog's list (no space in its path: the key's space) refuses a cursor another space's list issued."""
    for hour in range(3):
        create_deployment(api, finished_at=f"2024-03-01T0{hour}:00:00Z")
    route = "/api/v2/dora/deployments"
    body: dict[str, Any] = {"data": {"attributes": {"limit": 1}}}
    first = api.call("POST", route, body=body, headers={"DD-API-KEY": ADMIN_KEY})
    assert first.status == 200, first.body
    after = first.body["meta"]["page"]["after"]
    assert after
    body = {"data": {"attributes": {"limit": 5, "page": {"cursor": after}}}}
    replayed = api.call("POST", route, body=body, headers={"DD-API-KEY": OTHER_KEY})
    assert replayed.status == 400, replayed.body


def test_an_orlo_token_rewritten_to_name_another_space_is_refused(api: Api, other_space: str, clock: Clock) -> None:
    """An Orlo token is ``<space>.<secret>``: changing its space part never makes it valid in that space."""
    got = api.call("GET", "/orlo/token", key=ADMIN_KEY)
    assert got.status == 200, got.body
    _, _, secret = got.body["token"].partition(".")
    forged = f"{OTHER_SPACE}.{secret}"
    refused = api.call("GET", "/orlo/releases", headers={"x-auth-token": forged})
    assert refused.status == 401, refused.body


def _shared_insight(api: Api, space: dict[str, str], key: str) -> dict[str, str]:
    report = api.call("POST", "/api/{spaceId}/insights/reports", path_params=space, body={"Name": "R"}, key=key)
    assert report.status == 201, report.body
    query = {"kind": "DoraMetricsQuery", "reportId": report.body["Id"], "metric": "lead_time"}
    made = api.call("POST", INSIGHTS, path_params=space, body={"query": query}, key=key)
    assert made.status == 201, made.body
    one = {**space, "insightId": str(made.body["id"])}
    sharing = api.call(
        "PATCH",
        INSIGHTS + "/{insightId}/sharing",
        path_params=one,
        body={"enabled": True, "password_required": True},
        key=key,
    )
    assert sharing.status == 200, sharing.body
    added = api.call(
        "POST",
        INSIGHTS + "/{insightId}/sharing/passwords",
        path_params=one,
        body={"raw_password": "password-1"},
        key=key,
    )
    assert added.status == 201, added.body
    return {"accessToken": sharing.body["access_token"]}


def test_a_share_session_of_one_space_does_not_open_another_spaces_link(
    api: Api, other_space: str, clock: Clock, monkeypatch: Any
) -> None:
    """A session won by the password of space A's link is refused by space B's link (same insight id 1 in
    both spaces, same password)."""
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))
    link_a = _shared_insight(api, SP1, ADMIN_KEY)
    link_b = _shared_insight(api, SP2, OTHER_KEY)
    session = api.call("POST", "/shared/{accessToken}/login", path_params=link_a, body={"password": "password-1"})
    assert session.status == 200, session.body
    bearer = {"authorization": f"Bearer {session.body['token']}"}
    assert api.call("GET", "/shared/{accessToken}", path_params=link_a, headers=bearer).status == 200
    crossed = api.call("GET", "/shared/{accessToken}", path_params=link_b, headers=bearer)
    assert crossed.status == 401, crossed.body


def test_a_pagerduty_delivery_signed_for_one_space_is_the_unknown_space_401_in_another(
    api: Api, other_space: str, clock: Clock
) -> None:
    """PagerDuty configured in A only: A's signed delivery sent to B's path, and to a space that does not
    exist, answer the same 401 (nothing about B's existence or configuration leaks), nothing written in B."""
    from dora_insights.dialects.incidents import pagerduty_signature
    from tests.support.events import load_event

    secret = "pd-signing-secret-0123456789abcdef"
    put = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/pagerduty",
        path_params=SP1,
        body={"secret": secret, "services": {"Checkout API": {"project": "checkout"}}},
        key=ADMIN_KEY,
    )
    assert put.status == 200, put.body
    raw = json.dumps(load_event("pagerduty_incident_triggered.json"))
    headers = {"x-pagerduty-signature": pagerduty_signature(secret, raw.encode())}
    route = "/webhooks/pagerduty/{spaceId}"
    to_b = api.call("POST", route, path_params=SP2, raw_body=raw, headers=headers)
    to_none = api.call("POST", route, path_params={"spaceId": "Spaces-77"}, raw_body=raw, headers=headers)
    assert to_b.status == to_none.status == 401
    assert to_b.body == to_none.body
    failures = api.call("GET", "/api/{spaceId}/failures", path_params=SP2, key=OTHER_KEY)
    assert failures.status == 200 and failures.body["items"] == [], failures.body


def test_one_viewer_name_in_two_spaces_keeps_two_histories(api: Api, other_space: str, clock: Clock) -> None:
    """Keys of two spaces with the same user ('alice'): each sees only its own space's last views and
    trending, never the other space's insights or viewers."""
    alice_a, alice_b = (
        api.call(
            "POST",
            "/api/{spaceId}/apikeys",
            path_params=space,
            body={"name": "alice", "user": "alice", "scopes": ["admin"]},
            key=ADMIN_KEY,
        ).body["key"]
        for space in (SP1, SP2)
    )
    _shared_insight(api, SP1, alice_a)  # insight 1 of space A (sharing irrelevant here)
    viewed = api.call("POST", INSIGHTS + "/viewed", path_params=SP1, body={"insight_ids": [1]}, key=alice_a)
    assert viewed.status == 200, viewed.body
    mine_b = api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP2, key=alice_b)
    assert mine_b.status == 200 and mine_b.body == [], mine_b.body
    trending_b = api.call("GET", INSIGHTS + "/trending", path_params=SP2, key=alice_b)
    assert trending_b.status == 200 and trending_b.body["results"] == [], trending_b.body


def test_a_github_delivery_id_seen_in_one_space_is_processed_in_another(api: Api, other_space: str) -> None:
    """Delivery de-duplication is per space: space A having seen a delivery id neither suppresses nor
    answers for space B's delivery with the same id (and the answer never mentions A)."""
    from dora_insights.dialects.github import sign
    from dora_insights.logic import spaces

    for space, key, secret in ((SP1, ADMIN_KEY, "secret-of-space-A"), (SP2, ADMIN_KEY, "secret-of-space-B")):
        put = api.call("PUT", "/api/{spaceId}/webhooks/github", path_params=space, body={"secret": secret}, key=key)
        assert put.status == 200, put.body
    spaces.clear_cache()
    raw = json.dumps({"zen": "x", "hook_id": 1})

    def deliver(space: dict[str, str], secret: str) -> Any:
        headers = {
            "x-github-event": "ping",
            "x-github-delivery": "same-guid-1",
            "x-hub-signature-256": sign(secret, raw.encode()),
        }
        return api.call("POST", "/webhooks/github/{spaceId}", path_params=space, raw_body=raw, headers=headers)

    assert deliver(SP1, "secret-of-space-A").status == 200
    second = deliver(SP2, "secret-of-space-B")
    assert second.status == 200 and second.body == {"message": "pong"}, second.body
    assert deliver(SP2, "secret-of-space-A").status == 401  # A's secret never signs for B
