"""The Datadog dialect's read side (``dialects.datadog``): stored events in the client's shapes, what a
query searches, and the list request's attributes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dora_insights.dialects.datadog import (
    DeploymentListRequest,
    DeploymentObject,
    deployment_document,
    failure_document,
    repository_id,
)
from dora_insights.domain.event_search import Everything
from dora_insights.domain.model import Deployment, FailureEvent


def stored(**fields: Any) -> Deployment:
    base: dict[str, Any] = {
        "id": "d1",
        "space_id": "Spaces-1",
        "project": "shop",
        "project_id": "Projects-1",
        "environment": "prod",
        "environment_id": "Environments-1",
        "channel_id": "Channels-1",
        "finished_at": "2024-03-01T12:00:00.000Z",
        "received_at": "2024-03-01T12:00:00.000Z",
        "body_hash": "x",
    }
    return Deployment.model_validate(base | fields)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/org/name", "github.com/org/name"),
        ("https://github.com/org/name.git", "github.com/org/name"),
        ("https://user@gitlab.example.com:8443/group/sub/name/", "gitlab.example.com/group/sub/name"),
        ("ssh://git@github.com/org/name.git", "github.com/org/name"),
        ("git@github.com:org/name.git", "github.com/org/name"),
        ("org/name", "org/name"),
    ],
)
def test_repository_id_is_host_and_path(url: str, expected: str) -> None:
    assert repository_id(url) == expected


def test_absent_attributes_are_left_out_of_the_json() -> None:
    shown = DeploymentObject.from_domain(stored()).model_dump(mode="json")
    assert shown == {
        "id": "d1",
        "type": "dora_deployment",
        "attributes": {
            "custom_tags": [],
            "env": "prod",
            "finished_at": "2024-03-01T12:00:00.000Z",
            "service": "shop",
            "started_at": "2024-03-01T12:00:00.000Z",
        },
    }


def test_git_needs_both_the_commit_and_the_repository() -> None:
    assert DeploymentObject.from_domain(stored(commit_sha="abc1234")).attributes.git is None


def test_a_query_searches_attributes_and_tags_by_key() -> None:
    document = deployment_document(
        stored(team="web", version="1.0", tags=["Lang: py", "lang:go", "canary", "service:other"])
    )
    assert document == {
        "service": ("shop",),
        "env": ("prod",),
        "team": ("web",),
        "version": ("1.0",),
        "lang": ("py", "go"),
        "canary": ("",),
    }


def test_a_failures_service_is_each_of_its_services() -> None:
    failure = FailureEvent(
        id="f1",
        space_id="Spaces-1",
        projects=["shop", "api"],
        project_ids=["Projects-1", "Projects-2"],
        environment="prod",
        environment_id="Environments-1",
        started_at="2024-03-01T12:00:00.000Z",
        severity="high",
        received_at="2024-03-01T12:00:00.000Z",
        body_hash="x",
    )
    assert failure_document(failure) == {"service": ("shop", "api"), "env": ("prod",), "severity": ("high",)}


def test_list_attributes_default_to_ten_newest_first_of_everything() -> None:
    attributes = DeploymentListRequest.model_validate({"data": {"attributes": {}}}).data.attributes
    assert (attributes.limit, attributes.ascending, attributes.cursor) == (10, False, None)
    assert attributes.expression == Everything()


@pytest.mark.parametrize(
    ("attributes", "location"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"query": "service:"}, "query"),
        ({"sort": "-version"}, "sort"),
        ({"from": True}, "from"),
        ({"from": "2024-03-01T12:00:00"}, "from"),
        ({"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, "to"),
        ({"page": {"cursor": ""}}, "page"),
    ],
)
def test_bad_list_attributes_are_refused_where_they_are(attributes: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as raised:
        DeploymentListRequest.model_validate({"data": {"attributes": attributes}})
    assert raised.value.errors()[0]["loc"][:3] == ("data", "attributes", location)
