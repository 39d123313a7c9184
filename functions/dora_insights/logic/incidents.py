"""Incident webhooks (PagerDuty, Opsgenie) -> failure events with TimeToRestore (METRICS §3).

Configuration (admin): per space and tool, the secret that authenticates its webhooks and the
mapping from the tool's service name to a project and environment (``configure``). Opsgenie's
secret is kept as its SHA-256; PagerDuty's signs an HMAC, so it is kept encrypted with the stack's
KMS key under the space's encryption context (``SecretBox``, ``dal.secrets``) and decrypted to check
a delivery (:func:`signing_key`). A configuration stored before the secret was encrypted holds it as
given: it still verifies, and the next ``configure`` of that space and tool encrypts it (whether or
not the request sets a new secret).

A delivery (``receive``), once authenticated by its dialect against that configuration:

- *ignore* (acknowledged, annotated, ...): nothing is read or written;
- a delivery applied before (PagerDuty event id, Opsgenie ``alertId:action``): nothing changes;
- *open*: the incident's failure event (id ``<tool>-<incident id>``) is recorded open; when it exists
  (a repeated trigger, or its resolution came first), it takes the trigger's service, title, severity and
  team, keeping its end (``_triggered_again``: a resolution names them as they are at its end);
- *resolve*: the stored failure gets its ``finished_at`` (a later one wins: reopened and resolved
  again), or, when the trigger never came, it is recorded resolved from the incident's start;
- a failure to create for a service the space has not mapped is ignored (202), never guessed; a
  resolution so ignored keeps its end for the incident's trigger, which may be mapped (Opsgenie sends
  ``details`` with Create only): the trigger then records the failure resolved.

Each step is idempotent and the delivery is remembered after it, so a crash in between and the
tool's redelivery end in the same state. The failure is read consistently: a resolution often follows
its trigger within a second, and one that missed the open event would try to create it and meet it as
a conflict (409). A resolution concurrent writes kept from going through is a 503 with nothing changed
(``dal.incidents``): the tool redelivers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from dora_insights.domain.failures import FailureOutcome
from dora_insights.domain.ids import new_secret, sha256_hex
from dora_insights.domain.incidents import (
    IncidentAction,
    IncidentOutcome,
    IncidentSignal,
    IncidentSource,
    IncidentSourceConfig,
    ServiceTarget,
    draft_of,
    failure_id,
    later_finish,
    resolved_failure,
    signing_context,
)
from dora_insights.domain.model import FailureEvent
from dora_insights.domain.records import SpaceRecord
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError, WriteContendedError
from dora_insights.logic import failures
from dora_insights.logic.ports import Ports, SecretBox
from dora_insights.observability import logger

__all__ = [
    "IncidentPorts",
    "IncidentRepository",
    "configure",
    "get_config",
    "receive",
    "signing_key",
    "webhook_config",
]

GENERATED_SECRET_PREFIX = "og_"
TOOL_NAMES = {IncidentSource.PAGERDUTY: "PagerDuty", IncidentSource.OPSGENIE: "Opsgenie"}


class IncidentRepository(Protocol):
    """Configuration, applied deliveries and resolutions (``dal.incidents.IncidentStore``)."""

    def get_config(self, space_id: str, source: IncidentSource) -> IncidentSourceConfig | None: ...

    def put_config(self, config: IncidentSourceConfig) -> None: ...

    def delivery_seen(self, space_id: str, source: IncidentSource, delivery_id: str, now: datetime) -> bool: ...

    def remember_delivery(
        self, space_id: str, source: IncidentSource, delivery_id: str, *, event: str, failure_id: str, now: datetime
    ) -> None: ...

    def place(self, placed: FailureEvent, previous: FailureEvent, *, now: str) -> bool: ...

    def resolve(self, resolved: FailureEvent, *, now: str) -> bool: ...

    def hold_resolution(
        self, space_id: str, source: IncidentSource, incident_id: str, finished_at: datetime, *, now: datetime
    ) -> None: ...

    def held_resolution(
        self, space_id: str, source: IncidentSource, incident_id: str, now: datetime
    ) -> datetime | None: ...


class IncidentPorts(Ports, Protocol):
    """``Ports`` plus the incident repository (``dal.repositories.Repositories.incidents``)."""

    def incidents(self) -> IncidentRepository: ...


# --- configuration --------------------------------------------------------------------------
def configure(
    store: IncidentPorts,
    secrets: SecretBox,
    space_id: str,
    source: IncidentSource,
    *,
    secret: str | None,
    services: Mapping[str, ServiceTarget] | None,
    now: datetime,
) -> tuple[IncidentSourceConfig, str | None]:
    """Set the tool's secret and/or service mapping; the secret generated here (shown once), if any.

    ``secret`` None keeps the stored one; on a first configuration PagerDuty's is required (PagerDuty
    generates it with the webhook subscription), Opsgenie's is generated. ``services`` None keeps
    the stored mapping, else replaces it. PagerDuty's is stored encrypted (``secrets.seal``), a kept
    one as it was unless it was stored before encryption: then it is encrypted now.
    """
    if store.get_space(space_id, consistent=True) is None:  # a space created a moment ago is there
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    repository = store.incidents()
    existing = repository.get_config(space_id, source)
    generated: str | None = None
    stamp = format_instant(now)
    context = signing_context(space_id, source)
    sealed: str | None
    if secret is None and existing is not None:
        sealed, hashed, set_at = existing.signing_secret_encrypted, existing.secret_sha256, existing.secret_set_at
        if sealed is None and existing.signing_secret is not None:  # stored before encryption: encrypt it now
            sealed = secrets.seal(existing.signing_secret, context)
            logger.info("legacy signing secret encrypted", extra={"space_id": space_id, "source": source.value})
    else:
        if secret is None:  # a first configuration without a secret
            if source is IncidentSource.PAGERDUTY:
                raise RequestInvalidError(
                    "secret is required: PagerDuty shows the subscription's signing secret when you create the"
                    " webhook subscription",
                    field="secret",
                )
            secret = generated = new_secret(GENERATED_SECRET_PREFIX)
        # PagerDuty's is kept encrypted (HMAC needs it); Opsgenie sends it as it is, so its hash is enough.
        if source is IncidentSource.PAGERDUTY:
            sealed, hashed = secrets.seal(secret, context), None
        else:
            sealed, hashed = None, sha256_hex(secret)
        set_at = stamp
    mapping = dict(services) if services is not None else dict(existing.services if existing else {})
    config = IncidentSourceConfig(
        space_id=space_id,
        source=source,
        signing_secret_encrypted=sealed,
        secret_sha256=hashed,
        secret_set_at=set_at,
        services=mapping,
        updated_at=stamp,
    )
    repository.put_config(config)
    return config, generated


def get_config(store: IncidentPorts, space_id: str, source: IncidentSource) -> IncidentSourceConfig:
    """The tool's configuration in the space, or 404."""
    if store.get_space(space_id, consistent=True) is None:  # a space created a moment ago is there
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    config = store.incidents().get_config(space_id, source)
    if config is None:
        raise ResourceNotFoundError(f"{TOOL_NAMES[source]} webhooks are not configured in this space")
    return config


def webhook_config(store: IncidentPorts, space_id: str, source: IncidentSource) -> IncidentSourceConfig | None:
    """The configuration a webhook is checked against (as stored now), None when there is none."""
    return store.incidents().get_config(space_id, source)


def signing_key(secrets: SecretBox, config: IncidentSourceConfig) -> str | None:
    """The secret a delivery's signature is checked with: PagerDuty's, decrypted (a legacy one as stored);
    None for Opsgenie (its header is compared hashed) and for a ciphertext that does not decrypt under
    the configuration's own space (copied from another item: no delivery verifies, so it answers 401).

    KMS refusing the key itself (disabled, no ``kms:Decrypt``) is a ``ServiceUnavailableError`` (503)."""
    if config.source is not IncidentSource.PAGERDUTY:
        return None
    if config.signing_secret_encrypted is None:
        return config.signing_secret
    opened = secrets.open(config.signing_secret_encrypted, signing_context(config.space_id, config.source))
    if opened is None:
        logger.error(
            "the stored signing secret does not decrypt for this space: set it again",
            extra={"space_id": config.space_id, "source": config.source.value},
        )
    return opened


# --- deliveries -----------------------------------------------------------------------------
def receive(
    store: IncidentPorts,
    space: SpaceRecord,
    config: IncidentSourceConfig,
    signal: IncidentSignal,
    now: datetime,
) -> IncidentOutcome:
    """Apply one authenticated delivery (module docstring)."""
    source, tool = config.source, TOOL_NAMES[config.source]
    if signal.action is IncidentAction.IGNORE or signal.incident_id is None:
        return IncidentOutcome("ignored", f"ignored: {tool} event '{signal.event[:60]}' changes no failure event")
    repository = store.incidents()
    if signal.delivery_id and repository.delivery_seen(space.id, source, signal.delivery_id, now):
        return IncidentOutcome("duplicate", "delivery already processed")
    fid = failure_id(source, signal.incident_id)
    # Consistent: a resolution often follows its trigger within a second, and one that missed the open
    # event would try to create it and meet it as a conflict.
    existing = store.failures().get(space.id, fid, consistent=True)
    if existing is not None:
        outcome = _update(store, space, config, existing, signal, now)
    else:
        outcome = _create(store, space, config, signal, now)
    if outcome.failure is not None and signal.delivery_id:
        repository.remember_delivery(space.id, source, signal.delivery_id, event=signal.event, failure_id=fid, now=now)
    return outcome


def _update(
    store: IncidentPorts,
    space: SpaceRecord,
    config: IncidentSourceConfig,
    existing: FailureEvent,
    signal: IncidentSignal,
    now: datetime,
) -> IncidentOutcome:
    source = config.source
    tool = TOOL_NAMES[source]
    if existing.source is not source.failure_source:  # a native event took the id: never touch it
        return IncidentOutcome("ignored", f"ignored: failure event '{existing.id}' was not recorded by {tool}")
    if signal.action is IncidentAction.OPEN:
        return _triggered_again(store, space, config, existing, signal, now)
    finished = signal.finished_at or now
    if not later_finish(existing, finished):
        return IncidentOutcome("already_resolved", f"{tool} incident already resolved", existing)
    resolved = resolved_failure(existing, finished)
    if store.incidents().resolve(resolved, now=format_instant(now)):
        return IncidentOutcome("resolved", f"{tool} incident resolved", resolved)
    current = store.failures().get(existing.space_id, existing.id, consistent=True) or existing  # another won
    return IncidentOutcome("already_resolved", f"{tool} incident already resolved", current)


def _create(
    store: IncidentPorts,
    space: SpaceRecord,
    config: IncidentSourceConfig,
    signal: IncidentSignal,
    now: datetime,
) -> IncidentOutcome:
    tool = TOOL_NAMES[config.source]
    mapped = config.target(signal.services)
    if mapped is None:
        if signal.action is IncidentAction.RESOLVE and signal.incident_id is not None:
            # Its trigger may still come and be mapped (Opsgenie sends ``details`` with Create only).
            end = signal.finished_at or now
            store.incidents().hold_resolution(space.id, config.source, signal.incident_id, end, now=now)
        named = signal.services[0] if signal.services else ""
        logger.info(
            "incident ignored: service not mapped",
            extra={"space_id": space.id, "source": config.source.value, "service": named[:200]},
        )
        return IncidentOutcome(
            "unmapped",
            f"ignored: {tool} service '{named[:200]}' is not mapped to a project"
            f" (map it with PUT /api/{space.id}/webhooks/{config.source.value})",
        )
    _, target = mapped
    finished = (signal.finished_at or now) if signal.action is IncidentAction.RESOLVE else None
    if finished is None and signal.incident_id is not None:  # a trigger: did its resolution come first?
        finished = store.incidents().held_resolution(space.id, config.source, signal.incident_id, now)
    draft = draft_of(config.source, signal, target, finished_at=finished)
    try:
        recorded: FailureOutcome = failures.record_failure(store, space, draft, now)
    except ResourceConflictError:  # another delivery of the same incident recorded it meanwhile
        stored = store.failures().get(space.id, failure_id(config.source, signal.incident_id or ""), consistent=True)
        if stored is None:  # pragma: no cover - the conflict means it exists
            raise
        return _update(store, space, config, stored, signal, now)
    status = "resolved" if finished is not None else "opened"
    verb = "resolved" if finished is not None else "recorded"
    return IncidentOutcome(status, f"{tool} incident {verb}", recorded.failure, created=recorded.created)


def _triggered_again(
    store: IncidentPorts,
    space: SpaceRecord,
    config: IncidentSourceConfig,
    existing: FailureEvent,
    signal: IncidentSignal,
    now: datetime,
) -> IncidentOutcome:
    """A trigger for a failure already recorded: a repeat, or its resolution came first. The trigger says
    where the incident counts and what it is (service, title, severity, team): a resolution names them as
    they are at its end, after the incident was moved to another service or its priority changed. So the
    failure takes the trigger's, keeping its end, and the arrival order changes nothing (a trigger on a
    service not mapped keeps the failure where it is)."""
    tool = TOOL_NAMES[config.source]
    already = IncidentOutcome("already_open", f"{tool} incident already recorded", existing)
    mapped = config.target(signal.services)
    if mapped is None or signal.started_at is None:
        return already
    end = parse_stored(existing.finished_at) if existing.finished_at is not None else None
    placed, _ = failures.build_failure(store, space, draft_of(config.source, signal, mapped[1], finished_at=end), now)
    placed = placed.model_copy(update={"received_at": existing.received_at})
    if _as_placed(placed) == _as_placed(existing):
        return already
    if not store.incidents().place(placed, existing, now=format_instant(now)):
        raise WriteContendedError(f"the {tool} incident changed meanwhile; the delivery can be sent again")
    return IncidentOutcome("opened", f"{tool} incident recorded as its trigger says", placed)


def _as_placed(failure: FailureEvent) -> dict[str, object]:
    """What a trigger decides of a failure: all but its hashes and when it was received."""
    return failure.model_dump(exclude={"body_hash", "request_hashes", "received_at"})
