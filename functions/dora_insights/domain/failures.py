"""The failure-event draft every dialect maps onto (METRICS §2 rule 4, §3 TimeToRestore). Pure values."""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ConfigDict

from dora_insights.domain.model import Draft, FailureEvent, Source, Version


class FailureDraft(Draft):
    """A failure event as a dialect hands it to the core: names, not catalogue ids.

    ``environment`` None means the space's default environment; ``finished_at`` None: still open.
    """

    model_config = ConfigDict(frozen=True)

    source: Source = Source.NATIVE
    client_id: str | None = None
    projects: tuple[str, ...]
    environment: str | None = None
    name: str | None = None
    severity: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    deployment_id: str | None = None
    commit_sha: str | None = None
    repository: str | None = None
    team: str | None = None
    version: Version = None
    tags: tuple[str, ...] = ()

    def fingerprint(self, default_environment: str | None = None) -> str:
        """A hash of the event's content: the same request again has the same fingerprint. With the space's
        ``default_environment`` (the stored ``body_hash``), naming no environment hashes as naming it."""
        draft = self
        if default_environment is not None and self.environment is None:
            draft = self.model_copy(update={"environment": default_environment})
        canonical = draft.model_dump_json(exclude={"client_id"})
        return hashlib.sha256(canonical.encode()).hexdigest()


def unique_names(names: Iterable[str]) -> tuple[str, ...]:
    """Names in first-seen order without case-insensitive duplicates."""
    seen: set[str] = set()
    kept: list[str] = []
    for name in names:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            kept.append(name)
    return tuple(kept)


@dataclass(frozen=True)
class FailureOutcome:
    """Result of an idempotent create: the stored event and whether this call created it."""

    failure: FailureEvent
    created: bool
