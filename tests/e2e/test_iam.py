"""The local runtime enforces each function's role as AWS would: a call the role does not allow fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from dora_local.server import LocalRuntime
from tests.support import moto_clients

pytestmark = pytest.mark.e2e
PROBE = "iam-probe-e2e"


def test_a_read_route_that_writes_gets_access_denied_and_writes_nothing(
    local: LocalRuntime, http: requests.Session, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from dora_insights.dal import keys
    from dora_insights.handlers import deployments as handler_module

    seen: list[ClientError] = []
    original: Callable[..., Any] = handler_module.deployments.list_deployments

    def writing(store: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            store.transact([store.put_op({**keys.deployment("Spaces-1", PROBE), "type": "probe"})])
        except ClientError as error:
            seen.append(error)
            raise
        return original(store, *args, **kwargs)

    monkeypatch.setattr(handler_module.deployments, "list_deployments", writing)
    answer = http.get(f"{local.url}/api/Spaces-1/deployments", timeout=30)
    assert answer.status_code == 500
    table = local.runtime.table_name
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/dora-insights-local-ApiReadRole/"
        "dora-insights-local-ListDeploymentsFunction is not authorized to perform: dynamodb:PutItem on resource: "
        f"arn:aws:dynamodb:us-east-1:123456789012:table/{table} because no identity-based policy allows the "
        "dynamodb:PutItem action"
    )
    (error,) = seen
    assert error.response["Error"] == {"Code": "AccessDeniedException", "Message": message}
    assert f"ListDeploymentsFunction: AccessDenied (its role in template.yaml): {message}" in capfd.readouterr().err
    ddb = moto_clients.client(local, "dynamodb")
    key = {k: {"S": v} for k, v in keys.deployment("Spaces-1", PROBE).items()}
    assert "Item" not in ddb.get_item(TableName=table, Key=key)


def test_the_same_route_works_under_its_role(local: LocalRuntime, http: requests.Session) -> None:
    answer = http.get(f"{local.url}/api/Spaces-1/deployments", timeout=30)
    assert answer.status_code == 200, answer.text
