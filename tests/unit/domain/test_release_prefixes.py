"""domain.figures.ReleasePrefixes and release_horizon: the digest a stream's registration keeps of the
project's releases its figures read, so that a recompute of another stream can tell when they moved
(a backfilled deployment seen earlier than a release another environment shipped)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.figures import ReleasePrefixes, compute_stream_figures, release_first_seen, release_horizon
from dora_insights.domain.model import Deployment, TaskState
from dora_insights.domain.times import format_instant
from tests.unit.domain.builders import deployment, hours

VERSIONS = st.one_of(st.none(), st.sampled_from(["1.0", "1.1", "1.2", "2.0", "2.1"]))


@st.composite
def deployments(draw: st.DrawFn, first: int, environment: str, count: int) -> list[Deployment]:
    found = []
    for n in range(first, first + draw(st.integers(0, count))):
        at = draw(st.integers(0, 48))
        started = draw(st.one_of(st.none(), st.integers(1, 6)))
        found.append(
            deployment(
                n,
                at,
                environment=environment,
                environment_id=f"Environments-{environment}",
                version=draw(VERSIONS),
                state=draw(st.sampled_from([TaskState.SUCCESS, TaskState.SUCCESS, TaskState.FAILED])),
                started_at=None if started is None else format_instant(hours(at - started)),
            )
        )
    return found


@given(
    stream=deployments(1, "production", 6),
    others=deployments(100, "staging", 6),
    more=deployments(200, "test", 4),
)
def test_equal_digests_at_the_horizon_give_equal_figures(
    stream: list[Deployment], others: list[Deployment], more: list[Deployment]
) -> None:
    """The claim the recompute rests on: figures computed under two views of the project's releases
    whose digests agree at the stream's horizon are the same figures."""
    before = release_first_seen(stream + others).get("Projects-1", {})
    after = release_first_seen(stream + others + more).get("Projects-1", {})
    horizon = release_horizon(stream)
    if ReleasePrefixes.of(before).at(horizon) == ReleasePrefixes.of(after).at(horizon):
        assert compute_stream_figures(stream, release_first_seen=before) == compute_stream_figures(
            stream, release_first_seen=after
        )


@given(others=deployments(100, "staging", 8), stream=deployments(1, "production", 4))
def test_the_digest_names_exactly_the_releases_first_seen_up_to_the_horizon(
    others: list[Deployment], stream: list[Deployment]
) -> None:
    seen = release_first_seen(stream + others).get("Projects-1", {})
    horizon = release_horizon(stream)
    prefixes = ReleasePrefixes.of(seen)
    if horizon is None:
        assert prefixes.at(horizon) == ""
        return
    earlier = {version: at for version, at in seen.items() if at <= horizon}
    assert prefixes.at(horizon) == ReleasePrefixes.of(earlier).at(horizon)  # later releases do not count
    for version, at in earlier.items():  # any earlier release moving (or going) moves the digest
        moved = {**earlier, version: at - timedelta(minutes=1)}
        assert ReleasePrefixes.of(moved).at(horizon) != prefixes.at(horizon)
        gone = {v: t for v, t in earlier.items() if v != version}
        assert ReleasePrefixes.of(gone).at(horizon) != prefixes.at(horizon)


def test_a_backfilled_deployment_of_a_shipped_release_moves_the_digest_a_later_release_does_not() -> None:
    production = [deployment(1, 0, version="1.0")]
    horizon = release_horizon(production)
    shipped = ReleasePrefixes.of(release_first_seen(production)["Projects-1"]).at(horizon)
    later = [deployment(2, 1, version="1.1", environment_id="Environments-2")]
    assert ReleasePrefixes.of(release_first_seen(production + later)["Projects-1"]).at(horizon) == shipped
    backfill = [deployment(3, -2, version="1.0", environment_id="Environments-2")]
    assert ReleasePrefixes.of(release_first_seen(production + backfill)["Projects-1"]).at(horizon) != shipped


def test_the_horizon_is_the_latest_instant_a_versioned_deployment_gives() -> None:
    assert release_horizon([deployment(1, 0), deployment(2, 5)]) is None
    started = format_instant(hours(1))
    assert release_horizon([deployment(1, 0, version="1.0"), deployment(2, 3, version="1.1", started_at=started)]) == (
        hours(1)
    )
