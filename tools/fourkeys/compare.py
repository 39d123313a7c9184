"""This service's DORA figures beside Google Four Keys' SQL definitions, on the same deterministic history.

Usage (with ``make serve`` running in another terminal; docs/peer-differences.md)::

    .venv/bin/python tools/fourkeys/compare.py --url http://127.0.0.1:3000 --key local-dev-key --space Spaces-1

What it does:

1. generates a seeded history (``generate``): services, each a repository with one branch, commits in
   pushes, deployments of a sha (some not the head of a push), failed deployments retried, a rollback,
   a deployment whose only commit is stamped after it (clock skew), incidents naming their root-cause
   commit; sizes come from a ``Shape`` (``DEFAULT``: METRICS §7's history; ``SMALL``: the test's);
2. sends it through the native API: ``POST /api/{space}/changes`` (one request per push),
   ``POST /api/{space}/deployments``, ``POST /api/{space}/failures`` (``commit_sha``: the root cause,
   METRICS §2 rule 4), runs the recompute (``POST /_local/schedule/run`` on the local runtime, else
   waits for the scheduled one) and reads ``GET /api/{space}/summary`` (and the deployments' figures);
3. evaluates Four Keys' definitions with DuckDB over the same history, shaped as the GitHub events
   Four Keys stores (``events_raw``): its ``queries/changes.sql``, ``queries/deployments.sql``,
   ``queries/incidents.sql`` and the four keys panels of ``dashboard/fourkeys_dashboard.json``
   (dora-team/fourkeys), re-written for DuckDB (``FourKeys``);
4. prints the figures side by side with METRICS §7's reason, and the Four Keys figures again with
   every difference §7 documents neutralised (``FourKeys.figures(neutralise=...)``), which must equal
   this service's: a figure that still differs then is a difference nobody documented.

Only the standard library and duckdb: it runs from the repository's virtualenv or any Python 3.11 with
``pip install duckdb``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

ENVIRONMENT = "production"
BRANCH = "main"
DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DEFAULT_SEED = 118  # the seed whose DEFAULT history has METRICS §7's sizes (58 deployments, 213 commits, 7 incidents)
RATE_DECIMALS = 5  # the service rounds rates to 5 places (METRICS §4)

# ---------------------------------------------------------------------------------------------
# The documented differences (METRICS §7), each one a switch of ``FourKeys.figures``.

HEAD_SHA_JOIN = "head_sha_join"
MEDIAN_UNIT = "median_unit"
WHOLE_UNITS = "whole_units"
NON_POSITIVE_DROPPED = "non_positive_dropped"
FAILED_AND_ROLLBACKS = "failed_and_rollbacks"
ROOT_CAUSE_LINK = "root_cause_link"
RESTORE_START = "restore_start"


@dataclass(frozen=True, slots=True)
class Difference:
    """One documented difference: the METRICS §7 row it belongs to, what it is, and the figures it moves."""

    name: str
    row: str
    reason: str
    figures: frozenset[str]


DIFFERENCES: dict[str, Difference] = {
    d.name: d
    for d in (
        Difference(
            HEAD_SHA_JOIN,
            "Deployments",
            "Four Keys joins deployments to push events by head sha: a deployment whose sha is no push's "
            "head commit is dropped, and a kept one carries the commits of that one push; here every "
            "successful deployment counts, with the commits it newly shipped to its stream (METRICS §5)",
            frozenset(
                {
                    "deployments",
                    "deployment_days",
                    "lead_time_seconds",
                    "change_failures",
                    "change_failure_deployments",
                    "change_failure_rate",
                    "time_to_restore_seconds",
                }
            ),
        ),
        Difference(
            MEDIAN_UNIT,
            "Lead time",
            "unit of the median: Four Keys takes the median over (deployment, commit) rows; here each "
            "deployment has one lead time, from the earliest commit it newly shipped",
            frozenset({"lead_time_seconds"}),
        ),
        Difference(
            WHOLE_UNITS,
            "Lead time, Time to restore",
            "Four Keys measures in whole minutes (lead time) and whole hours (time to restore), "
            "BigQuery's TIMESTAMP_DIFF truncating; here durations are exact seconds",
            frozenset({"lead_time_seconds", "time_to_restore_seconds"}),
        ),
        Difference(
            NON_POSITIVE_DROPPED,
            "Lead time",
            "negatives: Four Keys drops rows of 0 minutes or less; here a negative lead time (a commit "
            "stamped after its deployment) is kept and flagged",
            frozenset({"lead_time_seconds"}),
        ),
        Difference(
            FAILED_AND_ROLLBACKS,
            "Change failure rate",
            "failed deployments and rollbacks count here: a failed deployment is a change failure (rule 1), "
            "so is a rolled-back one (rule 2), and the denominator is every completed deployment but the "
            "rollbacks; Four Keys sees successful deployments only",
            frozenset({"change_failures", "change_failure_deployments", "change_failure_rate"}),
        ),
        Difference(
            ROOT_CAUSE_LINK,
            "Change failure rate",
            "Four Keys counts incident links, one per (deployment, commit, incident) row of every deployment "
            "carrying the root-cause commit; here an incident charges the first successful deployment of its "
            "stream that shipped the commit (rule 4), and a change failure counts once however many reasons "
            "it has",
            frozenset({"change_failures", "change_failure_rate"}),
        ),
        Difference(
            RESTORE_START,
            "Time to restore",
            "start instant: Four Keys starts at the earlier of the root-cause deployment and the incident's "
            "creation; here at the failure's start",
            frozenset({"time_to_restore_seconds"}),
        ),
    )
}
ALL_DIFFERENCES = frozenset(DIFFERENCES)


# ---------------------------------------------------------------------------------------------
# The history


@dataclass(frozen=True, slots=True)
class Shape:
    """Sizes of a generated history, in all, shared out between the services in turn.

    ``slots_per_week``: deployment slots a week; a slot is one successful deployment, preceded by a
    failed attempt of the same sha in ``failed`` of them. ``non_head`` slots deploy a commit that is not
    the head of its push; ``skewed`` slots ship one commit stamped after the deployment (clock skew).
    With ``rollback``, the first service rolls a deployment back after an incident. ``incidents``, each
    naming a root-cause commit: the rolled-back deployment's, a second one of that deployment, one found
    after later deployments, the rest shortly after their deployment.
    """

    name: str
    services: tuple[str, ...]
    weeks: int
    slots_per_week: float
    non_head: int
    skewed: int
    failed: int
    incidents: int
    rollback: bool = True

    def with_weeks(self, weeks: int) -> Shape:
        return self if weeks == self.weeks else dataclasses.replace(self, name=f"{self.name}{weeks}w", weeks=weeks)

    def share(self, total: int, index: int) -> int:
        """Service ``index``'s share of ``total``."""
        count = len(self.services)
        return total // count + (1 if index < total % count else 0)


DEFAULT = Shape(
    "default", ("checkout", "catalog"), weeks=8, slots_per_week=6.75, non_head=6, skewed=2, failed=3, incidents=7
)
SMALL = Shape(
    "small", ("checkout", "catalog"), weeks=2, slots_per_week=6.0, non_head=2, skewed=2, failed=2, incidents=3
)


@dataclass(frozen=True, slots=True)
class Commit:
    repository: str
    sha: str
    timestamp: datetime
    message: str


@dataclass(frozen=True, slots=True)
class Push:
    repository: str
    pushed_at: datetime
    commits: tuple[Commit, ...]

    @property
    def head(self) -> Commit:
        return self.commits[-1]


@dataclass(frozen=True, slots=True)
class Deployment:
    """``kind``: ``normal``, ``non_head``, ``skewed``, ``failed``, ``retry`` (after a failed one),
    ``rolled_back`` (followed by the rollback), ``rollback``."""

    key: str
    project: str
    repository: str
    sha: str
    state: str
    started_at: datetime
    finished_at: datetime
    rollback: bool
    kind: str

    @property
    def successful(self) -> bool:
        return self.state == "Success"


@dataclass(frozen=True, slots=True)
class Incident:
    """``kind``: ``rollback`` (the rolled-back deployment's), ``double`` (a second one of that deployment),
    ``latent`` (found after later deployments), ``normal``."""

    key: str
    number: int
    project: str
    repository: str
    root_cause: str
    created_at: datetime
    closed_at: datetime
    kind: str


@dataclass(frozen=True)
class History:
    seed: int
    shape: Shape
    first_day: datetime
    start: datetime  # the comparison range, [start, end)
    end: datetime
    pushes: tuple[Push, ...]
    deployments: tuple[Deployment, ...]
    incidents: tuple[Incident, ...]

    @property
    def commits(self) -> list[Commit]:
        return [c for p in self.pushes for c in p.commits]

    def describe(self) -> str:
        failed = sum(1 for d in self.deployments if not d.successful)
        return (
            f"{len(self.deployments)} deployments ({len(self.deployments) - failed} successful, {failed} failed), "
            f"{len(self.commits)} commits in {len(self.pushes)} pushes, {len(self.incidents)} incidents; "
            f"{len(self.shape.services)} services, {self.shape.weeks} weeks from {self.first_day.date().isoformat()}, "
            f"seed {self.seed}"
        )


@dataclass
class _Slot:
    at: datetime
    kind: str
    deployments: list[Deployment] = field(default_factory=list)
    shipped: list[Commit] = field(default_factory=list)  # by the slot's successful deployment (METRICS §5)


@dataclass
class _Service:
    name: str
    repository: str
    slots: list[_Slot]


def _sha(seed: int, service: str, number: int) -> str:
    return hashlib.sha1(f"fourkeys:{seed}:{service}:{number}".encode(), usedforsecurity=False).hexdigest()


def _kinds(rng: random.Random, count: int, shape: Shape, index: int) -> list[str]:
    """The kind of each slot: slot 0 is plain (a stream's first deployment ships only its own commit);
    the rolled-back slot is plain and not last; a skewed slot follows a plain or failed one (so that it
    ships its one commit only); a non-head slot never precedes a skewed one."""
    kinds = ["normal"] * count

    def pick(candidates: list[int], what: str) -> int:
        if not candidates:
            raise ValueError(f"too few deployment slots ({count}) for the shape's {what}: raise weeks")
        return rng.choice(candidates)

    if shape.rollback and index == 0:
        kinds[pick(list(range(2, count - 1)), "rollback")] = "rolled_back"
    for _ in range(shape.share(shape.skewed, index)):
        kinds[pick([i for i in range(2, count) if kinds[i] == kinds[i - 1] == "normal"], "skewed slots")] = "skewed"
    for _ in range(shape.share(shape.failed, index)):
        kinds[pick([i for i in range(1, count) if kinds[i] == "normal"], "failed slots")] = "failed"
    for _ in range(shape.share(shape.non_head, index)):
        candidates = [
            i for i in range(1, count) if kinds[i] == "normal" and (i + 1 >= count or kinds[i + 1] != "skewed")
        ]
        kinds[pick(candidates, "non-head slots")] = "non_head"
    return kinds


def _slot_times(rng: random.Random, count: int, weeks: int, start: datetime) -> list[datetime]:
    """``count`` instants on working days, at most one per half day (09:00–12:30, 13:30–17:30 UTC), so
    that a slot's retry or rollback (within 55 minutes) ends before the next slot."""
    halves = [
        (start + timedelta(days=7 * week + day, hours=hour), length)
        for week in range(weeks)
        for day in range(5)
        for hour, length in ((9, 3.5), (13.5, 4.0))
    ]
    if count > len(halves):
        raise ValueError(f"{count} deployment slots do not fit {weeks} weeks")
    chosen = sorted(rng.sample(halves, count))
    return [at + timedelta(seconds=rng.randint(0, int(length * 3600) - 1)) for at, length in chosen]


def _service(seed: int, index: int, name: str, shape: Shape, start: datetime) -> tuple[_Service, list[Push]]:
    rng = random.Random(f"fourkeys:{seed}:{name}")  # noqa: S311 (test data: reproducible, not secret)
    repository = f"acme/{name}"
    count = max(4, shape.share(round(shape.weeks * shape.slots_per_week), index))
    slots = [
        _Slot(at, kind)
        for at, kind in zip(
            _slot_times(rng, count, shape.weeks, start),
            _kinds(rng, count, shape, index),
            strict=True,
        )
    ]
    pushes: list[Push] = []
    branch: list[Commit] = []  # branch order
    position: dict[str, int] = {}
    shipped_up_to: int | None = None  # the stream's mark: the highest position a success deployed
    previous_success: Deployment | None = None
    previous_end = start - timedelta(days=1)
    numbers = iter(range(1, 10**6))

    def commit(at: datetime) -> Commit:
        number = next(numbers)
        return Commit(repository, _sha(seed, name, number), at, f"{name}: change {number}")

    for k, slot in enumerate(slots):
        deploy_at = slot.at
        sizes = (
            [1]
            if slot.kind == "skewed"
            else [rng.choice((1, 2, 2, 3, 3, 4)) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
        )
        if slot.kind == "non_head":
            sizes[-1] = max(2, sizes[-1])
        window = int((deploy_at - previous_end).total_seconds()) - 600
        pushed = sorted(previous_end + timedelta(seconds=300 + rng.randint(0, window)) for _ in sizes)
        for size, pushed_at in zip(sizes, pushed, strict=True):
            if slot.kind == "skewed":  # the clock of the committer's machine is ahead
                stamps = [deploy_at + timedelta(seconds=rng.randint(180, 2400))]
            else:
                stamps, at = [], pushed_at
                for _ in range(size):
                    at -= timedelta(seconds=rng.randint(120, 5400))
                    stamps.append(at)
                stamps.reverse()
            push = Push(repository, pushed_at, tuple(commit(at) for at in stamps))
            pushes.append(push)
            for c in push.commits:
                position[c.sha] = len(branch)
                branch.append(c)
        last = pushes[-1]
        target = last.commits[-2] if slot.kind == "non_head" else last.head
        started = deploy_at - timedelta(seconds=rng.randint(120, 900))
        key = f"fk-{shape.name}-{seed}-{name}-{k:03d}"
        if slot.kind == "failed":
            slot.deployments.append(
                Deployment(key + "f", name, repository, target.sha, "Failed", started, deploy_at, False, "failed")
            )
            retry_at = deploy_at + timedelta(seconds=rng.randint(900, 2700))
            success = Deployment(
                key, name, repository, target.sha, "Success", retry_at - (deploy_at - started), retry_at, False, "retry"
            )
        else:
            success = Deployment(key, name, repository, target.sha, "Success", started, deploy_at, False, slot.kind)
        slot.deployments.append(success)
        # What the success newly ships (METRICS §5 rule 3): its own commit when it is the stream's
        # first, else the branch after the stream's mark up to its sha.
        deployed = position[success.sha]
        if shipped_up_to is None:
            slot.shipped = [branch[deployed]]
        elif deployed > shipped_up_to:
            slot.shipped = branch[shipped_up_to + 1 : deployed + 1]
        shipped_up_to = deployed if shipped_up_to is None else max(shipped_up_to, deployed)
        if slot.kind == "rolled_back":
            if previous_success is None:
                raise ValueError("a rollback needs an earlier deployment")
            back_at = deploy_at + timedelta(seconds=rng.randint(1800, 3000))
            slot.deployments.append(
                Deployment(
                    key + "r",
                    name,
                    repository,
                    previous_success.sha,
                    "Success",
                    back_at - timedelta(seconds=rng.randint(60, 300)),
                    back_at,
                    True,
                    "rollback",
                )
            )
        previous_success = slot.deployments[-1]
        previous_end = slot.deployments[-1].finished_at
    return _Service(name, repository, slots), pushes


def _incidents(seed: int, services: Sequence[_Service], shape: Shape) -> list[Incident]:
    rng = random.Random(f"fourkeys:{seed}:incidents")  # noqa: S311
    drafts: list[tuple[datetime, datetime, _Service, Commit, str]] = []
    used: set[str] = set()

    def candidates(service: _Service, *, latent: bool) -> list[int]:
        last = len(service.slots) - (1 if latent else 0)
        return [
            i
            for i in range(1, last)
            if service.slots[i].kind in ("normal", "non_head")
            and service.slots[i].shipped
            and service.slots[i].deployments[-1].key not in used
        ]

    for service in services:
        for slot in service.slots:
            if slot.kind == "rolled_back" and len(drafts) < shape.incidents:
                rolled, back = slot.deployments[-2], slot.deployments[-1]
                created = rolled.finished_at + timedelta(seconds=rng.randint(300, 1200))
                closed = back.finished_at + timedelta(seconds=rng.randint(300, 2400))
                drafts.append((created, closed, service, rng.choice(slot.shipped), "rollback"))
                used.add(rolled.key)
                if len(drafts) < shape.incidents:  # a second incident caused by the same deployment
                    created = rolled.finished_at + timedelta(seconds=rng.randint(300, 1500))
                    closed = back.finished_at + timedelta(seconds=rng.randint(300, 3600))
                    drafts.append((created, closed, service, rng.choice(slot.shipped), "double"))
    if len(drafts) < shape.incidents:  # found after later deployments: the root cause is not the latest one
        service = services[1 % len(services)]
        i = rng.choice(candidates(service, latent=True))
        slot, later = service.slots[i], service.slots[i + 1]
        created = later.deployments[-1].finished_at + timedelta(seconds=rng.randint(1800, 10800))
        drafts.append(
            (
                created,
                created + timedelta(seconds=rng.randint(1800, 21600)),
                service,
                rng.choice(slot.shipped),
                "latent",
            )
        )
        used.add(slot.deployments[-1].key)
    turn = 0
    while len(drafts) < shape.incidents:
        service = services[turn % len(services)]
        turn += 1
        options = candidates(service, latent=False)
        if not options:
            if turn > 2 * len(services) * shape.incidents:
                raise ValueError("too few deployments for the shape's incidents")
            continue
        slot = service.slots[rng.choice(options)]
        created = slot.deployments[-1].finished_at + timedelta(seconds=rng.randint(600, 4 * 3600))
        closed = created + timedelta(seconds=rng.randint(1200, 30 * 3600))
        drafts.append((created, closed, service, rng.choice(slot.shipped), "normal"))
        used.add(slot.deployments[-1].key)
    drafts.sort(key=lambda d: d[0])
    return [
        Incident(f"fk-{shape.name}-{seed}-incident-{n}", n, s.name, s.repository, cause.sha, created, closed, kind)
        for n, (created, closed, s, cause, kind) in enumerate(drafts, start=1)
    ]


def generate(shape: Shape = DEFAULT, seed: int = DEFAULT_SEED, start: datetime = DEFAULT_START) -> History:
    """The deterministic history of ``shape`` and ``seed`` (the same arguments give the same history)."""
    start = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    services: list[_Service] = []
    pushes: list[Push] = []
    for index, name in enumerate(shape.services):
        service, service_pushes = _service(seed, index, name, shape, start)
        services.append(service)
        pushes.extend(service_pushes)
    deployments = sorted(
        (d for s in services for slot in s.slots for d in slot.deployments), key=lambda d: (d.finished_at, d.key)
    )
    incidents = _incidents(seed, services, shape)
    end = start + timedelta(days=7 * shape.weeks + 7)  # every incident closes within the range
    return History(
        seed=seed,
        shape=shape,
        first_day=start,
        start=start - timedelta(days=1),
        end=end,
        pushes=tuple(sorted(pushes, key=lambda p: p.pushed_at)),
        deployments=tuple(deployments),
        incidents=tuple(incidents),
    )


# ---------------------------------------------------------------------------------------------
# Four Keys in DuckDB


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _naive(at: datetime) -> datetime:
    """DuckDB TIMESTAMP (UTC, no zone), as BigQuery's TIMESTAMP."""
    return at.astimezone(UTC).replace(tzinfo=None)


def github_events(history: History) -> list[tuple[str, str, str, datetime, str]]:
    """``events_raw`` rows (source, event_type, id, time_created, metadata) as Four Keys' GitHub parser
    stores them (bq-workers/github-parser/main.py): a push's id and time are its head commit's, a
    deployment status's its own; an incident is an issue labelled ``Incident`` whose body says
    ``root cause: <sha>`` (the convention queries/incidents.sql reads)."""
    rows: list[tuple[str, str, str, datetime, str]] = []
    for push in history.pushes:
        metadata = {
            "ref": f"refs/heads/{BRANCH}",
            "repository": {"full_name": push.repository, "name": push.repository.split("/")[-1]},
            "head_commit": {"id": push.head.sha, "timestamp": iso(push.head.timestamp)},
            "commits": [{"id": c.sha, "timestamp": iso(c.timestamp), "message": c.message} for c in push.commits],
        }
        rows.append(("github", "push", push.head.sha, push.head.timestamp, json.dumps(metadata)))
    for d in history.deployments:
        metadata = {
            "deployment": {"sha": d.sha, "environment": ENVIRONMENT},
            "deployment_status": {"state": "success" if d.successful else "failure", "updated_at": iso(d.finished_at)},
            "repository": {"full_name": d.repository, "name": d.project},
        }
        rows.append(("github", "deployment_status", d.key, d.finished_at, json.dumps(metadata)))
    for i in history.incidents:
        metadata = {
            "action": "closed",
            "issue": {
                "number": i.number,
                "title": f"{i.project} is failing",
                "body": f"Errors after the deployment.\nroot cause: {i.root_cause}",
                "labels": [{"name": "Incident"}],
                "created_at": iso(i.created_at),
                "closed_at": iso(i.closed_at),
                "updated_at": iso(i.closed_at),
            },
            "repository": {"full_name": i.repository, "name": i.project},
        }
        rows.append(("github", "issues", f"{i.project}/{i.number}", i.closed_at, json.dumps(metadata)))
    return rows


# queries/changes.sql: one row per commit of a push event, its time truncated to the second.
_CHANGES_SQL = """
CREATE TABLE fk_changes AS
SELECT source, event_type, change_id, time_created
FROM (
    SELECT source, event_type,
           json_extract_string(c, '$.id') AS change_id,
           date_trunc('second', CAST(json_extract_string(c, '$.timestamp') AS TIMESTAMP)) AS time_created
    FROM (SELECT source, event_type, unnest(CAST(json_extract(metadata, '$.commits') AS JSON[])) AS c
          FROM events_raw WHERE event_type = 'push')
)
GROUP BY source, event_type, change_id, time_created
"""

# queries/deployments.sql (its GitHub branch): a successful deployment status whose sha is the id of an
# event (a push's id is its head commit) becomes a deployment carrying that push's commits.
_DEPLOYMENTS_SQL = """
CREATE TABLE fk_deployments AS
WITH deploys AS (
    SELECT source, id AS deploy_id, time_created,
           json_extract_string(metadata, '$.deployment.sha') AS main_commit,
           coalesce(CAST(json_extract(metadata, '$.deployment.additional_sha') AS VARCHAR[]), []) AS additional_commits
    FROM events_raw
    WHERE source LIKE 'github%' AND event_type = 'deployment_status'
      AND json_extract_string(metadata, '$.deployment_status.state') = 'success'
),
deployment_changes AS (
    SELECT deploys.source, deploy_id, deploys.time_created, main_commit,
           unnest(CAST(json_extract(changes_raw.metadata, '$.commits') AS JSON[])) AS array_commit
    FROM deploys
    JOIN events_raw AS changes_raw
      ON changes_raw.id = deploys.main_commit OR list_contains(deploys.additional_commits, changes_raw.id)
)
SELECT source, deploy_id, time_created, main_commit,
       list(DISTINCT json_extract_string(array_commit, '$.id')) AS changes
FROM deployment_changes
GROUP BY source, deploy_id, time_created, main_commit
"""

# queries/incidents.sql over a deployments relation: an issue with the Incident label; it starts at the
# earlier of its creation and the root-cause deployment (every deployment carrying the root cause), ends
# at its last close; ``changes`` repeats the root cause once per such deployment (ARRAY_AGG of the join).
# BigQuery's REGEXP_EXTRACT answers NULL without a match, DuckDB's '': hence the CASE.
_INCIDENTS_SQL = """
CREATE OR REPLACE TEMP VIEW v_incidents AS
WITH issue AS (
    SELECT source,
           json_extract_string(metadata, '$.issue.number') AS incident_id,
           CAST(json_extract_string(metadata, '$.issue.created_at') AS TIMESTAMP) AS time_created,
           CAST(json_extract_string(metadata, '$.issue.closed_at') AS TIMESTAMP) AS time_resolved,
           CASE WHEN regexp_matches(metadata, 'root cause: ')
                THEN regexp_extract(metadata, 'root cause: ([[:alnum:]]*)', 1) END AS root_cause,
           regexp_matches(CAST(json_extract(metadata, '$.issue.labels') AS VARCHAR), '"name":"Incident"') AS bug
    FROM events_raw
    WHERE event_type LIKE 'issue%' OR event_type LIKE 'incident%'
),
root AS (SELECT time_created, unnest(changes) AS change FROM v_deployments)
SELECT issue.source, incident_id,
       min(CASE WHEN root.time_created < issue.time_created THEN root.time_created ELSE issue.time_created END)
           AS time_created,
       min(issue.time_created) AS issue_created,
       max(time_resolved) AS time_resolved,
       coalesce(list(root_cause) FILTER (WHERE root_cause IS NOT NULL), []) AS changes
FROM issue LEFT JOIN root ON root.change = issue.root_cause
GROUP BY issue.source, incident_id
HAVING bool_or(bug)
"""

# What each successful deployment newly shipped to its stream (METRICS §5 rule 3, for this history: one
# branch per repository, no pull requests, gaps far under 60 days and 5,000 commits): its own commit for
# a stream's first, else the commits after the highest position an earlier success deployed, up to its sha.
_SHIPPED_SQL = """
CREATE TABLE shipped AS
WITH success AS (
    SELECT d.deploy_id, d.repository, c.position,
           max(c.position) OVER (PARTITION BY d.project, d.environment
                                 ORDER BY d.finished_at, d.started_at, d.deploy_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS mark
    FROM gen_deployments d JOIN gen_commits c ON c.repository = d.repository AND c.sha = d.sha
    WHERE d.state = 'Success'
)
SELECT s.deploy_id, c.sha AS change_id
FROM success s JOIN gen_commits c ON c.repository = s.repository
WHERE (s.mark IS NULL AND c.position = s.position) OR (c.position > s.mark AND c.position <= s.position)
"""

# METRICS §2 rule 2 over each stream's completed deployments: R redeploys the sha of an earlier E and
# differs from the deployment just before it: R is a rollback and the one after E a change failure; a
# deployment sent with ``rollback: true`` is a rollback and marks the one just before it.
_ROLLBACKS_SQL = """
CREATE TABLE rollbacks AS
WITH ordered AS (
    SELECT deploy_id, project, environment, sha, rollback,
           row_number() OVER w AS n, lag(sha) OVER w AS previous_sha, lag(deploy_id) OVER w AS previous_id
    FROM gen_deployments WHERE state IN ('Success', 'Failed', 'TimedOut')
    WINDOW w AS (PARTITION BY project, environment ORDER BY finished_at, started_at, deploy_id)
),
by_sha AS (
    SELECT r.deploy_id, max(e.n) AS earlier
    FROM ordered r JOIN ordered e
      ON e.project = r.project AND e.environment = r.environment AND e.n < r.n AND e.sha = r.sha
    WHERE r.sha <> r.previous_sha
    GROUP BY r.deploy_id
)
SELECT r.deploy_id AS rollback_id, marked.deploy_id AS marked_id
FROM by_sha b JOIN ordered r ON r.deploy_id = b.deploy_id
JOIN ordered marked ON marked.project = r.project AND marked.environment = r.environment AND marked.n = b.earlier + 1
UNION
SELECT deploy_id, previous_id FROM ordered WHERE rollback
"""


class FourKeys:
    """Four Keys' tables and dashboard figures over a history, in DuckDB (in memory).

    ``figures(neutralise)`` evaluates the four keys panels of dashboard/fourkeys_dashboard.json with
    the named differences of ``DIFFERENCES`` taken away (none: Four Keys as it is; all: this service's
    definitions, METRICS §2–§5); keys as ``ServiceFigures``.
    """

    def __init__(self, history: History) -> None:
        self.history = history
        self.start = _naive(history.start)
        self.end = _naive(history.end)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE events_raw"
            " (source VARCHAR, event_type VARCHAR, id VARCHAR, time_created TIMESTAMP, metadata VARCHAR)"
        )
        con.executemany(
            "INSERT INTO events_raw VALUES (?, ?, ?, ?, ?)",
            [(s, e, i, _naive(t), m) for s, e, i, t, m in github_events(history)],
        )
        con.execute("CREATE TABLE gen_commits (repository VARCHAR, sha VARCHAR, ts TIMESTAMP, position INTEGER)")
        positions: dict[str, int] = {}
        rows = []
        for push in history.pushes:
            for c in push.commits:
                positions[c.repository] = positions.get(c.repository, -1) + 1
                rows.append((c.repository, c.sha, _naive(c.timestamp), positions[c.repository]))
        con.executemany("INSERT INTO gen_commits VALUES (?, ?, ?, ?)", rows)
        con.execute(
            "CREATE TABLE gen_deployments (deploy_id VARCHAR, project VARCHAR, environment VARCHAR, repository VARCHAR,"
            " sha VARCHAR, state VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, rollback BOOLEAN)"
        )
        con.executemany(
            "INSERT INTO gen_deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.key,
                    d.project,
                    ENVIRONMENT,
                    d.repository,
                    d.sha,
                    d.state,
                    _naive(d.started_at),
                    _naive(d.finished_at),
                    d.rollback,
                )
                for d in history.deployments
            ],
        )
        con.execute(
            "CREATE TABLE gen_incidents (incident_id VARCHAR, project VARCHAR, environment VARCHAR, root_cause VARCHAR,"
            " created_at TIMESTAMP, closed_at TIMESTAMP)"
        )
        con.executemany(
            "INSERT INTO gen_incidents VALUES (?, ?, ?, ?, ?, ?)",
            [
                (str(i.number), i.project, ENVIRONMENT, i.root_cause, _naive(i.created_at), _naive(i.closed_at))
                for i in history.incidents
            ],
        )
        for sql in (_CHANGES_SQL, _DEPLOYMENTS_SQL, _SHIPPED_SQL, _ROLLBACKS_SQL):
            con.execute(sql)
        con.execute(
            """CREATE TABLE all_deployments AS
               SELECT d.deploy_id, d.finished_at AS time_created, d.sha AS main_commit,
                      coalesce(list(s.change_id) FILTER (WHERE s.change_id IS NOT NULL), []) AS changes
               FROM gen_deployments d LEFT JOIN shipped s ON s.deploy_id = d.deploy_id
               WHERE d.state = 'Success'
               GROUP BY d.deploy_id, d.finished_at, d.sha"""
        )
        self.con = con

    # -- relations ------------------------------------------------------------------------------

    def _use(self, neutralise: frozenset[str]) -> None:
        source = "all_deployments" if HEAD_SHA_JOIN in neutralise else "fk_deployments"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW v_deployments AS SELECT * FROM {source}")  # noqa: S608
        self.con.execute(_INCIDENTS_SQL)

    def _scalar(self, sql: str, *params: object) -> Any:
        row = self.con.execute(sql, list(params)).fetchone()
        return None if row is None else row[0]

    def _ids(self, sql: str, *params: object) -> list[str]:
        return [str(r[0]) for r in self.con.execute(sql, list(params)).fetchall()]

    # -- figures --------------------------------------------------------------------------------

    def figures(self, neutralise: Iterable[str] = ()) -> dict[str, float | None]:
        """The figures with the given documented differences neutralised (names of ``DIFFERENCES``)."""
        chosen = frozenset(neutralise)
        unknown = chosen - ALL_DIFFERENCES
        if unknown:
            raise ValueError(f"unknown differences: {sorted(unknown)}")
        self._use(chosen)
        in_range = "time_created >= ? AND time_created < ?"
        out: dict[str, float | None] = {}
        # Deployment frequency panel: COUNT(DISTINCT deploy_id) per day.
        count = f"SELECT count(DISTINCT deploy_id) FROM v_deployments WHERE {in_range}"  # noqa: S608
        out["deployments"] = float(self._scalar(count, self.start, self.end))
        days = f"SELECT count(DISTINCT CAST(time_created AS DATE)) FROM v_deployments WHERE {in_range}"  # noqa: S608
        out["deployment_days"] = float(self._scalar(days, self.start, self.end))
        out["lead_time_seconds"] = self._lead_time(chosen)
        out.update(self._change_failure_rate(chosen))
        out["time_to_restore_seconds"] = self._time_to_restore(chosen)
        incidents = f"SELECT count(*) FROM v_incidents WHERE {in_range}"  # noqa: S608
        out["incidents"] = float(self._scalar(incidents, self.start, self.end))
        return out

    def _lead_time(self, chosen: frozenset[str]) -> float | None:
        """Lead time panels: TIMESTAMP_DIFF(deployment, commit, MINUTE) per (deployment, commit) row, rows of
        0 or less left out ("Ignore automated pushes"), PERCENTILE_CONT(…, 0.5); IFNULL(…, 0)."""
        minutes = "seconds / 60.0" if WHOLE_UNITS in chosen else "trunc(seconds / 60.0)"
        kept = "minutes" if NON_POSITIVE_DROPPED in chosen else "CASE WHEN minutes > 0 THEN minutes END"
        if MEDIAN_UNIT in chosen:  # one value per deployment: from its earliest commit
            values = "SELECT max(minutes) AS minutes FROM kept GROUP BY deploy_id"
        else:
            values = "SELECT minutes FROM kept"
        median = self._scalar(
            f"""WITH rows AS (
                    SELECT d.deploy_id,
                           CAST(epoch(d.time_created) - epoch(c.time_created) AS DOUBLE) AS seconds
                    FROM (SELECT deploy_id, time_created, unnest(changes) AS change FROM v_deployments) d
                    LEFT JOIN fk_changes c ON d.change = c.change_id
                    WHERE d.time_created >= ? AND d.time_created < ?),
                valued AS (SELECT deploy_id, CAST({minutes} AS DOUBLE) AS minutes FROM rows),
                kept AS (SELECT deploy_id, {kept} AS minutes FROM valued)
                SELECT quantile_cont(minutes, 0.5) FROM ({values})""",  # noqa: S608
            self.start,
            self.end,
        )
        return float(median if median is not None else 0.0) * 60.0

    def _change_failure_rate(self, chosen: frozenset[str]) -> dict[str, float | None]:
        """Change failure rate panel: SUM(an incident joined to the row) / COUNT(DISTINCT deploy_id) over the
        (deployment, change) rows, each left-joined to the incidents naming the change; 0 without changes."""
        rows = self.con.execute(
            """SELECT d.deploy_id, c.change_id, i.incident_id
               FROM (SELECT deploy_id, time_created, unnest(changes) AS change FROM v_deployments) d
               LEFT JOIN fk_changes c ON d.change = c.change_id
               LEFT JOIN (SELECT incident_id, unnest(changes) AS change, time_resolved FROM v_incidents) i
                 ON i.change = d.change
               WHERE d.time_created >= ? AND d.time_created < ?""",
            [self.start, self.end],
        ).fetchall()
        any_change = any(change is not None for _, change, _ in rows)
        rollbacks = set(self._ids("SELECT rollback_id FROM rollbacks"))
        if HEAD_SHA_JOIN in chosen:
            deployments = set(
                self._ids(
                    "SELECT deploy_id FROM v_deployments WHERE time_created >= ? AND time_created < ?",
                    self.start,
                    self.end,
                )
            )
            any_change = True
        else:
            deployments = {str(d) for d, _, _ in rows}
        if ROOT_CAUSE_LINK in chosen:
            # The first successful deployment, in its stream's order, of the incident's project and
            # environment whose changes hold the root cause; each charged deployment once.
            linked = self._ids(
                """SELECT DISTINCT first(d.deploy_id ORDER BY g.finished_at, g.started_at, g.deploy_id)
                   FROM gen_incidents i
                   JOIN (SELECT deploy_id, unnest(changes) AS change FROM v_deployments) d ON d.change = i.root_cause
                   JOIN gen_deployments g ON g.deploy_id = d.deploy_id
                    AND g.project = i.project AND g.environment = i.environment
                   GROUP BY i.incident_id"""
            )
            linked = [d for d in linked if d in deployments]
        else:
            linked = [str(d) for d, _, incident in rows if incident is not None]
        if FAILED_AND_ROLLBACKS in chosen:
            failed = set(
                self._ids(
                    "SELECT deploy_id FROM gen_deployments WHERE state IN ('Failed', 'TimedOut')"
                    " AND finished_at >= ? AND finished_at < ?",
                    self.start,
                    self.end,
                )
            )
            rolled_back = set(self._ids("SELECT marked_id FROM rollbacks WHERE marked_id IS NOT NULL"))
            linked = [d for d in linked if d not in rollbacks]
            extra = ((failed | (rolled_back & (deployments | failed))) - rollbacks) - set(linked)
            failures = len(linked) + len(extra)
            counted = len(deployments - rollbacks) + len(failed)
        else:
            failures, counted = len(linked), len(deployments)
        rate = failures / counted if any_change and counted else 0.0
        return {
            "change_failures": float(failures),
            "change_failure_deployments": float(counted),
            "change_failure_rate": round(rate, RATE_DECIMALS),
        }

    def _time_to_restore(self, chosen: frozenset[str]) -> float | None:
        """Time to restore panels: PERCENTILE_CONT(TIMESTAMP_DIFF(time_resolved, time_created, HOUR), 0.5)
        over the incidents (an open one has no value)."""
        started = "issue_created" if RESTORE_START in chosen else "time_created"
        hours = "seconds / 3600.0" if WHOLE_UNITS in chosen else "trunc(seconds / 3600.0)"
        median = self._scalar(
            f"""SELECT quantile_cont(CAST({hours} AS DOUBLE), 0.5)
                FROM (SELECT CAST(epoch(time_resolved) - epoch({started}) AS DOUBLE) AS seconds
                      FROM v_incidents WHERE time_created >= ? AND time_created < ?)""",  # noqa: S608
            self.start,
            self.end,
        )
        return None if median is None else float(median) * 3600.0

    # -- the dashboard's buckets ----------------------------------------------------------------

    def buckets(self) -> dict[str, str]:
        """The dashboard's headline buckets (Four Keys' own scale, not DORA's tiers), over the range."""
        figures = self.figures()  # Four Keys as it is (and its relations in use for the frequency panel)
        lead_minutes = (figures["lead_time_seconds"] or 0.0) / 60.0
        restore = figures["time_to_restore_seconds"]
        return {
            "deployment_frequency": self._frequency_bucket(),
            "lead_time": _duration_bucket(lead_minutes / 60.0),
            "change_failure_rate": "0-15%"
            if (figures["change_failure_rate"] or 0.0) <= 0.15
            else ("16-45%" if (figures["change_failure_rate"] or 0.0) < 0.46 else "46-60%"),
            "time_to_restore": _duration_bucket(restore / 3600.0) if restore is not None else "none",
        }

    def _frequency_bucket(self) -> str:
        """Deployment frequency panel: over the days of the range after the first event's day, weeks
        starting Sunday; Daily when the median of deployment days per week is at least 3, Weekly when
        most weeks have one, Monthly when the median of deployed weeks per month (by week start) is at
        least 1, else Yearly."""
        row = self.con.execute(
            """WITH days AS (
                   SELECT CAST(day AS DATE) AS day
                   FROM generate_series(CAST(? AS DATE), CAST(? AS DATE) - INTERVAL 1 DAY, INTERVAL 1 DAY) AS t(day)
                   WHERE CAST(day AS DATE) > (SELECT CAST(min(time_created) AS DATE) FROM events_raw)),
               deployed AS (SELECT CAST(time_created AS DATE) AS day, deploy_id FROM v_deployments),
               weeks AS (
                   SELECT days.day - CAST(dayofweek(days.day) AS INTEGER) AS week,
                          max(CASE WHEN deployed.day IS NOT NULL THEN 1 ELSE 0 END) AS week_deployed,
                          count(DISTINCT deployed.day) AS days_deployed
                   FROM days LEFT JOIN deployed ON deployed.day = days.day
                   GROUP BY 1),
               monthly AS (
                   SELECT *, sum(week_deployed) OVER (PARTITION BY date_trunc('month', week)) AS monthly_deploys
                   FROM weeks)
               SELECT quantile_cont(CAST(days_deployed AS DOUBLE), 0.5) >= 3,
                      quantile_cont(CAST(week_deployed AS DOUBLE), 0.5) >= 1,
                      quantile_cont(CAST(monthly_deploys AS DOUBLE), 0.5) >= 1
               FROM monthly""",
            [self.start, self.end],
        ).fetchone()
        if row is None:
            return "Yearly"
        daily, weekly, monthly = row
        return "Daily" if daily else "Weekly" if weekly else "Monthly" if monthly else "Yearly"

    # -- per deployment (diagnostics) -----------------------------------------------------------

    def expected_per_deployment(self) -> dict[str, tuple[float | None, bool]]:
        """With every difference neutralised: per completed deployment, its lead time in seconds (from its
        earliest newly shipped commit) and whether it is a change failure (rules 1, 2 and 4)."""
        self._use(ALL_DIFFERENCES)
        lead = {
            str(d): float(s)
            for d, s in self.con.execute(
                """SELECT d.deploy_id, max(epoch(d.time_created) - epoch(c.time_created))
                   FROM (SELECT deploy_id, time_created, unnest(changes) AS change FROM v_deployments) d
                   JOIN fk_changes c ON d.change = c.change_id GROUP BY d.deploy_id"""
            ).fetchall()
        }
        failures = set(self._ids("SELECT deploy_id FROM gen_deployments WHERE state IN ('Failed', 'TimedOut')"))
        failures |= set(self._ids("SELECT marked_id FROM rollbacks WHERE marked_id IS NOT NULL"))
        failures |= set(
            self._ids(
                """SELECT first(d.deploy_id ORDER BY g.finished_at, g.started_at, g.deploy_id)
                   FROM gen_incidents i
                   JOIN (SELECT deploy_id, unnest(changes) AS change FROM v_deployments) d ON d.change = i.root_cause
                   JOIN gen_deployments g ON g.deploy_id = d.deploy_id
                    AND g.project = i.project AND g.environment = i.environment
                   GROUP BY i.incident_id"""
            )
        )
        return {d.key: (lead.get(d.key), d.key in failures) for d in self.history.deployments}


def _duration_bucket(hours: float) -> str:
    if hours < 24:
        return "One day"
    if hours < 168:
        return "One week"
    if hours < 730:
        return "One month"
    if hours < 730 * 6:
        return "Six months"
    return "One year"


# ---------------------------------------------------------------------------------------------
# The service, over HTTP


class ApiError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: {status} {body[:500]}")
        self.status = status


@dataclass
class Client:
    url: str
    key: str
    space: str
    timeout: float = 60.0

    def __post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"--url must be http(s)://…, not {self.url!r}")
        self.url = self.url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Any:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked above)
        request.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ApiError(method, url, error.code, error.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def api(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Any:
        return self.call(method, f"/api/{self.space}{path}", body, query)

    def pages(self, path: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self.api("GET", path, query={**query, "limit": "500", **({"cursor": cursor} if cursor else {})})
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def new_space(client: Client, name: str) -> Client:
    """A space of its own (admin key) and a key for it: the history never mixes with other data."""
    space = client.call("POST", "/api/spaces", {"name": name})
    key = client.call(
        "POST",
        f"/api/{space['id']}/apikeys",
        {"name": "fourkeys-comparison", "scopes": ["deployments:write", "deployments:read", "changes:write"]},
    )
    return Client(client.url, key["key"], space["id"], client.timeout)


def send(client: Client, history: History) -> dict[str, str]:
    """The history through the native API, in the order a real pipeline sends it (pushes, then each
    deployment as it finishes, then the incidents). Answers generated key -> service deployment id.
    Client ids make a second run with the same seed idempotent."""
    for push in history.pushes:
        commits = [
            {
                "repository": c.repository,
                "branch": BRANCH,
                "sha": c.sha,
                "timestamp": iso(c.timestamp),
                "message": c.message,
                "default_branch": BRANCH,
            }
            for c in push.commits
        ]
        client.api("POST", "/changes", {"commits": commits})
    ids: dict[str, str] = {}
    for d in history.deployments:
        body = {
            "id": d.key,
            "project": d.project,
            "environment": ENVIRONMENT,
            "started_at": iso(d.started_at),
            "finished_at": iso(d.finished_at),
            "state": d.state,
            "rollback": d.rollback,
            "commit_sha": d.sha,
            "repository": d.repository,
        }
        ids[d.key] = client.api("POST", "/deployments", body)["id"]
    for i in history.incidents:
        client.api(
            "POST",
            "/failures",
            {
                "id": i.key,
                "project": i.project,
                "environment": ENVIRONMENT,
                "name": f"{i.project} is failing",
                "started_at": iso(i.created_at),
                "finished_at": iso(i.closed_at),
                "commit_sha": i.root_cause,
                "repository": i.repository,
            },
        )
    return ids


def recompute(client: Client, history: History, wait_seconds: float) -> None:
    """Run the recompute now on the local runtime (``POST /_local/queues/drain`` and
    ``/_local/schedule/run``); on a deployed service, wait for the scheduled one (every 5 minutes) until
    the summary counts every completed deployment of the history."""
    expected = _completed(history)
    deadline = time.monotonic() + wait_seconds
    local = True
    while True:
        if local:
            try:
                client.call("POST", "/_local/queues/drain", {})
                client.call("POST", "/_local/schedule/run", {})
            except ApiError as error:
                if error.status != 404:
                    raise
                local = False
                sys.stderr.write("not the local runtime: waiting for the scheduled recompute\n")
        counted = summary(client, history)["deployments"]
        if counted > expected:
            raise RuntimeError(
                f"the space holds {counted} deployments in {iso(history.start)}..{iso(history.end)}, the history "
                f"{expected}: other data would change the figures; use a fresh server (make serve) or --new-space"
            )
        if counted == expected:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the summary did not count the history's {expected} deployments in {wait_seconds:g} s")
        time.sleep(1 if local else 15)


def _completed(history: History) -> int:
    return sum(1 for d in history.deployments if d.state in ("Success", "Failed", "TimedOut"))


def summary(client: Client, history: History) -> dict[str, Any]:
    result: dict[str, Any] = client.api("GET", "/summary", query={"from": iso(history.start), "to": iso(history.end)})
    return result


def incident_restore(body: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The summary's incident time to restore (METRICS §3 TimeToRestore): its field name and value."""
    for name in ("time_to_restore", "incident_time_to_restore"):
        value = body.get(name)
        if isinstance(value, dict):
            return name, value
    return None, None


def service_figures(body: Mapping[str, Any]) -> dict[str, float | None]:
    """The summary's figures under ``FourKeys.figures``'s keys."""
    frequency, lead, cfr = body["deployment_frequency"], body["lead_time"], body["change_failure_rate"]
    _, restore = incident_restore(body)

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return {
        "deployments": number(frequency["successful_deployments"]),
        "deployment_days": number(frequency["deployment_days"]),
        "lead_time_seconds": number(lead["median_seconds"]),
        "change_failures": number(cfr["change_failures"]),
        "change_failure_deployments": number(cfr["deployments"]),
        "change_failure_rate": number(cfr["rate"]),
        "time_to_restore_seconds": number(restore.get("median_seconds")) if restore else None,
        "incidents": number(restore.get("count")) if restore else None,
        "recovery_time_seconds": number(body["recovery_time"]["median_seconds"]),
    }


# ---------------------------------------------------------------------------------------------
# The comparison

# (figure, label, unit, the METRICS §7 row it belongs to)
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("deployments", "Deployments", "count", "Deployments"),
    ("deployment_days", "Deployment days", "count", "Deployments"),
    ("lead_time_seconds", "Lead time, median", "hours", "Lead time"),
    ("change_failures", "Change failures", "count", "Change failure rate"),
    ("change_failure_deployments", "  over deployments", "count", "Change failure rate"),
    ("change_failure_rate", "Change failure rate", "rate", "Change failure rate"),
    ("time_to_restore_seconds", "Time to restore, median", "hours", "Time to restore"),
    ("incidents", "Incidents", "count", "(agree)"),
)


def differences_for(key: str) -> list[Difference]:
    return [d for d in DIFFERENCES.values() if key in d.figures]


def same(key: str, a: float | None, b: float | None) -> bool:
    """Equal within rounding: durations to a millisecond, the rate to the service's 5 places."""
    if a is None or b is None:
        return a is b
    if key == "change_failure_rate":
        return round(a, RATE_DECIMALS) == round(b, RATE_DECIMALS)
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-3)


@dataclass
class Comparison:
    history: History
    summary: dict[str, Any]
    service: dict[str, float | None]
    fourkeys: dict[str, float | None]
    neutralised: dict[str, float | None]
    buckets: dict[str, str]
    mismatches: list[str]
    engine: FourKeys
    restore_field: str | None

    def steps(self) -> list[tuple[str, dict[str, float | None]]]:
        """From Four Keys to this service one documented difference at a time (in ``DIFFERENCES``' order):
        how much of each gap each difference accounts for."""
        done: set[str] = set()
        steps: list[tuple[str, dict[str, float | None]]] = [("Four Keys", self.fourkeys)]
        for name in DIFFERENCES:
            done.add(name)
            steps.append((f"+ {name}", self.engine.figures(done)))
        return steps

    def unexplained(self) -> list[str]:
        """Figures that still differ with every documented difference neutralised."""
        return [
            key
            for key, *_ in ROWS
            if self.service.get(key) is not None and not same(key, self.service[key], self.neutralised[key])
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "history": self.history.describe(),
            "range": {"from": iso(self.history.start), "to": iso(self.history.end)},
            "figures": [
                {
                    "metric": key,
                    "service": self.service.get(key),
                    "fourkeys": self.fourkeys.get(key),
                    "fourkeys_neutralised": self.neutralised.get(key),
                    "differences": [d.name for d in differences_for(key)],
                }
                for key, *_ in ROWS
            ],
            "service_tiers": {
                name: self.summary[name].get("tier")
                for name in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time")
            },
            "fourkeys_buckets": self.buckets,
            "unexplained": self.unexplained(),
            "per_deployment_mismatches": self.mismatches,
        }


def _per_deployment(client: Client, ids: Mapping[str, str], engine: FourKeys) -> list[str]:
    """This service's per-deployment figures (``GET /deployments/{id}``: the list's carry no recompute
    figures) against the neutralised expectation: what to look at when a summary figure is unexplained."""
    problems = []
    for key, (lead, change_failure) in engine.expected_per_deployment().items():
        try:
            found = client.api("GET", f"/deployments/{urllib.parse.quote(ids[key], safe='')}")
        except ApiError as error:
            problems.append(f"{key}: {error}")
            continue
        figures = found.get("figures") or {}
        got_lead = figures.get("lead_time_seconds")
        if found["state"] == "Success" and not same("lead", lead, got_lead):
            problems.append(f"{key}: lead time {got_lead} s, expected {lead} s")
        if bool(figures.get("change_failure")) != change_failure:
            reasons = figures.get("change_failure_reasons")
            problems.append(
                f"{key}: change_failure {figures.get('change_failure')} {reasons}, expected {change_failure}"
            )
    return problems


def compare(client: Client, history: History, *, wait_seconds: float = 600.0) -> Comparison:
    """Send ``history``, recompute, and compare the service's summary with Four Keys' figures."""
    expected = _completed(history)
    before = summary(client, history)["deployments"]
    if before not in (0, expected):  # the same history again is idempotent (client ids)
        raise RuntimeError(
            f"the space already holds {before} deployments in {iso(history.start)}..{iso(history.end)}: they would "
            "change the figures; use a fresh server (make serve) or --new-space"
        )
    ids = send(client, history)
    recompute(client, history, wait_seconds)
    body = summary(client, history)
    engine = FourKeys(history)
    service = service_figures(body)
    field_name, restore = incident_restore(body)
    if restore is None:  # an older service: METRICS §3 TimeToRestore from the stored failure events
        failures = list(client.pages("/failures", {"from": iso(history.start), "to": iso(history.end)}))
        seconds = sorted(
            (datetime.fromisoformat(f["finished_at"]) - datetime.fromisoformat(f["started_at"])).total_seconds()
            for f in failures
            if f.get("finished_at")
        )
        service["incidents"] = float(len(failures))
        service["time_to_restore_seconds"] = _median(seconds)
    comparison = Comparison(
        history=history,
        summary=body,
        service=service,
        fourkeys=engine.figures(),
        neutralised=engine.figures(ALL_DIFFERENCES),
        buckets=engine.buckets(),
        mismatches=_per_deployment(client, ids, engine),
        engine=engine,
        restore_field=field_name,
    )
    return comparison


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    position = (len(values) - 1) / 2
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _show(key: str, unit: str, value: float | None) -> str:
    if value is None:
        return "-"
    if unit == "hours":
        return f"{value / 3600:.2f} h"
    if unit == "rate":
        return f"{value:.5f}"
    return f"{value:g}"


def render(comparison: Comparison) -> str:
    """The side-by-side table, the differences it names, the dashboards' scales."""
    lines = [f"History: {comparison.history.describe()}"]
    lines.append(f"Range: {iso(comparison.history.start)} .. {iso(comparison.history.end)}")
    lines.append("")
    header = ("Metric", "This service", "Four Keys", "Four Keys, §7 neutralised", "METRICS §7 row: differences")
    table = [header]
    for key, label, unit, row in ROWS:
        names = ", ".join(d.name for d in differences_for(key)) or "none: they agree"
        table.append(
            (
                label,
                _show(key, unit, comparison.service.get(key)),
                _show(key, unit, comparison.fourkeys.get(key)),
                _show(key, unit, comparison.neutralised.get(key)),
                f"{row}: {names}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=False)) + "  " + r[-1])
    lines.append("")
    lines.append("Why (METRICS §7; docs/peer-differences.md):")
    for d in DIFFERENCES.values():
        lines.append(f"  {d.name} [{d.row}]: {d.reason}")
    lines.append("")
    recovery = comparison.service.get("recovery_time_seconds")
    lines.append(
        "This service's failed-deployment recovery time (METRICS §3, /summary recovery_time), median: "
        f"{_show('', 'hours', recovery)}; Four Keys has no such figure."
    )
    if comparison.restore_field is None:
        lines.append(
            "Note: this service's /summary has no incident time to restore: the figure above is METRICS §3 "
            "TimeToRestore computed from GET /failures."
        )
    tiers = {
        k: comparison.summary[k].get("tier")
        for k in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time")
    }
    lines.append(
        "Scales differ (not compared): Four Keys' dashboard buckets "
        + ", ".join(f"{k} {v}" for k, v in comparison.buckets.items())
        + "; this service's DORA 2023 tiers (METRICS §6) "
        + ", ".join(f"{k} {v}" for k, v in tiers.items())
        + "."
    )
    lines.append("")
    lines.append("Step by step, each documented difference neutralised in turn:")
    shown = [row for row in ROWS if row[0] not in ("change_failure_deployments", "incidents")]
    steps = [*comparison.steps(), ("This service", comparison.service)]
    grid = [("", *(label.strip() for _, label, _, _ in shown))]
    grid.extend((name, *(_show(key, unit, figures.get(key)) for key, _, unit, _ in shown)) for name, figures in steps)
    widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
    lines.extend(
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in grid
    )
    unexplained = comparison.unexplained()
    lines.append("")
    if unexplained:
        lines.append("UNEXPLAINED: with every documented difference neutralised, these still differ:")
        lines.append("  " + ", ".join(unexplained))
    else:
        lines.append("With every documented difference neutralised, Four Keys' figures equal this service's.")
    if comparison.mismatches:
        lines.append("Per-deployment figures that differ from the neutralised expectation:")
        lines.extend(f"  {m}" for m in comparison.mismatches)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the service (default: make serve's)")
    parser.add_argument("--key", default="local-dev-key", help="an API key of the space (default: make serve's)")
    parser.add_argument("--space", default="Spaces-1")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--weeks", type=int, default=None, help="weeks of history (default: 8, --small: 2)")
    parser.add_argument("--small", action="store_true", help="the small history the tests use")
    parser.add_argument("--start", default=DEFAULT_START.date().isoformat(), help="first day (a Monday), YYYY-MM-DD")
    parser.add_argument("--new-space", action="store_true", help="create a space for the history (needs an admin key)")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for a deployed service's recompute")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = parser.parse_args(argv)
    shape = SMALL if args.small else DEFAULT
    if args.weeks is not None:
        shape = shape.with_weeks(args.weeks)
    start = datetime.combine(date.fromisoformat(args.start), datetime.min.time(), tzinfo=UTC)
    try:
        history = generate(shape, args.seed, start)
        client = Client(args.url, args.key, args.space)
    except ValueError as error:
        parser.error(str(error))
    try:
        if args.new_space:
            client = new_space(client, f"fourkeys-comparison-{args.seed}-{int(time.time())}")
            sys.stderr.write(f"space {client.space}\n")
        comparison = compare(client, history, wait_seconds=args.wait)
    except urllib.error.URLError as error:
        sys.stderr.write(f"cannot reach {args.url} ({error.reason}): is `make serve` running?\n")
        return 2
    except (ApiError, RuntimeError) as error:
        sys.stderr.write(f"{error}\n")
        return 2
    sys.stdout.write(json.dumps(comparison.as_dict(), indent=2) + "\n" if args.json else render(comparison))
    return 1 if comparison.unexplained() or comparison.mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
