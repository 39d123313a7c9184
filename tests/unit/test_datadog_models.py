"""Datadog DORA request models and their mapping onto the core drafts (no I/O)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dora_insights.dialects.datadog import (
    DeploymentRequest,
    EventResponse,
    FailureRequest,
    map_tags,
    normalise_repository,
)
from dora_insights.domain.model import Source

SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
EXAMPLE: dict[str, Any] = {
    "data": {
        "attributes": {
            "finished_at": 1693491984000000000,
            "git": {"commit_sha": SHA, "repository_url": "https://github.com/organization/example-repository"},
            "service": "shopist",
            "started_at": 1693491974000000000,
            "version": "v1.12.07",
        }
    }
}


def attributes(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["data"]["attributes"].update(changes)
    return body


def locations(error: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def test_reference_example_maps_onto_the_deployment_draft() -> None:
    draft = DeploymentRequest.model_validate(EXAMPLE).data.attributes.to_draft()
    assert draft.source is Source.DATADOG
    assert draft.project == "shopist"
    assert draft.environment is None
    assert draft.finished_at == datetime(2023, 8, 31, 14, 26, 24, tzinfo=UTC)
    assert draft.started_at == datetime(2023, 8, 31, 14, 26, 14, tzinfo=UTC)
    assert draft.commit_sha == SHA
    assert draft.repository == "organization/example-repository"
    assert draft.client_id is None


def test_same_event_has_the_same_fingerprint() -> None:
    one = DeploymentRequest.model_validate(EXAMPLE).data.attributes.to_draft()
    two = DeploymentRequest.model_validate(copy.deepcopy(EXAMPLE)).data.attributes.to_draft()
    assert one.fingerprint() == two.fingerprint()


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/org/name", "org/name"),
        ("https://github.com/org/name.git", "org/name"),
        ("https://github.com/org/name/", "org/name"),
        ("git@github.com:org/name.git", "org/name"),
        ("ssh://git@gitlab.com/group/sub/name.git", "group/sub/name"),
        ("https://token@bitbucket.org:443/team/repo", "team/repo"),
        ("org/name", "org/name"),
        ("https://github.com/justone", None),
        ("https://github.com/org/name#frag", None),
        ("not a url", None),
        ("ftp://host/org/name", None),
    ],
)
def test_repository_urls_normalise_to_org_and_name(url: str, name: str | None) -> None:
    assert normalise_repository(url) == name


def test_tenant_and_tenant_tag_tags() -> None:
    mapped = map_tags(["tenant:acme", "tenant_tag:Location/Europe", "tenant_tag:Tier/Gold", "repo:a/b", "tenant:acme"])
    assert mapped.tenant == "acme"
    assert mapped.tenant_tags == ("Location/Europe", "Tier/Gold")


def test_other_slash_valued_tags_are_not_tenant_tags() -> None:
    assert map_tags(["path:a/b"]).tenant_tags == ()


@pytest.mark.parametrize("value", [1693491984, 1693491984000, 1693491984000000, 1693491984000000000])
def test_unix_magnitudes(value: int) -> None:
    draft = DeploymentRequest.model_validate(attributes(finished_at=value, started_at=value)).data.attributes.to_draft()
    assert draft.finished_at == datetime(2023, 8, 31, 14, 26, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"service": None}, ("data", "attributes", "service")),
        ({"finished_at": "1693491984"}, ("data", "attributes", "finished_at")),
        ({"started_at": 1693491994, "finished_at": 1693491984}, ("data", "attributes", "started_at")),
        ({"id": "a" * 15}, ("data", "attributes", "id")),
        ({"custom_tags": ["ok:1", "bad"]}, ("data", "attributes", "custom_tags", 1)),
        ({"custom_tags": ["tenant:a", "tenant:b"]}, ("data", "attributes", "custom_tags")),
        ({"git": {"commit_sha": SHA}}, ("data", "attributes", "git", "repository_url")),
    ],
)
def test_rules_report_the_field(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        DeploymentRequest.model_validate(attributes(**changes))
    assert loc in locations(caught.value)


@pytest.mark.parametrize("event_id", ["a" * 16, "a" * 128, "Ab0_.:-" * 3])
def test_valid_ids(event_id: str) -> None:
    draft = DeploymentRequest.model_validate(attributes(id=event_id)).data.attributes.to_draft()
    assert draft.client_id == event_id


def test_failure_merges_service_and_services() -> None:
    body = {"data": {"attributes": {"service": "shop", "services": ["cart", "SHOP"], "started_at": 1693491974}}}
    draft = FailureRequest.model_validate(body).data.attributes.to_draft()
    assert draft.projects == ("shop", "cart")
    assert draft.finished_at is None
    assert draft.source is Source.DATADOG


def test_failure_needs_a_service() -> None:
    with pytest.raises(ValidationError) as caught:
        FailureRequest.model_validate({"data": {"attributes": {"started_at": 1693491974}}})
    assert ("data", "attributes", "services") in locations(caught.value)


def test_responses_have_the_reference_shape() -> None:
    assert EventResponse.deployment("4242fcdd31586083").model_dump() == {
        "data": {"id": "4242fcdd31586083", "type": "dora_deployment"}
    }
    assert EventResponse.failure("x").model_dump()["data"]["type"] == "dora_failure"
