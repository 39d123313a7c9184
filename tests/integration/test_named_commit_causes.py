"""METRICS §2 rule 4: a failure event naming a commit charges the first successful deployment of its
stream that shipped it, whatever page of the deployment's attribution lists the commit, and also when
the commit is the merge commit of a pull request the deployment shipped (pull-request data only, no
pushes). Before, only the deployment's own sha, its merge commits and its attribution's first page were
searched, so such an incident charged nothing: the change failure rate was too low and the next
deployment was not rework. Through the real routes and the scheduled recompute, against moto."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import attribution_of, create_deployment, read_deployment
from tests.support.recompute import scheduled_run

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
NOW = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
REPO = "acme/shop"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, key=ADMIN_KEY, path_params=SP, **kwargs)


def _summary(api: Api, **query: str) -> dict[str, Any]:
    found = _call(api, "GET", "/api/{spaceId}/summary", query=query)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _failure(api: Api, **fields: Any) -> None:
    body = {"project": "shop", "environment": "production", **fields}
    created = _call(api, "POST", "/api/{spaceId}/failures", body=body)
    assert created.status in (200, 201), created.body


def _sha(n: int) -> str:
    return hashlib.sha1(f"review commit {n}".encode(), usedforsecurity=False).hexdigest()


def test_rule4_commit_beyond_the_first_attribution_page_charges_its_deployment(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """d1 ships 300 commits, paged; an incident ten days later (outside rule 5's window) names one that is
    not on the first page: rule 4 charges d1 (before: nothing, the first page was all it searched)."""
    commits = [
        {
            "repository": REPO,
            "branch": "main",
            "sha": _sha(n),
            "timestamp": f"2024-03-01T00:{n // 60:02d}:{n % 60:02d}Z",
        }
        for n in range(301)
    ]
    sent = _call(api, "POST", "/api/{spaceId}/changes", body={"commits": commits})
    assert sent.status < 300, sent.body
    create_deployment(api, id="d0", repository=REPO, commit_sha=_sha(0), finished_at="2024-03-01T10:00:00Z")
    create_deployment(api, id="d1", repository=REPO, commit_sha=_sha(300), finished_at="2024-03-01T11:00:00Z")
    attribution = attribution_of(api, "d1")
    assert attribution["state"] == "Resolved" and attribution["commit_count"] == 300, attribution
    on_first_page = set(attribution["commits"])
    assert attribution["next_cursor"] is not None  # the shipment is paged
    off_page = next(_sha(n) for n in range(1, 301) if _sha(n) not in on_first_page)
    # Ten days later (outside the 24 h window), the incident names a commit d1 shipped: rule 4 charges d1.
    _failure(api, id="inc-deep", started_at="2024-03-11T08:00:00Z", commit_sha=off_page)
    scheduled_run(lambda_context)
    # /summary over March: 2 completed deployments (d0, d1), no rollback, 1 change failure (d1) -> 1/2.
    cfr = _summary(api, **{"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"})["change_failure_rate"]
    assert (cfr["change_failures"], cfr["deployments"], cfr["rate"]) == (1, 2, 0.5), cfr
    figures = read_deployment(api, "d1")["figures"]
    assert figures["change_failure"] is True, figures
    assert figures["change_failure_cause"] == "inc-deep"


def test_rule4_merge_commit_of_a_pull_request_the_deployment_shipped_charges_it(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Pull-request data only (no pushes): d1 ships PRs 2 and 3 (METRICS §5 mode 3). An incident naming PR 2's
    merge commit names a commit d1 was the first in its stream to ship: rule 4 charges d1."""
    pulls = [
        {
            "repository": REPO,
            "number": n,
            "base_ref": "main",
            "merge_commit_sha": _sha(1000 + n),
            "created_at": f"2024-03-01T0{n}:00:00Z",
            "merged_at": f"2024-03-01T0{n}:30:00Z",
        }
        for n in (1, 2, 3)
    ]
    sent = _call(api, "POST", "/api/{spaceId}/changes", body={"pull_requests": pulls})
    assert sent.status < 300, sent.body
    common = {"repository": REPO, "integration_branch": "main"}
    create_deployment(api, id="d0", commit_sha=_sha(1001), finished_at="2024-03-01T02:00:00Z", **common)
    create_deployment(api, id="d1", commit_sha=_sha(1003), finished_at="2024-03-01T04:00:00Z", **common)
    shipped = attribution_of(api, "d1")
    assert shipped["state"] == "Resolved", shipped
    assert sorted(pr["number"] for pr in shipped["pull_requests"]) == [2, 3], shipped
    _failure(api, id="inc-pr2", started_at="2024-03-12T08:00:00Z", commit_sha=_sha(1002))
    scheduled_run(lambda_context)
    figures = read_deployment(api, "d1")["figures"]
    assert figures["change_failure"] is True, figures
    assert figures["change_failure_cause"] == "inc-pr2"
