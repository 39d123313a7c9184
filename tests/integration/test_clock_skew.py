"""Time as CI systems really send it (clock skew, late backfills, offsets, boundaries), through the
real route handlers' event shapes against moto. Each test asserts what API.md / METRICS.md say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.code import REPO, send_changes, sha
from tests.support.insights import create_report, report_metrics
from tests.support.native import create_deployment, read_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
REPORTS = "/api/{spaceId}/insights/reports"


def _settle(clock: Clock, lambda_context: Any) -> None:
    clock.advance(timedelta(seconds=5))
    scheduled_run(lambda_context)


def _summary(api: Api, **query: str) -> dict[str, Any]:
    found = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=query or None, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _dora(api: Api, **query: str) -> Any:
    found = api.call("GET", "/api/{spaceId}/dora/metrics", path_params=SP, query=query, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body


def _report_deployments(api: Api, report_id: str) -> Any:
    found = api.call(
        "GET", REPORTS + "/{reportId}/deployments", path_params={**SP, "reportId": report_id}, key=ADMIN_KEY
    )
    assert found.status == 200, found.body
    return found.body


def _finishes(body: Any) -> list[str]:
    """Every deployment's completion time listed by a report's /deployments answer (any key naming it)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("CompletedTime", "completed_at") and isinstance(v, str):
                    out.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(body)
    return sorted(out)


# --- a deploy tool whose clock runs ahead --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "now", "ahead"),
    [
        # 23:58 UTC on March 31st; the tool's clock is 5 minutes fast: finished "00:03 on April 1st".
        ("UTC", datetime(2024, 3, 31, 23, 58, tzinfo=UTC), "2024-04-01T00:03:00Z"),
        # The same in a zone 14 hours ahead of UTC: 23:58 local on March 31st, finished 00:03 local on April 1st.
        ("Pacific/Kiritimati", datetime(2024, 3, 31, 9, 58, tzinfo=UTC), "2024-04-01T00:03:00+14:00"),
        # A runner whose clock is years off (a dead RTC battery): well inside the accepted range.
        ("UTC", datetime(2024, 3, 25, 12, 0, tzinfo=UTC), "2099-06-01T00:00:00Z"),
    ],
)
def test_report_deployments_leave_out_a_deployment_dated_after_this_month(
    api: Api, clock: Clock, lambda_context: Any, zone: str, now: datetime, ahead: str
) -> None:
    """API.md (Octopus ``/deployments``) and the reference: "the last 12 whole months + this month". A deployment
    whose tool's clock runs ahead into next month is not in this month; the report's own ``/metrics`` does not
    count it yet either (METRICS §4: a figure dated after the computation waits)."""
    clock.now = now
    create_deployment(api, version="1", finished_at="2024-03-20T10:00:00Z")
    create_deployment(api, version="2", finished_at=ahead)
    report = create_report(api, TimeZone=zone)
    _settle(clock, lambda_context)
    listed = _finishes(_report_deployments(api, report))
    counted = report_metrics(api, report, timeRange="LastYear", granularity="Monthly").body
    total = sum(i["NumberOfSuccessfulDeployments"] for s in counted["Series"] for i in s["Intervals"])
    assert total == 1  # /metrics counts only the deployment that is due
    assert listed == ["2024-03-20T10:00:00.000Z"], listed


def test_report_deployments_start_at_the_first_of_the_month_twelve_months_back_in_the_report_zone(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Pinned: the lower bound is 1 March 2023 00:00 in the report's zone (+14:00: 28 Feb 10:00 UTC), inclusive."""
    clock.now = datetime(2024, 3, 15, 0, 0, tzinfo=UTC)
    create_deployment(api, version="1", finished_at="2023-02-28T09:59:59.999Z")
    create_deployment(api, version="2", finished_at="2023-03-01T00:00:00+14:00")
    create_deployment(api, version="3", finished_at="2024-03-14T00:00:00Z")
    report = create_report(api, TimeZone="Pacific/Kiritimati")
    _settle(clock, lambda_context)
    assert _finishes(_report_deployments(api, report)) == ["2023-02-28T10:00:00.000Z", "2024-03-14T00:00:00.000Z"]


def test_summary_counts_a_deployment_ahead_of_the_clock_once_its_time_comes(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Pinned: a finish two minutes ahead of the service clock is accepted (201); ``/summary``'s default range is
    ``[now - 90 days, now)`` (METRICS §6), so it is counted once ``now`` passes it, and at once by a ``to`` past it."""
    clock.now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    create_deployment(api, version="1", finished_at="2024-03-09T12:00:00Z")
    ahead = create_deployment(api, version="2", finished_at="2024-03-10T12:02:00Z")
    assert ahead["finished_at"] == "2024-03-10T12:02:00.000Z"
    _settle(clock, lambda_context)
    assert _summary(api)["deployment_frequency"]["successful_deployments"] == 1
    wider = _summary(api, **{"from": "2024-03-01T00:00:00Z", "to": "2024-03-10T13:00:00Z"})
    assert wider["deployment_frequency"]["successful_deployments"] == 2
    clock.now = datetime(2024, 3, 10, 12, 2, 1, tzinfo=UTC)
    later = _summary(api)
    assert (later["deployment_frequency"]["successful_deployments"], later["pending"]) == (2, 0)


# --- commits stamped after their deployment: negative lead times --------------------------------------------


def test_a_negative_lead_time_is_kept_and_flagged_in_every_read(api: Api, clock: Clock, lambda_context: Any) -> None:
    """METRICS §3/§7: a commit stamped after its deployment (clock skew) gives a negative lead time, kept in medians
    and flagged; the same -600 s in the deployment, ``/summary``, ``/dora/metrics`` and the report."""
    clock.now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    stamp = "2024-03-05T12:10:00+02:00"  # 10:10Z, ten minutes after the deployment finished
    send_changes(api, commits=[{"repository": REPO, "branch": "main", "sha": sha(1), "timestamp": stamp}])
    made = create_deployment(api, version="1", repository=REPO, commit_sha=sha(1), finished_at="2024-03-05T10:00:00Z")
    _settle(clock, lambda_context)
    figures = read_deployment(api, made["id"])["figures"]
    assert (figures["lead_time_seconds"], figures["lead_time_negative"]) == (-600.0, True)
    assert _summary(api)["lead_time"]["median_seconds"] == -600.0
    rows = _dora(api, metric="lead_time_for_changes", start_date="2024-03-05", end_date="2024-03-06")
    assert rows == [{"date": "2024-03-05", "value": -600.0}, {"date": "2024-03-06", "value": None}]
    report = create_report(api)
    body = report_metrics(api, report, timeRange="LastMonth", granularity="Monthly").body
    (march,) = [i for i in body["Series"][0]["Intervals"] if i["StartOfInterval"] == "2024-03-01"]
    assert march["LeadTime"]["Median"] == "-0:10:00.0"


def test_summary_percentiles_interpolate_between_closest_ranks(api: Api, clock: Clock, lambda_context: Any) -> None:
    """METRICS §4: linear interpolation between closest ranks (NumPy default): lead times 600, 1200, 6000 s give a
    median of 1200 and a 95th percentile of 1200 + 0.9 * 4800 = 5520."""
    clock.now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    for version, day, lead in (("1", "02", 600), ("2", "03", 1200), ("3", "04", 6000)):
        finished = datetime.fromisoformat(f"2024-03-{day}T10:00:00+00:00")
        started = (finished - timedelta(seconds=lead)).isoformat()
        create_deployment(api, version=version, started_at=started, finished_at=finished.isoformat())
    _settle(clock, lambda_context)
    lead_time = _summary(api)["lead_time"]
    assert (lead_time["median_seconds"], lead_time["p95_seconds"]) == (1200.0, pytest.approx(5520.0))


# --- what the clock's disagreement looks like at the doors ---------------------------------------------------


def test_a_start_one_second_after_the_finish_is_a_400_naming_started_at(api: Api, clock: Clock) -> None:
    """Pinned: no door stores a negative duration or restore time; each answers 400 in its dialect."""
    datadog = api.call(
        "POST",
        "/api/v2/dora/deployment",
        body={"data": {"attributes": {"service": "x", "started_at": 1709294401, "finished_at": 1709294400}}},
        key=ADMIN_KEY,
    )
    assert datadog.status == 400
    assert datadog.body["errors"][0]["source"]["pointer"] == "/data/attributes/started_at"
    native = api.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params=SP,
        body={"project": "x", "started_at": "2024-03-01T12:00:01Z", "finished_at": "2024-03-01T12:00:00Z"},
        key=ADMIN_KEY,
    )
    assert native.status == 400, native.body
    failure = api.call(
        "POST",
        "/api/{spaceId}/failures",
        path_params=SP,
        body={"project": "x", "started_at": "2024-03-01T12:00:01Z", "finished_at": "2024-03-01T12:00:00Z"},
        key=ADMIN_KEY,
    )
    assert failure.status == 400, failure.body


@pytest.mark.parametrize(
    "sent",
    [
        "2024-03-01T12:00:00.123456789+14:00",  # Go's RFC3339Nano from a runner in Kiribati
        "2024-02-29T10:00:00.123999999-12:00",
        "2024-02-29T22:00:00.123Z",
        "2024-02-29T22:00:00.123+00:00",
        1709244000123,  # milliseconds
        1709244000123456789,  # nanoseconds
        "1709244000.123",  # seconds with a fraction, as text
    ],
)
def test_offsets_nanosecond_fractions_and_units_land_on_leap_day_to_the_millisecond(
    api: Api, clock: Clock, sent: str | int
) -> None:
    """Pinned: every spelling is the instant 2024-02-29T22:00:00.123Z (a fraction is cut to the millisecond)."""
    made = create_deployment(api, version="1", finished_at=sent)
    assert made["finished_at"] == "2024-02-29T22:00:00.123Z"


# --- a backfill of 2019 --------------------------------------------------------------------------------------


def test_a_2019_backfill_counts_in_its_own_range_and_nowhere_else(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Pinned: /summary and /dora/metrics over January 2019 count the backfill; today's default ranges and the
    report's ``/deployments`` (last 12 whole months + this month) do not."""
    clock.now = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    for day in ("2019-01-07", "2019-01-08", "2019-01-15"):
        create_deployment(api, version=day, started_at=f"{day}T09:00:00Z", finished_at=f"{day}T10:00:00Z")
    create_deployment(api, version="now", started_at="2024-02-28T09:00:00Z", finished_at="2024-02-28T10:00:00Z")
    _settle(clock, lambda_context)
    old = _summary(api, **{"from": "2019-01-01T00:00:00Z", "to": "2019-02-01T00:00:00Z"})
    assert old["deployment_frequency"]["successful_deployments"] == 3
    assert old["lead_time"]["median_seconds"] == 3600.0
    assert _summary(api)["deployment_frequency"]["successful_deployments"] == 1
    january = _dora(api, metric="deployment_frequency", start_date="2019-01-01", end_date="2019-01-31", interval="all")
    assert january == [{"date": None, "value": pytest.approx(3 / 31)}]
    assert sum(r["value"] for r in _dora(api, metric="deployment_frequency")) == 1
    report = create_report(api)
    assert _finishes(_report_deployments(api, report)) == ["2024-02-28T10:00:00.000Z"]


def test_dora_metrics_default_start_three_months_before_may_31_is_leap_day(api: Api, clock: Clock) -> None:
    """Pinned: METRICS §9, `start_date` defaults to 3 calendar months before `end_date`, clamped to month end."""
    rows = _dora(api, metric="deployment_frequency", end_date="2024-05-31")
    assert (rows[0]["date"], rows[-1]["date"], len(rows)) == ("2024-02-29", "2024-05-31", 93)
