"""Per-deployment figures of a stream (METRICS §2–3)."""

from __future__ import annotations

from datetime import timedelta

from dora_insights.domain.figures import (
    LEAD_TIME_FROM_COMMITS,
    LEAD_TIME_FROM_RELEASE,
    DeploymentFigures,
    compute_stream_figures,
    figures_of,
    figures_record,
    release_first_seen,
    time_to_restore,
)
from dora_insights.domain.model import Attribution, TaskState
from dora_insights.domain.times import format_instant
from tests.unit.domain.builders import deployment, failure, hours


def by_id(figures: list[DeploymentFigures]) -> dict[str, DeploymentFigures]:
    return {f.deployment_id: f for f in figures}


def flags(figures: list[DeploymentFigures], name: str) -> list[bool | None]:
    return [getattr(f, name) for f in figures]


def test_arrival_order_does_not_matter() -> None:
    ds = [deployment(1, 0), deployment(2, 1), deployment(3, 2)]
    assert compute_stream_figures(reversed(ds)) == compute_stream_figures(ds)


def test_ties_on_completion_are_broken_by_start_then_id() -> None:
    late_start = deployment(1, 5, started_at=format_instant(hours(4)))
    early_start = deployment(2, 5, started_at=format_instant(hours(3)))
    assert [f.deployment_id for f in compute_stream_figures([late_start, early_start])] == [
        "Deployments-2",
        "Deployments-1",
    ]


def test_time_since_previous_successful_deployment() -> None:
    figs = compute_stream_figures([deployment(1, 0), deployment(2, 1, state=TaskState.FAILED), deployment(3, 3)])
    assert figs[0].time_since_previous_success_seconds is None
    assert figs[1].time_since_previous_success_seconds is None
    assert figs[2].time_since_previous_success_seconds == 3 * 3600
    assert figs[2].previous_success_id == "Deployments-1"


def test_recovery_from_a_run_of_failures_counts_from_the_first() -> None:
    figs = compute_stream_figures(
        [
            deployment(1, 0),
            deployment(2, 1, state=TaskState.FAILED, version="2.0"),
            deployment(3, 2, state=TaskState.TIMED_OUT, version="2.1"),
            deployment(4, 3, had_guided_failure=True),
            deployment(5, 5),
        ]
    )
    recovered = figs[4]
    assert recovered.time_to_recovery_seconds == 4 * 3600
    assert recovered.deployments_until_recovery == 3
    assert recovered.recovered_from_failed_id == "Deployments-2"
    assert recovered.recovered_from_failed_version == "2.0"


def test_recovery_right_after_one_failure_is_one_deployment() -> None:
    figs = compute_stream_figures([deployment(1, 0, state=TaskState.FAILED), deployment(2, 1)])
    assert figs[1].deployments_until_recovery == 1


def test_canceled_and_running_deployments_take_no_part() -> None:
    figs = by_id(
        compute_stream_figures(
            [
                deployment(1, 0, state=TaskState.FAILED),
                deployment(2, 1, state=TaskState.CANCELED),
                deployment(3, 2, state=TaskState.EXECUTING),
                deployment(4, 3),
            ]
        )
    )
    assert figs["Deployments-4"].deployments_until_recovery == 1
    assert figs["Deployments-2"].change_failure is None
    assert figs["Deployments-3"].completed is False


def test_duration_is_completed_minus_started() -> None:
    figs = compute_stream_figures([deployment(1, 2, started_at=format_instant(hours(1.5)))])
    assert figs[0].duration_seconds == 1800


def test_lead_time_from_commits_when_attribution_found_a_change_start() -> None:
    d = deployment(1, 10, version="1.0")
    figs = compute_stream_figures([d], change_starts={d.id: hours(4)})
    assert figs[0].lead_time_seconds == 6 * 3600
    assert figs[0].lead_time_source == LEAD_TIME_FROM_COMMITS


def test_lead_time_from_the_release_after_the_previous_one() -> None:
    staging = deployment(9, 2, version="1.1", environment_id="Environments-9", started_at=format_instant(hours(1)))
    history = [
        deployment(1, 1, version="1.0", started_at=format_instant(hours(0.5))),
        deployment(2, 5, version="1.2", started_at=format_instant(hours(4))),
    ]
    seen = release_first_seen([*history, staging])["Projects-1"]
    figs = compute_stream_figures(history, release_first_seen=seen)
    assert figs[0].lead_time_from_version == "1.0"
    assert figs[0].lead_time_seconds == 0.5 * 3600
    assert figs[1].lead_time_from_version == "1.1"
    assert figs[1].lead_time_seconds == 4 * 3600
    assert figs[1].lead_time_source == LEAD_TIME_FROM_RELEASE


def test_redeploying_the_same_release_measures_from_it() -> None:
    # Octopus sample: Deployments-2 redeploys 2022.3.1 and reports LeadTimeCalculatedFromVersion 2022.3.1.
    history = [deployment(1, 1, version="2022.3.1"), deployment(2, 2, version="2022.3.1")]
    seen = release_first_seen(history, [("Projects-1", "2022.3.0", hours(-1))])["Projects-1"]
    figs = compute_stream_figures(history, release_first_seen=seen)
    assert figs[1].lead_time_from_version == "2022.3.1"


def test_explicit_release_creation_time_counts_as_first_seen() -> None:
    d = deployment(1, 3, version="1.0", release_created_at=format_instant(hours(1)))
    assert release_first_seen([d])["Projects-1"]["1.0"] == hours(1)


def test_negative_lead_time_is_kept_and_flagged() -> None:
    d = deployment(1, 3, version="1.0")
    figs = compute_stream_figures([d], release_first_seen={"1.0": hours(5)})
    assert figs[0].lead_time_seconds == -2 * 3600
    assert figs[0].lead_time_negative is True


def test_failed_deployment_is_a_change_failure() -> None:
    figs = compute_stream_figures([deployment(1, 0, state=TaskState.FAILED)])
    assert figs[0].change_failure is True


def test_rollback_by_version_marks_the_first_deployment_after_the_earlier_one() -> None:
    figs = compute_stream_figures(
        [
            deployment(1, 0, version="V1"),
            deployment(2, 1, version="V2"),
            deployment(3, 2, version="V3"),
            deployment(4, 3, version="V1"),
        ]
    )
    assert flags(figs, "change_failure") == [False, True, False, False]
    assert flags(figs, "rollback") == [False, False, False, True]


def test_redeploying_the_same_version_is_not_a_rollback() -> None:
    figs = compute_stream_figures([deployment(1, 0, version="V1"), deployment(2, 1, version="V1")])
    assert flags(figs, "change_failure") == [False, False]
    assert flags(figs, "rollback") == [False, False]


def test_commit_sha_decides_over_version() -> None:
    figs = compute_stream_figures(
        [
            deployment(1, 0, version="1", commit_sha="a"),
            deployment(2, 1, version="2", commit_sha="b"),
            deployment(3, 2, version="3", commit_sha="a"),
        ]
    )
    assert flags(figs, "change_failure") == [False, True, False]


def test_one_commit_deployed_by_its_short_and_its_full_sha_is_no_rollback() -> None:
    """GitLab names a commit by ``short_sha`` when its hook gives no full one: A, then a (short for A),
    then A again redeploys one commit three times. Rule 2 took the short spelling for another commit:
    the second was charged and the third counted a rollback (rework rate)."""
    full = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
    figs = compute_stream_figures(
        [
            deployment(1, 0, commit_sha=full),
            deployment(2, 1, commit_sha=full[:8]),
            deployment(3, 2, commit_sha=full),
        ]
    )
    assert flags(figs, "change_failure") == [False, False, False]
    assert flags(figs, "rollback") == [False, False, False]


def test_a_short_sha_of_another_commit_is_still_a_rollback_to_it() -> None:
    """A, B (full), then a short sha of A: a return to A, as with full shas."""
    a, b = "a" * 40, "b" * 40
    figs = compute_stream_figures(
        [deployment(1, 0, commit_sha=a), deployment(2, 1, commit_sha=b), deployment(3, 2, commit_sha=a[:7])]
    )
    assert flags(figs, "change_failure") == [False, True, False]
    assert flags(figs, "rollback") == [False, False, True]


def test_rollback_flag_marks_the_deployment_before_even_for_a_new_version() -> None:
    figs = compute_stream_figures([deployment(1, 0, version="1"), deployment(2, 1, version="2", rollback=True)])
    assert flags(figs, "change_failure") == [True, False]
    assert flags(figs, "rework") == [False, True]


def test_fixes_naming_an_id_or_a_version_marks_that_deployment() -> None:
    figs = compute_stream_figures(
        [
            deployment(1, 0, version="1"),
            deployment(2, 1, version="2"),
            deployment(3, 2, version="3", fixes="1"),
            deployment(4, 3, version="4", fixes="Deployments-2"),
        ]
    )
    assert flags(figs, "change_failure") == [True, True, False, False]
    assert flags(figs, "rework") == [False, True, True, True]


def test_failure_event_within_the_window_marks_the_latest_successful_deployment() -> None:
    history = [deployment(1, 0), deployment(2, 1), deployment(3, 2, state=TaskState.FAILED)]
    figs = compute_stream_figures(history, failure_events=[failure(1, 5)])
    assert flags(figs, "change_failure") == [False, True, True]


def test_failure_event_outside_the_window_marks_nothing() -> None:
    figs = compute_stream_figures([deployment(1, 0)], failure_events=[failure(1, 25)])
    assert figs[0].change_failure is False
    figs = compute_stream_figures(
        [deployment(1, 0)], failure_events=[failure(1, 25)], failure_window=timedelta(hours=48)
    )
    assert figs[0].change_failure is True


def test_failure_event_of_another_environment_marks_nothing() -> None:
    event = failure(1, 1, environment_id="Environments-2")
    assert compute_stream_figures([deployment(1, 0)], failure_events=[event])[0].change_failure is False


def test_first_success_after_a_change_failure_is_rework() -> None:
    figs = compute_stream_figures(
        [
            deployment(1, 0, state=TaskState.FAILED),
            deployment(2, 1, state=TaskState.FAILED),
            deployment(3, 2),
            deployment(4, 3),
        ]
    )
    assert flags(figs, "rework") == [False, False, True, False]


def test_time_to_restore_of_a_failure_event() -> None:
    assert time_to_restore(failure(1, 0, 2.5)) == timedelta(hours=2.5)
    assert time_to_restore(failure(1, 0)) is None


def test_figures_model_carries_the_overlapping_fields() -> None:
    model = compute_stream_figures([deployment(1, 0, state=TaskState.FAILED), deployment(2, 1)])[1].to_model()
    assert model.deployments_until_recovery == 1
    assert model.recovered_from_failed_id == "Deployments-1"


# --- rule 4: failures that name their cause; every flag's reasons -------------------------------------


def reasons(figures: DeploymentFigures) -> list[tuple[int, str | None, str | None]]:
    return [(r.rule, r.deployment_id, r.failure_id) for r in figures.change_failure_reasons]


def test_a_failure_naming_a_commit_charges_the_first_deployment_that_shipped_it_whenever_it_starts() -> None:
    ds = [
        deployment(1, 0, commit_sha="a" * 40),
        deployment(2, 5, commit_sha="b" * 40),  # the latest before the failure: rule 5 would charge it
        deployment(3, 6, commit_sha="a" * 40),  # ships the commit again: not the first
    ]
    # 30 days later, far outside the 24 h window, naming the commit by an abbreviation in upper case.
    event = failure(1, 24 * 30, commit_sha="A" * 7)
    got = by_id(compute_stream_figures(ds, failure_events=[event]))
    assert reasons(got["Deployments-1"]) == [(4, None, "Failures-1")]
    assert got["Deployments-3"].change_failure_reasons == ()  # shipped the commit again: not charged
    assert reasons(got["Deployments-2"]) == [(2, "Deployments-3", None)]  # rolled back by 3; not rule 5


def test_a_commit_shipped_inside_a_deployment_is_found_in_its_attribution() -> None:
    shipped = Attribution(state="Resolved", commits=["c" * 40, "d" * 40])
    ds = [deployment(1, 0, commit_sha="e" * 40, attribution=shipped), deployment(2, 1, commit_sha="f" * 40)]
    got = by_id(compute_stream_figures(ds, failure_events=[failure(1, 3, commit_sha="d" * 40)]))
    assert reasons(got["Deployments-1"]) == [(4, None, "Failures-1")]
    assert not got["Deployments-2"].change_failure


def test_a_failure_naming_a_deployment_id_charges_it_and_a_version_the_first_with_that_version() -> None:
    ds = [deployment(1, 0, version="1.0"), deployment(2, 1, version="1.1"), deployment(3, 2, version="1.1")]
    by_deployment = failure(1, 100, deployment_id="Deployments-3", environment_id="Environments-9")
    by_version = failure(2, 100, version="1.1")
    got = by_id(compute_stream_figures(ds, failure_events=[by_deployment, by_version]))
    assert reasons(got["Deployments-3"]) == [(4, None, "Failures-1")]  # by id: whatever its environment
    assert reasons(got["Deployments-2"]) == [(4, None, "Failures-2")]
    assert not got["Deployments-1"].change_failure


def test_a_named_cause_that_matches_nothing_charges_nothing_and_a_failure_naming_nothing_keeps_rule_5() -> None:
    ds = [deployment(1, 0, commit_sha="a" * 40), deployment(2, 1, commit_sha="b" * 40)]
    unknown = failure(1, 2, commit_sha="9" * 40)
    plain = failure(2, 3)
    got = by_id(compute_stream_figures(ds, failure_events=[unknown, plain]))
    assert not got["Deployments-1"].change_failure
    assert reasons(got["Deployments-2"]) == [(5, None, "Failures-2")]


def test_every_change_failure_and_rework_says_why() -> None:
    ds = [
        deployment(1, 0, version="1.0"),
        deployment(2, 1, version="1.1", state=TaskState.FAILED),  # rule 1
        deployment(3, 2, version="1.2"),  # first success after a change failure
        deployment(4, 3, version="1.3"),
        deployment(5, 4, version="1.4", fixes="1.3"),  # fixes 4: rule 3
        deployment(6, 5, version="1.0"),  # rolls back to 1.0, marks 2 (the one after 1's 1.0)
    ]
    got = by_id(compute_stream_figures(ds))
    assert reasons(got["Deployments-2"]) == [(1, "Deployments-2", None), (2, "Deployments-6", None)]
    assert reasons(got["Deployments-4"]) == [(3, "Deployments-5", None)]
    rework = {d: [(r.reason, r.deployment_id) for r in f.rework_reasons] for d, f in got.items() if f.rework}
    assert rework == {
        "Deployments-3": [("first_success_after_change_failure", "Deployments-2")],
        "Deployments-5": [("fix", "Deployments-4"), ("first_success_after_change_failure", "Deployments-4")],
        "Deployments-6": [("rollback", "Deployments-2")],
    }
    model = got["Deployments-2"].to_model()
    assert model.change_failure_reasons is not None
    assert [(r.rule, r.name) for r in model.change_failure_reasons] == [(1, "deployment_failure"), (2, "rolled_back")]
    assert got["Deployments-1"].to_model().change_failure_reasons is None


def test_reasons_survive_the_stored_form() -> None:
    ds = [deployment(1, 0, version="1.0"), deployment(2, 1, version="1.1", rollback=True)]
    for figures in compute_stream_figures(ds, failure_events=[failure(1, 2, deployment_id="Deployments-2")]):
        assert figures_of(figures_record(figures)) == figures
