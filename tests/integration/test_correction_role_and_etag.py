"""A correction under its own role, and the deployment read's ETag, through the real routes against moto.

- A state correction of a deployment whose attribution waits for code data used to wake the deployments
  waiting for it through the retry queue, which the correction route's role may not use (AccessDenied in
  AWS, logged as an error): their own delayed retries and the sweep wake them instead.
- ``GET /api/{spaceId}/deployments/{id}`` answers ``ETag: "<revision>"``, the revision a PATCH's
  ``If-Match`` names (before, only the PATCH's answer carried it).
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult, _Context
from tests.support import lambdas
from tests.support.events import http_event
from tests.support.native import create_deployment, get_deployment, send_stream

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
ONE = "/api/{spaceId}/deployments/{deploymentId}"
REPO = "acme/shop"
SHAS = [f"{n:040x}" for n in range(1, 10)]  # never pushed: every attribution waits for its commits


def _send(
    api: Api, states: list[str | None], shas: list[int], *, space: str = SPACE, key: str = ADMIN_KEY
) -> list[str | None]:
    """One deployment an hour from 10:00 per state (None: not sent), deploying ``SHAS[shas[n]]``; their ids."""
    code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in shas]
    return send_stream(api, states, code, space=space, key=key, first_version=0)


def _patch(api: Api, deployment_id: str, body: dict[str, Any]) -> HttpResult:
    return api.call("PATCH", ONE, path_params={**SP, "deploymentId": deployment_id}, body=body, key=ADMIN_KEY)


def test_correcting_the_state_of_a_deployment_awaiting_its_commits_makes_no_call_its_role_denies(
    api: Api, clock: Clock
) -> None:
    # The commits are not known yet: every attribution is pending, each later one waiting for the one before.
    ids = _send(api, ["Success"] * 4, [0, 2, 4, 6])
    s1 = ids[1]
    assert s1 is not None
    event = http_event("PATCH", ONE, path_params={**SP, "deploymentId": s1}, body={"state": "Failed"}, key=ADMIN_KEY)
    logical_id = api.routes[("PATCH", ONE)]
    with lambdas.running_as(logical_id, allow_denials=True) as acting:
        answer = lambdas.handler(logical_id)(event, _Context())
    assert answer["statusCode"] == 200, answer
    # In AWS each of these is an AccessDenied (logged as an error; the woken deployments are not retried).
    assert [d.message for d in acting.denials] == []


def test_reading_a_deployment_answers_its_revision_as_the_etag_a_patch_if_match_names(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1.0")
    read = get_deployment(api, created["id"])
    assert read.status == 200, read.body
    assert read.header("ETag") == '"1"', read.headers
    patched = _patch(api, created["id"], {"version": "1.1"})
    assert patched.header("ETag") == '"2"'
    assert get_deployment(api, created["id"]).header("ETag") == '"2"'
