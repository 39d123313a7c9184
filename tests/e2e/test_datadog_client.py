"""Datadog's own Python client (datadog-api-client 2.62, ``DORAMetricsApi``) against the local runtime,
unchanged but for the host and the key (``DD-API-KEY``): create, get and list deployments and failures,
with queries, sorting and paging; patch by id and by version, delete deployments and failures; the
client's models parse every answer (patch and delete answer 202 with no body, which the client expects).

Each test works in a space of its own (created over the admin API), so what other e2e tests send to the
seeded space never shows up in these lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.api.dora_metrics_api import DORAMetricsApi
from datadog_api_client.v2.model.dora_deployment_patch_by_version_remediation_by_id import (
    DORADeploymentPatchByVersionRemediationByID,
)
from datadog_api_client.v2.model.dora_deployment_patch_by_version_request import DORADeploymentPatchByVersionRequest
from datadog_api_client.v2.model.dora_deployment_patch_by_version_request_attributes import (
    DORADeploymentPatchByVersionRequestAttributes,
)
from datadog_api_client.v2.model.dora_deployment_patch_by_version_request_data import (
    DORADeploymentPatchByVersionRequestData,
)
from datadog_api_client.v2.model.dora_deployment_patch_remediation import DORADeploymentPatchRemediation
from datadog_api_client.v2.model.dora_deployment_patch_remediation_type import DORADeploymentPatchRemediationType
from datadog_api_client.v2.model.dora_deployment_patch_request import DORADeploymentPatchRequest
from datadog_api_client.v2.model.dora_deployment_patch_request_attributes import DORADeploymentPatchRequestAttributes
from datadog_api_client.v2.model.dora_deployment_patch_request_data import DORADeploymentPatchRequestData
from datadog_api_client.v2.model.dora_deployment_patch_request_data_type import DORADeploymentPatchRequestDataType
from datadog_api_client.v2.model.dora_deployment_request import DORADeploymentRequest
from datadog_api_client.v2.model.dora_deployment_request_attributes import DORADeploymentRequestAttributes
from datadog_api_client.v2.model.dora_deployment_request_data import DORADeploymentRequestData
from datadog_api_client.v2.model.dora_failure_request import DORAFailureRequest
from datadog_api_client.v2.model.dora_failure_request_attributes import DORAFailureRequestAttributes
from datadog_api_client.v2.model.dora_failure_request_data import DORAFailureRequestData
from datadog_api_client.v2.model.dora_git_info import DORAGitInfo
from datadog_api_client.v2.model.dora_list_deployments_request import DORAListDeploymentsRequest
from datadog_api_client.v2.model.dora_list_deployments_request_attributes import DORAListDeploymentsRequestAttributes
from datadog_api_client.v2.model.dora_list_deployments_request_data import DORAListDeploymentsRequestData
from datadog_api_client.v2.model.dora_list_deployments_request_data_type import DORAListDeploymentsRequestDataType
from datadog_api_client.v2.model.dora_list_failures_request import DORAListFailuresRequest
from datadog_api_client.v2.model.dora_list_failures_request_attributes import DORAListFailuresRequestAttributes
from datadog_api_client.v2.model.dora_list_failures_request_data import DORAListFailuresRequestData

from dora_local.server import LocalRuntime

pytestmark = pytest.mark.e2e
TIMEOUT = 30
START = datetime(2024, 2, 1, tzinfo=UTC)
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
REPO_URL = "https://github.com/organization/example-repository"


def _nanos(at: datetime) -> int:
    return int(at.timestamp()) * 10**9


@dataclass(frozen=True)
class DatadogSpace:
    """A new space of the local runtime and a key of it (``deployments:write`` and ``deployments:read``)."""

    url: str
    space_id: str
    key: str


@pytest.fixture
def datadog_space(local: LocalRuntime) -> DatadogSpace:
    admin = {"Authorization": f"Bearer {local.api_key}"}
    space = requests.post(
        f"{local.url}/api/spaces",
        json={"name": f"datadog-client-{uuid.uuid4().hex[:8]}"},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert space.status_code == 201, space.text
    key = requests.post(
        f"{local.url}/api/{space.json()['id']}/apikeys",
        json={"name": "datadog client", "scopes": ["deployments:write", "deployments:read"]},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert key.status_code == 201, key.text
    return DatadogSpace(url=local.url, space_id=space.json()["id"], key=key.json()["key"])


@pytest.fixture
def dora(datadog_space: DatadogSpace) -> Iterator[DORAMetricsApi]:
    """The client's ``DORAMetricsApi`` with the local runtime as host and a new space's key as ``DD-API-KEY``."""
    configuration = Configuration(host=datadog_space.url)
    configuration.api_key["apiKeyAuth"] = datadog_space.key
    with ApiClient(configuration) as client:
        yield DORAMetricsApi(client)


def deploy(dora: DORAMetricsApi, hour: int, service: str, env: str, **extra: Any) -> str:
    finished = START + timedelta(hours=hour)
    attributes = DORADeploymentRequestAttributes(
        service=service,
        env=env,
        started_at=_nanos(finished - timedelta(minutes=5)),
        finished_at=_nanos(finished),
        **extra,
    )
    response = dora.create_dora_deployment(body=DORADeploymentRequest(data=DORADeploymentRequestData(attributes)))
    return str(response.data.id)


def deployments(dora: DORAMetricsApi, **attributes: Any) -> Any:
    body = DORAListDeploymentsRequest(
        data=DORAListDeploymentsRequestData(
            attributes=DORAListDeploymentsRequestAttributes(**attributes),
            type=DORAListDeploymentsRequestDataType.DORA_DEPLOYMENTS_LIST_REQUEST,
        )
    )
    return dora.list_dora_deployments(body=body)


def test_a_deployment_sent_with_the_client_reads_back_through_it(dora: DORAMetricsApi) -> None:
    deployment_id = deploy(
        dora,
        1,
        "checkout",
        "production",
        id="checkout-2024-02-01-0001",
        team="payments",
        version="v1.12.07",
        custom_tags=["language:java", "department:engineering"],
        git=DORAGitInfo(commit_sha=SHA, repository_url=REPO_URL),
    )
    assert deployment_id == "checkout-2024-02-01-0001"
    got = dora.get_dora_deployment(deployment_id=deployment_id).data
    assert got.id == deployment_id
    assert str(got.type) == "dora_deployment"
    attributes = got.attributes
    assert (attributes.service, attributes.env, attributes.team, attributes.version) == (
        "checkout",
        "production",
        "payments",
        "v1.12.07",
    )
    assert attributes.custom_tags == ["language:java", "department:engineering"]
    assert attributes.started_at == START + timedelta(minutes=55)
    assert attributes.finished_at == START + timedelta(hours=1)
    assert (attributes.git.commit_sha, attributes.git.repository_id) == (
        SHA,
        "github.com/organization/example-repository",
    )


def test_an_unknown_deployment_is_the_clients_not_found(dora: DORAMetricsApi) -> None:
    with pytest.raises(NotFoundException) as raised:
        dora.get_dora_deployment(deployment_id="no-such-deployment-0001")
    assert raised.value.status == 404
    with pytest.raises(NotFoundException):
        dora.get_dora_failure(failure_id="no-such-failure-00001")


def test_lists_take_queries_sorting_and_time_bounds(dora: DORAMetricsApi) -> None:
    for hour, service, env, tags in [
        (1, "checkout", "production", ["tier:1"]),
        (2, "checkout", "staging", []),
        (3, "search", "production", ["tier:2"]),
        (4, "checkout", "production", ["tier:1", "canary:true"]),
        (5, "billing", "production", ["tier:1"]),
    ]:
        deploy(dora, hour, service, env, id=f"{service}-{env}-{hour:04d}-0000", custom_tags=tags)

    def ids(**attributes: Any) -> list[str]:
        return [d.id for d in deployments(dora, **attributes).data]

    assert ids(query="service:checkout env:production", sort="-started_at") == [
        "checkout-production-0004-0000",
        "checkout-production-0001-0000",
    ]
    assert ids(query="service:checkout", sort="started_at") == [
        "checkout-production-0001-0000",
        "checkout-staging-0002-0000",
        "checkout-production-0004-0000",
    ]
    assert ids(query="tier:1 -canary:*", sort="-started_at") == [
        "billing-production-0005-0000",
        "checkout-production-0001-0000",
    ]
    assert ids(query='service:(search OR billing) OR env:"staging"') == [
        "billing-production-0005-0000",
        "search-production-0003-0000",
        "checkout-staging-0002-0000",
    ]
    assert ids(query="service:check*", _from=START + timedelta(hours=2), to=START + timedelta(hours=4)) == [
        "checkout-production-0004-0000",
        "checkout-staging-0002-0000",
    ]
    assert ids(query="service:nowhere") == []


def test_pages_are_followed_with_meta_page_after(dora: DORAMetricsApi) -> None:
    created = [deploy(dora, hour, "inventory", "production") for hour in range(1, 6)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        extra = {"page": {"cursor": cursor}} if cursor else {}
        response = deployments(dora, query="service:inventory", sort="finished_at", limit=2, **extra)
        seen += [d.id for d in response.data]
        pages += 1
        meta = response.get("meta")
        cursor = meta["page"]["after"] if meta else None
        if cursor is None:
            break
    assert pages == 3
    assert seen == created


def test_a_malformed_query_is_the_clients_bad_request(dora: DORAMetricsApi) -> None:
    with pytest.raises(ApiException) as raised:
        deployments(dora, query="service:(checkout")
    assert raised.value.status == 400
    assert "never closed" in str(raised.value.body)


def test_failures_sent_with_the_client_are_got_and_listed(dora: DORAMetricsApi) -> None:
    def record(hour: int, services: list[str], severity: str, **extra: Any) -> str:
        attributes = DORAFailureRequestAttributes(
            services=services, severity=severity, started_at=_nanos(START + timedelta(hours=hour)), **extra
        )
        response = dora.create_dora_failure(body=DORAFailureRequest(data=DORAFailureRequestData(attributes)))
        return str(response.data.id)

    first = record(
        1,
        ["checkout"],
        "High",
        id="incident-checkout-0001",
        name="Webserver is down failing all requests",
        env="production",
        finished_at=_nanos(START + timedelta(hours=2)),
        git=DORAGitInfo(commit_sha=SHA, repository_url=REPO_URL),
    )
    second = record(3, ["search", "checkout"], "Low")
    record(4, ["search"], "High")
    got = dora.get_dora_failure(failure_id=first).data
    assert got.id == first
    assert got.attributes.services == ["checkout"]
    assert got.attributes.name == "Webserver is down failing all requests"
    assert got.attributes.finished_at == START + timedelta(hours=2)
    assert got.attributes.git.repository_url == "organization/example-repository"
    listed = dora.list_dora_failures(
        body=DORAListFailuresRequest(
            data=DORAListFailuresRequestData(
                attributes=DORAListFailuresRequestAttributes(query="service:checkout", sort="-started_at", limit=10)
            )
        )
    )
    assert [f.id for f in listed.data] == [second, first]
    assert [str(f.type) for f in listed.data] == ["dora_failure", "dora_failure"]


# --- patch and delete -------------------------------------------------------------------------------------
PATCH_TYPE = DORADeploymentPatchRequestDataType.DORA_DEPLOYMENT_PATCH_REQUEST
SUMMARY_WINDOW = {"from": "2024-01-31T00:00:00Z", "to": "2024-02-03T00:00:00Z"}


def recompute(space: DatadogSpace) -> None:
    """Run the scheduled functions (the recompute) now."""
    ran = requests.post(f"{space.url}/_local/schedule/run", timeout=TIMEOUT)
    assert ran.status_code == 200, ran.text


def summary(space: DatadogSpace) -> dict[str, Any]:
    found = requests.get(
        f"{space.url}/api/{space.space_id}/summary",
        params=SUMMARY_WINDOW,
        headers={"DD-API-KEY": space.key},
        timeout=TIMEOUT,
    )
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


def change_failure_override(space: DatadogSpace, deployment_id: str) -> Any:
    found = requests.get(
        f"{space.url}/api/{space.space_id}/deployments/{deployment_id}",
        headers={"DD-API-KEY": space.key},
        timeout=TIMEOUT,
    )
    assert found.status_code == 200, found.text
    return found.json()["change_failure_override"]


def patch_by_id(dora: DORAMetricsApi, deployment_id: str, **attributes: Any) -> Any:
    body = DORADeploymentPatchRequest(
        data=DORADeploymentPatchRequestData(
            attributes=DORADeploymentPatchRequestAttributes(**attributes), id=deployment_id, type=PATCH_TYPE
        )
    )
    return dora.patch_dora_deployment(deployment_id=deployment_id, body=body)


def patch_by_version(dora: DORAMetricsApi, service: str, env: str, version: str, **attributes: Any) -> Any:
    body = DORADeploymentPatchByVersionRequest(
        data=DORADeploymentPatchByVersionRequestData(
            attributes=DORADeploymentPatchByVersionRequestAttributes(
                service=service, env=env, version=version, **attributes
            ),
            type=PATCH_TYPE,
        )
    )
    return dora.patch_dora_deployment_by_version(body=body)


def test_change_failures_patched_by_id_and_by_version_reach_the_summary(
    dora: DORAMetricsApi, datadog_space: DatadogSpace
) -> None:
    bad = deploy(dora, 1, "checkout", "production", version="v2.0")
    back = deploy(dora, 2, "checkout", "production", version="v1.9")
    deploy(dora, 3, "search", "production", version="v7")
    deploy(dora, 4, "search", "production", version="v8")
    recompute(datadog_space)
    assert summary(datadog_space)["change_failure_rate"]["change_failures"] == 0
    rollback = DORADeploymentPatchRemediation(id=back, type=DORADeploymentPatchRemediationType.ROLLBACK)
    assert patch_by_id(dora, bad, change_failure=True, remediation=rollback) is None
    assert change_failure_override(datadog_space, bad) is True
    remediation = DORADeploymentPatchByVersionRemediationByID(
        id=deploy(dora, 5, "search", "production", version="v8.1"), type=DORADeploymentPatchRemediationType.ROLLFORWARD
    )
    assert patch_by_version(dora, "search", "production", "v8", change_failure=True, remediation=remediation) is None
    recompute(datadog_space)
    rate = summary(datadog_space)["change_failure_rate"]
    # checkout: v2.0 failed, v1.9 is its rollback (not counted); search: v7, v8 (failed), v8.1 (its fix).
    assert (rate["change_failures"], rate["deployments"]) == (2, 4)
    # The patched deployments still read back, and list, through the client's models.
    assert dora.get_dora_deployment(deployment_id=bad).data.attributes.version == "v2.0"
    assert len(deployments(dora, query="service:(checkout OR search)", limit=10).data) == 5
    # Back to stable.
    assert patch_by_version(dora, "search", "production", "v8", change_failure=False) is None
    recompute(datadog_space)
    assert summary(datadog_space)["change_failure_rate"]["change_failures"] == 1


def test_patches_the_service_refuses_are_the_clients_exceptions(dora: DORAMetricsApi) -> None:
    deployment_id = deploy(dora, 1, "checkout", "production", version="v1")
    with pytest.raises(NotFoundException):
        patch_by_id(dora, "no-such-deployment-0001", change_failure=True)
    with pytest.raises(NotFoundException):
        patch_by_version(dora, "checkout", "production", "v404", change_failure=True)
    body = DORADeploymentPatchRequest(
        data=DORADeploymentPatchRequestData(
            attributes=DORADeploymentPatchRequestAttributes(change_failure=True), id="another-id", type=PATCH_TYPE
        )
    )
    with pytest.raises(ApiException) as raised:
        dora.patch_dora_deployment(deployment_id=deployment_id, body=body)
    assert raised.value.status == 400
    assert "/data/id" in str(raised.value.body)
    earlier = DORADeploymentPatchRemediation(id=deployment_id, type=DORADeploymentPatchRemediationType.ROLLBACK)
    with pytest.raises(ApiException) as raised:
        patch_by_id(dora, deployment_id, remediation=earlier)
    assert raised.value.status == 400
    assert "/data/attributes/remediation/id" in str(raised.value.body)


def test_deleted_deployments_and_failures_leave_reads_lists_and_the_summary(
    dora: DORAMetricsApi, datadog_space: DatadogSpace
) -> None:
    kept = deploy(dora, 1, "checkout", "production", id="checkout-kept-000000001")
    gone = deploy(dora, 2, "checkout", "production", id="checkout-gone-000000001")
    failure = dora.create_dora_failure(
        body=DORAFailureRequest(
            data=DORAFailureRequestData(
                DORAFailureRequestAttributes(
                    services=["checkout"], env="production", started_at=_nanos(START + timedelta(hours=3))
                )
            )
        )
    ).data.id
    recompute(datadog_space)
    assert summary(datadog_space)["deployments"] == 2
    assert dora.delete_dora_deployment(deployment_id=gone) is None
    with pytest.raises(NotFoundException):
        dora.get_dora_deployment(deployment_id=gone)
    with pytest.raises(NotFoundException):
        dora.delete_dora_deployment(deployment_id=gone)
    assert [d.id for d in deployments(dora, query="service:checkout").data] == [kept]
    assert dora.delete_dora_failure(failure_id=failure) is None
    with pytest.raises(NotFoundException):
        dora.get_dora_failure(failure_id=failure)
    with pytest.raises(NotFoundException):
        dora.delete_dora_failure(failure_id=failure)
    listed = dora.list_dora_failures(
        body=DORAListFailuresRequest(
            data=DORAListFailuresRequestData(attributes=DORAListFailuresRequestAttributes(query="service:checkout"))
        )
    )
    assert listed.data == []
    recompute(datadog_space)
    assert summary(datadog_space)["deployments"] == 1
