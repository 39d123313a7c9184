"""Reports' /metrics and /deployments from the scheduled recompute (METRICS §3–4), through real events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    """Every function's clock, from this module's NOW."""
    clock.now = NOW
    return clock


def recompute(lambda_context: Any) -> dict[str, Any]:
    return scheduled_run(lambda_context)


@pytest.fixture
def history(api: Api, clock: Clock) -> list[dict[str, Any]]:
    """A success, a failure, a recovery and a success with a guided failure, a week apart from the next."""
    return [
        create_deployment(api, version="1.0", started_at="2024-03-01T10:00:00Z", finished_at="2024-03-01T10:10:00Z"),
        create_deployment(
            api, version="1.1", started_at="2024-03-02T10:00:00Z", finished_at="2024-03-02T10:10:00Z", state="Failed"
        ),
        create_deployment(api, version="1.2", started_at="2024-03-03T10:00:00Z", finished_at="2024-03-03T10:10:00Z"),
        create_deployment(api, version="1.3", finished_at="2024-03-04T10:10:00Z", had_guided_failure=True),
        create_deployment(api, project="api", environment="staging", version="7", finished_at="2024-03-05T00:00:00Z"),
    ]


def _report(api: Api, **fields: Any) -> str:
    body = {"Name": "Production", **fields}
    created = api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return str(created.body["Id"])


def _metrics(api: Api, report_id: str, **query: str) -> Any:
    from dora_insights.dialects.octopus import MetricsOut

    result = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": report_id},
        query=query or None,
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    assert MetricsOut.model_validate(result.body).model_dump() == result.body  # exactly the documented shape
    return result.body


def test_weekly_metrics_after_the_recompute(api: Api, history: list[dict[str, Any]], lambda_context: Any) -> None:
    report_id = _report(api, ProjectIds=["Projects-1"])
    summary = recompute(lambda_context)
    assert summary["streams_processed"] == 2
    assert summary["reports_refreshed"] == 1
    body = _metrics(api, report_id, timeRange="LastMonth", granularity="Weekly")
    (series,) = body["Series"]
    assert series["Name"] == "All"
    starts = [i["StartOfInterval"] for i in series["Intervals"]]
    assert starts == ["2024-02-04", "2024-02-11", "2024-02-18", "2024-02-25", "2024-03-03", "2024-03-10"]
    week1, week2 = series["Intervals"][3], series["Intervals"][4]
    assert week1["DeploymentFailureRate"] == {
        "Successful": 1,
        "DeploymentFailure": 1,
        "SuccessfulButHadGuidedFailure": 0,
        "Total": 2,
        "Failed": 1,
        "Rate": 0.5,
    }
    assert week2["DeploymentFailureRate"]["SuccessfulButHadGuidedFailure"] == 1
    assert week2["MeanTimeToRecovery"]["Count"] == 1
    assert week2["MeanTimeToRecovery"]["Median"] == "24:00:00.0"
    assert week2["DeploymentsUntilRecovery"]["Median"] == 1.0
    assert week2["TimeSincePreviousDeployment"]["Median"] == "48:00:00.0"
    assert series["Intervals"][0]["DeploymentFailureRate"]["Total"] == 0
    assert series["Intervals"][0]["LeadTime"] == {
        "Count": 0,
        "Mean": None,
        "Median": None,
        "Min": None,
        "Max": None,
        "NinetyFifth": None,
    }


def test_splits_and_ranges_read_the_same_generation(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    report_id = _report(api)
    recompute(lambda_context)
    by_project = _metrics(api, report_id, split="Project", timeRange="LastMonth", granularity="Monthly")
    assert [s["Name"] for s in by_project["Series"]] == ["shop", "api"]
    by_environment = _metrics(api, report_id, split="Environment", timeRange="LastYear", granularity="Daily")
    assert {s["Name"] for s in by_environment["Series"]} == {"production", "staging"}
    assert len(by_environment["Series"][0]["Intervals"]) > 365


def test_a_new_report_is_computed_on_first_read_and_an_edit_recomputes(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    recompute(lambda_context)
    report_id = _report(api, EnvironmentGroups=[{"Name": "Prod", "Environments": ["Environments-1"]}])
    grouped = _metrics(api, report_id, split="EnvironmentGroup", timeRange="LastMonth")
    assert [s["Name"] for s in grouped["Series"]] == ["Prod"]
    one = {**SP, "reportId": report_id}
    current = api.call("GET", "/api/{spaceId}/insights/reports/{reportId}", path_params=one, key=ADMIN_KEY).body
    edited = current | {"EnvironmentGroups": [{"Name": "Staging", "Environments": ["Environments-2"]}]}
    assert (
        api.call(
            "PUT", "/api/{spaceId}/insights/reports/{reportId}", path_params=one, body=edited, key=ADMIN_KEY
        ).status
        == 200
    )
    assert [s["Name"] for s in _metrics(api, report_id, split="EnvironmentGroup", timeRange="LastMonth")["Series"]] == [
        "Staging"
    ]


def test_late_deployments_change_later_figures(api: Api, history: list[dict[str, Any]], lambda_context: Any) -> None:
    report_id = _report(api, ProjectIds=["Projects-1"])
    recompute(lambda_context)
    # A deployment that finished before the failure arrives late: it is now the one just before d3?
    create_deployment(api, version="1.15", finished_at="2024-03-02T12:00:00Z")
    recompute(lambda_context)
    streams = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/deployments",
        path_params={**SP, "reportId": report_id},
        key=ADMIN_KEY,
    ).body
    (stream,) = streams["Streams"]
    by_version = {d["ReleaseVersion"]: d for d in stream["Deployments"]}
    assert by_version["1.15"]["TimeToRecovery"] == "1:50:00.0"
    assert by_version["1.2"]["TimeToRecovery"] is None
    assert by_version["1.2"]["PreviousSuccessfulDeploymentId"] == by_version["1.15"]["Id"]


def test_deployments_view_has_streams_with_octopus_figures(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    report_id = _report(api, ProjectIds=["Projects-1"])
    recompute(lambda_context)
    body = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/deployments",
        path_params={**SP, "reportId": report_id},
        key=ADMIN_KEY,
    ).body
    assert body["ReportName"] == "Production"
    (stream,) = body["Streams"]
    assert (stream["ProjectName"], stream["EnvironmentName"], stream["ChannelName"]) == (
        "shop",
        "production",
        "Default",
    )
    assert [d["TaskState"] for d in stream["Deployments"]] == ["Success", "Failed", "Success", "Success"]
    recovered = stream["Deployments"][2]
    assert recovered["RecoveredFromFailedDeploymentId"] == history[1]["id"]
    assert recovered["RecoveredFromFailedReleaseVersion"] == "1.1"
    assert recovered["DeploymentsUntilRecovery"] == 1


@pytest.mark.parametrize(
    "query",
    [
        {"split": "Nope"},
        {"timeRange": "Forever"},
        {"granularity": "Hourly"},
        {"split": "TenantTagSet"},
        {"split": "TenantTagSet", "tenantTagSetId": "TagSets-9"},
    ],
)
def test_bad_metric_parameters_are_octopus_400s(api: Api, clock: Clock, query: dict[str, str]) -> None:
    report_id = _report(api)
    result = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": report_id},
        query=query,
        key=ADMIN_KEY,
    )
    assert result.status == 400, result.body
    assert result.body["ErrorMessage"]


def test_metrics_read_only_precomputed_items(
    api: Api, history: list[dict[str, Any]], lambda_context: Any, clock: Clock
) -> None:
    from dora_insights.handlers.runtime import store

    report_id = _report(api)
    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    recompute(lambda_context)
    counter = store().round_trips
    before = dict(counter.calls)
    _metrics(api, report_id, split="Project", timeRange="LastYear", granularity="Daily")
    used = {k: v - before.get(k, 0) for k, v in counter.calls.items() if v != before.get(k, 0)}
    # The key lookup, the report, its state, the space's dirty marks (none: nothing to bring up to
    # date, METRICS §8), and one Query page of the view.
    assert used == {"get_item": 3, "query": 2}


def _insight(api: Api, report_id: str, **query: Any) -> dict[str, Any]:
    body = {"name": "Failure rate", "query": {"kind": "DoraMetricsQuery", "reportId": report_id, **query}}
    created = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return created.body  # type: ignore[no-any-return]


def test_an_insight_result_is_its_reports_view(api: Api, history: list[dict[str, Any]], lambda_context: Any) -> None:
    report_id = _report(api, ProjectIds=["Projects-1"])
    recompute(lambda_context)
    insight = _insight(api, report_id, metric="deployment_failure_rate", timeRange="LastMonth", granularity="Weekly")
    result = insight["result"]
    assert result["interval"][-3:] == ["2024-02-25", "2024-03-03", "2024-03-10"]
    assert result["series"] == [{"name": "All", "values": [0.0, 0.0, 0.0, 0.5, 0.5, 0.0]}]
    assert insight["last_refresh"] is not None
    recovery = _insight(api, report_id, metric="recovery_time", statistic="max", timeRange="LastMonth")
    assert recovery["result"]["series"][0]["values"][4] == 86400.0
    frequency = _insight(api, report_id, metric="deployment_frequency", timeRange="LastMonth", granularity="Monthly")
    assert frequency["result"]["series"][0]["values"] == [0.0, 2.0]  # the guided failure is no success


def test_a_threshold_fires_once_on_a_bad_week_and_clears(
    api: Api, clock: Clock, lambda_context: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import boto3

    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name="dora-test-bus")
    inbox = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="alerts",
        EventBusName="dora-test-bus",
        EventPattern=json.dumps({"detail-type": ["InsightThresholdBreached"]}),
    )
    events.put_targets(Rule="alerts", EventBusName="dora-test-bus", Targets=[{"Id": "inbox", "Arn": inbox_arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", "dora-test-bus")
    from dora_insights.config import reset_settings

    reset_settings()
    report_id = _report(api)
    insight = _insight(api, report_id, metric="deployment_failure_rate", timeRange="LastMonth", granularity="Weekly")
    one = {**SP, "insightId": str(insight["id"])}
    threshold = api.call(
        "POST",
        "/api/projects/{spaceId}/insights/{insightId}/thresholds",
        path_params=one,
        body={"name": "Failures over 30%", "condition": {"bounds": {"upper": 0.3}}, "calculation_interval": "daily"},
        key=ADMIN_KEY,
    ).body
    # A bad week: one of two deployments failed.
    clock.now = datetime(2024, 3, 6, 12, tzinfo=UTC)
    create_deployment(api, version="1", finished_at="2024-03-04T10:00:00Z")
    create_deployment(api, version="2", finished_at="2024-03-05T10:00:00Z", state="Failed")
    recompute(lambda_context)
    clock.now = datetime(2024, 3, 7, 12, tzinfo=UTC)
    recompute(lambda_context)  # still firing: no second event
    # The next week is clean.
    clock.now = datetime(2024, 3, 12, 12, tzinfo=UTC)
    create_deployment(api, version="3", finished_at="2024-03-11T10:00:00Z")
    recompute(lambda_context)
    got = api.call(
        "GET",
        "/api/projects/{spaceId}/insights/{insightId}/thresholds/{thresholdId}",
        path_params={**one, "thresholdId": threshold["id"]},
        key=ADMIN_KEY,
    ).body
    assert [c["state"] for c in got["checks"]] == ["NotFiring", "Firing", "Firing"]
    assert [c["calculated_value"] for c in got["checks"]] == [0.0, 0.5, 0.5]
    assert got["state"] == "NotFiring"
    received = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    assert len(received) == 1
    event = json.loads(received[0]["Body"])
    assert event["detail-type"] == "InsightThresholdBreached"
    assert event["detail"]["value"] == 0.5
    assert event["detail"]["threshold_name"] == "Failures over 30%"


def test_summary_gives_the_four_keys_and_rework_with_tiers(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    recompute(lambda_context)
    result = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SP,
        query={"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z", "project": "shop"},
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    body = result.body
    assert body["deployments"] == 4
    assert body["change_failure_rate"]["change_failures"] == 2  # the failure and the guided failure
    assert body["change_failure_rate"]["rate"] == 0.5
    # exactly one day is past High's "< 1 day" (METRICS §6: bands are [min, max))
    assert body["recovery_time"] == {"count": 1, "median_seconds": 86400.0, "tier": "Medium"}
    assert body["deployment_frequency"]["deployment_days"] == 2
    assert body["deployment_frequency"]["tier"] in ("Elite", "High", "Medium", "Low")
    for benchmark in ("2021", "2024"):
        other = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query={"benchmark": benchmark}, key=ADMIN_KEY)
        assert other.status == 200
    bad = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query={"benchmark": "1999"}, key=ADMIN_KEY)
    assert bad.status == 400
    backwards = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SP,
        query={"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
        key=ADMIN_KEY,
    )
    assert backwards.status == 400


def test_a_deployment_shows_its_figures_at_once_and_as_the_recompute_has_them(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    route = "/api/{spaceId}/deployments/{deploymentId}"
    recovered = history[2]["id"]
    at_once = api.call("GET", route, path_params={**SP, "deploymentId": recovered}, key=ADMIN_KEY).body
    assert at_once["pending"] == 0  # the read brought its stream up to date (METRICS §8)
    recompute(lambda_context)
    figures = api.call("GET", route, path_params={**SP, "deploymentId": recovered}, key=ADMIN_KEY).body["figures"]
    assert figures == at_once["figures"]
    assert figures["time_to_recovery_seconds"] == 86400.0
    assert figures["deployments_until_recovery"] == 1
    assert figures["recovered_from_failed_id"] == history[1]["id"]
    assert figures["previous_success_id"] == history[0]["id"]
    assert figures["lead_time_source"] == "Release"
    failed = api.call("GET", route, path_params={**SP, "deploymentId": history[1]["id"]}, key=ADMIN_KEY).body["figures"]
    assert failed["change_failure"] is True


def _metrics_response(api: Api, report_id: str, headers: dict[str, str] | None = None, **query: str) -> Any:
    return api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": report_id},
        query=query,
        headers=headers,
        key=ADMIN_KEY,
    )


def test_a_client_accepting_gzip_gets_the_stored_answer_compressed(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    report_id = _report(api)
    recompute(lambda_context)
    query = {"split": "Project", "timeRange": "LastYear", "granularity": "Daily"}
    plain = _metrics_response(api, report_id, **query)
    packed = _metrics_response(api, report_id, headers={"Accept-Encoding": "gzip, deflate, br"}, **query)
    assert plain.status == packed.status == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.body == plain.body  # (the test client undoes base64 and gzip, as API Gateway and curl do)
    refused = _metrics_response(api, report_id, headers={"Accept-Encoding": "gzip;q=0, identity"}, **query)
    assert "Content-Encoding" not in refused.headers
    assert refused.body == plain.body
    # Another range is sliced from the stored year: still the same intervals as far as they overlap.
    quarter = _metrics_response(
        api, report_id, headers={"Accept-Encoding": "gzip"}, **{**query, "timeRange": "LastQuarter"}
    )
    assert quarter.status == 200
    for year_series, quarter_series in zip(plain.body["Series"], quarter.body["Series"], strict=True):
        assert year_series["Name"] == quarter_series["Name"]
        assert year_series["Intervals"][-len(quarter_series["Intervals"]) :] == quarter_series["Intervals"]


def test_days_after_the_last_recompute_the_year_moves_on_with_empty_days(
    api: Api, history: list[dict[str, Any]], clock: Clock, lambda_context: Any
) -> None:
    report_id = _report(api)
    recompute(lambda_context)
    before = _metrics(api, report_id, timeRange="LastMonth", granularity="Daily")["Series"][0]["Intervals"]
    clock.now = NOW + timedelta(days=3)  # nothing changed: no recompute refreshes the report
    after = _metrics(api, report_id, timeRange="LastMonth", granularity="Daily")["Series"][0]["Intervals"]
    assert [i["StartOfInterval"] for i in after[-4:]] == ["2024-03-10", "2024-03-11", "2024-03-12", "2024-03-13"]
    assert all(i["DeploymentFailureRate"]["Total"] == 0 for i in after[-3:])
    by_day = {i["StartOfInterval"]: i for i in before}
    assert all(by_day[i["StartOfInterval"]] == i for i in after if i["StartOfInterval"] in by_day)
    assert sum(i["DeploymentFailureRate"]["Total"] for i in after) == 5


def test_views_stored_in_an_older_form_are_recomputed_on_read(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    from dora_insights.dal import keys
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.handlers.runtime import store
    from dora_insights.logic.metrics import VIEW_FORMAT

    report_id = _report(api)
    recompute(lambda_context)
    number = int(report_id.rsplit("-", 1)[1])
    state = MetricsStore(store()).report_state("Spaces-1", number)
    assert state is not None and state["format"] == VIEW_FORMAT
    store().transact([store().put_op({**state, "format": VIEW_FORMAT - 1})])  # as an older release wrote it
    body = _metrics(api, report_id, timeRange="LastMonth")
    assert body["Series"][0]["Name"] == "All"
    fresh = MetricsStore(store()).report_state("Spaces-1", number)
    assert fresh is not None
    assert fresh["format"] == VIEW_FORMAT
    assert fresh["generation"] != state["generation"]
    assert keys.report_state("Spaces-1", number)["SK"] == fresh["SK"]


def test_an_answer_lambda_cannot_return_is_an_octopus_400_saying_how_to_ask(
    api: Api, history: list[dict[str, Any]], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.handlers import http

    report_id = _report(api)
    recompute(lambda_context)
    query = {"split": "Project", "timeRange": "LastYear", "granularity": "Daily"}
    size = len(json.dumps(_metrics(api, report_id, **query)))
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", http.RESPONSE_MARGIN_BYTES + size // 2)
    refused = _metrics_response(api, report_id, **query)
    assert refused.status == 400
    assert "Accept-Encoding: gzip" in refused.body["ErrorMessage"]
    assert refused.body["Errors"]
    packed = _metrics_response(api, report_id, headers={"Accept-Encoding": "gzip"}, **query)
    assert packed.status == 200  # compressed, the same answer fits
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", http.RESPONSE_MARGIN_BYTES + 100)
    too_big = _metrics_response(api, report_id, headers={"Accept-Encoding": "gzip"}, **query)
    assert too_big.status == 400
    assert "even gzip-compressed" in too_big.body["ErrorMessage"]
