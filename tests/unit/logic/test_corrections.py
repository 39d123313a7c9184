"""Corrections (issue 16): the pure parts (``domain.corrections``, the override and remediation in
``domain.figures``) with hypothesis properties, and the use cases (``logic.corrections``) over the
in-memory ports."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dora_insights.domain.corrections import DeploymentCorrection, FieldChange, apply_correction
from dora_insights.domain.failures import FailureDraft
from dora_insights.domain.figures import (
    FIXED_LATER,
    OVERRIDE,
    ROLLED_BACK,
    compute_stream_figures,
    figures_of,
    figures_record,
)
from dora_insights.domain.model import Deployment, DeploymentDraft, Remediation, RemediationType, TaskState
from dora_insights.domain.records import VersionSearch
from dora_insights.domain.times import format_instant
from dora_insights.errors import (
    PreconditionFailedError,
    RequestInvalidError,
    ResourceNotFoundError,
)
from dora_insights.logic import code, corrections, deployments, failures
from tests.unit.domain.builders import deployment, failure
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts

REPO = "acme/shop"
ACTOR = "someone (ApiKeys-1)"


# ---------------------------------------------------------------------------------------------
# domain.corrections


def test_a_correction_tells_not_given_from_set_to_null() -> None:
    untouched = DeploymentCorrection(version="2")
    cleared = DeploymentCorrection(change_failure=None)
    assert not untouched.given("change_failure") and cleared.given("change_failure")
    base = deployment(1, 0, change_failure_override=True)
    assert apply_correction(base, untouched)[0].change_failure_override is True
    corrected, changes = apply_correction(base, cleared)
    assert corrected.change_failure_override is None
    assert changes == {"change_failure": FieldChange(before=True, after=None)}


def test_state_may_not_be_null_and_a_remediation_names_one_deployment() -> None:
    with pytest.raises(ValidationError):
        DeploymentCorrection(state=None)
    with pytest.raises(ValidationError):
        Remediation(type=RemediationType.ROLLBACK)
    with pytest.raises(ValidationError):
        Remediation(id="a", version="1", type=RemediationType.ROLLBACK)


_corrections = st.builds(
    lambda fields: DeploymentCorrection(**fields),
    st.fixed_dictionaries(
        {},
        optional={
            "state": st.sampled_from(list(TaskState)),
            "change_failure": st.none() | st.booleans(),
            "remediation": st.none()
            | st.builds(
                lambda i, t: Remediation(id=i, type=t),
                st.sampled_from(["Deployments-8", "Deployments-9"]),
                st.sampled_from(list(RemediationType)),
            ),
            "version": st.none() | st.sampled_from(["1", "2", "3"]),
            "tags": st.none() | st.lists(st.sampled_from(["a:1", "b:2"]), max_size=2, unique=True).map(tuple),
        },
    ),
)


@settings(max_examples=200, deadline=None)
@given(correction=_corrections, version=st.none() | st.sampled_from(["1", "2"]), tags=st.sampled_from([[], ["a:1"]]))
def test_apply_sets_what_is_given_records_exactly_what_changed_and_is_idempotent(
    correction: DeploymentCorrection, version: str | None, tags: list[str]
) -> None:
    base = deployment(1, 0, version=version, tags=tags)
    corrected, changes = apply_correction(base, correction)
    for name, attribute in (
        ("state", "state"),
        ("change_failure", "change_failure_override"),
        ("remediation", "remediation"),
        ("version", "version"),
    ):
        expected = getattr(correction, name) if correction.given(name) else getattr(base, attribute)
        assert getattr(corrected, attribute) == expected
    if correction.given("tags"):
        assert corrected.tags == list(correction.tags or ())
    differing = {
        name
        for name, attribute in (
            ("state", "state"),
            ("change_failure", "change_failure_override"),
            ("remediation", "remediation"),
            ("version", "version"),
            ("tags", "tags"),
        )
        if getattr(corrected, attribute) != getattr(base, attribute)
    }
    assert set(changes) == differing
    assert apply_correction(corrected, correction)[1] == {}  # the same correction again changes nothing
    assert (corrected.id, corrected.stream_key, corrected.revision) == (base.id, base.stream_key, base.revision)


# ---------------------------------------------------------------------------------------------
# domain.figures: the override and the remediation

_states = st.sampled_from([TaskState.SUCCESS, TaskState.SUCCESS, TaskState.FAILED, TaskState.CANCELED])


@st.composite
def _streams(draw: Any) -> list[Deployment]:
    size = draw(st.integers(min_value=1, max_value=8))
    return [
        deployment(
            n,
            n,
            state=draw(_states),
            version=draw(st.sampled_from(["1", "2", "3"])),
            change_failure_override=draw(st.none() | st.booleans()),
        )
        for n in range(size)
    ]


@settings(max_examples=200, deadline=None)
@given(stream=_streams(), window_failure=st.booleans())
def test_an_override_wins_and_the_computed_value_is_what_the_rules_say_without_it(
    stream: list[Deployment], window_failure: bool
) -> None:
    events = [failure(1, 2.5)] if window_failure else []
    figures = compute_stream_figures(stream, failure_events=events)
    plain = compute_stream_figures(
        [d.model_copy(update={"change_failure_override": None}) for d in stream], failure_events=events
    )
    for d, f, reference in zip(stream, figures, plain, strict=True):
        assert f.change_failure_computed == reference.change_failure
        if not f.completed:
            assert f.change_failure is None
        elif d.change_failure_override is None:
            assert f.change_failure == reference.change_failure
            assert f.change_failure_reasons == reference.change_failure_reasons
        else:
            assert f.change_failure is d.change_failure_override
            assert f.change_failure_reasons[0].rule == OVERRIDE
            assert f.change_failure_reasons[1:] == reference.change_failure_reasons
            model = f.to_model()
            assert (model.change_failure_rule, model.change_failure_cause) == (OVERRIDE, d.id)
        assert figures_of(figures_record(f)) == f  # the stored form keeps both values


def test_rework_follows_the_effective_value() -> None:
    stream = [deployment(1, 0, change_failure_override=True), deployment(2, 1)]
    after = compute_stream_figures(stream)[1]
    assert after.rework and after.rework_reasons[0].reason == "first_success_after_change_failure"
    overruled = compute_stream_figures([deployment(1, 0, state=TaskState.FAILED, change_failure_override=False)])
    assert overruled[0].change_failure is False and overruled[0].change_failure_computed is True


def test_a_rollback_remediation_by_id_charges_the_deployment_and_makes_the_remediation_a_rollback() -> None:
    remediation = Remediation(id="Deployments-3", type=RemediationType.ROLLBACK)
    figures = compute_stream_figures([deployment(1, 0, remediation=remediation), deployment(2, 1), deployment(3, 2)])
    assert [(r.rule, r.deployment_id) for r in figures[0].change_failure_reasons] == [(ROLLED_BACK, "Deployments-3")]
    assert figures[2].rollback and figures[2].rework_reasons[0].reason == "rollback"
    assert not figures[1].rollback


def test_a_rollforward_remediation_by_version_names_the_first_later_deployment_with_it() -> None:
    remediation = Remediation(version="1.2", type=RemediationType.ROLLFORWARD)
    stream = [
        deployment(1, 0, version="1.0"),
        deployment(2, 1, version="1.1", remediation=remediation),
        deployment(3, 2, version="1.2"),
        deployment(4, 3, version="1.2"),
    ]
    figures = compute_stream_figures(stream)
    assert [(r.rule, r.deployment_id) for r in figures[1].change_failure_reasons] == [(FIXED_LATER, "Deployments-3")]
    assert [r.reason for r in figures[2].rework_reasons] == ["fix", "first_success_after_change_failure"]
    assert figures[3].rework_reasons == ()


def test_a_remediation_naming_nothing_later_still_charges_the_deployment() -> None:
    remediation = Remediation(id="Deployments-1", type=RemediationType.ROLLBACK)  # an earlier one
    figures = compute_stream_figures([deployment(1, 0), deployment(2, 1, remediation=remediation)])
    assert [(r.rule, r.deployment_id) for r in figures[1].change_failure_reasons] == [(ROLLED_BACK, None)]
    assert not figures[0].rollback


# ---------------------------------------------------------------------------------------------
# logic.corrections over the fakes


def ingest(ports: FakePorts, client_id: str, *, hours: float = 0, **fields: Any) -> Deployment:
    draft = DeploymentDraft(client_id=client_id, project="shop", finished_at=NOW + timedelta(hours=hours), **fields)
    return deployments.ingest(ports, ports.spaces[SPACE], draft, NOW).deployment


def test_a_correction_is_written_with_its_record_and_the_streams_dirty_mark(ports: FakePorts) -> None:
    stored = ingest(ports, "d1", version="1")
    ports.dirty.clear()
    later = NOW + timedelta(hours=1)
    corrected = corrections.correct_deployment(
        ports, SPACE, "d1", DeploymentCorrection(version="2", change_failure=True), actor=ACTOR, now=later
    )
    assert (corrected.version, corrected.change_failure_override, corrected.revision) == ("2", True, 2)
    assert ports.dirty == {(SPACE, stored.stream_key): format_instant(later)}
    records, cursor = corrections.list_corrections(ports, SPACE, "d1")
    assert cursor is None and len(records) == 1
    assert (records[0].actor, records[0].action, records[0].revision) == (ACTOR, "correct", 2)
    assert records[0].changes == {
        "change_failure": FieldChange(before=None, after=True),
        "version": FieldChange(before="1", after="2"),
    }


def test_a_stale_revision_is_refused_and_nothing_changes(ports: FakePorts) -> None:
    ingest(ports, "d1", version="1")
    corrections.correct_deployment(ports, SPACE, "d1", DeploymentCorrection(version="2"), actor=ACTOR, now=NOW)
    with pytest.raises(PreconditionFailedError):
        corrections.correct_deployment(
            ports, SPACE, "d1", DeploymentCorrection(version="3"), actor=ACTOR, now=NOW, expected_revision=1
        )
    assert deployments.get_deployment(ports, SPACE, "d1").version == "2"
    done = corrections.correct_deployment(
        ports, SPACE, "d1", DeploymentCorrection(version="3"), actor=ACTOR, now=NOW, expected_revision=2
    )
    assert done.revision == 3


def test_unknown_ids_are_404_and_bad_remediations_400(ports: FakePorts) -> None:
    ingest(ports, "d1")
    ingest(ports, "d0", hours=-1)
    with pytest.raises(ResourceNotFoundError):
        corrections.correct_deployment(ports, SPACE, "nope", DeploymentCorrection(version="2"), actor=ACTOR, now=NOW)
    with pytest.raises(ResourceNotFoundError):
        corrections.delete_deployment(ports, SPACE, "nope", actor=ACTOR, now=NOW)
    with pytest.raises(ResourceNotFoundError):
        corrections.list_corrections(ports, SPACE, "nope")
    for named in ("d0", "d1", "nope"):
        remediation = Remediation(id=named, type=RemediationType.ROLLBACK)
        with pytest.raises(RequestInvalidError) as refused:
            corrections.correct_deployment(
                ports, SPACE, "d1", DeploymentCorrection(remediation=remediation), actor=ACTOR, now=NOW
            )
        assert refused.value.field == "remediation.id"


def test_delete_removes_the_deployment_and_keeps_its_record(ports: FakePorts) -> None:
    stored = ingest(ports, "d1", version="1")
    corrections.delete_deployment(ports, SPACE, "d1", actor=ACTOR, now=NOW)
    assert ports.deployment_repository.get(SPACE, "d1") is None
    assert (SPACE, stored.stream_key) in ports.dirty
    (record,), _ = corrections.list_corrections(ports, SPACE, "d1")
    assert record.action == "delete" and record.removed is not None and record.removed["version"] == "1"


def test_find_by_version_reads_the_latest_in_the_default_environment(
    ports: FakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[None] = []
    monkeypatch.setattr(corrections, "_pause_for_the_index", lambda: pauses.append(None))
    ingest(ports, "old", version="7", hours=-2)
    ingest(ports, "new", version="7", hours=-1)
    ingest(ports, "staging", version="7", environment="staging")
    assert corrections.find_deployment_by_version(ports, SPACE, service="shop", env=None, version="7").id == "new"
    assert corrections.find_deployment_by_version(ports, SPACE, service="SHOP", env="staging", version="7").id == (
        "staging"
    )
    assert pauses == []  # found at the first read
    for service, env, version in (("shop", None, "8"), ("cart", None, "7"), ("shop", "qa", "7")):
        with pytest.raises(ResourceNotFoundError):
            corrections.find_deployment_by_version(ports, SPACE, service=service, env=env, version=version)
    assert len(pauses) == 1  # only where the service and environment exist is the index read again


def test_find_by_version_waits_for_the_index_only_after_a_complete_search(
    ports: FakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search stopped at its read bound found no recent deployment with the version: an older one is
    not indexed late, so the 404 comes without the pause."""
    pauses: list[None] = []
    monkeypatch.setattr(corrections, "_pause_for_the_index", lambda: pauses.append(None))
    ingest(ports, "old", version="7", hours=-2)
    monkeypatch.setattr(
        ports.deployment_repository, "find_by_version", lambda *_, **__: VersionSearch(None, complete=False)
    )
    with pytest.raises(ResourceNotFoundError):
        corrections.find_deployment_by_version(ports, SPACE, service="shop", env=None, version="7")
    assert pauses == []


def test_a_failure_event_is_read_and_deleted_with_its_streams_marked(ports: FakePorts) -> None:
    stored = ingest(ports, "d1")
    ports.metrics_repository.registrations_[(SPACE, stored.stream_key)] = {"stream": stored.stream_key}
    draft = FailureDraft(client_id="f1", projects=("shop",), started_at=NOW + timedelta(hours=1))
    failures.record_failure(ports, ports.spaces[SPACE], draft, NOW)
    assert corrections.get_failure(ports, SPACE, "f1").id == "f1"
    ports.dirty.clear()
    corrections.delete_failure(ports, SPACE, "f1", actor=ACTOR, now=NOW)
    assert (SPACE, stored.stream_key) in ports.dirty
    for call in (
        lambda: corrections.get_failure(ports, SPACE, "f1"),
        lambda: corrections.delete_failure(ports, SPACE, "f1", actor=ACTOR, now=NOW),
    ):
        with pytest.raises(ResourceNotFoundError):
            call()


def _sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()  # noqa: S324 - test identifiers, not security


def test_the_next_deployment_takes_over_what_a_deleted_one_shipped(ports: FakePorts) -> None:
    commits = [
        code.CommitIn(sha=_sha(label), timestamp=format_instant(NOW - timedelta(days=3, minutes=-n)))
        for n, label in enumerate("abcde")
    ]
    code.record_push(ports, SPACE, code.BranchPush(REPO, "main", commits, default_branch="main"), NOW)
    for client_id, label, hours in (("d1", "a", -3), ("d2", "c", -2), ("d3", "e", -1)):
        ingest(ports, client_id, hours=hours, repository=REPO, commit_sha=_sha(label))
    shipped = ports.deployment_repository.get(SPACE, "d3")
    assert shipped is not None and shipped.attribution is not None
    assert sorted(shipped.attribution.commits) == sorted([_sha("d"), _sha("e")])
    corrections.delete_deployment(ports, SPACE, "d2", actor=ACTOR, now=NOW)
    taken = ports.deployment_repository.get(SPACE, "d3")
    assert taken is not None and taken.attribution is not None
    assert (taken.attribution.state, sorted(taken.attribution.commits)) == (
        "Resolved",
        sorted(_sha(label) for label in "bcde"),
    )
    assert ports.attribution_state.outbox == {}  # every attempt planned ran and finished
    assert ports.queue is not None and ports.queue.sent == []  # corrections use no retry queue
