"""Incident webhooks (PagerDuty, Opsgenie) as failure events: the tool-neutral rules. Pure values.

A dialect turns one webhook delivery into an :class:`IncidentSignal`: *open* (PagerDuty
``incident.triggered``, Opsgenie ``Create``), *resolve* (``incident.resolved``, ``Close``) or
*ignore* (acknowledgements and everything else). The space's :class:`IncidentSourceConfig` maps the
tool's service name to the project and environment the failure concerns; an unmapped service is
ignored, never guessed. One incident is one failure event with a stable id
(:func:`failure_id`), so a trigger and its resolution meet whatever order they arrive in, and
its TimeToRestore (METRICS §3) is ``finished_at - started_at``.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict

from dora_insights.domain.base import Model
from dora_insights.domain.failures import FailureDraft
from dora_insights.domain.model import FailureEvent, Source
from dora_insights.domain.times import format_instant, parse_stored


class IncidentSource(StrEnum):
    """The incident tools that can post webhooks; the value is the path segment and key part."""

    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"

    @property
    def failure_source(self) -> Source:
        """The ``source`` of the failure events it records."""
        return Source(self.value)


class IncidentAction(StrEnum):
    """What a delivery does to the incident's failure event."""

    OPEN = "open"
    RESOLVE = "resolve"
    IGNORE = "ignore"


class ServiceTarget(Model):
    """Where a tool's service lands: a project and an environment (None: the space's default)."""

    model_config = ConfigDict(frozen=True)

    project: str
    environment: str | None = None


class IncidentSourceConfig(Model):
    """One tool's configuration in a space (pattern 110).

    ``signing_secret_encrypted`` is PagerDuty's signing secret (HMAC needs the secret itself, so it
    cannot be hashed) encrypted with the stack's KMS key under :func:`signing_context` (base64 of the
    ciphertext, ``dal.secrets``); ``signing_secret`` is the same secret as items written before it was
    encrypted hold it (read so that such a space keeps verifying, never written again: the next write
    of the configuration encrypts it). ``secret_sha256`` is the hash of Opsgenie's shared header value
    (compared hashed, the value is never stored). ``services`` is keyed by the tool's service name as
    the admin wrote it; lookups ignore case.
    """

    space_id: str
    source: IncidentSource
    signing_secret: str | None = None
    signing_secret_encrypted: str | None = None
    secret_sha256: str | None = None
    secret_set_at: str
    services: dict[str, ServiceTarget]
    updated_at: str

    def target(self, candidates: Iterable[str]) -> tuple[str, ServiceTarget] | None:
        """The first candidate name that is mapped, with its target; None when none is."""
        return map_service(self.services, candidates)


def signing_context(space_id: str, source: IncidentSource) -> dict[str, str]:
    """The KMS encryption context a tool's signing secret is encrypted under: its space and purpose, so
    a ciphertext copied into another space's (or another tool's) configuration does not decrypt there."""
    return {"space": space_id, "purpose": f"{source.value}-signing"}


def map_service(services: Mapping[str, ServiceTarget], candidates: Iterable[str]) -> tuple[str, ServiceTarget] | None:
    """The first of ``candidates`` (in order) that names a mapped service, case-insensitively."""
    folded = {name.casefold(): (name, target) for name, target in services.items()}
    for candidate in candidates:
        found = folded.get(candidate.strip().casefold()) if candidate else None
        if found is not None:
            return found
    return None


class IncidentSignal(Model):
    """One webhook delivery in tool-neutral terms.

    ``delivery_id`` identifies the delivery for idempotency (PagerDuty's event id, Opsgenie's
    ``<alertId>:<action>``); ``services`` are the names the mapping is looked up by, best first;
    ``started_at`` is when the incident began (its creation), ``finished_at`` when it was resolved
    (only for ``resolve``).
    """

    model_config = ConfigDict(frozen=True)

    action: IncidentAction
    event: str
    delivery_id: str | None = None
    incident_id: str | None = None
    services: tuple[str, ...] = ()
    title: str | None = None
    severity: str | None = None
    team: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def failure_id(source: IncidentSource, incident_id: str) -> str:
    """The failure event id of one incident: stable, so its trigger and resolution meet."""
    return f"{source.value}-{incident_id}"


def draft_of(
    source: IncidentSource, signal: IncidentSignal, target: ServiceTarget, *, finished_at: datetime | None
) -> FailureDraft:
    """The failure event of an incident on a mapped service (open when ``finished_at`` is None)."""
    if signal.incident_id is None or signal.started_at is None:
        raise ValueError("an incident to record needs its id and start")
    finish = None if finished_at is None else max(finished_at, signal.started_at)
    return FailureDraft(
        source=source.failure_source,
        client_id=failure_id(source, signal.incident_id),
        projects=(target.project,),
        environment=target.environment,
        name=signal.title,
        severity=signal.severity,
        started_at=signal.started_at,
        finished_at=finish,
        team=signal.team,
        tags=(f"{source.value}_incident:{signal.incident_id}",),
    )


def later_finish(stored: FailureEvent, finished_at: datetime) -> bool:
    """Whether a resolution at ``finished_at`` moves the stored failure's end: an open failure
    takes it; a resolved one only a later end (an incident reopened and resolved again ends last),
    compared at the stored precision (milliseconds: Opsgenie's nanoseconds would always be later)."""
    return stored.finished_at is None or parse_stored(format_instant(finished_at)) > parse_stored(stored.finished_at)


def resolved_failure(stored: FailureEvent, finished_at: datetime) -> FailureEvent:
    """The stored failure ended at ``finished_at`` (never before it started), its content hash renewed."""
    end = max(finished_at, parse_stored(stored.started_at))
    ended = stored.model_copy(update={"finished_at": format_instant(end)})
    canonical = ended.model_dump_json(exclude={"body_hash", "received_at"})
    return ended.model_copy(update={"body_hash": hashlib.sha256(canonical.encode()).hexdigest()})


@dataclass(frozen=True)
class IncidentOutcome:
    """What a delivery did: ``status`` ``opened``, ``already_open``, ``resolved``, ``already_resolved``,
    ``duplicate``, ``ignored`` or ``unmapped``; the failure event it concerns when there is one."""

    status: str
    message: str
    failure: FailureEvent | None = None
    created: bool = False
