"""Incident webhooks without I/O: signatures, the tools' payloads as signals, the service mapping and
the failure an incident becomes (domain/incidents.py, dialects/incidents.py)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dora_insights.dialects.incidents import (
    opsgenie_secret_valid,
    opsgenie_signal,
    pagerduty_signal,
    pagerduty_signature,
    pagerduty_signature_valid,
)
from dora_insights.domain.ids import sha256_hex
from dora_insights.domain.incidents import (
    IncidentAction,
    IncidentSource,
    ServiceTarget,
    draft_of,
    failure_id,
    later_finish,
    map_service,
    resolved_failure,
)
from dora_insights.domain.model import FailureEvent, Source
from tests.support.events import load_event

hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
secrets = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=16, max_size=64)


def _reference(secret: str, body: bytes) -> str:
    """PagerDuty's documented verifier: hex HMAC-SHA256 of the raw body, prefixed ``v1=``."""
    return "v1=" + hmac.new(secret.encode("ascii"), body, hashlib.sha256).hexdigest()


@given(secret=secrets, body=st.binary(max_size=512), others=st.lists(hex64, max_size=3), position=st.integers(0, 3))
def test_a_pagerduty_header_verifies_when_any_of_its_v1_signatures_is_the_bodys(
    secret: str, body: bytes, others: list[str], position: int
) -> None:
    right = _reference(secret, body)
    assert pagerduty_signature(secret, body) == right
    wrong = [f"v1={o}" for o in others if f"v1={o}" != right]
    signatures = [*wrong]
    signatures.insert(min(position, len(signatures)), right)
    assert pagerduty_signature_valid(secret, body, ",".join(signatures))
    assert pagerduty_signature_valid(secret, body, ", ".join(signatures))  # whitespace after commas
    assert not pagerduty_signature_valid(secret, body, ",".join(wrong))
    assert not pagerduty_signature_valid(secret, body, right.replace("v1=", "v2=", 1))
    assert not pagerduty_signature_valid(secret, body + b" ", right)  # the raw body, byte for byte
    assert not pagerduty_signature_valid(None, body, right)


def test_opsgenie_secret_is_checked_against_its_hash_only() -> None:
    stored = sha256_hex("a-shared-secret-value")
    assert opsgenie_secret_valid(stored, "a-shared-secret-value")
    assert not opsgenie_secret_valid(stored, "a-shared-secret-valuE")
    assert not opsgenie_secret_valid(stored, None)
    assert not opsgenie_secret_valid(None, "a-shared-secret-value")


def test_pagerduty_payloads_become_signals() -> None:
    triggered = pagerduty_signal(load_event("pagerduty_incident_triggered.json"))
    assert triggered.action is IncidentAction.OPEN
    assert (triggered.delivery_id, triggered.incident_id) == ("01DEN4HPBQAJQFVW4S6VYIGPLM", "Q0RIJJZL24RC6W")
    assert triggered.services == ("Checkout API", "PF9KMXH")
    assert triggered.started_at == datetime(2024, 2, 28, 9, tzinfo=UTC)
    assert triggered.finished_at is None
    resolved = pagerduty_signal(load_event("pagerduty_incident_resolved.json"))
    assert (resolved.action, resolved.finished_at) == (
        IncidentAction.RESOLVE,
        datetime(2024, 2, 28, 10, 30, tzinfo=UTC),
    )
    assert pagerduty_signal(load_event("pagerduty_incident_acknowledged.json")).action is IncidentAction.IGNORE
    assert pagerduty_signal({"unexpected": True}).action is IncidentAction.IGNORE


def test_opsgenie_payloads_become_signals_with_ms_and_ns_times() -> None:
    created = opsgenie_signal(load_event("opsgenie_alert_create.json"))
    assert created.action is IncidentAction.OPEN
    assert created.delivery_id == "052652ac-5d1c-464a-812a-7dd18bbfba8c:Create"
    assert created.services == ("Payments API", "payments-api")  # entity first, then the service: tag
    assert created.started_at == datetime(2024, 2, 29, 8, tzinfo=UTC)
    closed = opsgenie_signal(load_event("opsgenie_alert_close.json"))
    assert closed.action is IncidentAction.RESOLVE
    assert closed.finished_at is not None
    assert closed.finished_at - datetime(2024, 2, 29, 8, 45, tzinfo=UTC) == timedelta(microseconds=447001)
    assert opsgenie_signal(load_event("opsgenie_alert_acknowledge.json")).action is IncidentAction.IGNORE


@given(
    names=st.lists(
        st.text(min_size=1, max_size=20).filter(lambda s: s == s.strip() and bool(s)),
        min_size=1,
        max_size=5,
        unique_by=str.casefold,
    )
)
def test_every_mapped_name_is_found_by_any_case_of_it(names: list[str]) -> None:
    services = {name: ServiceTarget(project=f"p{i}") for i, name in enumerate(names)}
    for name in names:
        assert map_service(services, ["\x00" * 21, name.casefold()]) == (name, services[name])
    assert map_service(services, []) is None


def test_the_first_mapped_candidate_wins() -> None:
    services = {"Checkout API": ServiceTarget(project="checkout"), "PF9KMXH": ServiceTarget(project="by-id")}
    assert map_service(services, ["checkout api", "PF9KMXH"]) == ("Checkout API", ServiceTarget(project="checkout"))
    assert map_service(services, ["Search", "pf9kmxh"]) == ("PF9KMXH", ServiceTarget(project="by-id"))
    assert map_service(services, ["Search"]) is None


def _stored(finished_at: str | None) -> FailureEvent:
    return FailureEvent(
        id=failure_id(IncidentSource.PAGERDUTY, "P1"),
        space_id="Spaces-1",
        source=Source.PAGERDUTY,
        projects=["checkout"],
        project_ids=["Projects-1"],
        environment="production",
        environment_id="Environments-1",
        started_at="2024-02-28T09:00:00.000Z",
        finished_at=finished_at,
        received_at="2024-02-28T09:00:05.000Z",
        body_hash="x",
    )


@given(offset=st.integers(-10_000, 10_000))
def test_a_resolution_never_ends_before_the_start_and_renews_the_hash(offset: int) -> None:
    stored = _stored(None)
    end = datetime(2024, 2, 28, 9, tzinfo=UTC) + timedelta(seconds=offset)
    resolved = resolved_failure(stored, end)
    assert resolved.finished_at is not None and resolved.finished_at >= resolved.started_at
    assert resolved.body_hash != stored.body_hash
    assert resolved.model_dump(exclude={"finished_at", "body_hash"}) == stored.model_dump(
        exclude={"finished_at", "body_hash"}
    )


def test_only_a_later_resolution_moves_the_end() -> None:
    ended = _stored("2024-02-28T10:30:00.000Z")
    assert later_finish(_stored(None), datetime(2024, 2, 28, 9, tzinfo=UTC))
    assert later_finish(ended, datetime(2024, 2, 28, 11, tzinfo=UTC))
    assert not later_finish(ended, datetime(2024, 2, 28, 10, 30, tzinfo=UTC))


def test_an_incident_draft_names_the_mapped_project_and_the_incident() -> None:
    signal = pagerduty_signal(load_event("pagerduty_incident_resolved.json"))
    draft = draft_of(
        IncidentSource.PAGERDUTY,
        signal,
        ServiceTarget(project="checkout", environment="prod"),
        finished_at=signal.finished_at,
    )
    assert (draft.client_id, draft.projects, draft.environment) == ("pagerduty-Q0RIJJZL24RC6W", ("checkout",), "prod")
    assert draft.source is Source.PAGERDUTY
    assert draft.finished_at == datetime(2024, 2, 28, 10, 30, tzinfo=UTC)
    assert draft.tags == ("pagerduty_incident:Q0RIJJZL24RC6W",)


def test_the_same_end_at_a_finer_precision_is_not_later() -> None:
    ended = _stored("2024-02-28T10:30:00.447Z")
    assert not later_finish(ended, datetime(2024, 2, 28, 10, 30, 0, 447001, tzinfo=UTC))
    assert later_finish(ended, datetime(2024, 2, 28, 10, 30, 0, 448000, tzinfo=UTC))
