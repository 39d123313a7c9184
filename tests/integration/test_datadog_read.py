"""Datadog DORA reads (get and list of deployments and failures) through the HTTP event shape, against
moto: shapes the datadog-api-client 2.62 models parse, queries, order, paging, errors, and which index
each query reads (never a Scan)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from datadog_api_client import Configuration
from datadog_api_client.model_utils import validate_and_convert_types
from datadog_api_client.v2.model.dora_deployment_fetch_response import DORADeploymentFetchResponse
from datadog_api_client.v2.model.dora_deployments_list_response import DORADeploymentsListResponse
from datadog_api_client.v2.model.dora_failure_fetch_response import DORAFailureFetchResponse
from datadog_api_client.v2.model.dora_failures_list_response import DORAFailuresListResponse

from tests.conftest import ADMIN_KEY, NOW, Api

DD = {"DD-API-KEY": ADMIN_KEY}
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
REPO_URL = "https://github.com/organization/example-repository.git"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z; deployment n finishes n hours later
HOUR = 3600


def _parsed(body: Any, model: type) -> Any:
    """The body as the client's own model reads it (raises on any shape the client refuses)."""
    return validate_and_convert_types(body, (model,), ["received_data"], True, True, Configuration())


def create(api: Api, n: int, service: str = "shop", **attributes: Any) -> str:
    body = {
        "data": {
            "attributes": {
                "service": service,
                "started_at": T0 + n * HOUR - 60,
                "finished_at": T0 + n * HOUR,
                **attributes,
            }
        }
    }
    result = api.call("POST", "/api/v2/dora/deployment", body=body, headers=DD)
    assert result.status == 200, result.body
    return str(result.body["data"]["id"])


def fail(api: Api, n: int, **attributes: Any) -> str:
    body = {"data": {"attributes": {"services": ["shop"], "started_at": T0 + n * HOUR, **attributes}}}
    result = api.call("POST", "/api/v2/dora/failure", body=body, headers=DD)
    assert result.status == 200, result.body
    return str(result.body["data"]["id"])


def listing(api: Api, route: str = "/api/v2/dora/deployments", headers: Any = DD, **attributes: Any) -> Any:
    return api.call("POST", route, body={"data": {"attributes": attributes}}, headers=headers)


def ids(api: Api, **attributes: Any) -> list[str]:
    result = listing(api, **attributes)
    assert result.status == 200, result.body
    _parsed(result.body, DORADeploymentsListResponse)
    return [d["id"] for d in result.body["data"]]


def pointer(result: Any) -> str:
    (error,) = result.body["errors"]
    assert error["status"] == str(result.status)
    return str(error.get("source", {}).get("pointer"))


@pytest.fixture
def queries(aws: Any) -> Iterator[list[dict[str, Any]]]:
    """Every Query (and no Scan) the functions' DynamoDB client sends from now on: its parameters."""
    from dora_insights.handlers import runtime

    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        assert model.name != "Scan"
        if model.name == "Query":
            sent.append(params)

    client = runtime.store().ddb  # the client the route functions use
    client.meta.events.register("before-parameter-build.dynamodb", record)
    yield sent
    client.meta.events.unregister("before-parameter-build.dynamodb", record)


# --- get ------------------------------------------------------------------------------------------
def test_get_deployment_answers_the_clients_shape(api: Api) -> None:
    deployment_id = create(
        api,
        1,
        id="deploy-0000000000000001",
        env="staging",
        team="backend",
        version="v1.2",
        custom_tags=["language:java", "tenant:acme"],
        git={"commit_sha": SHA.upper(), "repository_url": REPO_URL},
    )
    result = api.call(
        "GET",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": deployment_id},
        headers=DD,
    )
    assert result.status == 200, result.body
    assert result.body == {
        "data": {
            "id": "deploy-0000000000000001",
            "type": "dora_deployment",
            "attributes": {
                "custom_tags": ["language:java", "tenant:acme"],
                "env": "staging",
                "finished_at": "2023-11-14T23:13:20.000Z",
                "git": {
                    "commit_sha": SHA,
                    "repository_id": "github.com/organization/example-repository",
                    "repository_url": REPO_URL,
                },
                "service": "shop",
                "started_at": "2023-11-14T23:12:20.000Z",
                "team": "backend",
                "version": "v1.2",
            },
        }
    }
    parsed = _parsed(result.body, DORADeploymentFetchResponse)
    assert parsed.data.attributes.service == "shop"
    assert parsed.data.attributes.git.repository_id == "github.com/organization/example-repository"


def test_a_deployment_without_optional_attributes_leaves_them_out(api: Api) -> None:
    deployment_id = create(api, 1)
    result = api.call(
        "GET", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": deployment_id}, headers=DD
    )
    assert set(result.body["data"]["attributes"]) == {"custom_tags", "env", "finished_at", "service", "started_at"}
    assert result.body["data"]["attributes"]["env"] == "production"  # the space's default
    _parsed(result.body, DORADeploymentFetchResponse)


def test_a_native_deployment_reads_in_datadogs_shape(api: Api) -> None:
    native = {"project": "shop", "environment": "prod", "finished_at": T0, "commit_sha": SHA, "repository": "org/shop"}
    created = api.call(
        "POST", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, body=native, key=ADMIN_KEY
    )
    assert created.status == 201, created.body
    result = api.call(
        "GET", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": created.body["id"]}, headers=DD
    )
    attributes = result.body["data"]["attributes"]
    assert attributes["started_at"] == attributes["finished_at"] == "2023-11-14T22:13:20.000Z"
    assert attributes["git"] == {"commit_sha": SHA, "repository_id": "org/shop", "repository_url": "org/shop"}
    _parsed(result.body, DORADeploymentFetchResponse)


def test_get_failure_answers_the_clients_shape(api: Api) -> None:
    failure_id = fail(
        api,
        2,
        id="incident-000000000001",
        name="db down",
        severity="High",
        env="prod",
        finished_at=T0 + 3 * HOUR,
        git={"commit_sha": SHA, "repository_url": REPO_URL},
        team="backend",
        version="v1.2",
        custom_tags=["region:eu"],
    )
    result = api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": failure_id}, headers=DD)
    assert result.status == 200, result.body
    assert result.body["data"] == {
        "id": "incident-000000000001",
        "type": "dora_failure",
        "attributes": {
            "custom_tags": ["region:eu"],
            "env": "prod",
            "finished_at": "2023-11-15T01:13:20.000Z",
            "git": {"commit_sha": SHA, "repository_url": "organization/example-repository"},
            "name": "db down",
            "services": ["shop"],
            "severity": "High",
            "started_at": "2023-11-15T00:13:20.000Z",
            "team": "backend",
            "version": "v1.2",
        },
    }
    _parsed(result.body, DORAFailureFetchResponse)


def test_an_open_failure_has_no_finish(api: Api) -> None:
    failure_id = fail(api, 1)
    result = api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": failure_id}, headers=DD)
    assert "finished_at" not in result.body["data"]["attributes"]
    _parsed(result.body, DORAFailureFetchResponse)


@pytest.mark.parametrize(
    ("route", "name"),
    [
        ("/api/v2/dora/deployments/{deployment_id}", "deployment_id"),
        ("/api/v2/dora/failures/{failure_id}", "failure_id"),
    ],
)
def test_an_unknown_id_is_a_json_api_404(api: Api, route: str, name: str) -> None:
    result = api.call("GET", route, path_params={name: "no-such-event-0001"}, headers=DD)
    assert result.status == 404
    (error,) = result.body["errors"]
    assert (error["status"], error["title"]) == ("404", "Not Found")
    assert "no-such-event-0001" in error["detail"]


def test_another_spaces_events_are_not_found_nor_listed(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    deployment_id, failure_id = create(api, 1), fail(api, 1)
    other = admin.create_space(store, "Other", NOW)
    _, secret = admin.create_api_key(store, other.id, "ci", ("deployments:read",), NOW)
    theirs = {"DD-API-KEY": secret}
    got = api.call(
        "GET", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": deployment_id}, headers=theirs
    )
    assert got.status == 404
    got = api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": failure_id}, headers=theirs)
    assert got.status == 404
    assert listing(api, headers=theirs).body == {"data": []}
    assert listing(api, "/api/v2/dora/failures", headers=theirs).body == {"data": []}


def test_reads_need_a_key_with_the_read_scope(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    assert listing(api, headers={}).status == 401
    _, writer = admin.create_api_key(store, "Spaces-1", "writer", ("deployments:write",), NOW)
    assert listing(api, headers={"DD-API-KEY": writer}).status == 403


# --- list: queries --------------------------------------------------------------------------------
@pytest.fixture
def seeded(api: Api) -> Api:
    create(api, 1, id="shop-prod-0000000001", env="prod", team="web", version="v1.0", custom_tags=["lang:py"])
    create(api, 2, id="shop-prod-0000000002", env="prod", team="web", version="v1.1-rc1")
    create(api, 3, id="shop-dev-00000000003", env="dev", version="v1.1")
    create(api, 4, "api", id="api-prod-0000000004", env="prod", team="platform", custom_tags=["lang:go"])
    create(api, 5, "payments", id="pay-prod-0000000005", env="prod", custom_tags=["lang:go", "tier:1"])
    return api


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("service:shop", ["shop-dev-00000000003", "shop-prod-0000000002", "shop-prod-0000000001"]),
        ("service:shop env:prod", ["shop-prod-0000000002", "shop-prod-0000000001"]),
        ("service:shop -version:*rc*", ["shop-dev-00000000003", "shop-prod-0000000001"]),
        ("env:prod team:(web OR platform)", ["api-prod-0000000004", "shop-prod-0000000002", "shop-prod-0000000001"]),
        ("lang:go", ["pay-prod-0000000005", "api-prod-0000000004"]),
        ("lang:go AND NOT tier:1", ["api-prod-0000000004"]),
        ("service:(shop OR api) lang:*", ["api-prod-0000000004", "shop-prod-0000000001"]),
        ("-team:*", ["pay-prod-0000000005", "shop-dev-00000000003"]),
        ('version:"v1.1"', ["shop-dev-00000000003"]),
        ("version:v1.? OR service:pay*", ["pay-prod-0000000005", "shop-dev-00000000003", "shop-prod-0000000001"]),
        ("service:SHOP env:PROD version:v1.0", ["shop-prod-0000000001"]),
        ("service:nowhere", []),
        ("service:shop env:nowhere", []),
        ("*", ["pay-prod-0000000005", "api-prod-0000000004", "shop-dev-00000000003"]),
    ],
)
def test_queries_select_events(seeded: Api, query: str, expected: list[str]) -> None:
    assert ids(seeded, query=query, limit=3 if query == "*" else 10) == expected


def test_sort_ascending_and_descending_on_the_time(seeded: Api) -> None:
    everything = ids(seeded, sort="-started_at")
    assert everything == ids(seeded) == list(reversed(ids(seeded, sort="started_at")))
    assert everything == list(reversed(ids(seeded, sort="timestamp")))
    assert everything[0] == "pay-prod-0000000005"


@pytest.mark.parametrize(
    "bounds", [("2023-11-15T00:13:20Z", "2023-11-15T02:13:20+00:00"), (T0 + 2 * HOUR, (T0 + 4 * HOUR) * 10**9)]
)
def test_from_and_to_bound_the_finish_time_inclusively(seeded: Api, bounds: tuple[Any, Any]) -> None:
    lowest, highest = bounds
    assert ids(seeded, **{"from": lowest, "to": highest}) == [
        "api-prod-0000000004",
        "shop-dev-00000000003",
        "shop-prod-0000000002",
    ]


def test_failures_list_by_query_time_and_order(api: Api) -> None:
    fail(api, 1, id="f-shop-high-00000001", severity="High", env="prod")
    fail(api, 2, id="f-both-low-000000002", services=["api", "shop"], severity="Low", env="prod")
    fail(api, 3, id="f-api-high-000000003", services=["api"], severity="High", env="dev")
    result = listing(api, "/api/v2/dora/failures", query="service:shop", sort="started_at")
    assert result.status == 200, result.body
    _parsed(result.body, DORAFailuresListResponse)
    assert [f["id"] for f in result.body["data"]] == ["f-shop-high-00000001", "f-both-low-000000002"]
    result = listing(api, "/api/v2/dora/failures", query="severity:high -env:dev", to=T0 + 2 * HOUR)
    assert [f["id"] for f in result.body["data"]] == ["f-shop-high-00000001"]


def test_a_failures_repository_is_searched_by_git_repository_id_as_a_deployments(api: Api) -> None:
    """A failure keeps its repository as ``org/name``, its ``git.repository_id`` (API.md): the key found
    nothing on failures before."""
    git = {"commit_sha": "a" * 40, "repository_url": "https://github.com/Org/Shop.git"}
    fail(api, 1, id="f-with-git-000000001", git=git)
    fail(api, 2, id="f-no-git-0000000002")
    create(api, 3, git=git)
    for query in ("git.repository_id:org/shop", "git.repository_id:*org/shop", "@git.repository_id:ORG/SHOP"):
        result = listing(api, "/api/v2/dora/failures", query=query)
        assert result.status == 200, result.body
        assert [f["id"] for f in result.body["data"]] == ["f-with-git-000000001"], query
    found = listing(api, "/api/v2/dora/deployments", query="git.repository_id:*org/shop").body["data"]
    assert len(found) == 1


# --- list: paging -------------------------------------------------------------------------------
def test_pages_follow_meta_page_after_until_it_is_absent(seeded: Api) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        attributes: dict[str, Any] = {"limit": 2, "sort": "finished_at", "query": "env:prod"}
        if cursor:
            attributes["page"] = {"cursor": cursor}
        result = listing(seeded, **attributes)
        assert result.status == 200, result.body
        _parsed(result.body, DORADeploymentsListResponse)
        seen += [d["id"] for d in result.body["data"]]
        pages += 1
        cursor = result.body.get("meta", {}).get("page", {}).get("after")
        if cursor is None:
            break
    assert pages == 2
    assert seen == ["shop-prod-0000000001", "shop-prod-0000000002", "api-prod-0000000004", "pay-prod-0000000005"]


def test_the_last_page_has_no_meta(seeded: Api) -> None:
    result = listing(seeded, limit=5)
    assert len(result.body["data"]) == 5
    assert "meta" not in result.body


def test_a_page_reads_a_bounded_number_of_events_and_says_where_to_go_on(
    seeded: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal import event_search

    monkeypatch.setattr(event_search, "MAX_READ", 2)
    result = listing(seeded, query="tier:1", limit=1, sort="timestamp")
    assert result.body["data"] == []  # two read, none matching: no match yet, but more to read
    after = result.body["meta"]["page"]["after"]
    found: list[str] = []
    while after:
        result = listing(seeded, query="tier:1", limit=1, sort="timestamp", page={"cursor": after})
        found += [d["id"] for d in result.body["data"]]
        after = result.body.get("meta", {}).get("page", {}).get("after")
    assert found == ["pay-prod-0000000005"]


# --- list: which index ----------------------------------------------------------------------------
def _indexes(sent: list[dict[str, Any]]) -> list[str]:
    return [q.get("IndexName", "table") for q in sent]


def test_a_service_reads_the_project_index_one_query_a_page(seeded: Api, queries: list[dict[str, Any]]) -> None:
    first = listing(seeded, query="service:shop", limit=2)
    assert _indexes(queries) == ["GSI2"]
    assert queries[0]["Limit"] == 3
    queries.clear()
    listing(seeded, query="service:shop", limit=2, page={"cursor": first.body["meta"]["page"]["after"]})
    assert _indexes(queries) == ["GSI2"]


def test_a_service_and_env_read_the_stream_index(seeded: Api, queries: list[dict[str, Any]]) -> None:
    listing(seeded, query="service:shop env:prod")
    # the project's streams (registered, marked dirty), then the one stream's deployments
    assert _indexes(queries) == ["table", "table", "GSI3"]
    assert queries[-1]["ExpressionAttributeValues"][":pk"]["S"].startswith("S#Spaces-1#STREAM#")


def test_other_queries_read_the_spaces_time_index_within_the_bounds(seeded: Api, queries: list[dict[str, Any]]) -> None:
    listing(seeded, query="team:web", **{"from": T0, "to": T0 + 2 * HOUR})
    (query,) = queries
    assert query["IndexName"] == "GSI1"
    values = query["ExpressionAttributeValues"]
    assert values[":pk"]["S"] == "S#Spaces-1#DEPS"
    assert values[":lo"]["S"] == "2023-11-14T22:13:20.000Z"
    assert values[":hi"]["S"].startswith("2023-11-15T00:13:20.000Z#")


def test_an_unknown_service_reads_no_deployment(seeded: Api, queries: list[dict[str, Any]]) -> None:
    assert ids(seeded, query="service:nowhere") == []
    assert queries == []


# --- list: errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("attributes", "expected_pointer", "words"),
    [
        ({"limit": 1001}, "/data/attributes/limit", "1000"),
        ({"limit": 0}, "/data/attributes/limit", "1"),
        ({"query": "service:(web"}, "/data/attributes/query", "never closed"),
        ({"query": "web"}, "/data/attributes/query", "free-text"),
        ({"sort": "service"}, "/data/attributes/sort", "sort must be one of"),
        ({"from": "yesterday"}, "/data/attributes/from", "ISO-8601"),
        ({"from": T0 + HOUR, "to": T0}, "/data/attributes/to", "before from"),
        ({"page": {"cursor": "not-a-cursor"}}, "/data/attributes/page/cursor", "cursor"),
    ],
)
def test_bad_list_requests_are_json_api_400s(
    seeded: Api, attributes: dict[str, Any], expected_pointer: str, words: str
) -> None:
    result = listing(seeded, **attributes)
    assert result.status == 400, result.body
    assert pointer(result) == expected_pointer
    assert words in result.body["errors"][0]["detail"]


def test_a_cursor_of_the_deployments_list_is_refused_by_the_failures_list(seeded: Api) -> None:
    after = listing(seeded, limit=1).body["meta"]["page"]["after"]
    result = listing(seeded, "/api/v2/dora/failures", page={"cursor": after})
    assert result.status == 400
    assert pointer(result) == "/data/attributes/page/cursor"


def test_a_cursor_of_another_space_is_refused(seeded: Api, store: Any) -> None:
    from dora_insights.logic import admin

    after = listing(seeded, limit=1).body["meta"]["page"]["after"]
    other = admin.create_space(store, "Other", NOW)
    _, secret = admin.create_api_key(store, other.id, "ci", ("deployments:read",), NOW)
    result = listing(seeded, headers={"DD-API-KEY": secret}, page={"cursor": after})
    assert result.status == 400


def test_the_list_type_is_checked_when_sent(seeded: Api) -> None:
    body = {"data": {"type": "dora_failures_list_request", "attributes": {}}}
    assert seeded.call("POST", "/api/v2/dora/deployments", body=body, headers=DD).status == 400
    body = {"data": {"type": "dora_deployments_list_request", "attributes": {}}}
    assert seeded.call("POST", "/api/v2/dora/deployments", body=body, headers=DD).status == 200
