"""``FIGURES_FORMAT`` names the figure rules: a change that gives a history other figures must bump it.

Stored figures carry no trace of the rules that computed them. After an upgrade that changes a rule, the
recompute computes every stream again when the space's recorded ``figures_format`` is not this version's
(``logic.settings.mark_for_figure_rules``); it can only know to if the version moved. This test computes
the figures of one fixed history (every rule of METRICS §2–3 has cases in it) and compares their digest
with the one recorded for the current version. When it fails after a deliberate change of the rules:
bump ``domain.figures.FIGURES_FORMAT`` and add the new digest under the new number. When it fails without
one, the change altered figures it should not have.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta
from typing import Any

from dora_insights.domain.figures import (
    FIGURES_FORMAT,
    compute_stream_figures,
    release_first_seen,
)
from dora_insights.domain.model import Deployment, FailureEvent, TaskState
from dora_insights.domain.times import format_instant
from tests.unit.domain.builders import deployment, failure, hours

# The digest of the fixed history's figures under each version of the rules.
DIGESTS = {1: "1f1bf3a01c49d07e3559352207f6cc6f1f77f090646dc61bbc6819c83fa6574a"}


def _history() -> tuple[list[Deployment], list[FailureEvent], dict[str, Any]]:
    """240 deployments over about a month, with repeats of versions (rollbacks), rollback flags, fixes,
    short and full shas, guided failures, failures and cancellations; 12 failure events with and without a
    cause; change starts for some deployments (Commits lead time), releases for the rest."""
    rng = random.Random(20241207)
    shas = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(60)]  # noqa: S324 - fixture data only
    made: list[Deployment] = []
    versions: list[str] = []
    for n in range(1, 241):
        at = n * 3 + rng.random() * 2
        roll = rng.random()
        if versions and roll < 0.08:
            version = rng.choice(versions[-6:])  # a redeploy or a rollback by version
        else:
            version = f"1.{n}.0"
            versions.append(version)
        sha = rng.choice(shas)
        fields: dict[str, Any] = {
            "version": version,
            "started_at": format_instant(hours(at - rng.uniform(0.05, 1.5))),
            "commit_sha": sha[: rng.choice((7, 12, 40))],
            "had_guided_failure": rng.random() < 0.05,
            "rollback": rng.random() < 0.04,
        }
        if made and rng.random() < 0.06:
            fixed = rng.choice(made[-5:])
            fields["fixes"] = fixed.id if rng.random() < 0.5 else fixed.version
        state = rng.choices([TaskState.SUCCESS, TaskState.FAILED, TaskState.CANCELED], weights=[40, 7, 2])[0]
        made.append(deployment(n, at, state=state, **fields))
    events: list[FailureEvent] = []
    for k in range(1, 13):
        start = rng.uniform(5, 720)
        end = start + rng.uniform(0.1, 30) if rng.random() < 0.85 else None
        cause: dict[str, Any] = {}
        if rng.random() < 0.3:
            cause["deployment_id"] = rng.choice(made).id
        elif rng.random() < 0.3:
            cause["commit_sha"] = rng.choice(shas)[:10]
        events.append(failure(k, start, end, **cause))
    starts = {d.id: hours(n * 3 - rng.uniform(2, 200)) for n, d in enumerate(made, 1) if rng.random() < 0.5}
    return made, events, starts


def _digest() -> str:
    deployments, events, starts = _history()
    first_seen = release_first_seen(deployments)["Projects-1"]
    figures = compute_stream_figures(
        deployments,
        failure_events=events,
        failure_window=timedelta(hours=24),
        release_first_seen=first_seen,
        change_starts=starts,
    )
    stored = [
        {
            "id": f.deployment_id,
            "stored": f.to_model().model_dump(mode="json"),
            "flags": [f.completed, f.successful, f.deployment_failure, f.rollback, f.rework, f.change_failure],
        }
        for f in figures
    ]
    return hashlib.sha256(json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_the_history_exercises_every_rule() -> None:
    """The fixed history is worth its digest only if it reaches the rules: change failures by each of
    rules 1-5, rework, rollbacks, both lead-time sources and recoveries all occur in it."""
    deployments, events, starts = _history()
    figures = compute_stream_figures(
        deployments,
        failure_events=events,
        release_first_seen=release_first_seen(deployments)["Projects-1"],
        change_starts=starts,
    )
    rules = {r.rule for f in figures for r in f.change_failure_reasons}
    assert {1, 2, 3, 4, 5} <= rules, rules
    assert any(f.rework for f in figures)
    assert any(f.rollback for f in figures)
    assert {f.lead_time_source for f in figures} >= {"Commits", "Release"}
    assert any(f.time_to_recovery_seconds for f in figures)


def test_figures_of_the_fixed_history_match_the_digest_of_this_version_of_the_rules() -> None:
    digest = _digest()
    assert FIGURES_FORMAT in DIGESTS, f"record the digest of FIGURES_FORMAT {FIGURES_FORMAT}: {digest}"
    assert digest == DIGESTS[FIGURES_FORMAT], (
        f"the figures of the fixed history changed (digest {digest}). If the rules changed on purpose, bump "
        f"domain.figures.FIGURES_FORMAT to {max(DIGESTS) + 1} and record this digest under it, so that deployed "
        "stacks compute every stream again on upgrade; if not, the change altered figures it should not have."
    )
