"""AWS permissions hold in tests as in AWS: a function's calls are checked against its role in template.yaml.

moto alone would let a read-only route write; here the call fails with AWS's own error, the test
fails, and nothing is written.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dora_local import iam
from tests.conftest import ADMIN_KEY, Api, Aws
from tests.support.events import http_event
from tests.support.lambdas import handler, running_as

SP = {"spaceId": "Spaces-1"}
ROUTE = "/api/{spaceId}/deployments"
PROBE_ID = "iam-probe"


def _probe_key() -> dict[str, str]:
    from dora_insights.dal import keys

    return keys.deployment("Spaces-1", PROBE_ID)


def _writing_list(monkeypatch: pytest.MonkeyPatch, *, swallow: bool = False) -> list[ClientError]:
    """Make the list-deployments logic (a read route's) also write one item, as a careless change might."""
    from dora_insights.handlers import deployments as handler_module

    seen: list[ClientError] = []
    original: Callable[..., Any] = handler_module.deployments.list_deployments

    def writing(store: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            store.transact([store.put_op({**_probe_key(), "type": "probe"})])
        except ClientError as error:
            seen.append(error)
            if not swallow:
                raise
        return original(store, *args, **kwargs)

    monkeypatch.setattr(handler_module.deployments, "list_deployments", writing)
    return seen


def test_a_read_role_route_that_writes_fails_the_test_and_writes_nothing(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _writing_list(monkeypatch)
    with pytest.raises(AssertionError, match=r"ListDeploymentsFunction made calls its role in template\.yaml"):
        api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    (error,) = seen
    assert error.operation_name == "TransactWriteItems"
    assert error.response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": (
            "User: arn:aws:sts::123456789012:assumed-role/dora-insights-local-ApiReadRole/"
            "dora-insights-local-ListDeploymentsFunction is not authorized to perform: dynamodb:PutItem on "
            "resource: arn:aws:dynamodb:us-east-1:123456789012:table/dora-insights-test because no "
            "identity-based policy allows the dynamodb:PutItem action"
        ),
    }
    assert store.get(_probe_key()) is None


def test_a_denied_call_the_code_swallows_still_fails_the_test(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _writing_list(monkeypatch, swallow=True)
    with pytest.raises(AssertionError, match=r"dynamodb:PutItem on resource: .*table/dora-insights-test"):
        api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    assert len(seen) == 1


def test_the_handler_sees_the_error_aws_raises_and_fails_as_lambda_would(
    api: Api, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    _writing_list(monkeypatch)
    event = http_event("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    with (
        running_as("ListDeploymentsFunction", allow_denials=True) as principal,
        pytest.raises(ClientError, match="AccessDeniedException"),
    ):
        handler("ListDeploymentsFunction")(event, lambda_context)  # a function error: API Gateway answers 500
    assert [(d.request.action, d.decision) for d in principal.denials] == [
        ("dynamodb:PutItem", iam.Decision.IMPLICIT_DENY)
    ]


def test_the_same_write_under_a_write_role_is_allowed(aws: Aws, store: Any) -> None:
    with running_as("CreateDeploymentFunction") as principal:
        store.transact([store.put_op({**_probe_key(), "type": "probe"})])
    assert principal.allowed == [
        iam.Request("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:123456789012:table/{aws.table_name}")
    ]
    assert store.get(_probe_key()) is not None


def test_every_call_of_a_route_is_checked_against_its_own_tables_and_indexes(
    api: Api, aws: Aws, lambda_context: Any
) -> None:
    event = http_event("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    with running_as("ListDeploymentsFunction") as principal:
        result = handler("ListDeploymentsFunction")(event, lambda_context)
    assert result["statusCode"] == 200
    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{aws.table_name}"
    assert iam.Request("dynamodb:GetItem", table) in principal.allowed  # the key lookup
    assert iam.Request("dynamodb:Query", f"{table}/index/GSI1") in principal.allowed  # newest first


def test_a_handler_invoked_outside_the_checked_helpers_is_refused(api: Api, lambda_context: Any) -> None:
    event = http_event("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    with pytest.raises(iam.UncheckedCallError, match=r"outside dora_local\.iam\.acting_as"):
        handler("ListDeploymentsFunction")(event, lambda_context)


@pytest.mark.parametrize(
    ("method", "route", "query"),
    [
        ("GET", "/orlo/token", None),  # stores the token it issues
        ("GET", "/api/{spaceId}/insights/reports/{reportId}/metrics", None),  # stores the view on first read
    ],
)
def test_gets_that_store_what_they_compute_run_under_a_role_that_may(
    api: Api, method: str, route: str, query: dict[str, str] | None
) -> None:
    params = dict(SP)
    if "{reportId}" in route:
        created = api.call(
            "POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "All"}, key=ADMIN_KEY
        )
        assert created.status == 201, created.body
        params["reportId"] = created.body["Id"]
    orlo = route.startswith("/orlo")
    headers = {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()} if orlo else None
    key = None if headers else ADMIN_KEY
    result = api.call(method, route, path_params=params, query=query, key=key, headers=headers)
    assert result.status == 200, result.body
