"""The ports of the saved-insight use cases (``logic.insights``, ``logic.alerts``): the insight
repository and the object those use cases take, which hands it out.

``dal.insights.InsightStore`` implements both repositories over the table and
``dal.repositories.Repositories.insights()`` hands it out (structurally: dal never imports logic);
``tests/unit/logic/test_insights_logic.py`` implements them in memory. Keys, item shapes,
conditions and page sizes stay behind these Protocols, in ``dal``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from dora_insights.logic.ports import Ports  # the base of ``InsightPorts``

if TYPE_CHECKING:  # annotations only
    from dora_insights.dal.events import Event
    from dora_insights.domain.insights import (
        ActivityEntry,
        DailyViews,
        Insight,
        LastView,
        Person,
        ShareSession,
        Sharing,
        Threshold,
    )

__all__ = ["AlertRepository", "InsightPorts", "InsightRepository"]


class AlertRepository(Protocol):
    """What the scheduled threshold pass uses: the insights it checks, every threshold of a space and
    the alert events still owed (the outbox, ``logic.alerts``)."""

    def get(self, space_id: str, insight_id: int) -> Insight | None:
        """A stored insight (deleted ones too), or None."""
        ...

    def thresholds_with_outbox(self, space_id: str) -> tuple[list[Threshold], list[Event]]:
        """Every threshold of the space and every alert event still to deliver."""
        ...

    def record_check(
        self, space_id: str, threshold: Threshold, *, checked_before: str | None, notify: Event | None
    ) -> bool:
        """Save a check of a threshold (its ``state``, ``last_checked_at``, ``last_value`` and ``checks``,
        nothing else: a PATCH of its settings meanwhile holds) and, together, the event it owes; False,
        writing nothing, when the threshold is gone or another run checked it since it was read (its
        ``last_checked_at`` is no longer ``checked_before``)."""
        ...

    def clear_notification(self, space_id: str, notification_id: str) -> None:
        """Remove a delivered event from the outbox (already gone is fine)."""
        ...


class InsightRepository(AlertRepository, Protocol):
    """Every insight item of a space: insights with their activity log, views, sharing (links,
    passwords, sessions, login attempts) and thresholds."""

    # --- insights
    def get_many(self, space_id: str, insight_ids: Iterable[int]) -> dict[int, Insight]:
        """The stored insights of these ids (deleted ones too; an id with no insight left out), by id,
        in a few calls."""
        ...

    def list_all(self, space_id: str) -> list[Insight]:
        """Every insight of the space, deleted ones too, as the last writes left them (the list reads
        what a write a moment ago stored, as the retrieve of one does)."""
        ...

    def create(self, space_id: str, insight: Insight, activity: ActivityEntry, unique: str) -> None:
        """Store a new insight with its activity entry (``unique`` tells entries of the same instant apart)."""
        ...

    def replace(
        self, space_id: str, insight: Insight, *, expected_version: int, activity: ActivityEntry | None, unique: str
    ) -> None:
        """Write the new version (and its activity entry) unless the stored one is no longer
        ``expected_version`` (``ResourceConflictError``)."""
        ...

    # --- views
    def record_view(
        self, space_id: str, insight_id: int, viewer: Person, viewer_key: str, day: str, at: str, expires: int
    ) -> None:
        """Count a view once per viewer, insight and day, and remember the viewer's last view; the day's
        count keeps a few of its latest viewers (``DailyViews``), however many there were."""
        ...

    def last_viewed(self, space_id: str, viewer_key: str) -> list[LastView]:
        """The viewer's last view of each insight they viewed."""
        ...

    def last_viewed_of(self, space_id: str, viewer_key: str, insight_id: int) -> str | None:
        """When the viewer last viewed the insight, or None."""
        ...

    def view_counts(self, space_id: str, days: Iterable[str]) -> list[DailyViews]:
        """The per-day view counts of the space on these days."""
        ...

    # --- activity
    def newest_activity(self, space_id: str, insight_id: int | None, count: int) -> list[ActivityEntry]:
        """The newest ``count`` entries (fewer when there are fewer), newest first: of one insight, or
        of the space when ``insight_id`` is None."""
        ...

    def activity_count(self, space_id: str, insight_id: int | None) -> int:
        """How many entries the log has (of one insight, or of the space)."""
        ...

    # --- sharing
    def get_sharing(self, space_id: str, insight_id: int) -> Sharing | None:
        """The insight's sharing configuration, or None before its first use."""
        ...

    def put_sharing(
        self,
        space_id: str,
        insight_id: int,
        sharing: Sharing,
        *,
        expected_version: int | None,
        new_token_hash: str | None = None,
        old_token_hash: str | None = None,
    ) -> Sharing:
        """Write the configuration, and swap its token lookup (the old token is dead at once), together:
        created when ``expected_version`` is None, else only while the stored version is that one (a
        configuration stored before versions counts as 0). A lost race is a ``ResourceConflictError``
        and writes nothing, so a concurrent delete of a password is never undone by an add that read
        the list before it. The configuration as written (its new ``version``)."""
        ...

    def resolve_share_token(self, token_hash: str) -> tuple[str, int] | None:
        """(space, insight id) of a link's access token, by its hash; None for an unknown or revoked one."""
        ...

    def put_session(self, session_hash: str, session: ShareSession) -> None:
        """Store a share session by its token's hash, bound to the password that opened it and to the
        link's access token (by hash), until it expires."""
        ...

    def get_session(self, session_hash: str) -> ShareSession | None:
        """A share session by its token's hash, or None."""
        ...

    def reserve_login_attempt(self, space_id: str, insight_id: int, at: str, limit: int, counts_until: int) -> bool:
        """Count one login attempt of a link, made at the instant ``at`` and counting until the epoch second
        ``counts_until``, unless ``limit`` of its attempts still count at ``at`` (False then)."""
        ...

    def release_login_attempt(self, space_id: str, insight_id: int, at: str) -> None:
        """Give back the attempt made at ``at``: it turned out to be a successful login."""
        ...

    # --- thresholds
    def thresholds_of(self, space_id: str, insight_id: int) -> list[Threshold]:
        """Every threshold of one insight, as the last writes left them."""
        ...

    def get_threshold(self, space_id: str, insight_id: int, threshold_id: str) -> Threshold | None:
        """One threshold, or None."""
        ...

    def put_threshold(self, space_id: str, threshold: Threshold, *, create: bool = False) -> None:
        """``create``: store a new threshold (it must not exist yet). Otherwise write its settings alone
        (never its state or checks, which ``record_check`` writes), and only while it exists with the
        settings version it was read with, ``threshold.version`` (then one more): else a
        ``ResourceConflictError``, nothing written (a deleted threshold is never brought back)."""
        ...

    def delete_threshold(
        self,
        space_id: str,
        insight_id: int,
        threshold_id: str,
        *,
        checked_before: str | None,
        notify: Event | None,
        at: str,
    ) -> bool:
        """Delete a threshold no check has been recorded on since it was read (its ``last_checked_at``
        is still ``checked_before``), with, together, the event its end owes (``notify``, queued at
        ``at``); False, nothing written, when it is gone or was checked meanwhile."""
        ...


class InsightPorts(Ports, Protocol):
    """What the insight use cases take: the ports of every use case (reports, counters, metrics)
    and the insight repository."""

    def insights(self) -> InsightRepository:
        """The saved insights of every space."""
        ...
