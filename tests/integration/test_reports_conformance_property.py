"""The Octopus-style Insights reports API against its reference and METRICS §3/§4/§8: /metrics and
/deployments equal an oracle after random creates, corrections (PATCH), deletes and out-of-order
arrivals, read between writes without a scheduled run; every split sums to the same totals; time
zones (a year of daylight saving in awkward zones) only move interval boundaries; the reference's
field names and types; hostile definitions; paging and lifecycle; a late deployment that moves
another environment's Release lead times (METRICS §3) is counted by the next read covering it (§8)."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock

SP = {"spaceId": "Spaces-1"}
REPORTS = "/api/{spaceId}/insights/reports"
REPORT = REPORTS + "/{reportId}"
DEPLOYMENTS = "/api/{spaceId}/deployments"
DEPLOYMENT = DEPLOYMENTS + "/{deploymentId}"
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
SEEDS = [11, 12, 13]


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    from dora_insights.domain.durations import parse_duration_seconds

    return parse_duration_seconds(text)


def _report(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    made = api.call("POST", REPORTS, path_params=SP, body={"Name": name, **fields}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _metrics(api: Api, report: str, **params: str) -> Any:
    return api.call("GET", REPORT + "/metrics", path_params={**SP, "reportId": report}, query=params, key=ADMIN_KEY)


def _streams(api: Api, report: str) -> Any:
    return api.call("GET", REPORT + "/deployments", path_params={**SP, "reportId": report}, key=ADMIN_KEY)


# --- oracle (METRICS §3, §4) ----------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"Count": 0, "Mean": None, "Median": None, "Min": None, "Max": None, "NinetyFifth": None}
    return {
        "Count": len(values),
        "Mean": sum(values) / len(values),
        "Median": _pct(values, 0.5),
        "Min": min(values),
        "Max": max(values),
        "NinetyFifth": _pct(values, 0.95),
    }


def _figures(model: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-deployment §3 figures, stream = project (one environment, no tenant/channel)."""
    out: dict[str, dict[str, Any]] = {}
    for project in {d["project"] for d in model.values()}:
        rows = sorted((d for d in model.values() if d["project"] == project), key=lambda d: (d["finished"], d["id"]))
        prev_success: dict[str, Any] | None = None
        run: list[dict[str, Any]] = []  # unbroken failures just before
        for d in rows:
            ok = d["state"] == "Success" and not d["guided"]
            fig: dict[str, Any] = {"ok": ok, "tsp": None, "prev": None, "ttr": None, "dur": None, "from": None}
            if ok:
                if prev_success is not None:
                    fig["tsp"] = (d["finished"] - prev_success["finished"]).total_seconds()
                    fig["prev"] = prev_success["id"]
                if run:
                    fig["ttr"] = (d["finished"] - run[0]["finished"]).total_seconds()
                    fig["dur"] = len(run)
                    fig["from"] = run[0]["id"]
                prev_success, run = d, []
            else:
                run.append(d)
            out[d["id"]] = fig
    return out


def _oracle(
    model: dict[str, dict[str, Any]], zone: str, now: datetime, series_of: Any = lambda d: "All"
) -> dict[str, dict[str, dict[str, Any]]]:
    """{series: {local day: interval}} for Daily granularity (only days with data)."""
    tz = ZoneInfo(zone)
    figures = _figures(model)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d in model.values():
        day = d["finished"].astimezone(tz).date().isoformat()
        cell = out.setdefault(series_of(d), {}).setdefault(
            day, {"ok": 0, "fail": 0, "guided": 0, "tsp": [], "ttr": [], "dur": []}
        )
        f = figures[d["id"]]
        if f["ok"]:
            cell["ok"] += 1
        elif d["state"] == "Success":
            cell["guided"] += 1
        else:
            cell["fail"] += 1
        for key in ("tsp", "ttr", "dur"):
            if f[key] is not None:
                cell[key].append(float(f[key]))
    return out


def _close(a: float | None, b: float | None, tol: float = 1e-3) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


def _check_interval(got: dict[str, Any], cell: dict[str, Any] | None, where: Any) -> None:
    cell = cell or {"ok": 0, "fail": 0, "guided": 0, "tsp": [], "ttr": [], "dur": []}
    assert got["NumberOfSuccessfulDeployments"] == cell["ok"], (where, got, cell)
    failed = cell["fail"] + cell["guided"]
    total = cell["ok"] + failed
    assert got["DeploymentFailureRate"] == {
        "Successful": cell["ok"],
        "DeploymentFailure": cell["fail"],
        "SuccessfulButHadGuidedFailure": cell["guided"],
        "Total": total,
        "Failed": failed,
        "Rate": round(failed / total, 5) if total else 0,
    } or _rate_ok(got["DeploymentFailureRate"], cell), (where, got["DeploymentFailureRate"], cell)
    for name, key, as_duration in (
        ("TimeSincePreviousDeployment", "tsp", True),
        ("MeanTimeToRecovery", "ttr", True),
        ("DeploymentsUntilRecovery", "dur", False),
    ):
        want = _stats(cell[key])
        have = got[name]
        assert have["Count"] == want["Count"], (where, name, have, want)
        for stat in ("Mean", "Median", "Min", "Max", "NinetyFifth"):
            value = _seconds(have[stat]) if as_duration else have[stat]
            assert _close(value, want[stat]), (where, name, stat, have, want)


def _rate_ok(got: dict[str, Any], cell: dict[str, Any]) -> bool:
    # DeploymentFailure may be read as "Failed|TimedOut" only, or include guided; the rest must hold.
    failed = cell["fail"] + cell["guided"]
    total = cell["ok"] + failed
    return (
        got["Successful"] == cell["ok"]
        and got["Failed"] == failed
        and got["Total"] == total
        and got["SuccessfulButHadGuidedFailure"] == cell["guided"]
        and abs(got["Rate"] - (round(failed / total, 5) if total else 0)) < 1e-9
    )


def _compare(api: Api, report: str, model: dict[str, dict[str, Any]], zone: str, now: datetime, tag: str) -> None:
    answer = _metrics(api, report, split="None", timeRange="LastMonth", granularity="Daily")
    assert answer.status == 200, answer.body
    assert answer.header("X-Dora-Pending") == "0", (tag, answer.headers)
    series = answer.body["Series"]
    assert [s["Name"] for s in series] == ["All"], (tag, series)
    expected = _oracle(model, zone, now).get("All", {})
    intervals = series[0]["Intervals"]
    starts = [i["StartOfInterval"] for i in intervals]
    # dense: every local day from (today - 1 month) to today
    today = now.astimezone(ZoneInfo(zone)).date()
    first = date(today.year, today.month - 1, today.day) if today.month > 1 else date(today.year - 1, 12, today.day)
    assert starts == [(first + timedelta(days=n)).isoformat() for n in range((today - first).days + 1)], (tag, starts)
    assert set(expected) <= set(starts), (tag, set(expected) - set(starts))
    for interval in intervals:
        _check_interval(interval, expected.get(interval["StartOfInterval"]), (tag, interval["StartOfInterval"]))


def _check_streams(api: Api, report: str, model: dict[str, dict[str, Any]], tag: str) -> None:
    answer = _streams(api, report)
    assert answer.status == 200, answer.body
    listed = {d["Id"]: d for s in answer.body["Streams"] for d in s["Deployments"]}
    assert set(listed) == set(model), (tag, set(listed) ^ set(model))
    figures = _figures(model)
    for dep_id, got in listed.items():
        want = figures[dep_id]
        d = model[dep_id]
        assert got["TaskState"] == d["state"], (tag, got, d)
        assert got["HadGuidedFailure"] == d["guided"], (tag, got, d)
        assert _close(_seconds(got["TimeSincePreviouslySuccessfulDeployment"]), want["tsp"]), (tag, got, want)
        assert got["PreviousSuccessfulDeploymentId"] == want["prev"], (tag, got, want)
        assert _close(_seconds(got["TimeToRecovery"]), want["ttr"]), (tag, got, want)
        assert got["DeploymentsUntilRecovery"] == want["dur"], (tag, got, want)
        assert got["RecoveredFromFailedDeploymentId"] == want["from"], (tag, got, want)
    for s in answer.body["Streams"]:
        times = [(d["CompletedTime"], d["Id"]) for d in s["Deployments"]]
        assert [t for t, _ in times] == sorted(t for t, _ in times), (tag, "stream not in CompletedTime order", times)


STATES = ["Success", "Success", "Success", "Failed", "TimedOut"]


def _send(api: Api, rng: random.Random, model: dict[str, dict[str, Any]], used: set[int], low: int, high: int) -> None:
    while True:
        minute = rng.randint(low, high)
        if minute not in used:
            break
    used.add(minute)
    finished = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    project = rng.choice(["shop", "api"])
    state = rng.choice(STATES)
    guided = state == "Success" and rng.random() < 0.15
    body = {
        "project": project,
        "environment": "production",
        "finished_at": _stamp(finished),
        "started_at": _stamp(finished - timedelta(minutes=5)),
        "state": state,
        "had_guided_failure": guided,
    }
    made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    model[made.body["id"]] = {
        "id": made.body["id"],
        "project": project,
        "finished": finished,
        "state": state,
        "guided": guided,
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_metrics_and_streams_follow_the_oracle_through_corrections_deletes_and_late_arrivals(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    model: dict[str, dict[str, Any]] = {}
    used: set[int] = set()
    # 2024-03-08 .. 2024-03-19 (minutes from 03-01)
    for _ in range(16):
        _send(api, rng, model, used, 7 * 1440, 18 * 1440 + 1400)
    utc = _report(api, "UTC")["Id"]
    ktm = _report(api, "Kathmandu", TimeZone="Asia/Kathmandu")["Id"]
    win = _report(api, "Sydney", TimeZone="AUS Eastern Standard Time")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    _compare(api, utc, model, "UTC", clock.now, "initial utc")
    _compare(api, ktm, model, "Asia/Kathmandu", clock.now, "initial ktm")
    _compare(api, win, model, "Australia/Sydney", clock.now, "initial syd")
    _check_streams(api, utc, model, "initial")

    for round_no in range(2):
        clock.advance(timedelta(minutes=1))
        # corrections
        for dep_id in rng.sample(sorted(model), 3):
            state = rng.choice(["Success", "Failed", "TimedOut"])
            patched = api.call(
                "PATCH", DEPLOYMENT, path_params={**SP, "deploymentId": dep_id}, body={"state": state}, key=ADMIN_KEY
            )
            assert patched.status == 200, patched.body
            model[dep_id]["state"] = state
        # deletes
        for dep_id in rng.sample(sorted(model), 2):
            gone = api.call("DELETE", DEPLOYMENT, path_params={**SP, "deploymentId": dep_id}, key=ADMIN_KEY)
            assert gone.status in (200, 204), gone.body
            del model[dep_id]
        # late arrivals: finished earlier than most of what exists
        for _ in range(3):
            _send(api, rng, model, used, 7 * 1440, 12 * 1440)
        clock.advance(timedelta(seconds=5))  # past the 2-second index window (METRICS §8)
        _compare(api, utc, model, "UTC", clock.now, f"round {round_no} utc")
        _compare(api, ktm, model, "Asia/Kathmandu", clock.now, f"round {round_no} ktm")
        _check_streams(api, utc, model, f"round {round_no}")
    _compare(api, win, model, "Australia/Sydney", clock.now, "final syd")


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_splits_and_time_zones_only_regroup_the_same_totals(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    model: dict[str, dict[str, Any]] = {}
    used: set[int] = set()
    for _ in range(14):
        _send(api, rng, model, used, 7 * 1440, 18 * 1440 + 1400)
    reports = [
        _report(api, "A")["Id"],
        _report(api, "B", TimeZone="Pacific/Chatham")["Id"],
        _report(api, "C", TimeZone="Hawaiian Standard Time")["Id"],
        _report(
            api,
            "D",
            EnvironmentGroups=[{"Name": "Prod", "Environments": ["Environments-1"]}],
            TimeZone="Asia/Kathmandu",
        )["Id"],
    ]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)

    def totals(body: dict[str, Any]) -> tuple[int, int, int, int]:
        iv = [i for s in body["Series"] for i in s["Intervals"]]
        return (
            sum(i["NumberOfSuccessfulDeployments"] for i in iv),
            sum(i["DeploymentFailureRate"]["Total"] for i in iv),
            sum(i["TimeSincePreviousDeployment"]["Count"] for i in iv),
            sum(i["MeanTimeToRecovery"]["Count"] for i in iv),
        )

    figures = _figures(model)
    want = (
        sum(f["ok"] for f in figures.values()),
        len(model),
        sum(f["tsp"] is not None for f in figures.values()),
        sum(f["ttr"] is not None for f in figures.values()),
    )
    for report in reports:
        for split in ("None", "Project", "Environment", "EnvironmentGroup", "ProjectGroup", "Tenant"):
            for granularity in ("Daily", "Weekly", "Monthly"):
                answer = _metrics(api, report, split=split, timeRange="LastQuarter", granularity=granularity)
                assert answer.status == 200, answer.body
                if split == "EnvironmentGroup" and report != reports[3]:
                    continue  # no groups: no series to compare
                got = totals(answer.body)
                assert got == want, (report, split, granularity, got, want)
                series = answer.body["Series"]
                counts = [sum(i["DeploymentFailureRate"]["Total"] for i in s["Intervals"]) for s in series]
                assert counts == sorted(counts, reverse=True), (report, split, counts)
                starts = [[i["StartOfInterval"] for i in s["Intervals"]] for s in series]
                assert all(x == starts[0] for x in starts), (report, split)
                if granularity == "Weekly":
                    assert all(date.fromisoformat(x).weekday() == 6 for x in starts[0]), starts[0]
                if granularity == "Monthly":
                    assert all(x.endswith("-01") for x in starts[0]), starts[0]
        by_project = _metrics(api, report, split="Project", timeRange="LastMonth", granularity="Daily").body
        assert sorted(s["Name"] for s in by_project["Series"]) == sorted({d["project"] for d in model.values()})


# --- the reference's field names and types -------------------------------------------------------
def test_report_fields_and_types_follow_the_reference(api: Api, clock: Clock) -> None:
    made = _report(api, "R", TimeZone="UTC")
    for field, kind in (
        ("Id", str),
        ("SpaceId", str),
        ("Name", str),
        ("ProjectGroupIds", list),
        ("ProjectIds", list),
        ("TenantIds", list),
        ("TenantTags", list),
        ("TenantMode", str),
        ("EnvironmentGroups", list),
        ("TimeZone", str),
        ("Links", dict),
    ):
        assert isinstance(made.get(field), kind), (field, made)
    for field in ("Description", "IconId", "IconColor"):
        assert field in made, field
    assert made["TenantMode"] == "TenantedAndUntenanted"
    assert made["Links"]["Self"] == f"/api/Spaces-1/insights/reports/{made['Id']}"
    listed = api.call("GET", REPORTS, path_params=SP, key=ADMIN_KEY)
    assert listed.status == 200
    body = listed.body
    assert body["ItemType"] == "InsightsReport"
    assert (body["TotalResults"], body["ItemsPerPage"], body["NumberOfPages"], body["LastPageNumber"]) == (1, 30, 1, 0)
    assert body["Links"]["Template"] == "/api/Spaces-1/insights/reports{?skip,take}"
    assert body["Links"]["Page.All"] == "/api/Spaces-1/insights/reports?skip=0&take=2147483647"


@pytest.mark.xfail(
    strict=True, reason="left: the service has no report logo route, so it links none (a link answering 404 is worse)"
)
def test_report_links_carry_the_references_logo_link(api: Api, clock: Clock) -> None:
    """Reference sample: Links {"Self", "Logo": ".../InsightsReports-1/logo"}."""
    made = _report(api, "R")
    assert made["Links"].get("Logo") == f"/api/Spaces-1/insights/reports/{made['Id']}/logo", made["Links"]


def test_metrics_parameters_are_read_in_any_case_as_octopus_binds_enums(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Octopus (ASP.NET) binds ``timeRange``, ``granularity`` and ``split`` ignoring case: ``lastmonth`` is
    ``LastMonth``; a value of no case is still a 400."""
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-05T10:00:00Z"}
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    report = _report(api, "R")["Id"]
    canonical = _metrics(api, report, timeRange="LastMonth", granularity="Monthly", split="Environment")
    assert canonical.status == 200, canonical.body
    for spelling in (("lastmonth", "monthly", "environment"), ("LASTMONTH", "MONTHLY", "ENVIRONMENT")):
        got = _metrics(api, report, **dict(zip(("timeRange", "granularity", "split"), spelling, strict=True)))
        assert (got.status, got.body) == (200, canonical.body), spelling
    assert _metrics(api, report, timeRange="last-month").status == 400


def test_time_zone_is_answered_in_windows_format(api: Api, clock: Clock) -> None:
    """Reference, Get a report: "TimeZone — The timezone used in the report, in Windows timezone format"."""
    made = _report(api, "R", TimeZone="Europe/London")
    got = api.call("GET", REPORT, path_params={**SP, "reportId": made["Id"]}, key=ADMIN_KEY)
    assert got.body["TimeZone"] == "GMT Standard Time", got.body["TimeZone"]


def test_metrics_fields_and_types_follow_the_reference(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    for n, state in enumerate(["Success", "Failed", "Success", "Success"]):
        body = {
            "project": "shop",
            "environment": "production",
            "finished_at": f"2024-03-1{n}T10:00:00Z",
            "state": state,
        }
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    report = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    answer = _metrics(api, report)  # defaults: Weekly, LastQuarter
    assert answer.status == 200, answer.body
    interval = answer.body["Series"][0]["Intervals"][-2]
    assert answer.body["Series"][0]["Name"] == "All"
    for name in ("LeadTime", "TimeSincePreviousDeployment", "MeanTimeToRecovery", "DeploymentsUntilRecovery"):
        assert set(interval[name]) >= {"Count", "Mean", "Median", "Min", "Max", "NinetyFifth"}, interval[name]
    assert set(interval["DeploymentFailureRate"]) >= {
        "Successful",
        "DeploymentFailure",
        "SuccessfulButHadGuidedFailure",
        "Total",
        "Failed",
        "Rate",
    }
    dur = [i for i in answer.body["Series"][0]["Intervals"] if i["DeploymentsUntilRecovery"]["Count"]]
    assert dur and isinstance(dur[0]["DeploymentsUntilRecovery"]["Mean"], float), dur
    ttr = dur[0]["MeanTimeToRecovery"]
    assert isinstance(ttr["Mean"], str) and _seconds(ttr["Mean"]) == 86400, (
        ttr
    )  # Failed 03-11 10:00, Success 03-12 10:00
    starts = [i["StartOfInterval"] for i in answer.body["Series"][0]["Intervals"]]
    assert all(date.fromisoformat(s).weekday() == 6 for s in starts), starts
    streams = _streams(api, report)
    assert streams.status == 200
    assert streams.body["ReportName"] == "R"
    stream = streams.body["Streams"][0]
    for field in (
        "ProjectId",
        "ProjectName",
        "ChannelId",
        "ChannelName",
        "EnvironmentId",
        "EnvironmentName",
        "TenantId",
        "TenantName",
        "Deployments",
    ):
        assert field in stream, field
    dep = stream["Deployments"][-1]
    for field in (
        "Id",
        "ReleaseVersion",
        "TaskState",
        "CompletedTime",
        "HadGuidedFailure",
        "LeadTime",
        "LeadTimeCalculatedFromVersion",
        "TimeSincePreviouslySuccessfulDeployment",
        "PreviousSuccessfulDeploymentId",
        "TimeToRecovery",
        "DeploymentsUntilRecovery",
        "RecoveredFromFailedDeploymentId",
        "RecoveredFromFailedReleaseVersion",
    ):
        assert field in dep, field


# --- hostile definitions --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"TimeZone": "localtime"},
        {"TimeZone": "posixrules"},
        {"TimeZone": "right/UTC"},
        {"TimeZone": "Etc/../UTC"},
        {"TimeZone": "../../etc/passwd"},
        {"TimeZone": "UTC\u0000"},
        {"TimeZone": "x" * 100},
        {"TimeZone": ""},
        {"Name": ""},
        {"Name": "x" * 5000},
        {"ProjectIds": ["Projects-999"]},
        {"ProjectIds": [f"Projects-{n}" for n in range(1000)]},
        {"ProjectIds": ["Projects-1"] * 1001},
        {
            "EnvironmentGroups": [
                {"Name": f"G{n}", "Environments": [f"Environments-{n}-{m}" for m in range(500)]} for n in range(10)
            ]
        },
        {"EnvironmentGroups": [{"Name": "G", "Environments": []}]},
        {
            "EnvironmentGroups": [
                {"Name": "G", "Environments": ["Environments-1"]},
                {"Name": "g", "Environments": ["Environments-1"]},
            ]
        },
        {"TenantMode": "Sometimes"},
        {"TenantTags": ["NoSlash"]},
        {"IconColor": "red"},
        {"SpaceId": "Spaces-2"},
        {"ProjectIds": "Projects-1"},
        {"ProjectIds": [None]},
        {"Unknown": 1},
    ],
)
def test_hostile_report_definitions_are_octopus_400s_and_store_nothing(
    api: Api, clock: Clock, fields: dict[str, Any]
) -> None:
    body = {"Name": "R", **fields}
    answer = api.call("POST", REPORTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert answer.status in (400, 422), (answer.status, answer.body)
    assert isinstance(answer.body, dict) and "ErrorMessage" in answer.body and "Errors" in answer.body, answer.body
    listed = api.call("GET", REPORTS, path_params=SP, key=ADMIN_KEY)
    assert listed.body["TotalResults"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"split": "TenantTagSet"},
        {"split": "TenantTagSet", "tenantTagSetId": "TagSets-999"},
        {"split": "Channel"},
        {"timeRange": "LastDecade"},
        {"granularity": "Hourly"},
        {"tenantTagSetId": "x" * 1000},
    ],
)
def test_hostile_metrics_parameters_are_400s(api: Api, clock: Clock, params: dict[str, str]) -> None:
    report = _report(api, "R")["Id"]
    answer = _metrics(api, report, **params)
    assert answer.status == 400, (answer.status, answer.body)
    assert "ErrorMessage" in answer.body


@pytest.mark.parametrize("query", [{"take": "0"}, {"skip": "-1"}, {"take": "x"}, {"skip": "99999999999999999999"}])
def test_bad_paging_is_400(api: Api, clock: Clock, query: dict[str, str]) -> None:
    answer = api.call("GET", REPORTS, path_params=SP, query=query, key=ADMIN_KEY)
    assert answer.status == 400, (answer.status, answer.body)


def test_paging_counts_and_links(api: Api, clock: Clock) -> None:
    for n in range(12):
        _report(api, f"R{n:02d}")
    seen: list[str] = []
    for skip in range(0, 12, 5):
        page = api.call("GET", REPORTS, path_params=SP, query={"skip": str(skip), "take": "5"}, key=ADMIN_KEY).body
        assert (page["TotalResults"], page["ItemsPerPage"], page["NumberOfPages"], page["LastPageNumber"]) == (
            12,
            5,
            3,
            2,
        ), page
        assert page["Links"]["Page.Last"] == "/api/Spaces-1/insights/reports?skip=10&take=5", page["Links"]
        seen += [r["Id"] for r in page["Items"]]
    assert seen == [f"InsightsReports-{n}" for n in range(1, 13)], seen
    beyond = api.call("GET", REPORTS, path_params=SP, query={"skip": "50", "take": "5"}, key=ADMIN_KEY)
    assert beyond.status == 200 and beyond.body["Items"] == [] and beyond.body["TotalResults"] == 12
    everything = api.call("GET", REPORTS, path_params=SP, query={"take": "2147483647"}, key=ADMIN_KEY)
    assert everything.status == 200 and len(everything.body["Items"]) == 12


# --- lifecycle ------------------------------------------------------------------------------------
def test_deleted_report_views_are_gone_and_ids_are_not_reused(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-19T10:00:00Z"}
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    first = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    assert _metrics(api, first).status == 200
    assert api.call("DELETE", REPORT, path_params={**SP, "reportId": first}, key=ADMIN_KEY).status == 204
    for path in ("/metrics", "/deployments"):
        gone = api.call("GET", REPORT + path, path_params={**SP, "reportId": first}, key=ADMIN_KEY)
        assert gone.status == 404, (path, gone.status, gone.body)
    put = api.call("PUT", REPORT, path_params={**SP, "reportId": first}, body={"Name": "again"}, key=ADMIN_KEY)
    assert put.status == 404, (put.status, put.body)
    second = _report(api, "S", ProjectIds=["Projects-1"])["Id"]
    assert second != first
    fresh = _metrics(api, second, timeRange="LastMonth", granularity="Daily")
    assert fresh.status == 200
    assert sum(i["NumberOfSuccessfulDeployments"] for i in fresh.body["Series"][0]["Intervals"]) == 1


def test_put_changing_time_zone_moves_intervals_at_once(api: Api, clock: Clock, lambda_context: Any) -> None:
    """A deployment at 2024-03-18T20:00Z is on 03-18 in UTC and 03-19 in Asia/Kathmandu (+05:45)."""
    from tests.support.recompute import scheduled_run

    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-18T20:00:00Z"}
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    made = _report(api, "R")
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)

    def day_of_deployment() -> str:
        answer = _metrics(api, made["Id"], timeRange="LastMonth", granularity="Daily")
        assert answer.status == 200
        return next(
            i["StartOfInterval"] for i in answer.body["Series"][0]["Intervals"] if i["NumberOfSuccessfulDeployments"]
        )

    assert day_of_deployment() == "2024-03-18"
    put = api.call(
        "PUT",
        REPORT,
        path_params={**SP, "reportId": made["Id"]},
        body={**made, "TimeZone": "Asia/Kathmandu"},
        key=ADMIN_KEY,
    )
    assert put.status == 200, put.body
    assert day_of_deployment() == "2024-03-19"
    put = api.call(
        "PUT",
        REPORT,
        path_params={**SP, "reportId": made["Id"]},
        body={**put.body, "TimeZone": "Hawaiian Standard Time"},
        key=ADMIN_KEY,
    )
    assert put.status == 200, put.body
    assert day_of_deployment() == "2024-03-18"


def test_put_filters_change_counts_at_once(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    for project in ("shop", "shop", "api"):
        body = {"project": project, "environment": "production", "finished_at": "2024-03-18T10:00:00Z"}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    made = _report(api, "R")
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)

    def total() -> int:
        answer = _metrics(api, made["Id"], timeRange="LastMonth", granularity="Monthly")
        return sum(i["DeploymentFailureRate"]["Total"] for s in answer.body["Series"] for i in s["Intervals"])

    assert total() == 3
    for ids, want in ((["Projects-2"], 1), (["Projects-1"], 2), ([], 3)):
        current = api.call("GET", REPORT, path_params={**SP, "reportId": made["Id"]}, key=ADMIN_KEY).body
        put = api.call(
            "PUT",
            REPORT,
            path_params={**SP, "reportId": made["Id"]},
            body={**current, "ProjectIds": ids},
            key=ADMIN_KEY,
        )
        assert put.status == 200, put.body
        assert total() == want, (ids, want)
        streams = _streams(api, made["Id"]).body
        assert sum(len(s["Deployments"]) for s in streams["Streams"]) == want


# --- lead time by the release rule, releases first seen in another environment ----------------------
def _catalogue(api: Api, kind: str) -> dict[str, str]:
    found = api.call("GET", "/api/{spaceId}/" + kind, path_params=SP, query={"take": "1000"}, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return {i["Name"]: i["Id"] for i in found.body["Items"]}


def _lead_oracle(model: dict[str, dict[str, Any]]) -> dict[str, tuple[float, str] | None]:
    """METRICS §3 release rule: {deployment id: (seconds, from version)} for successful production ones."""
    first_seen: dict[str, datetime] = {}
    for d in model.values():
        at = d["started"]
        if d["version"] is not None and (d["version"] not in first_seen or at < first_seen[d["version"]]):
            first_seen[d["version"]] = at
    releases = sorted(first_seen, key=lambda v: (first_seen[v], v))
    pos = {v: n for n, v in enumerate(releases)}
    out: dict[str, tuple[float, str] | None] = {}
    for env in {d["environment"] for d in model.values()}:
        rows = sorted((d for d in model.values() if d["environment"] == env), key=lambda d: (d["finished"], d["id"]))
        prev: dict[str, Any] | None = None
        for d in rows:
            if d["state"] != "Success":
                continue
            own = d["version"]
            if prev is None or prev["version"] is None or pos[own] <= pos[prev["version"]]:
                frm = own
            else:
                frm = releases[pos[prev["version"]] + 1]
            out[d["id"]] = ((d["finished"] - first_seen[frm]).total_seconds(), frm)
            prev = d
    return out


def _send_versioned(
    api: Api, rng: random.Random, model: dict[str, dict[str, Any]], env: str, minute: int, version: str
) -> str:
    finished = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    started = finished - timedelta(minutes=rng.randint(1, 50), seconds=rng.randint(0, 59))
    state = "Success" if rng.random() < 0.8 else "Failed"
    body = {
        "project": "shop",
        "environment": env,
        "finished_at": _stamp(finished),
        "started_at": _stamp(started),
        "state": state,
        "version": version,
    }
    made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    model[made.body["id"]] = {
        "id": made.body["id"],
        "environment": env,
        "finished": finished,
        "started": started,
        "state": state,
        "version": version,
    }
    return str(made.body["id"])


def _check_leads(api: Api, report: str, model: dict[str, dict[str, Any]], envs: set[str], tag: str) -> None:
    want = {k: v for k, v in _lead_oracle(model).items() if model[k]["environment"] in envs}
    answer = _streams(api, report)
    assert answer.status == 200
    assert answer.header("X-Dora-Pending") == "0", (tag, answer.headers)
    listed = {d["Id"]: d for s in answer.body["Streams"] for d in s["Deployments"]}
    assert set(listed) == {k for k, d in model.items() if d["environment"] in envs}, tag
    for dep_id, (seconds, frm) in want.items():
        got = listed[dep_id]
        assert (got["LeadTimeCalculatedFromVersion"], _seconds(got["LeadTime"])) == (frm, seconds), (
            tag,
            dep_id,
            model[dep_id],
            got["LeadTime"],
            got["LeadTimeCalculatedFromVersion"],
            seconds,
            frm,
        )
    metrics = _metrics(api, report, timeRange="LastMonth", granularity="Monthly")
    assert metrics.header("X-Dora-Pending") == "0", (tag, metrics.headers)
    leads = sorted(v[0] for v in want.values())
    count = sum(i["LeadTime"]["Count"] for s in metrics.body["Series"] for i in s["Intervals"])
    assert count == len(leads), (tag, count, len(leads))
    march = [i for s in metrics.body["Series"] for i in s["Intervals"] if i["StartOfInterval"] == "2024-03-01"]
    if leads:
        assert _close(_seconds(march[0]["LeadTime"]["Max"]), max(leads)), (tag, march[0]["LeadTime"], leads)
        assert _close(_seconds(march[0]["LeadTime"]["Mean"]), sum(leads) / len(leads)), (tag, march[0]["LeadTime"])


@pytest.mark.parametrize("seed", SEEDS)
def test_release_lead_times_follow_first_seen_across_environments_after_late_and_corrected_writes(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    model: dict[str, dict[str, Any]] = {}
    versions = [f"{n}.0" for n in range(1, 7)]
    minute = 8 * 1440
    for version in versions:
        minute += rng.randint(60, 600)
        _send_versioned(api, rng, model, "staging", minute, version)
        minute += rng.randint(60, 600)
        if rng.random() < 0.8:
            _send_versioned(api, rng, model, "production", minute, version)
    envs = _catalogue(api, "environments")
    prod = _report(api, "Prod", EnvironmentGroups=[{"Name": "P", "Environments": [envs["production"]]}])["Id"]
    both = _report(api, "Both")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    _check_leads(api, prod, model, {"production"}, "initial prod")
    _check_leads(api, both, model, {"production", "staging"}, "initial both")
    # A staging deployment of a version arriving late, started well before the version was first seen.
    clock.advance(timedelta(minutes=1))
    version = rng.choice(versions[1:])
    early = min(d["started"] for d in model.values() if d["version"] == version) - timedelta(hours=3)
    late_minute = int((early - datetime(2024, 3, 1, tzinfo=UTC)).total_seconds() // 60) + 2
    _send_versioned(api, rng, model, "staging", late_minute, version)
    clock.advance(timedelta(seconds=5))  # no scheduled run: the read brings what it covers up to date
    _check_leads(api, prod, model, {"production"}, "after late staging arrival (prod report)")
    _check_leads(api, both, model, {"production", "staging"}, "after late staging arrival")


def test_late_staging_release_is_counted_by_the_next_read_of_a_production_report(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Deterministic form of the property above. Version 2.0 is first seen in production at 10:00; a
    staging deployment of 2.0 that started at 06:00 arrives late: the production deployment's Release
    lead time (METRICS §3, first seen across the project) grows by 4 h. The production-only report's next
    read must count it or say it does not (``X-Dora-Pending`` > 0, METRICS §8)."""
    from tests.support.recompute import scheduled_run

    def send(env: str, version: str, started: str, finished: str) -> str:
        body = {
            "project": "shop",
            "environment": env,
            "version": version,
            "started_at": started,
            "finished_at": finished,
        }
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
        return str(made.body["id"])

    send("production", "1.0", "2024-03-10T08:00:00Z", "2024-03-10T08:10:00Z")
    d2 = send("production", "2.0", "2024-03-10T10:00:00Z", "2024-03-10T10:10:00Z")
    send("staging", "1.0", "2024-03-10T07:00:00Z", "2024-03-10T07:10:00Z")
    envs = _catalogue(api, "environments")
    prod = _report(api, "Prod", EnvironmentGroups=[{"Name": "P", "Environments": [envs["production"]]}])["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)

    def lead() -> tuple[str | None, str | None]:
        answer = _streams(api, prod)
        got = next(d for s in answer.body["Streams"] for d in s["Deployments"] if d["Id"] == d2)
        return got["LeadTime"], answer.header("X-Dora-Pending")

    assert lead() == ("0:10:00.0", "0")
    clock.advance(timedelta(minutes=1))
    send("staging", "2.0", "2024-03-10T06:00:00Z", "2024-03-10T06:10:00Z")
    clock.advance(timedelta(seconds=5))
    after_read = lead()
    clock.advance(timedelta(minutes=6))
    scheduled_run(lambda_context)
    after_tick = lead()
    assert after_tick == ("4:10:00.0", "0"), ("not even the scheduled run fixed it", after_tick)
    assert after_read[0] == "4:10:00.0" or after_read[1] != "0", ("stale and pending 0", after_read)


# --- failure events (TimeToRestore) ------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_time_to_restore_counts_included_failures_through_creates_and_deletes(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """METRICS §4: a failure event's TimeToRestore counts in the interval of its local finished_at, when the
    report includes a stream of a project it names in its environment; a deleted one stops counting."""
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    for project, env in (("shop", "production"), ("api", "production"), ("shop", "staging")):
        body = {"project": project, "environment": env, "finished_at": "2024-03-05T10:00:00Z"}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    # "api" in staging has no stream: a failure there counts in no report
    envs = _catalogue(api, "environments")
    projects = _catalogue(api, "projects")
    reports = {
        "all": (_report(api, "All", TimeZone="Asia/Kathmandu")["Id"], lambda p, e: (p, e) != ("api", "staging")),
        "prod": (
            _report(api, "Prod", EnvironmentGroups=[{"Name": "P", "Environments": [envs["production"]]}])["Id"],
            lambda p, e: e == "production",
        ),
        "shop": (_report(api, "Shop", ProjectIds=[projects["shop"]])["Id"], lambda p, e: p == "shop"),
    }
    failures: dict[str, dict[str, Any]] = {}

    def add() -> None:
        project = rng.choice(["shop", "api"])
        env = rng.choice(["production", "staging"])
        start = datetime(2024, 3, 6, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 12 * 1440))
        end = start + timedelta(minutes=rng.randint(5, 2000), seconds=rng.randint(0, 59))
        body = {"project": project, "environment": env, "started_at": _stamp(start), "finished_at": _stamp(end)}
        made = api.call("POST", "/api/{spaceId}/failures", path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
        failures[made.body["id"]] = {"project": project, "env": env, "end": end, "ttr": (end - start).total_seconds()}

    def check(tag: str) -> None:
        for name, (report, included) in reports.items():
            zone = ZoneInfo("Asia/Kathmandu" if name == "all" else "UTC")
            answer = _metrics(api, report, timeRange="LastMonth", granularity="Daily")
            assert answer.status == 200, answer.body
            assert answer.header("X-Dora-Pending") == "0", (tag, name, answer.headers)
            per_day: dict[str, list[float]] = {}
            for f in failures.values():
                if included(f["project"], f["env"]):
                    per_day.setdefault(f["end"].astimezone(zone).date().isoformat(), []).append(f["ttr"])
            got = {i["StartOfInterval"]: i["TimeToRestore"] for i in answer.body["Series"][0]["Intervals"]}
            for day, stats in got.items():
                want = _stats(per_day.get(day, []))
                assert stats["Count"] == want["Count"], (tag, name, day, stats, want)
                for stat in ("Mean", "Median", "Min", "Max", "NinetyFifth"):
                    assert _close(_seconds(stats[stat]), want[stat]), (tag, name, day, stat, stats, want)

    for _ in range(8):
        add()
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    check("initial")
    clock.advance(timedelta(minutes=1))
    for fid in rng.sample(sorted(failures), 3):
        gone = api.call(
            "DELETE", "/api/{spaceId}/failures/{failureId}", path_params={**SP, "failureId": fid}, key=ADMIN_KEY
        )
        assert gone.status in (200, 204), gone.body
        del failures[fid]
    for _ in range(3):
        add()
    clock.advance(timedelta(seconds=5))
    check("after deletes and adds")


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_release_lead_times_after_version_corrections_and_removals_elsewhere(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """Corrections and removals mark the project's other streams at once (dal/deployments.py
    ``_release_marks``): the production-only report's next read counts the moved first-seen times."""
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    model: dict[str, dict[str, Any]] = {}
    versions = [f"{n}.0" for n in range(1, 7)]
    minute = 8 * 1440
    staging: list[str] = []
    for version in versions:
        minute += rng.randint(60, 600)
        staging.append(_send_versioned(api, rng, model, "staging", minute, version))
        minute += rng.randint(60, 600)
        _send_versioned(api, rng, model, "production", minute, version)
    envs = _catalogue(api, "environments")
    prod = _report(api, "Prod", EnvironmentGroups=[{"Name": "P", "Environments": [envs["production"]]}])["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    _check_leads(api, prod, model, {"production"}, "initial")
    clock.advance(timedelta(minutes=1))
    for dep_id in rng.sample(staging, 2):
        version = rng.choice(versions)
        patched = api.call(
            "PATCH", DEPLOYMENT, path_params={**SP, "deploymentId": dep_id}, body={"version": version}, key=ADMIN_KEY
        )
        assert patched.status == 200, patched.body
        model[dep_id]["version"] = version
    victim = rng.choice([s for s in staging if s in model])
    assert api.call("DELETE", DEPLOYMENT, path_params={**SP, "deploymentId": victim}, key=ADMIN_KEY).status in (
        200,
        204,
    )
    del model[victim]
    clock.advance(timedelta(seconds=5))
    _check_leads(api, prod, model, {"production"}, "after corrections")


def test_tenant_and_tenant_tag_set_splits(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    sent = [
        ("acme", ["Region/EU", "Tier/Gold"]),
        ("acme", ["Region/EU", "Tier/Gold"]),
        ("globex", ["Region/US"]),
        (None, []),
        ("initech", ["Tier/Silver"]),
    ]
    for n, (tenant, tags) in enumerate(sent):
        body: dict[str, Any] = {
            "project": "shop",
            "environment": "production",
            "finished_at": f"2024-03-1{n}T10:00:00Z",
            "tenant_tags": tags,
        }
        if tenant:
            body["tenant"] = tenant
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
    report = _report(api, "R")["Id"]
    tenanted = _report(api, "T", TenantMode="Tenanted", TenantTags=["Region/EU"])["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    sets = {
        s["Name"]: s["Id"]
        for s in api.call("GET", "/api/{spaceId}/tenanttagsets", path_params=SP, key=ADMIN_KEY).body["Items"]
    }
    assert {"Region", "Tier"} <= set(sets), sets

    def totals(rid: str, **params: str) -> dict[str, int]:
        answer = _metrics(api, rid, timeRange="LastMonth", granularity="Monthly", **params)
        assert answer.status == 200, answer.body
        return {
            s["Name"]: sum(i["DeploymentFailureRate"]["Total"] for i in s["Intervals"]) for s in answer.body["Series"]
        }

    assert totals(report, split="Tenant") == {"acme": 2, "globex": 1, "Untenanted": 1, "initech": 1}
    assert totals(report, split="TenantTagSet", tenantTagSetId=sets["Region"]) == {"EU": 2, "US": 1}
    assert totals(report, split="TenantTagSet", tenantTagSetId=sets["Tier"]) == {"Gold": 2, "Silver": 1}
    assert totals(tenanted) == {"All": 2}
    # Octopus: tenantTagSetId "is ignored" unless split is TenantTagSet
    assert totals(report, split="Project", tenantTagSetId="TagSets-999") == {"shop": 5}


def test_gzip_and_plain_metrics_are_the_same(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    for n in range(5):
        body = {"project": "shop", "environment": "production", "finished_at": f"2024-03-1{n}T10:00:00Z"}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    report = _report(api, "R", TimeZone="Europe/London")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    for granularity in ("Daily", "Weekly", "Monthly"):
        params = {"timeRange": "LastYear", "granularity": granularity, "split": "Project"}
        plain = _metrics(api, report, **params)
        zipped = api.call(
            "GET",
            REPORT + "/metrics",
            path_params={**SP, "reportId": report},
            query=params,
            headers={"Accept-Encoding": "gzip"},
            key=ADMIN_KEY,
        )
        assert plain.status == zipped.status == 200
        assert plain.body == zipped.body, granularity
        starts = [i["StartOfInterval"] for i in plain.body["Series"][0]["Intervals"]]
        assert len(starts) == len(set(starts)) and starts == sorted(starts), granularity
        if granularity == "Daily":
            days = [date.fromisoformat(s) for s in starts]
            assert all((b - a).days == 1 for a, b in pairwise(days)), "days missing or doubled across DST"
            assert days[0] == date(2023, 3, 20) and days[-1] == date(2024, 3, 20), (days[0], days[-1])


def test_a_stream_whose_deployments_are_all_removed_counts_nothing(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    ids = []
    for n, project in enumerate(["shop", "api", "api"]):
        body = {"project": project, "environment": "production", "finished_at": f"2024-03-1{n}T10:00:00Z"}
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        ids.append((project, made.body["id"]))
    report = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    assert _metrics(api, report, split="Project", timeRange="LastMonth").status == 200
    clock.advance(timedelta(minutes=1))
    for project, dep_id in ids:
        if project == "api":
            assert api.call("DELETE", DEPLOYMENT, path_params={**SP, "deploymentId": dep_id}, key=ADMIN_KEY).status in (
                200,
                204,
            )
    clock.advance(timedelta(seconds=5))
    answer = _metrics(api, report, split="Project", timeRange="LastMonth")
    totals = {
        s["Name"]: sum(i["DeploymentFailureRate"]["Total"] for i in s["Intervals"]) for s in answer.body["Series"]
    }
    assert totals.get("api", 0) == 0 and totals["shop"] == 1, totals
    assert answer.header("X-Dora-Pending") == "0"
    streams = _streams(api, report).body["Streams"]
    assert sum(len(s["Deployments"]) for s in streams) == 1, streams


def test_days_later_without_writes_the_range_moves_and_the_numbers_stay(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    from tests.support.recompute import scheduled_run

    for day in (15, 18, 19):
        body = {"project": "shop", "environment": "production", "finished_at": f"2024-03-{day}T10:00:00Z"}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    report = _report(api, "R", TimeZone="America/Los_Angeles")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    first = _metrics(api, report, timeRange="LastMonth", granularity="Daily").body
    assert first["Series"][0]["Intervals"][-1]["StartOfInterval"] == "2024-03-20"
    clock.now = datetime(2024, 4, 16, 20, 0, tzinfo=UTC)  # 13:00 in Los Angeles
    later = _metrics(api, report, timeRange="LastMonth", granularity="Daily")
    assert later.status == 200
    starts = [i["StartOfInterval"] for i in later.body["Series"][0]["Intervals"]]
    assert starts[0] == "2024-03-16" and starts[-1] == "2024-04-16", (starts[0], starts[-1])
    counted = {i["StartOfInterval"]: i["NumberOfSuccessfulDeployments"] for i in later.body["Series"][0]["Intervals"]}
    assert (counted["2024-03-18"], counted["2024-03-19"], sum(counted.values())) == (1, 1, 2), counted
    weekly = _metrics(api, report, timeRange="LastMonth", granularity="Weekly").body["Series"][0]["Intervals"]
    assert weekly[0]["StartOfInterval"] == "2024-03-10" and weekly[-1]["StartOfInterval"] == "2024-04-14", weekly
    assert sum(i["NumberOfSuccessfulDeployments"] for i in weekly) == 3
    monthly = _metrics(api, report, timeRange="LastMonth", granularity="Monthly").body["Series"][0]["Intervals"]
    assert [i["StartOfInterval"] for i in monthly] == ["2024-03-01", "2024-04-01"], monthly
    assert [i["NumberOfSuccessfulDeployments"] for i in monthly] == [3, 0]


def test_deployments_view_window_is_12_whole_months_and_this_month(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    ids = {}
    for stamp in ("2023-02-28T23:59:00Z", "2023-03-01T00:01:00Z", "2024-03-19T10:00:00Z"):
        body = {"project": "shop", "environment": "production", "finished_at": stamp}
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
        ids[stamp] = made.body["id"]
    report = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    listed = [d for s in _streams(api, report).body["Streams"] for d in s["Deployments"]]
    assert {d["Id"] for d in listed} == {ids["2023-03-01T00:01:00Z"], ids["2024-03-19T10:00:00Z"]}, listed
    latest = next(d for d in listed if d["Id"] == ids["2024-03-19T10:00:00Z"])
    # its previous success is outside the window but still its previous success (METRICS §3)
    assert latest["PreviousSuccessfulDeploymentId"] == ids["2023-03-01T00:01:00Z"]
    assert isinstance(latest["CompletedTime"], str) and latest["CompletedTime"].startswith("2024-03-19T10:00:00")


ZONES = [
    "America/Santiago",
    "Australia/Lord_Howe",
    "America/Havana",
    "Asia/Tehran",
    "Pacific/Chatham",
    "Europe/Dublin",
    "Cuba Standard Time",
    "Iran Standard Time",
]


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_time_zone_only_moves_interval_boundaries_over_a_year_of_dst(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    from tzlocal.windows_tz import win_tz

    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    instants = []
    for _ in range(40):
        at = NOW - timedelta(days=rng.uniform(1, 330), seconds=rng.randint(0, 3600))
        at = at.replace(microsecond=0)
        body = {"project": "shop", "environment": "production", "finished_at": _stamp(at)}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
        instants.append(at)
    zones = rng.sample(ZONES, 4)
    reports = {z: _report(api, z, TimeZone=z)["Id"] for z in zones}
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    for zone_name, report in reports.items():
        zone = ZoneInfo(win_tz.get(zone_name, zone_name))
        for granularity in ("Daily", "Weekly", "Monthly"):
            answer = _metrics(api, report, timeRange="LastYear", granularity=granularity)
            assert answer.status == 200, answer.body
            got = {
                i["StartOfInterval"]: i["NumberOfSuccessfulDeployments"] for i in answer.body["Series"][0]["Intervals"]
            }
            want: dict[str, int] = {}
            for at in instants:
                day = at.astimezone(zone).date()
                if granularity == "Weekly":
                    day = day - timedelta(days=(day.weekday() + 1) % 7)
                elif granularity == "Monthly":
                    day = day.replace(day=1)
                want[day.isoformat()] = want.get(day.isoformat(), 0) + 1
            assert {k: v for k, v in got.items() if v} == want, (zone_name, granularity)


def _dense_all(body: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """METRICS §4: split None is one series named All, every interval in range (zero counts included)."""
    assert [s["Name"] for s in body["Series"]] == ["All"], (tag, body)
    intervals = body["Series"][0]["Intervals"]
    assert len(intervals) >= 28, (tag, len(intervals))
    return intervals  # type: ignore[no-any-return]


def test_a_report_of_an_empty_space_answers_a_dense_all_series(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    report = _report(api, "R")["Id"]
    answer = _metrics(api, report, timeRange="LastMonth", granularity="Daily")
    assert answer.status == 200, answer.body
    _dense_all(answer.body, "before any recompute")
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    answer = _metrics(api, report, timeRange="LastMonth", granularity="Daily")
    intervals = _dense_all(answer.body, "after a recompute")
    assert all(i["DeploymentFailureRate"]["Total"] == 0 and i["LeadTime"]["Count"] == 0 for i in intervals)
    assert intervals[0]["LeadTime"]["Mean"] is None and intervals[0]["DeploymentFailureRate"]["Rate"] == 0


def test_a_report_whose_deployments_are_all_removed_answers_a_dense_all_series(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    from tests.support.recompute import scheduled_run

    made = api.call(
        "POST",
        DEPLOYMENTS,
        path_params=SP,
        body={"project": "shop", "environment": "production", "finished_at": "2024-03-19T10:00:00Z"},
        key=ADMIN_KEY,
    )
    report = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    assert (
        sum(
            i["DeploymentFailureRate"]["Total"]
            for i in _dense_all(_metrics(api, report, timeRange="LastMonth", granularity="Daily").body, "one")
        )
        == 1
    )
    assert api.call(
        "DELETE", DEPLOYMENT, path_params={**SP, "deploymentId": made.body["id"]}, key=ADMIN_KEY
    ).status in (200, 204)
    clock.advance(timedelta(seconds=5))
    answer = _metrics(api, report, timeRange="LastMonth", granularity="Daily")
    assert answer.header("X-Dora-Pending") == "0"
    intervals = _dense_all(answer.body, "none left")
    assert sum(i["DeploymentFailureRate"]["Total"] for i in intervals) == 0


def test_a_new_report_counts_at_its_first_read(api: Api, clock: Clock, lambda_context: Any) -> None:
    """METRICS §8: a read recomputes a report's views (bound 20,000 deployments); a report created after
    the last scheduled run counts at its first read, and says how fresh it is."""
    from tests.support.recompute import scheduled_run

    for day in (17, 18):
        body = {"project": "shop", "environment": "production", "finished_at": f"2024-03-{day}T10:00:00Z"}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    clock.advance(timedelta(minutes=1))
    report = _report(api, "R")["Id"]
    answer = _metrics(api, report, timeRange="LastMonth", granularity="Daily")
    assert sum(i["NumberOfSuccessfulDeployments"] for i in _dense_all(answer.body, "first read")) == 2
    assert answer.header("X-Dora-Pending") == "0" and answer.header("X-Dora-As-Of"), answer.headers
    streams = _streams(api, report)
    assert streams.header("X-Dora-Pending") == "0" and streams.header("X-Dora-As-Of"), streams.headers


def _huge_tags(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "éüßøåñçàèìòù"
    return ["S/" + "".join(rng.choice(letters) for _ in range(194)) + f"{k:04d}" for k in range(n)]


def test_a_report_too_large_to_store_is_a_413_not_a_500(api: Api, clock: Clock) -> None:
    """API.md Errors: a write DynamoDB refuses for its size answers 413 in the route's shape."""
    tags = ["S/" + "😀" * 190 + f"{k:04d}" for k in range(1000)]
    answer = api.call("POST", REPORTS, path_params=SP, body={"Name": "Big", "TenantTags": tags}, key=ADMIN_KEY)
    assert answer.status in (201, 400, 413), (answer.status, str(answer.body)[:300])
    if answer.status != 201:
        assert "ErrorMessage" in answer.body


def test_the_report_list_fits_a_lambda_response(api: Api, clock: Clock) -> None:
    """Every report is under DynamoDB's 400 KB, but a default page of 30 of them is not under Lambda's 6 MB
    response payload limit; the list must still answer (a smaller page, gzip, or a refusal), not a 5xx."""
    import json

    for n in range(18):
        raw = json.dumps({"Name": f"R{n}", "TenantTags": _huge_tags(950, n)}, ensure_ascii=False).encode()
        made = api.call("POST", REPORTS, path_params=SP, raw_body=raw, key=ADMIN_KEY)
        assert made.status == 201, (made.status, str(made.body)[:200])
    from tests.support.events import http_event
    from tests.support.lambdas import invoke

    raw = invoke(
        api.routes[("GET", REPORTS)], http_event("GET", REPORTS, path_params=SP, key=ADMIN_KEY), lambda_context_stub()
    )
    size = len(json.dumps(raw).encode())
    assert size <= 6 * 1024 * 1024, f"list answer is {size} bytes, over Lambda's 6 MB response limit"
    assert raw["statusCode"] in (200, 400, 413), raw["statusCode"]
    zipped = invoke(
        api.routes[("GET", REPORTS)],
        http_event("GET", REPORTS, path_params=SP, key=ADMIN_KEY, headers={"Accept-Encoding": "gzip"}),
        lambda_context_stub(),
    )
    assert zipped["statusCode"] == 200 and len(json.dumps(zipped).encode()) <= 6 * 1024 * 1024, (
        zipped["statusCode"],
        str(zipped.get("body"))[:200],
    )


def lambda_context_stub() -> Any:
    from tests.conftest import _Context

    return _Context()


@pytest.mark.parametrize("filters", ["none", "environment", "group", "tags", "tenant_mode"])
def test_a_brand_new_stream_counts_at_the_next_report_read(
    api: Api, clock: Clock, lambda_context: Any, filters: str
) -> None:
    """A deployment of a stream never computed before (new project, new tenant) arriving between two reads
    of a report that includes it counts at the second read, or the read says it does not (METRICS §8)."""
    from tests.support.recompute import scheduled_run

    seed = {
        "project": "shop",
        "environment": "production",
        "team": "web",
        "tenant": "acme",
        "tenant_tags": ["Region/EU"],
        "finished_at": "2024-03-18T10:00:00Z",
    }
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=seed, key=ADMIN_KEY).status == 201
    envs, groups = _catalogue(api, "environments"), _catalogue(api, "projectgroups")
    fields = {
        "none": {},
        "environment": {"EnvironmentGroups": [{"Name": "P", "Environments": [envs["production"]]}]},
        "group": {"ProjectGroupIds": [groups["web"]]},
        "tags": {"TenantTags": ["Region/EU"], "TenantMode": "Tenanted"},
        "tenant_mode": {"TenantMode": "Tenanted"},
    }[filters]
    report = _report(api, "R", **fields)["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)

    def total() -> tuple[int, str | None]:
        answer = _metrics(api, report, timeRange="LastMonth", granularity="Monthly")
        return (
            sum(i["DeploymentFailureRate"]["Total"] for s in answer.body["Series"] for i in s["Intervals"]),
            answer.header("X-Dora-Pending"),
        )

    assert total() == (1, "0")
    clock.advance(timedelta(minutes=1))
    new = {
        "project": "newsvc",
        "environment": "production",
        "team": "web",
        "tenant": "globex",
        "tenant_tags": ["Region/EU"],
        "finished_at": "2024-03-17T10:00:00Z",
    }
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=new, key=ADMIN_KEY).status == 201
    clock.advance(timedelta(seconds=5))
    count, pending = total()
    assert count == 2 or pending != "0", (filters, count, pending)
    streams = _streams(api, report)
    listed = sum(len(s["Deployments"]) for s in streams.body["Streams"])
    assert listed == 2 or streams.header("X-Dora-Pending") != "0", (filters, listed)


def test_late_staging_release_is_counted_by_a_report_covering_both_environments(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """As above, with a report that covers the staging stream too: its read recomputes staging, which marks
    production (``_mark_release_readers``); the same read must count production's new lead time or say so."""
    from tests.support.recompute import scheduled_run

    def send(env: str, version: str, started: str, finished: str) -> str:
        body = {
            "project": "shop",
            "environment": env,
            "version": version,
            "started_at": started,
            "finished_at": finished,
        }
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
        return str(made.body["id"])

    send("production", "1.0", "2024-03-10T08:00:00Z", "2024-03-10T08:10:00Z")
    d2 = send("production", "2.0", "2024-03-10T10:00:00Z", "2024-03-10T10:10:00Z")
    send("staging", "1.0", "2024-03-10T07:00:00Z", "2024-03-10T07:10:00Z")
    both = _report(api, "Both")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    clock.advance(timedelta(minutes=1))
    send("staging", "2.0", "2024-03-10T06:00:00Z", "2024-03-10T06:10:00Z")
    clock.advance(timedelta(seconds=5))
    answer = _streams(api, both)
    got = next(d for s in answer.body["Streams"] for d in s["Deployments"] if d["Id"] == d2)
    first = (got["LeadTime"], answer.header("X-Dora-Pending"))
    again = _streams(api, both)
    second = next(d for s in again.body["Streams"] for d in s["Deployments"] if d["Id"] == d2)["LeadTime"]
    assert second == "4:10:00.0", ("the second read does not count it either", second)
    assert first[0] == "4:10:00.0" or first[1] != "0", ("first read stale with pending 0", first)
    metrics = _metrics(api, both, timeRange="LastMonth", granularity="Monthly")
    lead = [i["LeadTime"] for i in metrics.body["Series"][0]["Intervals"] if i["LeadTime"]["Count"]]
    assert (lead and lead[0]["Max"] == "4:10:00.0") or metrics.header("X-Dora-Pending") != "0", (
        lead,
        metrics.header("X-Dora-Pending"),
    )


def test_duration_strings_are_octopus_timespans(api: Api, clock: Clock, lambda_context: Any) -> None:
    """METRICS §4: durations ``[-]H:MM:SS.f``, total hours, 1-7 fraction digits; the mean of gaps of
    1 ms, 2 ms and 100 h is 33:20:00.001 (ticks, not float noise)."""
    import re

    from tests.support.recompute import scheduled_run

    base = datetime(2024, 3, 10, 10, 0, tzinfo=UTC)
    for offset in (
        timedelta(0),
        timedelta(milliseconds=1),
        timedelta(milliseconds=3),
        timedelta(hours=100, milliseconds=3),
    ):
        at = base + offset
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        body = {"project": "shop", "environment": "production", "finished_at": stamp}
        assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201, stamp
    report = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    answer = _metrics(api, report, timeRange="LastMonth", granularity="Monthly")
    pattern = re.compile(r"-?\d+:[0-5]\d:[0-5]\d\.\d{1,7}")
    march = next(i for i in answer.body["Series"][0]["Intervals"] if i["StartOfInterval"] == "2024-03-01")
    tsp = march["TimeSincePreviousDeployment"]
    assert tsp["Count"] == 3, tsp
    for stat in ("Mean", "Median", "Min", "Max", "NinetyFifth"):
        assert pattern.fullmatch(tsp[stat]), (stat, tsp[stat])
    assert (tsp["Min"], tsp["Median"], tsp["Max"]) == ("0:00:00.001", "0:00:00.002", "100:00:00.0"), tsp
    assert tsp["Mean"] == "33:20:00.001", tsp
    listed = [d for s in _streams(api, report).body["Streams"] for d in s["Deployments"]]
    assert sorted(d["TimeSincePreviouslySuccessfulDeployment"] or "" for d in listed) == [
        "",
        "0:00:00.001",
        "0:00:00.002",
        "100:00:00.0",
    ], listed


def test_canceled_and_unfinished_deployments_count_in_no_metric(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    for n, state in enumerate(["Success", "Canceled", "Executing", "Queued", "Success"]):
        body = {
            "project": "shop",
            "environment": "production",
            "finished_at": f"2024-03-1{n}T10:00:00Z",
            "state": state,
        }
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
    report = _report(api, "R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    intervals = _metrics(api, report, timeRange="LastMonth", granularity="Monthly").body["Series"][0]["Intervals"]
    march = next(i for i in intervals if i["StartOfInterval"] == "2024-03-01")
    assert march["DeploymentFailureRate"]["Total"] == 2, march["DeploymentFailureRate"]
    assert march["TimeSincePreviousDeployment"]["Max"] == "96:00:00.0", march["TimeSincePreviousDeployment"]
    assert march["MeanTimeToRecovery"]["Count"] == 0


def test_renamed_environment_groups_rename_series_at_once(api: Api, clock: Clock, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-18T10:00:00Z"}
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    envs = _catalogue(api, "environments")
    made = _report(api, "R", EnvironmentGroups=[{"Name": "Old", "Environments": [envs["production"]]}])
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    names = [s["Name"] for s in _metrics(api, made["Id"], split="EnvironmentGroup").body["Series"]]
    assert names == ["Old"]
    put = api.call(
        "PUT",
        REPORT,
        path_params={**SP, "reportId": made["Id"]},
        body={**made, "EnvironmentGroups": [{"Name": "New", "Environments": [envs["production"]]}]},
        key=ADMIN_KEY,
    )
    assert put.status == 200, put.body
    names = [s["Name"] for s in _metrics(api, made["Id"], split="EnvironmentGroup").body["Series"]]
    assert names == ["New"], names
    renamed = api.call(
        "PUT", REPORT, path_params={**SP, "reportId": made["Id"]}, body={**put.body, "Name": "Renamed"}, key=ADMIN_KEY
    )
    assert _streams(api, made["Id"]).body["ReportName"] == "Renamed", renamed.body


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_interleaved_writes_filter_changes_and_reads_agree_with_the_oracle(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    model: dict[str, dict[str, Any]] = {}
    pairs = [(p, e) for p in ("shop", "api", "web") for e in ("production", "staging")]

    def create(minute: int) -> None:
        project, env = rng.choice(pairs)
        state = rng.choice(["Success", "Success", "Failed"])
        at = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
        body = {"project": project, "environment": env, "finished_at": _stamp(at), "state": state}
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
        model[made.body["id"]] = {"project": project, "env": env, "state": state}

    for p, e in pairs:  # every stream exists, so every catalogue id does
        body = {"project": p, "environment": e, "finished_at": "2024-03-02T00:00:00Z"}
        made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
        model[made.body["id"]] = {"project": p, "env": e, "state": "Success"}
    for _ in range(10):
        create(rng.randint(3 * 1440, 18 * 1440))
    projects, envs = _catalogue(api, "projects"), _catalogue(api, "environments")

    def random_filters() -> tuple[dict[str, Any], set[str], set[str]]:
        chosen_p = set(rng.sample(["shop", "api", "web"], rng.randint(1, 3)))
        chosen_e = set(rng.sample(["production", "staging"], rng.randint(1, 2)))
        fields: dict[str, Any] = {"Name": "R"}
        if len(chosen_p) < 3 or rng.random() < 0.5:
            fields["ProjectIds"] = [projects[p] for p in sorted(chosen_p)]
        if len(chosen_e) < 2 or rng.random() < 0.5:
            fields["EnvironmentGroups"] = [{"Name": "G", "Environments": [envs[e] for e in sorted(chosen_e)]}]
        return fields, chosen_p, chosen_e

    fields, chosen_p, chosen_e = random_filters()
    report = _report(api, **{k: v for k, v in fields.items() if k != "Name"}, name="R")["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    for step in range(10):
        op = rng.choice(["create", "create", "delete", "patch", "put"])
        if op == "create":
            create(rng.randint(3 * 1440, 18 * 1440))
        elif op == "delete":
            victim = rng.choice(sorted(model))
            assert api.call("DELETE", DEPLOYMENT, path_params={**SP, "deploymentId": victim}, key=ADMIN_KEY).status in (
                200,
                204,
            )
            del model[victim]
        elif op == "patch":
            victim = rng.choice(sorted(model))
            state = rng.choice(["Success", "Failed"])
            patched = api.call(
                "PATCH", DEPLOYMENT, path_params={**SP, "deploymentId": victim}, body={"state": state}, key=ADMIN_KEY
            )
            assert patched.status == 200, patched.body
            model[victim]["state"] = state
        else:
            fields, chosen_p, chosen_e = random_filters()
            put = api.call("PUT", REPORT, path_params={**SP, "reportId": report}, body=fields, key=ADMIN_KEY)
            assert put.status == 200, put.body
        clock.advance(timedelta(seconds=3))
        included = {k: d for k, d in model.items() if d["project"] in chosen_p and d["env"] in chosen_e}
        answer = _metrics(api, report, timeRange="LastMonth", granularity="Monthly", split="Project")
        assert answer.status == 200
        got = {
            s["Name"]: (
                sum(i["DeploymentFailureRate"]["Total"] for i in s["Intervals"]),
                sum(i["NumberOfSuccessfulDeployments"] for i in s["Intervals"]),
            )
            for s in answer.body["Series"]
        }
        want: dict[str, tuple[int, int]] = {}
        for d in included.values():
            t, s = want.get(d["project"], (0, 0))
            want[d["project"]] = (t + 1, s + (d["state"] == "Success"))
        assert got == want, (step, op, fields, got, want, answer.header("X-Dora-Pending"))
        listed = {d["Id"] for s in _streams(api, report).body["Streams"] for d in s["Deployments"]}
        assert listed == set(included), (step, op)
