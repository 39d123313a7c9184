"""AWS answering "not now" once botocore's own retries ran out (what moto never does): throttling, an
internal error, an item a transaction holds. A route meeting one answers 503 with
``Retry-After`` in its dialect's shape, whether it met it authenticating the caller or in the route's
own work, instead of failing the function (which API Gateway answers as a bare 500 a client cannot
tell from a defect). Any other AWS error still fails the function."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dora_insights.dal.store import Store
from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.native import SPACE, create_deployment

SP = {"spaceId": SPACE}
DEPLOYMENTS = "/api/{spaceId}/deployments"
DATADOG = "/api/v2/dora/deployment"
REPORTS = "/api/{spaceId}/insights/reports"


def _refusing(monkeypatch: pytest.MonkeyPatch, operations: set[str], error: Callable[[str], Exception]) -> list[str]:
    """``Store.call`` raising ``error(operation)`` for each of ``operations``; the list of those refused."""
    call = Store.call
    refused: list[str] = []

    def refusing(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation in operations:
            refused.append(operation)
            raise error(operation)
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", refusing)
    return refused


def _client_error(code: str, reasons: list[dict[str, str]] | None = None) -> Callable[[str], Exception]:
    """The error botocore raises for ``code``: its modeled class where DynamoDB's model names one (a
    ``botocore.errorfactory`` subclass of ``ClientError``, as a real client raises), else ``ClientError``."""
    modeled = boto3.client("dynamodb", region_name="us-east-1").exceptions.from_code(code)

    def make(operation: str) -> Exception:
        response: dict[str, Any] = {"Error": {"Code": code, "Message": code}}
        if reasons is not None:
            response["CancellationReasons"] = reasons
        return modeled(response, operation)  # type: ignore[no-any-return]

    return make


def _native_503(result: HttpResult, code_words: str) -> None:
    assert result.status == 503, result.body
    assert result.body == {"message": result.body["message"], "errors": [result.body["message"]]}
    assert code_words in result.body["message"] and "retry" in result.body["message"]
    assert result.header("retry-after") == "1"


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"],
)
def test_a_read_throttled_in_the_route_answers_503(api: Api, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    refused = _refusing(monkeypatch, {"query"}, _client_error(code))
    result = api.call("GET", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY)
    assert refused  # the route's own read, after the caller was authenticated
    _native_503(result, "refusing requests for now")


def test_the_key_lookup_throttled_answers_503_in_the_dialects_shape(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = _refusing(monkeypatch, {"get_item"}, _client_error("ProvisionedThroughputExceededException"))
    attributes = {"service": "shop", "env": "production", "started_at": 1709200000, "finished_at": 1709200060}
    result = api.call("POST", DATADOG, body={"data": {"attributes": attributes}}, headers={"DD-API-KEY": ADMIN_KEY})
    assert refused[0] == "get_item"
    assert result.status == 503, result.body
    (error,) = result.body["errors"]
    assert (error["status"], error["title"]) == ("503", "Service Unavailable")
    assert "retry" in error["detail"]
    assert result.header("retry-after") == "1"


def test_a_write_meeting_a_transaction_in_flight_is_write_contended(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Octopus report's create, a transaction of its own, cancelled for contention: 503
    ``write_contended`` in Octopus's shape, nothing stored; sent again, it is stored."""
    create_deployment(api)  # the catalogue the report names
    body = {"Name": "Weekly", "ProjectIds": ["Projects-1"], "TimeZone": "UTC"}
    reasons = [{"Code": "TransactionConflict"}]
    refused = _refusing(monkeypatch, {"transact_write_items"}, _client_error("TransactionCanceledException", reasons))
    result = api.call("POST", REPORTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert refused
    assert result.status == 503, result.body
    assert set(result.body) == {"ErrorMessage", "Errors"} and "retry" in result.body["ErrorMessage"]
    assert result.header("retry-after") == "1"
    monkeypatch.undo()
    assert api.call("GET", REPORTS, path_params=SP, key=ADMIN_KEY).body["Items"] == []
    assert api.call("POST", REPORTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201


def test_a_transaction_cancelled_by_a_condition_still_fails(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed condition the route did not expect is a defect, not load: it still fails the function."""
    reasons = [{"Code": "ConditionalCheckFailed"}]
    _refusing(monkeypatch, {"transact_write_items"}, _client_error("TransactionCanceledException", reasons))
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        api.call("POST", REPORTS, path_params=SP, body={"Name": "Weekly", "TimeZone": "UTC"}, key=ADMIN_KEY)


def test_any_other_aws_error_still_fails_the_function(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _refusing(monkeypatch, {"query"}, _client_error("ValidationException"))
    with pytest.raises(ClientError, match="ValidationException"):
        api.call("GET", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY)


# --- versioned writes: contention is no lost race --------------------------------------------------
HELD = [{"Code": "TransactionConflict"}]


ONE_INSIGHT = "/api/projects/{spaceId}/insights/{insightId}"


def _saved_insight(api: Api) -> dict[str, str]:
    """A PostHog insight over a new report; the path parameters that name it."""
    report = api.call("POST", REPORTS, path_params=SP, body={"Name": "Delivery"}, key=ADMIN_KEY).body["Id"]
    body = {"name": "Lead time", "query": {"kind": "DoraMetricsQuery", "reportId": report, "metric": "lead_time"}}
    created = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return {**SP, "insightId": str(created.body["id"])}


def test_an_insight_read_while_its_figures_keep_moving_is_a_503_not_an_empty_result(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures' snapshot never settles within its attempts (a recompute moving them each time): the
    insight's reader is told to retry, as the report's own metrics route tells it, rather than shown
    ``result: null`` (an insight without a result: its report deleted, its query no longer reading)."""
    from dora_insights.logic import metrics

    one = _saved_insight(api)
    assert api.call("GET", ONE_INSIGHT, path_params=one, key=ADMIN_KEY).status == 200
    create_deployment(api)  # work for the report: the read below computes its figures
    monkeypatch.setattr(metrics, "_complete", lambda streams, counted: False)
    query = {"refresh": "force_blocking"}  # PostHog's: bring the figures up to date before answering
    result = api.call("GET", ONE_INSIGHT, path_params=one, query=query, key=ADMIN_KEY)
    assert result.status == 503, result.body
    assert "recomputed right now" in result.body["detail"]
    assert result.header("retry-after") == "1"


def test_an_insight_written_while_its_figures_keep_moving_is_answered_without_its_result(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create or update commits before its answer computes the result: one the figures' moving keeps
    from it answers the write (201, 200) with ``result: null``, not a 503 whose retry would create a
    second insight."""
    from dora_insights.logic import metrics

    report = api.call("POST", REPORTS, path_params=SP, body={"Name": "Delivery"}, key=ADMIN_KEY).body["Id"]
    create_deployment(api)  # work for the report: the answer would compute its figures
    monkeypatch.setattr(metrics, "_complete", lambda streams, counted: False)
    body = {"name": "Lead time", "query": {"kind": "DoraMetricsQuery", "reportId": report, "metric": "lead_time"}}
    created = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    assert (created.body["result"], created.body["last_refresh"]) == (None, None)
    one = {**SP, "insightId": str(created.body["id"])}
    updated = api.call("PATCH", ONE_INSIGHT, path_params=one, body={"name": "Renamed"}, key=ADMIN_KEY)
    assert updated.status == 200, updated.body
    assert (updated.body["name"], updated.body["result"]) == ("Renamed", None)
    monkeypatch.undo()
    listed = api.call("GET", "/api/projects/{spaceId}/insights", path_params=SP, key=ADMIN_KEY)
    assert listed.body["count"] == 1
    assert api.call("GET", ONE_INSIGHT, path_params=one, key=ADMIN_KEY).body["result"] is not None


def test_a_saved_insight_change_still_contended_is_a_503_not_a_conflict(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostHog insight's versioned write cancelled for contention every time: sent again after pauses,
    then 503 ``write_contended`` (a 409 would say another request changed the insight)."""
    one = _saved_insight(api)
    refused = _refusing(monkeypatch, {"transact_write_items"}, _client_error("TransactionCanceledException", HELD))
    result = api.call("PATCH", ONE_INSIGHT, path_params=one, body={"name": "New"}, key=ADMIN_KEY)
    assert len(refused) == 4  # the first attempt and three after a pause each
    assert result.status == 503, result.body
    assert (result.body["type"], result.body["code"]) == ("invalid_request", "write_contended")
    assert result.header("retry-after") == "1"
    monkeypatch.undo()
    fetched = api.call("GET", ONE_INSIGHT, path_params=one, key=ADMIN_KEY)
    assert fetched.body["name"] == "Lead time"


def test_a_pull_request_write_still_contended_is_a_503_not_a_conflict(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GitHub ``pull_request`` delivery whose versioned write stays cancelled for contention: 503, so
    the delivery shows as failed for a redelivery, not as a 409 race with another request."""
    from dora_insights.dialects.github import sign
    from dora_insights.logic import spaces
    from tests.support.events import load_event

    secret = "s3cret-for-refusals"
    hooked = api.call("PUT", "/api/{spaceId}/webhooks/github", path_params=SP, body={"secret": secret}, key=ADMIN_KEY)
    assert hooked.status == 200, hooked.body
    spaces.clear_cache()
    raw = json.dumps(load_event("github_pull_request_merged.json"))
    headers = {
        "x-github-event": "pull_request",
        "x-github-delivery": "d-1",
        "x-hub-signature-256": sign(secret, raw.encode()),
    }
    refused = _refusing(monkeypatch, {"transact_write_items"}, _client_error("TransactionCanceledException", HELD))
    result = api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)
    assert result.status == 503, result.body
    assert len(refused) == 4
    assert result.header("retry-after") == "1"


def test_a_new_name_whose_registration_stays_contended_is_a_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogue transaction registering a deployment's new project and environment, cancelled for
    contention every time: 503 with nothing stored (a registration that never settled was a 500)."""
    from dora_insights.dal import keys

    transact = Store.transact
    registrations: list[int] = []

    def held(self: Store, operations: Any) -> None:
        first = operations[0].get("Put", {}).get("Item", {})
        if first.get(keys.TYPE, {}).get("S") == keys.T_CATALOGUE_NAME:
            registrations.append(len(operations))
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (len(operations) - 1)
            raise _client_error("TransactionCanceledException", reasons)("TransactWriteItems")
        transact(self, operations)

    monkeypatch.setattr(Store, "transact", held)
    body = {"project": "brand-new", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    result = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    _native_503(result, "could not be written now")
    assert len(registrations) == 4
    monkeypatch.undo()
    assert api.call("GET", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY).body["items"] == []
    assert create_deployment(api, project="brand-new")["project"] == "brand-new"


def test_keys_left_unprocessed_after_every_retry_are_a_503(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DynamoDB leaves a BatchGetItem's keys unprocessed while it throttles: after the store's own
    retries (their pauses not waited here) the batch's reader is told to retry, not failed with a 500."""
    from tests.support.contention import record_pauses

    pauses = record_pauses(monkeypatch)
    call = Store.call

    def unprocessed(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation == "batch_get_item":
            return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", unprocessed)
    items = [{"project": "shop", "environment": "production", "finished_at": 1709294400 + n} for n in range(3)]
    result = api.call("POST", DEPLOYMENTS + "/batch", path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    _native_503(result, "unprocessed after every retry")
    assert len(pauses) == 9  # ten attempts
    # Load, not a defect: a warning without a trace (an alarm on errors is not paged by a burst).
    assert [r.levelname for r in caplog.records if r.name == "dora-insights" and r.levelno >= logging.WARNING] == [
        "WARNING"
    ]
    monkeypatch.undo()
    assert api.call("GET", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY).body["items"] == []
