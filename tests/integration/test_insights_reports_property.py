"""Saved insights (PostHog dialect), Octopus reports and CSV exports: randomized histories against an
oracle of API.md's rules (list filters, PATCH semantics, activity, share links, results against the
report's ``/metrics`` and ``/dora/metrics``, report filters against METRICS §4), plus targeted cases
and hostile input. Through the real route functions against moto.

``DORA_PROPERTY_SEEDS=a:b`` runs seeds a..b-1 instead of the suite's two (the review that wrote this
file ran 20 histories per property).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
REPORTS = "/api/{spaceId}/insights/reports"
REPORT = REPORTS + "/{reportId}"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
_SEEDS_ENV = os.environ.get("DORA_PROPERTY_SEEDS")
SEEDS = list(range(*map(int, _SEEDS_ENV.split(":")))) if _SEEDS_ENV else [1, 2]
_POSITION_PAGING = pytest.mark.xfail(
    strict=True, reason="documented limit: pages by position shift when the list changes (API.md Consistency)"
)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


def _one(insight_id: int | str, space: str = "Spaces-1") -> dict[str, str]:
    return {"spaceId": space, "insightId": str(insight_id)}


def _key(api: Api, user: str, scopes: list[str]) -> str:
    body = {"name": user, "user": user, "scopes": scopes}
    made = api.call("POST", "/api/{spaceId}/apikeys", path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["key"])


def _report(api: Api, name: str = "All", space: str = "Spaces-1", key: str = ADMIN_KEY, **fields: Any) -> str:
    made = api.call("POST", REPORTS, path_params={"spaceId": space}, body={"Name": name, **fields}, key=key)
    assert made.status == 201, made.body
    return str(made.body["Id"])


def _query(report: str, **over: Any) -> dict[str, Any]:
    return {"kind": "DoraMetricsQuery", "reportId": report, "metric": "lead_time", **over}


def _create(api: Api, report: str, key: str = ADMIN_KEY, space: str = "Spaces-1", **fields: Any) -> dict[str, Any]:
    body = {"name": "Lead time", "query": _query(report), **fields}
    made = api.call("POST", INSIGHTS, path_params={"spaceId": space}, body=body, key=key)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


# --- oracle ------------------------------------------------------------------------------------
TAGS = ["dora", "team-a", "team-b", "Ünï", "x y"]
WORDS = ["alpha", "Beta", "gamma", "DELTA", "straße", "ǅemo", "lead", "time"]
TRACKED = ("name", "derived_name", "description", "query", "order", "deleted", "dashboards", "tags", "favorited")
NULLABLE = {"name", "derived_name", "description", "order"}


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class Model:
    """What API.md says the insights of the space are, and their activity."""

    def __init__(self) -> None:
        self.insights: dict[int, dict[str, Any]] = {}
        self.activity: list[dict[str, Any]] = []  # oldest first

    def created(self, body: dict[str, Any], answer: dict[str, Any], who: str, at: datetime) -> None:
        record = {f: answer[f] for f in TRACKED}
        record.update(
            id=answer["id"],
            short_id=answer["short_id"],
            created_at=_stamp(at),
            last_modified_at=_stamp(at),
            created_by=who,
        )
        # what was sent is what is stored
        for f in ("name", "description", "order", "deleted", "favorited"):
            assert record[f] == body.get(f, {"deleted": False, "favorited": False}.get(f)), (f, record, body)
        assert record["tags"] == list(dict.fromkeys(body.get("tags", [])))
        assert record["dashboards"] == list(dict.fromkeys(body.get("dashboards", [])))
        self.insights[answer["id"]] = record
        self.activity.append({"activity": "created", "item_id": answer["id"], "changes": [], "user": who})

    def patched(self, insight_id: int, body: dict[str, Any], who: str, at: datetime) -> dict[str, Any]:
        before = self.insights[insight_id]
        after = dict(before)
        for field, value in body.items():
            if value is None and field not in NULLABLE:
                continue
            after[field] = list(dict.fromkeys(value)) if field in ("tags", "dashboards") else value
        diff = [{"field": f, "before": before[f], "after": after[f]} for f in TRACKED if before[f] != after[f]]
        if diff:
            after["last_modified_at"] = _stamp(at)
            kind = "updated"
            if not before["deleted"] and after["deleted"]:
                kind = "deleted"
            elif before["deleted"] and not after["deleted"]:
                kind = "restored"
            self.activity.append({"activity": kind, "item_id": insight_id, "changes": diff, "user": who})
        self.insights[insight_id] = after
        return after

    def listed(self, **f: Any) -> list[int]:
        """PostHog's list: not deleted, filters ANDed; newest modified first."""
        found = []
        for i in self.insights.values():
            if i["deleted"]:
                continue
            if "search" in f:
                needle = f["search"].casefold()
                if not any(needle in (i[k] or "").casefold() for k in ("name", "derived_name", "description")):
                    continue
            if "tags" in f and not set(f["tags"]) & set(i["tags"]):
                continue
            if "favorited" in f and i["favorited"] != f["favorited"]:
                continue
            if "saved" in f and bool(i["name"]) != f["saved"]:
                continue
            if "dashboards" in f and not set(f["dashboards"]) <= set(i["dashboards"]):
                continue
            if "short_id" in f and i["short_id"] != f["short_id"]:
                continue
            if "created_by" in f and i["created_by"] != f["created_by"]:
                continue
            bounds = (("created_date_from", "created_at", 1), ("created_date_to", "created_at", -1))
            bounds += (("date_from", "last_modified_at", 1), ("date_to", "last_modified_at", -1))
            if any(
                name in f and (_stamp(f[name]) > i[field] if sign > 0 else _stamp(f[name]) < i[field])
                for name, field, sign in bounds
            ):
                continue
            found.append(i)
        found.sort(key=lambda i: (i["last_modified_at"], i["id"]), reverse=True)
        return [i["id"] for i in found]


def _random_body(rng: random.Random, *, patch: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    fields = ["name", "description", "tags", "favorited", "dashboards", "order"] + (["deleted"] * 2 if patch else [])
    chosen = rng.sample(fields, rng.randint(1 if patch else 0, 3))
    for f in chosen:
        nullable = patch and rng.random() < 0.25
        if nullable:
            body[f] = None
        elif f == "name":
            body[f] = " ".join(rng.sample(WORDS, rng.randint(1, 2))) if rng.random() > 0.1 else ""
        elif f == "description":
            body[f] = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
        elif f == "tags":
            body[f] = [rng.choice(TAGS) for _ in range(rng.randint(0, 3))]
        elif f == "favorited":
            body[f] = rng.random() < 0.5
        elif f == "dashboards":
            body[f] = [rng.choice([1, 2, 3]) for _ in range(rng.randint(0, 3))]  # repeats too
        elif f == "order":
            body[f] = rng.randint(-3, 3)
        elif f == "deleted":
            body[f] = rng.random() < 0.5
    return body


def _list(api: Api, key: str = ADMIN_KEY, **params: str) -> list[dict[str, Any]]:
    query = {"basic": "true", "limit": "1000", **params}
    listed = api.call("GET", INSIGHTS, path_params=SP, query=query, key=key)
    assert listed.status == 200, (params, listed.body)
    assert listed.body["count"] == len(listed.body["results"])
    return listed.body["results"]  # type: ignore[no-any-return]


def _activity(api: Api, insight_id: int | None = None, **params: str) -> dict[str, Any]:
    route = INSIGHTS + "/activity" if insight_id is None else ONE + "/activity"
    path = SP if insight_id is None else _one(insight_id)
    found = api.call("GET", route, path_params=path, query=params or None, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_histories_list_filters_patch_and_activity_agree_with_the_oracle(
    api: Api, clock: Clock, seed: int
) -> None:
    """Random creates and PATCHes (partial, nulls, soft delete/restore) by two keys: every list filter
    agrees with the oracle, each insight reads back as the oracle says, and the activity log (whole space
    and per insight) holds one entry per change, newest first, with the right before/after."""
    rng = random.Random(seed)
    report = _report(api)
    alice = _key(api, "alice@example.com", ["insight:read", "insight:write", "activity_log:read"])
    keys = {ADMIN_KEY: "test admin", alice: "alice@example.com"}
    model = Model()
    for _step in range(rng.randint(12, 22)):
        clock.advance(timedelta(seconds=rng.randint(1, 400)))
        key = rng.choice(list(keys))
        if not model.insights or rng.random() < 0.35:
            body = _random_body(rng, patch=False)
            answer = _create(api, report, key=key, **body) if "name" in body else _create_noname(api, report, key, body)
            model.created(body, answer, keys[key], clock.now)
        else:
            insight_id = rng.choice(list(model.insights))
            body = _random_body(rng, patch=True)
            patched = api.call("PATCH", ONE, path_params=_one(insight_id), body=body, key=key)
            if model.insights[insight_id]["deleted"] and body.get("deleted") is not False:
                # As PostHog: a deleted insight is found only by the PATCH that restores it.
                assert patched.status == 404, (body, patched.body)
                continue
            assert patched.status == 200, (body, patched.body)
            expected = model.patched(insight_id, body, keys[key], clock.now)
            for f in (*TRACKED, "last_modified_at"):
                assert _norm(f, patched.body[f]) == _norm(f, expected[f]), (f, body, patched.body[f], expected[f])

    # each insight reads back as the oracle says
    for insight_id, expected in model.insights.items():
        got = api.call("GET", ONE, path_params=_one(insight_id), query={"refresh": "force_cache"}, key=ADMIN_KEY)
        if expected["deleted"]:  # as PostHog: a soft-deleted insight is a 404
            assert got.status == 404, got.body
            continue
        assert got.status == 200
        for f in (*TRACKED, "last_modified_at", "created_at", "short_id"):
            assert _norm(f, got.body[f]) == _norm(f, expected[f]), (insight_id, f)
        assert got.body["created_by"]["first_name"] == expected["created_by"]

    # list filters
    live = [i for i in model.insights.values() if not i["deleted"]]
    filters: list[dict[str, Any]] = [{}]
    for _ in range(25):
        f: dict[str, Any] = {}
        kinds = ["search", "tags", "favorited", "saved", "dashboards", "short_id", "created_by"]
        kinds += ["created_date_from", "created_date_to", "date_from", "date_to"]
        for kind in rng.sample(kinds, 2):
            if kind == "search":
                source = rng.choice(live or list(model.insights.values()))
                text = rng.choice([source["name"] or "", source["description"] or "", rng.choice(WORDS)])
                if not text:
                    continue
                start = rng.randrange(len(text))
                f["search"] = text[start : start + rng.randint(1, 6)].strip() or "a"
                f["search"] = rng.choice([f["search"], f["search"].upper(), f["search"].lower()])
            elif kind == "tags":
                f["tags"] = rng.sample(TAGS, rng.randint(1, 2))
            elif kind in ("favorited", "saved"):
                f[kind] = rng.random() < 0.5
            elif kind == "dashboards":
                f["dashboards"] = rng.sample([1, 2, 3], rng.randint(1, 2))
            elif kind == "short_id":
                f["short_id"] = rng.choice(list(model.insights.values()))["short_id"]
            elif kind == "created_by":
                f["created_by"] = rng.choice(list(keys.values()))
            else:
                source = rng.choice(list(model.insights.values()))
                stamp = source["created_at" if kind.startswith("created") else "last_modified_at"]
                at = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=rng.choice([-1, 0, 0, 1]))
                f[kind] = at
        filters.append(f)
    for f in filters:
        params: dict[str, str] = {}
        for k, v in f.items():
            if k == "tags":
                params[k] = json.dumps(v) if rng.random() < 0.5 else ",".join(v)
            elif k == "dashboards":
                params[k] = json.dumps(v) if rng.random() < 0.5 else ",".join(map(str, v))
            elif isinstance(v, bool):
                params[k] = str(v).lower()
            elif isinstance(v, datetime):
                zone = rng.choice([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])
                params[k] = v.astimezone(zone).isoformat()
            else:
                params[k] = v
        got = [r["id"] for r in _list(api, **params)]
        assert got == model.listed(**f), (f, params)

    # activity: every change once, newest first, with its before/after
    whole = _activity(api, limit="1000")
    assert whole["total_count"] == len(model.activity)
    _same_activity(whole["results"], list(reversed(model.activity)))
    for insight_id in model.insights:
        if model.insights[insight_id]["deleted"]:  # as PostHog: a soft-deleted insight's activity is a 404
            gone = api.call("GET", ONE + "/activity", path_params=_one(insight_id), key=ADMIN_KEY)
            assert gone.status == 404, gone.body
            continue
        mine = [a for a in model.activity if a["item_id"] == insight_id]
        one = _activity(api, insight_id, limit="1000")
        assert one["total_count"] == len(mine)
        _same_activity(one["results"], list(reversed(mine)))
    # paging the whole activity log by pages gives the same entries in the same order
    size = rng.randint(1, 4)
    paged: list[dict[str, Any]] = []
    for page in range(1, len(model.activity) // size + 2):
        paged.extend(_activity(api, limit=str(size), page=str(page))["results"])
    assert paged == whole["results"]


def _norm(field: str, value: Any) -> Any:
    """A query as stored: its null members are not kept (compared without them)."""
    if field == "query" and isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


def _create_noname(api: Api, report: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    made = api.call("POST", INSIGHTS, path_params=SP, body={"query": _query(report), **body}, key=key)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _same_activity(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [(a["activity"], a["item_id"]) for a in got] == [(a["activity"], a["item_id"]) for a in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["user"]["first_name"] == e["user"]
        changes = [(c["field"], c.get("before"), c.get("after")) for c in g["detail"].get("changes", [])]
        wanted = [(c["field"], c["before"], c["after"]) for c in e["changes"]]
        assert changes == wanted, (g, e)


# --- targeted: PATCH semantics ------------------------------------------------------------------
def test_a_patch_resending_the_same_query_changes_nothing(api: Api, clock: Clock) -> None:
    """API.md/PostHog: a PATCH sets the fields sent; sending back the query the insight holds (what a
    client does when it GETs, edits the name and PATCHes the whole object) changes nothing in the query.
    (Before: the stored query dropped its null members, the PATCH's kept them, so the same query was
    recorded as a change, with a new ``last_modified_at`` and version; queries are now stored and compared
    without null members.)"""
    report = _report(api)
    created = _create(api, report)
    clock.advance(timedelta(minutes=5))
    got = api.call("GET", ONE, path_params=_one(created["id"]), query={"refresh": "force_cache"}, key=ADMIN_KEY).body
    same = api.call("PATCH", ONE, path_params=_one(created["id"]), body={"query": got["query"]}, key=ADMIN_KEY)
    assert same.status == 200, same.body
    entries = _activity(api, created["id"])["results"]
    assert [e["activity"] for e in entries] == ["created"], entries[0]
    assert same.body["last_modified_at"] == created["last_modified_at"]


# --- targeted: list paging ----------------------------------------------------------------------
def _page_ids(api: Api, limit: int, offset: int) -> list[int]:
    query = {"basic": "true", "limit": str(limit), "offset": str(offset)}
    page = api.call("GET", INSIGHTS, path_params=SP, query=query, key=ADMIN_KEY)
    assert page.status == 200, page.body
    return [r["id"] for r in page.body["results"]]


@_POSITION_PAGING
def test_offset_paging_repeats_an_insight_when_one_is_created_between_pages(api: Api, clock: Clock) -> None:
    """Following ``next`` (limit/offset) over a list ordered by last modification: an insight created
    between two pages shifts every later one down, so the first item of page 2 is the last of page 1
    again (an insight that existed throughout is listed twice). Inherent to offset paging of a list
    whose order moves; API.md does not warn of it (Consistency says nothing of the insight list)."""
    report = _report(api)
    for n in range(4):
        clock.advance(timedelta(minutes=1))
        _create(api, report, name=f"I{n}")
    first = _page_ids(api, 2, 0)
    clock.advance(timedelta(minutes=1))
    _create(api, report, name="new")
    second = _page_ids(api, 2, 2)
    assert not set(first) & set(second), (first, second)


@_POSITION_PAGING
def test_offset_paging_skips_an_insight_patched_between_pages(api: Api, clock: Clock) -> None:
    """An insight on page 2 that is PATCHed (say favorited) while a client reads page 1 moves to the top
    and is never listed to that client: it existed throughout, and is skipped."""
    report = _report(api)
    for n in range(4):
        clock.advance(timedelta(minutes=1))
        _create(api, report, name=f"I{n}")
    first = _page_ids(api, 2, 0)
    clock.advance(timedelta(minutes=1))
    moved = api.call("PATCH", ONE, path_params=_one(1), body={"favorited": True}, key=ADMIN_KEY)
    assert moved.status == 200
    second = _page_ids(api, 2, 2)
    assert sorted(first + second) == [1, 2, 3, 4], (first, second)


def test_activity_of_changes_in_one_millisecond_is_in_order(api: Api, clock: Clock) -> None:
    """Activity is "newest first". Entries written in the same millisecond (a create then a PATCH, or two
    PATCHes, by a script) keep the order they were written in: the entry's ``unique`` starts with the
    insight's version (before, a random id alone: the log could show the rename before the creation)."""
    report = _report(api)
    wrong = 0
    for n in range(12):
        made = _create(api, report, name=f"I{n}")
        for k in range(3):
            api.call("PATCH", ONE, path_params=_one(made["id"]), body={"name": f"I{n}.{k}"}, key=ADMIN_KEY)
        entries = _activity(api, made["id"])["results"]
        names = [e["detail"]["name"] for e in entries]
        wrong += names != [f"I{n}.2", f"I{n}.1", f"I{n}.0", f"I{n}"]
    assert wrong == 0


# --- the results an insight serves ----------------------------------------------------------------
_DURATION = re.compile(r"^(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)$")
OCTOPUS_FIELD = {
    "lead_time": "LeadTime",
    "recovery_time": "MeanTimeToRecovery",
    "time_to_restore": "TimeToRestore",
}
RATE_FIELD = {
    "change_failure_rate": "ChangeFailureRate",
    "deployment_failure_rate": "DeploymentFailureRate",
    "rework_rate": "ReworkRate",
}
STAT_FIELD = {"count": "Count", "mean": "Mean", "median": "Median", "min": "Min", "max": "Max", "p95": "NinetyFifth"}


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    match = _DURATION.match(text)
    assert match, text
    sign = -1 if match[1] else 1
    return sign * (int(match[2]) * 3600 + int(match[3]) * 60 + float(match[4]))


def _octopus_value(interval: dict[str, Any], metric: str, statistic: str) -> float | None:
    if metric == "deployment_frequency":
        return float(interval["NumberOfSuccessfulDeployments"])
    if metric in RATE_FIELD:
        return float(interval[RATE_FIELD[metric]]["Rate"])
    stat = interval[OCTOPUS_FIELD[metric]][STAT_FIELD[statistic]]
    if statistic == "count":
        return float(stat)
    return _seconds(stat)


TENANT_TAGS = {"acme": ["Region/EU", "Tier/Gold"], "globex": ["Region/US"]}
TEAMS = {"shop": "web", "api": "core", "web": "web"}


def _seed_history(
    api: Api,
    rng: random.Random,
    space: str = "Spaces-1",
    key: str = ADMIN_KEY,
    sent: list[dict[str, Any]] | None = None,
) -> None:
    """Deployments of 3 projects in 2 environments (some tenanted, some failed, rollbacks) over the last
    ~100 days, and failure events, through the native routes."""
    projects = ["shop", "api", "web"]
    environments = ["production", "staging"]
    for n in range(rng.randint(15, 35)):
        finished = NOW - timedelta(days=rng.uniform(0, 100), seconds=rng.randint(0, 86400))
        body: dict[str, Any] = {
            "project": rng.choice(projects),
            "environment": rng.choice(environments),
            "finished_at": _stamp(finished),
            "started_at": _stamp(finished - timedelta(minutes=rng.randint(1, 90))),
            "version": f"1.{n}",
            "state": rng.choice(["Success"] * 4 + ["Failed"]),
        }
        if rng.random() < 0.3:
            body["tenant"] = rng.choice(["acme", "globex"])
            body["tenant_tags"] = TENANT_TAGS[body["tenant"]]
        body["team"] = TEAMS[body["project"]]
        if rng.random() < 0.15:
            body["had_guided_failure"] = True
        made = api.call("POST", "/api/{spaceId}/deployments", path_params={"spaceId": space}, body=body, key=key)
        assert made.status == 201, made.body
        if sent is not None:
            sent.append(body)
    for _ in range(rng.randint(0, 5)):
        started = NOW - timedelta(days=rng.uniform(1, 90))
        body = {
            "project": rng.choice(projects),
            "environment": rng.choice(environments),
            "started_at": _stamp(started),
            "finished_at": _stamp(started + timedelta(hours=rng.uniform(0.1, 30))),
        }
        made = api.call("POST", "/api/{spaceId}/failures", path_params={"spaceId": space}, body=body, key=key)
        assert made.status == 201, made.body


def _metrics(api: Api, report: str, **params: str) -> dict[str, Any]:
    found = api.call("GET", REPORT + "/metrics", path_params={**SP, "reportId": report}, query=params, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(a))


@pytest.mark.parametrize("seed", SEEDS)
def test_an_insight_serves_its_reports_metrics(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """For random histories and queries, an insight's ``result`` (retrieve, list, CSV, share link) is the
    report's Octopus ``/metrics`` for the same split/timeRange/granularity: same intervals, same series
    in the same order, one value per interval (count, rate, or the statistic in seconds)."""
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    _seed_history(api, rng)
    reports = [
        _report(api, "All"),
        _report(api, "Sydney", TimeZone="AUS Eastern Standard Time"),
        _report(api, "Shop", ProjectIds=["Projects-1"], TimeZone="America/New_York"),
        _report(
            api,
            "Grouped",
            EnvironmentGroups=[
                {"Name": "Prod", "Environments": ["Environments-1"]},
                {"Name": "Both", "Environments": ["Environments-1", "Environments-2"]},
            ],
            TimeZone="Asia/Kathmandu",
        ),
    ]
    sets = api.call("GET", "/api/{spaceId}/tenanttagsets", path_params=SP, key=ADMIN_KEY)
    assert sets.status == 200, sets.body
    set_ids = [s["Id"] for s in sets.body["Items"]]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    metrics = [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "deployment_failure_rate",
        "recovery_time",
        "time_to_restore",
        "rework_rate",
    ]
    made: list[dict[str, Any]] = []
    for n in range(8):
        query = _query(
            rng.choice(reports),
            metric=rng.choice(metrics),
            split=rng.choice(["None", "Project", "Environment", "Tenant", "ProjectGroup", "EnvironmentGroup"]),
            timeRange=rng.choice(["LastMonth", "LastQuarter", "LastYear"]),
            granularity=rng.choice(["Daily", "Weekly", "Monthly"]),
            statistic=rng.choice(list(STAT_FIELD)),
        )
        if set_ids and rng.random() < 0.2:
            query.update(split="TenantTagSet", tenantTagSetId=rng.choice(set_ids))
        made.append(_create(api, query["reportId"], name=f"Q{n}", query=query))
    listed = {
        r["id"]: r
        for r in api.call("GET", INSIGHTS, path_params=SP, query={"limit": "100"}, key=ADMIN_KEY).body["results"]
    }
    csv_rows = {
        int(r["id"]): r
        for r in csv.DictReader(
            io.StringIO(
                api.call("GET", INSIGHTS, path_params=SP, query={"limit": "100", "format": "csv"}, key=ADMIN_KEY).body
            )
        )
    }
    for insight in made:
        query = insight["query"]
        params = {"split": query["split"], "timeRange": query["timeRange"], "granularity": query["granularity"]}
        if query.get("tenantTagSetId"):
            params["tenantTagSetId"] = query["tenantTagSetId"]
        octopus = _metrics(api, query["reportId"], **params)
        got = api.call("GET", ONE, path_params=_one(insight["id"]), key=ADMIN_KEY)
        assert got.status == 200
        assert got.body["last_refresh"] == got.header("X-Dora-As-Of"), got.headers
        link = api.call(
            "PATCH", ONE + "/sharing", path_params=_one(insight["id"]), body={"enabled": True}, key=ADMIN_KEY
        ).body["access_token"]
        shared = _shared(link, api)
        assert shared.status == 200 and shared.body["result"] == got.body["result"], insight
        for result in (
            got.body["result"],
            listed[insight["id"]]["result"],
            json.loads(csv_rows[insight["id"]]["result"]),
        ):
            assert result is not None, insight
            series = octopus["Series"]
            assert [s["name"] for s in result["series"]] == [s["Name"] for s in series], (query, result, series)
            if series:
                assert result["interval"] == [i["StartOfInterval"] for i in series[0]["Intervals"]]
            for mine, theirs in zip(result["series"], series, strict=True):
                expected = [_octopus_value(i, query["metric"], query["statistic"]) for i in theirs["Intervals"]]
                assert all(_close(a, b) for a, b in zip(mine["values"], expected, strict=True)), (
                    query,
                    mine["values"],
                    expected,
                )


# --- sharing ------------------------------------------------------------------------------------
def _shared(token: str, api: Api, session: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {session}"} if session else None
    return api.call("GET", "/shared/{accessToken}", path_params={"accessToken": token}, headers=headers)


@pytest.mark.parametrize("seed", SEEDS)
def test_share_links_read_only_their_own_insight_while_enabled(
    api: Api, clock: Clock, other_space: str, seed: int
) -> None:
    """Random enable/disable/refresh/soft-delete/restore/password toggles over insights of two spaces:
    at every step each token ever issued reads its own insight (never another's, never another
    space's) exactly while it is the current token of an enabled, live insight; a session opened on
    one link never opens another."""
    rng = random.Random(seed)
    owners = {"Spaces-1": ADMIN_KEY, OTHER_SPACE: OTHER_KEY}
    state: dict[tuple[str, int], dict[str, Any]] = {}
    for space, key in owners.items():
        report = _report(api, space=space, key=key)
        for n in range(2):
            made = _create(api, report, key=key, space=space, name=f"{space} {n}")
            sharing = api.call("GET", ONE + "/sharing", path_params=_one(made["id"], space), key=key).body
            state[(space, made["id"])] = {
                "short_id": made["short_id"],
                "token": sharing["access_token"],
                "enabled": False,
                "deleted": False,
                "password": False,
                "session": None,
            }
    issued: dict[str, tuple[str, int]] = {s["token"]: k for k, s in state.items()}
    passwords: dict[tuple[str, int], str] = {}
    for _step in range(14):
        clock.advance(timedelta(seconds=rng.randint(1, 90)))
        (space, _insight_id) = target = rng.choice(list(state))
        key, s, path = owners[space], state[target], _one(target[1], target[0])
        op = rng.choice(["enable", "disable", "refresh", "delete", "restore", "password", "login"])
        if op in ("enable", "disable"):
            body = {"enabled": op == "enable"}
            assert api.call("PATCH", ONE + "/sharing", path_params=path, body=body, key=key).status == 200
            s["enabled"] = op == "enable"
        elif op == "refresh":
            fresh = api.call("POST", ONE + "/sharing/refresh", path_params=path, key=key)
            assert fresh.status == 200
            s["token"] = fresh.body["access_token"]
            s["session"] = None
            issued[s["token"]] = target
        elif op in ("delete", "restore"):
            body = {"deleted": op == "delete"}
            # As PostHog: a deleted insight is found only by the PATCH that restores it.
            expected = 404 if op == "delete" and s["deleted"] else 200
            assert api.call("PATCH", ONE, path_params=path, body=body, key=key).status == expected
            s["deleted"] = op == "delete"
        elif op == "password":
            if target not in passwords:
                made = api.call("POST", ONE + "/sharing/passwords", path_params=path, body={}, key=key)
                assert made.status == 201
                passwords[target] = made.body["password"]
            s["password"] = not s["password"]
            body = {"password_required": s["password"]}
            assert api.call("PATCH", ONE + "/sharing", path_params=path, body=body, key=key).status == 200
        elif op == "login" and target in passwords:
            login = api.call(
                "POST",
                "/shared/{accessToken}/login",
                path_params={"accessToken": s["token"]},
                body={"password": passwords[target]},
            )
            if s["enabled"] and not s["deleted"]:
                assert login.status == 200, login.body
                s["session"] = login.body["token"]
            else:
                assert login.status == 404, login.body
        sessions = [t["session"] for t in state.values() if t["session"]]
        for token, owner in issued.items():
            o = state[owner]
            live = o["token"] == token and o["enabled"] and not o["deleted"]
            read = _shared(token, api)
            if not live:
                assert read.status == 404, (op, owner, read.body)
                continue
            if o["password"]:
                assert read.status == 401, (op, owner, read.body)
                for other in sessions:
                    opened = _shared(token, api, other)
                    if other == o["session"]:
                        assert opened.status == 200 and opened.body["id"] == owner[1]
                    else:
                        assert opened.status == 401, (owner, opened.body)
                continue
            assert read.status == 200, (op, owner, read.body)
            assert (read.body["id"], read.body["short_id"]) == (owner[1], o["short_id"])


# --- hostile input --------------------------------------------------------------------------------
DEEP = "[" * 50_000 + "]" * 50_000


def _hostile_requests(report: str) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    q = _query(report)
    one = _one(1)
    rid = {**SP, "reportId": report}
    creates = [
        {"query": q, "name": "x" * 100_000},
        {"query": q, "name": 5},
        {"query": q, "tags": ["t"] * 51},
        {"query": q, "tags": [""]},
        {"query": q, "tags": [7]},
        {"query": q, "tags": "dora"},
        {"query": q, "dashboards": [10**40]},
        {"query": q, "dashboards": ["a"]},
        {"query": q, "order": 10**39},
        {"query": q, "order": 1.5},
        {"query": q, "favorited": {"a": 1}},
        {"query": {**q, "reportId": "InsightsReports-999"}},
        {"query": {**q, "reportId": "x" * 10_000}},
        {"query": {**q, "metric": ["lead_time"]}},
        {"query": {**q, "split": "TenantTagSet"}},
        {"query": {**q, "extra": {"deep": json.loads("[" * 200 + "]" * 200)}}},
        {"query": {**q, "statistic": "p99"}},
        {"query": {**q, "kind": None}},
        {"query": None},
        {"query": "DoraMetricsQuery"},
        {"query": q, "unknown": 1},
        {"query": q, "description": "\ud800"},
    ]
    requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
        ("POST", INSIGHTS, SP, {"body": b}) for b in creates
    ]
    requests += [
        ("POST", INSIGHTS, SP, {"raw_body": DEEP}),
        ("POST", INSIGHTS, SP, {"raw_body": '{"query": ' + DEEP + "}"}),
        ("POST", INSIGHTS, SP, {"raw_body": "[]"}),
        ("POST", INSIGHTS, SP, {"raw_body": "null"}),
        ("POST", INSIGHTS, SP, {"raw_body": '"x"'}),
        ("POST", INSIGHTS, SP, {"raw_body": "{"}),
        ("POST", INSIGHTS, SP, {"raw_body": b"\xff\xfe{}"}),
        (
            "POST",
            INSIGHTS,
            SP,
            {
                "raw_body": '{"query": {"kind": "DoraMetricsQuery", "reportId": "'
                + report
                + '", "metric": "lead_time"}, "name": NaN}'
            },
        ),
        ("PATCH", ONE, one, {"body": {"name": "y" * 401}}),
        ("PATCH", ONE, one, {"body": {"deleted": "maybe"}}),
        ("PATCH", ONE, one, {"body": {"query": {**q, "metric": "velocity"}}}),
        ("PATCH", ONE, one, {"body": {"query": {**q, "reportId": "InsightsReports-999"}}}),
        ("PATCH", ONE, one, {"body": {"tags": [None]}}),
        ("PATCH", ONE, one, {"body": {"id": 2}}),
        ("PATCH", ONE, one, {"body": {"short_id": "AAAAAAAA"}}),
        ("PATCH", ONE, one, {"body": {"created_by": {"first_name": "eve"}}}),
        ("PATCH", ONE, one, {"raw_body": DEEP}),
        ("PATCH", ONE, one, {"raw_body": "[1]"}),
        ("PATCH", ONE, one, {"body": {"query": {**q, "split": "TenantTagSet", "tenantTagSetId": "x" * 65}}}),
        ("PATCH", ONE, one, {"body": {"order": 1e308}}),
    ]
    for bad in ("0", "-1", "abc", "1e3", "\u0661", "99999999999999999999999", "2000000001", "7"):
        requests.append(("GET", ONE, _one(bad), {}))
        requests.append(("PATCH", ONE, _one(bad), {"body": {"name": "z"}}))
        requests.append(("GET", ONE + "/sharing", _one(bad), {}))
        requests.append(("GET", ONE + "/activity", _one(bad), {}))
    for params in (
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "1001"},
        {"limit": "abc"},
        {"offset": "-1"},
        {"offset": "1e3"},
        {"offset": "99999999999999999999"},
        {"search": "s" * 201},
        {"tags": "[1,2"},
        {"tags": "[" * 300},
        {"dashboards": "[[1]]"},
        {"dashboards": '{"a": 1}'},
        {"favorited": "maybe"},
        {"refresh": "now"},
        {"format": "xml"},
        {"created_date_from": "-999999y"},
        {"created_date_from": "-999999q"},
        {"created_date_from": "-999999d"},
        {"date_to": "9999-12-31T23:59:59-23:59"},
        {"date_to": "0001-01-01T00:00:00+23:59"},
        {"date_to": "2024-03-06T12:00:00+25:00"},
        {"last_viewed_date_from": "\x00"},
        {"insight": "x" * 41},
        {"short_id": "\u00e9" * 20},
    ):
        requests.append(("GET", INSIGHTS, SP, {"query": params}))
    for params in (
        {"limit": "0"},
        {"page": "0"},
        {"page": "100001"},
        {"page": "100000", "limit": "1000"},
    ):
        requests.append(("GET", INSIGHTS + "/activity", SP, {"query": params}))
    for params in ({"days": "0"}, {"days": "32"}, {"days": "x"}, {"offset": "-5"}):
        requests.append(("GET", INSIGHTS + "/trending", SP, {"query": params}))
    for body in ({"insight_ids": []}, {"insight_ids": [0]}, {"insight_ids": [10**40]}, {"insight_ids": "1"}, {}):
        requests.append(("POST", INSIGHTS + "/viewed", SP, {"body": body}))
    for body in ({"enabled": "yes please"}, {"settings": DEEP}, {"password_required": None, "x": 1}):
        requests.append(("PATCH", ONE + "/sharing", one, {"body": body}))
    requests.append(("PATCH", ONE + "/sharing", one, {"raw_body": '{"settings": ' + DEEP + "}"}))
    for body in (
        {"raw_password": "short"},
        {"raw_password": "p" * 257},
        {"note": "n" * 401},
        {"raw_password": 12345678},
    ):
        requests.append(("POST", ONE + "/sharing/passwords", one, {"body": body}))
    for token in ("short", "x" * 129, "shr_" + "\u0661" * 30, "shr_%2F..%2F", "shr_" + "a" * 124):
        requests.append(("GET", "/shared/{accessToken}", {"accessToken": token}, {"no_key": True}))
        requests.append(
            ("POST", "/shared/{accessToken}/login", {"accessToken": token}, {"no_key": True, "body": {"password": "p"}})
        )
    for params in (
        {"split": "Nope"},
        {"split": "TenantTagSet"},
        {"split": "TenantTagSet", "tenantTagSetId": "TenantTagSets-99"},
        {"split": "TenantTagSet", "tenantTagSetId": "x" * 65},
        {"timeRange": "LastDecade"},
        {"timeRange": ""},
        {"granularity": "Hourly"},
        {"granularity": "daily"},
    ):
        requests.append(("GET", REPORT + "/metrics", rid, {"query": params}))
    for bad in (
        "InsightsReports-0",
        "InsightsReports--1",
        "InsightsReports-9999999999",
        "x" * 65,
        "InsightsReports-1\u0000",
    ):
        requests.append(("GET", REPORT + "/metrics", {**SP, "reportId": bad}, {}))
        requests.append(("GET", REPORT + "/deployments", {**SP, "reportId": bad}, {}))
    for params in ({"skip": "-1"}, {"take": "0"}, {"take": "2147483648"}, {"skip": "x"}):
        requests.append(("GET", REPORTS, SP, {"query": params}))
    for body in (
        {"Name": "r", "TimeZone": "x" * 101},
        {"Name": "r", "TimeZone": "../../../etc/passwd"},
        {"Name": "r", "TimeZone": "UTC\u0000"},
        {"Name": "r", "TimeZone": "Etc/GMT+0\n"},
        {"Name": "r", "TimeZone": ""},
        {"Name": "r", "TimeZone": None},
        {"Name": "r", "TimeZone": 5},
        {"Name": "r", "ProjectIds": ["Projects-1"] * 1001},
        {"Name": "r", "ProjectIds": ["Projects-01"]},
        {"Name": "r", "ProjectIds": ["Projects-\u0661"]},
        {"Name": "r", "ProjectIds": [None]},
        {"Name": "r", "EnvironmentGroups": [{"Name": "g", "Environments": []}]},
        {"Name": "r", "EnvironmentGroups": [{"Name": "g"}]},
        {"Name": "r", "TenantMode": None},
        {"Name": "r", "Version": 0},
        {"Name": "r", "Version": 2**64},
        {"Name": "x" * 100_000},
        {"Name": "   "},
        {"Name": "r", "Description": "d" * 2001},
        {"Name": "r", "Links": {"Self": 5}},
        {"Name": "r", "SpaceId": "Spaces-2"},
    ):
        requests.append(("POST", REPORTS, SP, {"body": body}))
        requests.append(("PUT", REPORT, rid, {"body": body}))
    requests.append(("POST", REPORTS, SP, {"raw_body": DEEP}))
    requests.append(("PUT", REPORT, rid, {"body": {"Name": "r"}, "headers": {"If-Match": 'W/"x"'}}))
    requests.append(("PUT", REPORT, rid, {"body": {"Name": "r", "Id": "InsightsReports-2"}}))
    return requests


def test_hostile_requests_are_4xx_and_write_nothing(api: Api, clock: Clock) -> None:
    """API.md Errors: anything a client sent is a 4xx with a clear message, never a 5xx; a refused write
    stores nothing."""
    report = _report(api)
    _create(api, report, name="keep", tags=["dora"])
    before_list = _list(api)
    before_activity = _activity(api, limit="1000")
    before_report = api.call("GET", REPORT, path_params={**SP, "reportId": report}, key=ADMIN_KEY).body
    server_errors: list[Any] = []
    for method, route, path, sent in _hostile_requests(report):
        extra = dict(sent)
        key = None if extra.pop("no_key", False) else ADMIN_KEY
        answer = api.call(method, route, path_params=path, key=key, **extra)
        if answer.status >= 500 or (answer.status < 400 and method != "GET"):
            server_errors.append((method, route, path, str(extra)[:120], answer.status, str(answer.body)[:200]))
    assert server_errors == [], "\n".join(map(str, server_errors))
    assert _list(api) == before_list
    assert _activity(api, limit="1000") == before_activity
    assert api.call("GET", REPORT, path_params={**SP, "reportId": report}, key=ADMIN_KEY).body == before_report


# --- concurrency of PATCH -----------------------------------------------------------------------
def test_a_patch_racing_a_patch_of_another_field_is_not_refused(
    api: Api, clock: Clock, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PATCH changes only the fields it sends (API.md). Two clients PATCH one insight at the same time,
    one its tags, the other its name: both changes should hold (the thresholds' PATCH is applied again
    from a fresh read for this reason; API.md Errors: "a 409 or 412 means another request did change what
    you meant to change"). The PATCH that loses the version race is applied again from a fresh read
    (before, it answered 409 although nobody changed its field)."""
    from dora_insights.dal import insights as dal_insights

    report = _report(api)
    made = _create(api, report, name="before", tags=["a"])
    real_get = dal_insights.InsightStore.get
    raced: list[bool] = []

    def get_then_race(self: Any, space_id: str, insight_id: int) -> Any:
        read = real_get(self, space_id, insight_id)
        if not raced:
            raced.append(True)
            # another client's PATCH of the tags lands between this PATCH's read and its write
            other = read.model_copy(update={"tags": ("b",), "version": read.version + 1})
            self.replace(space_id, other, expected_version=read.version, activity=None, unique="race")
        return read

    monkeypatch.setattr(dal_insights.InsightStore, "get", get_then_race)
    renamed = api.call("PATCH", ONE, path_params=_one(made["id"]), body={"name": "after"}, key=ADMIN_KEY)
    monkeypatch.setattr(dal_insights.InsightStore, "get", real_get)
    final = api.call("GET", ONE, path_params=_one(made["id"]), query={"refresh": "force_cache"}, key=ADMIN_KEY).body
    assert (final["name"], final["tags"]) == ("after", ["b"]), (renamed.status, renamed.body)
    assert renamed.status == 200


# --- CSV = JSON -----------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return str(value)
    text = json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def test_every_csv_export_holds_the_rows_of_its_json(api: Api, clock: Clock, lambda_context: Any) -> None:
    """``format=csv``: a header row and one row per result, each cell the JSON value (objects as JSON)."""
    rng = random.Random(5)
    _seed_history(api, rng)
    report = _report(api)
    for n in range(4):
        clock.advance(timedelta(minutes=1))
        _create(
            api,
            report,
            name=rng.choice(["=1+1", 'Ünïcode, "quoted"', "line\nbreak", f"n{n}"]),
            tags=rng.sample(TAGS, 2),
            query=_query(report, metric=rng.choice(["lead_time", "deployment_frequency"]), split="Project"),
        )
    api.call(
        "POST",
        ONE + "/thresholds",
        path_params=_one(1),
        body={"name": "t", "condition": {"bounds": {"upper": 1}}},
        key=ADMIN_KEY,
    )
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1, 2, 3]}, key=ADMIN_KEY)
    routes = [
        (INSIGHTS, SP, {"limit": "3", "offset": "1"}),
        (INSIGHTS, SP, {"basic": "true"}),
        (ONE, _one(2), {}),
        (INSIGHTS + "/activity", SP, {}),
        (ONE + "/activity", _one(1), {}),
        (INSIGHTS + "/trending", SP, {}),
        (INSIGHTS + "/my_last_viewed", SP, {}),
        (ONE + "/thresholds", _one(1), {}),
        (ONE + "/sharing", _one(1), {}),
    ]
    for route, path, params in routes:
        as_json = api.call("GET", route, path_params=path, query=params or None, key=ADMIN_KEY)
        as_csv = api.call("GET", route, path_params=path, query={**params, "format": "csv"}, key=ADMIN_KEY)
        assert as_json.status == as_csv.status == 200, (route, as_json.body, as_csv.body)
        body = as_json.body
        rows = body if isinstance(body, list) else body.get("results", [body])
        parsed = list(csv.reader(io.StringIO(as_csv.body, newline="")))
        header, data = parsed[0], parsed[1:]
        assert len(data) == len(rows), route
        for row, cells in zip(rows, data, strict=True):
            expected = {k: _cell(row.get(k)) for k in header}
            assert dict(zip(header, cells, strict=True)) == expected, route
            assert set(row) <= set(header), route


@pytest.mark.parametrize(
    "params",
    [
        {"split": "Nope"},
        {"split": "TenantTagSet"},
        {"split": "TenantTagSet", "tenantTagSetId": "TenantTagSets-99"},
        {"timeRange": "LastDecade"},
        {"granularity": "Hourly"},
        {"granularity": "dai ly"},  # any case is Daily (API.md); a value of no case is a 400
    ],
)
def test_report_metrics_parameters_are_octopus_400s(api: Api, clock: Clock, params: dict[str, str]) -> None:
    report = _report(api)
    answer = api.call("GET", REPORT + "/metrics", path_params={**SP, "reportId": report}, query=params, key=ADMIN_KEY)
    assert answer.status == 400, answer.body
    assert set(answer.body) == {"ErrorMessage", "Errors"} and answer.body["ErrorMessage"]


def test_search_matches_within_one_field(api: Api, clock: Clock) -> None:
    """PostHog's ``search`` matches the name, the derived name or the description (each on its own,
    ``icontains``), or a tag. "(All) beta" must not find an insight of report "All" described "beta"
    (its derived name ends "(All)"): no field holds it (before, the fields were searched joined)."""
    report = _report(api)
    _create(api, report, name="alpha", description="beta")
    assert _list(api, search="(all) beta") == []


def test_no_route_reads_or_writes_another_spaces_insights_or_reports(api: Api, clock: Clock, other_space: str) -> None:
    """A key acts only in its own space; a path naming another space answers 404 (API.md Authentication),
    and nothing of the other space changes."""
    mine = _report(api)
    theirs = _report(api, space=OTHER_SPACE, key=OTHER_KEY)
    _create(api, mine, name="mine")
    _create(api, theirs, key=OTHER_KEY, space=OTHER_SPACE, name="theirs")
    other = {"spaceId": OTHER_SPACE}
    other_one = _one(1, OTHER_SPACE)
    before = api.call("GET", INSIGHTS, path_params=other, key=OTHER_KEY).body
    attempts = [
        ("GET", INSIGHTS, other, {}),
        ("POST", INSIGHTS, other, {"body": {"query": _query(theirs)}}),
        ("GET", ONE, other_one, {}),
        ("PATCH", ONE, other_one, {"body": {"name": "pwned"}}),
        ("GET", ONE + "/activity", other_one, {}),
        ("GET", INSIGHTS + "/activity", other, {}),
        ("GET", ONE + "/sharing", other_one, {}),
        ("PATCH", ONE + "/sharing", other_one, {"body": {"enabled": True}}),
        ("POST", ONE + "/sharing/refresh", other_one, {}),
        ("POST", ONE + "/sharing/passwords", other_one, {"body": {}}),
        ("GET", ONE + "/thresholds", other_one, {}),
        ("POST", INSIGHTS + "/viewed", other, {"body": {"insight_ids": [1]}}),
        ("GET", INSIGHTS + "/trending", other, {}),
        ("GET", INSIGHTS + "/my_last_viewed", other, {}),
        ("GET", REPORTS, other, {}),
        ("GET", REPORT, {**other, "reportId": theirs}, {}),
        ("PUT", REPORT, {**other, "reportId": theirs}, {"body": {"Name": "pwned"}}),
        ("DELETE", REPORT, {**other, "reportId": theirs}, {}),
        ("GET", REPORT + "/metrics", {**other, "reportId": theirs}, {}),
        ("GET", REPORT + "/deployments", {**other, "reportId": theirs}, {}),
    ]
    leaks = []
    for method, route, path, extra in attempts:
        answer = api.call(method, route, path_params=path, key=ADMIN_KEY, **extra)
        if answer.status != 404:
            leaks.append((method, route, answer.status, str(answer.body)[:160]))
    # the environments twin too
    twin = api.call("GET", "/api/environments/{spaceId}/insights/{insightId}", path_params=other_one, key=ADMIN_KEY)
    if twin.status != 404:
        leaks.append(("GET", "environments twin", twin.status, str(twin.body)[:160]))
    # an insight of this space may not chart another space's report
    cross = api.call("POST", INSIGHTS, path_params=SP, body={"query": _query(theirs)}, key=ADMIN_KEY)
    assert cross.status == 400 or theirs == mine
    assert leaks == []
    assert api.call("GET", INSIGHTS, path_params=other, key=OTHER_KEY).body == before
    theirs_report = api.call("GET", REPORT, path_params={**other, "reportId": theirs}, key=OTHER_KEY)
    assert theirs_report.status == 200 and theirs_report.body["Name"] == "All"


def test_an_insight_of_an_unknown_tenant_tag_set_is_refused_as_its_metrics_route_refuses_it(
    api: Api, clock: Clock
) -> None:
    """``split`` etc. are "as the Octopus /metrics route", which answers 400 for a tenant tag set the space
    does not know; an unknown report or metric is a 400 naming the field (before, the insight was saved
    and showed ``result: null`` for good)."""
    report = _report(api)
    query = _query(report, split="TenantTagSet", tenantTagSetId="TenantTagSets-99")
    octopus = api.call(
        "GET",
        REPORT + "/metrics",
        path_params={**SP, "reportId": report},
        query={"split": "TenantTagSet", "tenantTagSetId": "TenantTagSets-99"},
        key=ADMIN_KEY,
    )
    assert octopus.status == 400
    made = api.call("POST", INSIGHTS, path_params=SP, body={"name": "x", "query": query}, key=ADMIN_KEY)
    assert made.status == 400, (made.status, made.body.get("result"))


def test_if_match_star_on_a_report_put_is_any_version(api: Api, clock: Clock) -> None:
    """``If-Match: *`` means "any current version" (RFC 9110; the native routes read it so:
    handlers/http.py ``_if_match_revision`` returns None for ``*``), the report PUT too (before, a 400
    "If-Match must be a report Version"). A stale ``If-Match`` is HTTP's 412 there (a stale body ``Version``
    is a 409)."""
    report = _report(api)
    rid = {**SP, "reportId": report}
    first = api.call("PUT", REPORT, path_params=rid, body={"Name": "A"}, headers={"If-Match": '"1"'}, key=ADMIN_KEY)
    assert first.status == 200, first.body
    again = api.call("PUT", REPORT, path_params=rid, body={"Name": "A"}, headers={"If-Match": '"1"'}, key=ADMIN_KEY)
    assert again.status == 412
    star = api.call("PUT", REPORT, path_params=rid, body={"Name": "B"}, headers={"If-Match": "*"}, key=ADMIN_KEY)
    assert star.status == 200, star.body


@pytest.mark.parametrize("seed", SEEDS)
def test_daily_deployment_frequency_of_an_insight_equals_dora_metrics(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """Where the definitions coincide (a UTC report over every environment, Daily, successful deployments
    per day), an insight's values equal GitLab-style ``/dora/metrics`` ``deployment_frequency`` daily."""
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    _seed_history(api, rng)
    report = _report(api)
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    for time_range in ("LastMonth", "LastQuarter"):
        query = _query(report, metric="deployment_frequency", granularity="Daily", timeRange=time_range)
        made = _create(api, report, name=time_range, query=query)
        got = api.call("GET", ONE, path_params=_one(made["id"]), key=ADMIN_KEY).body["result"]
        days, values = got["interval"], got["series"][0]["values"]
        gitlab = api.call(
            "GET",
            "/api/{spaceId}/dora/metrics",
            path_params=SP,
            query={
                "metric": "deployment_frequency",
                "interval": "daily",
                "start_date": days[0],
                "end_date": days[-1],
                "environment_tiers": "production,staging",
            },
            key=ADMIN_KEY,
        )
        assert gitlab.status == 200, gitlab.body
        assert [r["date"] for r in gitlab.body] == days
        assert [float(r["value"]) for r in gitlab.body] == values


def _catalogue(api: Api, kind: str) -> dict[str, str]:
    found = api.call("GET", "/api/{spaceId}/" + kind, path_params=SP, query={"take": "1000"}, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return {i["Name"]: i["Id"] for i in found.body["Items"]}


@pytest.mark.parametrize("seed", SEEDS)
def test_report_filters_count_the_deployments_metrics_4_says(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """Random reports (ProjectIds, ProjectGroupIds, EnvironmentGroups, TenantMode, TenantIds, TenantTags):
    the deployments a report's ``/metrics`` counts over LastYear (Total, successful) are those its filters
    include (API.md/Octopus: listed projects or their groups; the environments of its groups; tenants by
    mode, then by id or tag when any are listed)."""
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []
    _seed_history(api, rng, sent=sent)
    projects, environments = _catalogue(api, "projects"), _catalogue(api, "environments")
    tenants, groups = _catalogue(api, "tenants"), _catalogue(api, "projectgroups")
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)

    def random_fields() -> dict[str, Any]:
        fields: dict[str, Any] = {"TenantMode": rng.choice(["TenantedAndUntenanted", "Tenanted", "Untenanted"])}
        if rng.random() < 0.5:
            fields["ProjectIds"] = [projects[p] for p in rng.sample(sorted(projects), rng.randint(1, 2))]
        if rng.random() < 0.4:
            fields["ProjectGroupIds"] = [groups[g] for g in rng.sample(sorted(groups), 1)]
        if rng.random() < 0.5:
            fields["EnvironmentGroups"] = [
                {"Name": "G", "Environments": [environments[rng.choice(sorted(environments))]]}
            ]
        if tenants and rng.random() < 0.4:
            fields["TenantIds"] = [tenants[rng.choice(sorted(tenants))]]
        if rng.random() < 0.4:
            fields["TenantTags"] = [rng.choice(["Region/EU", "Region/US", "Tier/Gold"])]
        return fields

    def included(d: dict[str, Any], f: dict[str, Any]) -> bool:
        listed_projects = f.get("ProjectIds", [])
        listed_groups = f.get("ProjectGroupIds", [])
        if (listed_projects or listed_groups) and not (
            projects[d["project"]] in listed_projects or groups[TEAMS[d["project"]]] in listed_groups
        ):
            return False
        envs = [e for g in f.get("EnvironmentGroups", []) for e in g["Environments"]]
        if envs and environments[d["environment"]] not in envs:
            return False
        tenant = d.get("tenant")
        if tenant is None:
            return f["TenantMode"] != "Tenanted"
        if f["TenantMode"] == "Untenanted":
            return False
        if not f.get("TenantIds") and not f.get("TenantTags"):
            return True
        return tenants[tenant] in f.get("TenantIds", []) or bool(
            set(TENANT_TAGS[tenant]) & set(f.get("TenantTags", []))
        )

    def check(report: str, fields: dict[str, Any], insight: int) -> None:
        chosen = [d for d in sent if included(d, fields)]
        expected = (len(chosen), sum(d["state"] == "Success" and not d.get("had_guided_failure") for d in chosen))
        got = _metrics(api, report, timeRange="LastYear", granularity="Monthly")
        intervals = [i for s in got["Series"] for i in s["Intervals"]]
        total = sum(i["DeploymentFailureRate"]["Total"] for i in intervals)
        successes = sum(i["NumberOfSuccessfulDeployments"] for i in intervals)
        assert (total, successes) == expected, fields
        streams = api.call("GET", REPORT + "/deployments", path_params={**SP, "reportId": report}, key=ADMIN_KEY)
        assert streams.status == 200, streams.body
        listed = [d for st in streams.body["Streams"] for d in st["Deployments"]]
        assert len(listed) == expected[0], (fields, len(listed))
        assert len({d["Id"] for d in listed}) == len(listed)
        shown = api.call("GET", ONE, path_params=_one(insight), query={"refresh": "force_cache"}, key=ADMIN_KEY)
        assert sum(v or 0 for s in shown.body["result"]["series"] for v in s["values"]) == expected[1], fields

    for n in range(5):
        fields = random_fields()
        report = _report(api, f"R{n}", **fields)
        query = _query(report, metric="deployment_frequency", timeRange="LastYear", granularity="Monthly")
        insight = _create(api, report, name=f"R{n}", query=query)["id"]
        check(report, fields, insight)
        clock.advance(timedelta(minutes=1))
        fields = random_fields()
        put = api.call(
            "PUT", REPORT, path_params={**SP, "reportId": report}, body={"Name": f"R{n}", **fields}, key=ADMIN_KEY
        )
        assert put.status == 200, put.body
        check(report, fields, insight)


def test_an_insight_read_counts_deployments_made_since_the_last_computation(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §8: a read brings what it covers up to date within the bounds (the insight's default
    ``blocking``); ``force_cache`` answers as stored and says what waits in ``X-Dora-Pending``."""
    from tests.support.recompute import scheduled_run

    _seed_history(api, random.Random(3))
    report = _report(api)
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    query = _query(report, metric="deployment_frequency", granularity="Daily", timeRange="LastMonth")
    made = _create(api, report, name="daily", query=query)
    before = made["result"]["series"][0]["values"][-1]
    clock.advance(timedelta(minutes=1))
    for n in range(3):
        body = {
            "project": "shop",
            "environment": "production",
            "finished_at": _stamp(clock.now - timedelta(seconds=n + 1)),
        }
        assert api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=body, key=ADMIN_KEY).status == 201
    cached = api.call("GET", ONE, path_params=_one(made["id"]), query={"refresh": "force_cache"}, key=ADMIN_KEY)
    assert cached.body["result"]["series"][0]["values"][-1] == before
    assert cached.header("X-Dora-Pending") not in (None, "0"), cached.headers
    fresh = api.call("GET", ONE, path_params=_one(made["id"]), key=ADMIN_KEY)
    assert fresh.body["result"]["series"][0]["values"][-1] == before + 3
    assert fresh.header("X-Dora-Pending") == "0"
    octopus = _metrics(api, report, split="None", timeRange="LastMonth", granularity="Daily")
    assert octopus["Series"][0]["Intervals"][-1]["NumberOfSuccessfulDeployments"] == before + 3
    listed = _list(api, refresh="force_cache") and api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body
    assert listed["results"][0]["result"]["series"][0]["values"][-1] == before + 3


def test_an_insight_has_one_id(api: Api, clock: Clock) -> None:
    """As for reports (``InsightsReports-01`` names no report: test_reports.py), an insight's id is the
    integer the service wrote, in one spelling: ``01``, ``+1``, `` 1`` and ``1.0`` name no insight
    (before, pydantic's lax int read them all as insight 1, for reads and writes alike)."""
    report = _report(api)
    _create(api, report)
    aliases = {}
    for alias in ("01", "+1", " 1", "1.0", "1_0"):
        aliases[alias] = api.call(
            "GET", ONE, path_params=_one(alias), query={"refresh": "force_cache"}, key=ADMIN_KEY
        ).status
    assert all(status in (400, 404) for status in aliases.values()), aliases


@_POSITION_PAGING
def test_report_list_paging_skips_a_report_when_one_before_it_is_deleted(api: Api, clock: Clock) -> None:
    """Octopus ``skip``/``take``: a report deleted between two pages shifts the later ones up, so one that
    existed throughout is never listed (inherent to skip/take; API.md does not say so)."""
    for n in range(4):
        _report(api, f"R{n}")
    first = api.call("GET", REPORTS, path_params=SP, query={"skip": "0", "take": "2"}, key=ADMIN_KEY).body["Items"]
    assert api.call("DELETE", REPORT, path_params={**SP, "reportId": first[0]["Id"]}, key=ADMIN_KEY).status == 204
    second = api.call("GET", REPORTS, path_params=SP, query={"skip": "2", "take": "2"}, key=ADMIN_KEY).body["Items"]
    seen = {r["Name"] for r in first + second}
    assert {"R1", "R2", "R3"} <= seen, seen
