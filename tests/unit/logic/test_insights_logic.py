"""Saved insights use cases (``logic.insights``) and the threshold pass (``logic.alerts``) over an
in-memory ``InsightRepository`` (``logic.insight_ports``): create, PATCH with its activity log,
soft delete, list order and activity pages, views, sharing, thresholds and their alert outbox.
No AWS, no moto."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.dal.events import Event
from dora_insights.domain.insights import (
    THRESHOLD_SETTINGS,
    ActivityEntry,
    ActivityKind,
    Bounds,
    Condition,
    DailyViews,
    DoraMetricsQuery,
    Insight,
    InsightChanges,
    InsightDraft,
    LastView,
    Person,
    ShareSession,
    Sharing,
    SharingChanges,
    Threshold,
    ThresholdChanges,
    ThresholdSettings,
    ThresholdState,
    Viewer,
)
from dora_insights.domain.reports import ReportDefinition
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.errors import (
    AuthenticationInvalidError,
    RequestInvalidError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from dora_insights.logic import alerts, insights
from dora_insights.logic.auth import Principal
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts

REPORT = "InsightsReports-1"
ADMIN = Principal(space_id=SPACE, key_id="ApiKeys-1", name="ci", user="ada@example.com", scopes=frozenset({"admin"}))
BOB = Principal(space_id=SPACE, key_id="ApiKeys-2", name="bob", user=None, scopes=frozenset({"admin"}))


class FakeInsights:
    """``InsightRepository`` (and ``AlertRepository``) over dicts, keeping the contracts the use cases
    rely on: creates that must not exist, versioned replaces (409), a view counted once per viewer,
    insight and day, newest-first activity, versioned sharing with its token lookup, thresholds and
    their outbox with the conditional check."""

    def __init__(self) -> None:
        self.insights: dict[tuple[str, int], Insight] = {}
        self.activity: list[tuple[str, ActivityEntry, str]] = []  # (space, entry, unique)
        self.views: set[tuple[str, str, int, str]] = set()  # (space, day, insight, viewer)
        self.counts: dict[tuple[str, str, int], DailyViews] = {}
        self.last_views: dict[tuple[str, str, int], str] = {}
        self.sharing: dict[tuple[str, int], Sharing] = {}
        self.tokens: dict[str, tuple[str, int]] = {}
        self.sessions: dict[str, ShareSession] = {}
        self.attempts: dict[tuple[str, int], list[tuple[str, int]]] = {}
        self.thresholds: dict[tuple[str, str], Threshold] = {}
        self.outbox: dict[tuple[str, str], Event] = {}

    # --- insights
    def get(self, space_id: str, insight_id: int) -> Insight | None:
        return self.insights.get((space_id, insight_id))

    def get_many(self, space_id: str, insight_ids: Iterable[int]) -> dict[int, Insight]:
        return {n: found for n in insight_ids if (found := self.get(space_id, n)) is not None}

    def list_all(self, space_id: str) -> list[Insight]:
        return [i for (space, _), i in sorted(self.insights.items()) if space == space_id]

    def create(self, space_id: str, insight: Insight, activity: ActivityEntry, unique: str) -> None:
        if (space_id, insight.id) in self.insights:
            raise ResourceConflictError("exists")
        self.insights[(space_id, insight.id)] = insight
        self.activity.append((space_id, activity, unique))

    def replace(
        self, space_id: str, insight: Insight, *, expected_version: int, activity: ActivityEntry | None, unique: str
    ) -> None:
        current = self.insights.get((space_id, insight.id))
        if current is None or current.version != expected_version:
            raise ResourceConflictError("the insight was changed by another request; retry")
        self.insights[(space_id, insight.id)] = insight
        if activity is not None:
            self.activity.append((space_id, activity, unique))

    # --- views
    def record_view(
        self, space_id: str, insight_id: int, viewer: Person, viewer_key: str, day: str, at: str, expires: int
    ) -> None:
        self.last_views[(space_id, viewer_key, insight_id)] = at
        if (space_id, day, insight_id, viewer_key) in self.views:
            return
        self.views.add((space_id, day, insight_id, viewer_key))
        before = self.counts.get((space_id, day, insight_id), DailyViews(insight_id=insight_id, view_count=0))
        seen = Viewer(first_name=viewer.first_name, email=viewer.email, viewed_at=at)
        self.counts[(space_id, day, insight_id)] = before.model_copy(
            update={
                "view_count": before.view_count + 1,
                "last_viewed_at": at,
                "recent_viewers": (seen, *before.recent_viewers)[:3],  # the latest few, as the table keeps
            }
        )

    def last_viewed(self, space_id: str, viewer_key: str) -> list[LastView]:
        return [
            LastView(insight_id=i, viewed_at=at)
            for (space, who, i), at in self.last_views.items()
            if (space, who) == (space_id, viewer_key)
        ]

    def last_viewed_of(self, space_id: str, viewer_key: str, insight_id: int) -> str | None:
        return self.last_views.get((space_id, viewer_key, insight_id))

    def view_counts(self, space_id: str, days: Iterable[str]) -> list[DailyViews]:
        wanted = set(days)
        return [c for (space, day, _), c in self.counts.items() if space == space_id and day in wanted]

    # --- activity
    def _log(self, space_id: str, insight_id: int | None) -> list[ActivityEntry]:
        entries = [
            (e.created_at, unique, e)
            for space, e, unique in self.activity
            if space == space_id and insight_id in (None, e.item_id)
        ]
        return [e for _, _, e in sorted(entries, key=lambda t: (t[0], t[1]), reverse=True)]

    def newest_activity(self, space_id: str, insight_id: int | None, count: int) -> list[ActivityEntry]:
        return self._log(space_id, insight_id)[:count]

    def activity_count(self, space_id: str, insight_id: int | None) -> int:
        return len(self._log(space_id, insight_id))

    # --- sharing
    def get_sharing(self, space_id: str, insight_id: int) -> Sharing | None:
        return self.sharing.get((space_id, insight_id))

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
        current = self.sharing.get((space_id, insight_id))
        if (expected_version is None and current is not None) or (
            expected_version is not None and (current is None or current.version != expected_version)
        ):
            raise ResourceConflictError("the sharing configuration was changed by another request; retry")
        written = sharing.model_copy(update={"version": 1 if expected_version is None else expected_version + 1})
        self.sharing[(space_id, insight_id)] = written
        if new_token_hash is not None:
            self.tokens[new_token_hash] = (space_id, insight_id)
        if old_token_hash is not None and old_token_hash != new_token_hash:
            self.tokens.pop(old_token_hash, None)
        return written

    def resolve_share_token(self, token_hash: str) -> tuple[str, int] | None:
        return self.tokens.get(token_hash)

    def put_session(self, session_hash: str, session: ShareSession) -> None:
        self.sessions[session_hash] = session

    def get_session(self, session_hash: str) -> ShareSession | None:
        return self.sessions.get(session_hash)

    def reserve_login_attempt(self, space_id: str, insight_id: int, at: str, limit: int, counts_until: int) -> bool:
        second = int(parse_stored(at).timestamp())
        log = [(a, until) for a, until in self.attempts.get((space_id, insight_id), []) if until > second]
        if len(log) >= limit:
            return False
        self.attempts[(space_id, insight_id)] = [*log, (at, counts_until)]
        return True

    def release_login_attempt(self, space_id: str, insight_id: int, at: str) -> None:
        log = self.attempts.get((space_id, insight_id), [])
        mine = next((n for n, (a, _) in enumerate(log) if a == at), None)
        if mine is not None:
            del log[mine]

    # --- thresholds and their outbox
    def thresholds_of(self, space_id: str, insight_id: int) -> list[Threshold]:
        return [t for (space, _), t in self.thresholds.items() if space == space_id and t.insight == insight_id]

    def get_threshold(self, space_id: str, insight_id: int, threshold_id: str) -> Threshold | None:
        found = self.thresholds.get((space_id, threshold_id))
        return found if found is not None and found.insight == insight_id else None

    def put_threshold(self, space_id: str, threshold: Threshold, *, create: bool = False) -> None:
        current = self.thresholds.get((space_id, threshold.id))
        if create:
            if current is not None:
                raise ResourceConflictError("exists")
            self.thresholds[(space_id, threshold.id)] = threshold
            return
        if current is None or current.version != threshold.version:
            raise ResourceConflictError("the threshold was changed or deleted by another request; retry")
        settings = {field: getattr(threshold, field) for field in THRESHOLD_SETTINGS}
        self.thresholds[(space_id, threshold.id)] = current.model_copy(
            update={**settings, "version": current.version + 1}
        )

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
        current = self.get_threshold(space_id, insight_id, threshold_id)
        if current is None or current.last_checked_at != checked_before:
            return False
        del self.thresholds[(space_id, threshold_id)]
        if notify is not None:
            self.outbox[(space_id, notify.id)] = notify
        return True

    def thresholds_with_outbox(self, space_id: str) -> tuple[list[Threshold], list[Event]]:
        thresholds = [t for (space, _), t in self.thresholds.items() if space == space_id]
        return thresholds, [e for (space, _), e in self.outbox.items() if space == space_id]

    def record_check(
        self, space_id: str, threshold: Threshold, *, checked_before: str | None, notify: Event | None
    ) -> bool:
        current = self.thresholds.get((space_id, threshold.id))
        if current is None or current.last_checked_at != checked_before:
            return False
        check = {field: getattr(threshold, field) for field in ("state", "last_checked_at", "last_value", "checks")}
        self.thresholds[(space_id, threshold.id)] = current.model_copy(update=check)
        if notify is not None:
            self.outbox[(space_id, notify.id)] = notify
        return True

    def clear_notification(self, space_id: str, notification_id: str) -> None:
        self.outbox.pop((space_id, notification_id), None)


class InsightFakePorts(FakePorts):
    """``InsightPorts`` in memory: ``FakePorts`` and the insight repository."""

    def __init__(self) -> None:
        super().__init__()
        self.insight_repository = FakeInsights()

    def insights(self) -> FakeInsights:
        return self.insight_repository


class Bus:
    """An event bus that accepts everything, or refuses everything while ``down``."""

    def __init__(self) -> None:
        self.sent: list[Event] = []
        self.down = False

    def send(self, events: Sequence[Event]) -> dict[str, str | None]:
        if self.down:
            return {e.id: "ThrottlingException" for e in events}
        self.sent.extend(events)
        return {e.id: None for e in events}


@pytest.fixture
def ports() -> InsightFakePorts:
    """Space ``Spaces-1`` with report ``InsightsReports-1`` ("Delivery")."""
    fake = InsightFakePorts()
    fake.add_space()
    stamp = format_instant(NOW)
    fake.reports().create(
        ReportDefinition(id=REPORT, space_id=SPACE, name="Delivery", created_at=stamp, modified_at=stamp)
    )
    return fake


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at N=2^14 (each hash stores its cost; the integration tests check the real one)."""
    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


def draft(**fields: Any) -> InsightDraft:
    query = DoraMetricsQuery.model_validate({"reportId": REPORT, "metric": "deployment_frequency"})
    return InsightDraft.model_validate({"query": query, **fields})


def patch(**fields: Any) -> InsightChanges:
    return InsightChanges(**fields)


# --- create, update, soft delete --------------------------------------------------------------------
def test_create_numbers_the_insight_derives_its_name_and_logs_it(ports: InsightFakePorts) -> None:
    first = insights.create_insight(ports, ADMIN, draft(name="Deploys", tags=("a", "b", "a")), NOW)
    second = insights.create_insight(ports, BOB, draft(), NOW)

    assert (first.id, second.id) == (1, 2)
    assert len(first.short_id) == 8
    assert first.derived_name == "Deployment frequency, weekly, last quarter (Delivery)"
    assert first.tags == ("a", "b")
    assert first.created_by == Person(first_name="ada@example.com", email="ada@example.com")
    assert second.created_by == Person(first_name="bob", email=None)
    assert first.query["reportId"] == REPORT
    assert insights.get_insight(ports, SPACE, 1) == first
    entries, total = insights.activity(ports, SPACE, 1, limit=10, page=1)
    assert total == 1
    assert entries[0].activity is ActivityKind.CREATED
    assert (entries[0].detail.name, entries[0].detail.short_id, entries[0].detail.changes) == (
        "Deploys",
        first.short_id,
        (),
    )


def test_a_query_naming_an_unknown_report_is_a_400_naming_the_field(ports: InsightFakePorts) -> None:
    query = DoraMetricsQuery.model_validate({"reportId": "InsightsReports-9", "metric": "lead_time"})

    with pytest.raises(RequestInvalidError) as raised:
        insights.create_insight(ports, ADMIN, InsightDraft(query=query), NOW)

    assert raised.value.field == "query.reportId"
    assert ports.insights().insights == {}


def test_update_changes_only_the_fields_sent_and_logs_the_diff(ports: InsightFakePorts) -> None:
    created = insights.create_insight(ports, ADMIN, draft(name="Deploys", description="kept", order=3), NOW)
    later = NOW + timedelta(minutes=5)

    updated = insights.update_insight(ports, BOB, 1, patch(name=None, tags=("x", "x", "y")), later)

    assert (updated.name, updated.description, updated.order, updated.tags) == (None, "kept", 3, ("x", "y"))
    assert updated.version == created.version + 1
    assert (updated.last_modified_at, updated.last_modified_by.first_name) == (format_instant(later), "bob")
    assert updated.created_by == created.created_by
    assert insights.get_insight(ports, SPACE, 1) == updated
    entries, total = insights.activity(ports, SPACE, 1, limit=10, page=1)
    assert total == 2
    assert entries[0].activity is ActivityKind.UPDATED
    assert [(c.field, c.before, c.after) for c in entries[0].detail.changes] == [
        ("name", "Deploys", None),
        ("tags", (), ("x", "y")),
    ]


def test_an_update_that_changes_nothing_writes_nothing(ports: InsightFakePorts) -> None:
    created = insights.create_insight(ports, ADMIN, draft(name="Deploys"), NOW)

    same = insights.update_insight(ports, ADMIN, 1, patch(name="Deploys", deleted=None), NOW + timedelta(hours=1))

    assert same == created
    assert insights.activity(ports, SPACE, 1, limit=10, page=1)[1] == 1


def test_a_new_query_renames_the_derived_name_unless_one_is_sent(ports: InsightFakePorts) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)
    lead_time = DoraMetricsQuery.model_validate({"reportId": REPORT, "metric": "lead_time", "statistic": "p95"})

    derived = insights.update_insight(ports, ADMIN, 1, patch(query=lead_time), NOW)
    named = insights.update_insight(ports, ADMIN, 1, patch(query=lead_time, derived_name="Mine"), NOW)

    assert derived.derived_name == "Change lead time (p95), weekly, last quarter (Delivery)"
    assert derived.query["metric"] == "lead_time"
    assert named.derived_name == "Mine"


def test_soft_delete_and_restore_are_logged_and_the_list_hides_deleted_insights(ports: InsightFakePorts) -> None:
    insights.create_insight(ports, ADMIN, draft(name="Deploys"), NOW)
    insights.create_insight(ports, ADMIN, draft(name="Other"), NOW)

    deleted = insights.update_insight(ports, ADMIN, 1, patch(deleted=True), NOW + timedelta(minutes=1))

    assert deleted.deleted is True
    assert [i.id for i in insights.list_insights(ports, ADMIN, insights.InsightFilter())] == [2]
    assert [i.id for i in insights.list_insights(ports, ADMIN, insights.InsightFilter(include_deleted=True))] == [1, 2]
    assert insights.get_insight(ports, SPACE, 1).deleted  # still readable by id

    restored = insights.update_insight(ports, ADMIN, 1, patch(deleted=False), NOW + timedelta(minutes=2))

    assert restored.deleted is False
    kinds = [e.activity for e in insights.activity(ports, SPACE, 1, limit=10, page=1)[0]]
    assert kinds == [ActivityKind.RESTORED, ActivityKind.DELETED, ActivityKind.CREATED]


def test_an_update_of_an_insight_changed_meanwhile_is_a_conflict(
    ports: InsightFakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    insights.create_insight(ports, ADMIN, draft(name="Deploys"), NOW)
    read = insights.get_insight(ports, SPACE, 1)
    insights.update_insight(ports, BOB, 1, patch(name="Bob's"), NOW)
    monkeypatch.setattr(insights, "get_insight", lambda *_: read)  # this request read the old version

    with pytest.raises(ResourceConflictError):
        insights.update_insight(ports, ADMIN, 1, patch(name="Ada's"), NOW)

    assert ports.insights().insights[(SPACE, 1)].name == "Bob's"


def test_an_unknown_insight_is_a_404(ports: InsightFakePorts) -> None:
    with pytest.raises(ResourceNotFoundError):
        insights.update_insight(ports, ADMIN, 7, patch(name="x"), NOW)
    with pytest.raises(ResourceNotFoundError):
        insights.activity(ports, SPACE, 7, limit=10, page=1)


# --- lists and pages --------------------------------------------------------------------------------
def test_list_is_most_recently_modified_first_and_filters(ports: InsightFakePorts) -> None:
    for n in range(3):
        insights.create_insight(ports, ADMIN, draft(name=f"I{n}", favorited=n == 1), NOW + timedelta(minutes=n))
    insights.create_insight(ports, BOB, draft(description="recovery"), NOW + timedelta(minutes=3))
    insights.update_insight(ports, ADMIN, 1, patch(tags=("team-a",)), NOW + timedelta(minutes=10))

    def listed(**filters: Any) -> list[int]:
        return [i.id for i in insights.list_insights(ports, ADMIN, insights.InsightFilter(**filters))]

    assert listed() == [1, 4, 3, 2]
    assert listed(favorited=True) == [2]
    assert listed(saved=False) == [4]
    assert listed(search="RECOVERY") == [4]
    assert listed(tags=("team-a",)) == [1]
    assert listed(created_by="bob") == [4]
    assert listed(user=True) == [1, 3, 2]
    assert listed(created_date_from=NOW + timedelta(minutes=2)) == [4, 3]
    assert listed(created_date_to=NOW + timedelta(minutes=1)) == [1, 2]  # bounds inclusive; 1 modified last
    assert listed(date_from=NOW + timedelta(minutes=5)) == [1]  # modified at +10 min


def test_activity_pages_are_newest_first_with_the_total(ports: InsightFakePorts) -> None:
    for n in range(5):
        insights.create_insight(ports, ADMIN, draft(name=f"I{n}"), NOW + timedelta(minutes=n))

    first, total = insights.activity(ports, SPACE, None, limit=2, page=1)
    second, _ = insights.activity(ports, SPACE, None, limit=2, page=2)
    last, _ = insights.activity(ports, SPACE, None, limit=2, page=3)
    beyond, _ = insights.activity(ports, SPACE, None, limit=2, page=4)

    assert total == 5
    assert [e.item_id for e in first] == [5, 4]
    assert [e.item_id for e in second] == [3, 2]
    assert [e.item_id for e in last] == [1]
    assert beyond == []


def test_views_last_viewed_and_trending(ports: InsightFakePorts) -> None:
    for n in range(3):
        insights.create_insight(ports, ADMIN, draft(name=f"I{n}"), NOW)
    insights.record_views(ports, ADMIN, [1, 2], NOW)
    insights.record_views(ports, ADMIN, [2, 2], NOW + timedelta(minutes=1))  # once per viewer and day
    insights.record_views(ports, BOB, [2, 3], NOW + timedelta(minutes=2))

    with pytest.raises(ResourceNotFoundError):
        insights.record_views(ports, ADMIN, [3, 9], NOW)

    viewed = insights.my_last_viewed(ports, ADMIN)
    assert [(v.insight.id, v.last_viewed_at) for v in viewed] == [
        (2, format_instant(NOW + timedelta(minutes=1))),
        (1, format_instant(NOW)),
    ]
    assert insights.last_viewed_at(ports, BOB, 3) == format_instant(NOW + timedelta(minutes=2))
    ranked = insights.trending(ports, ADMIN, 7, NOW + timedelta(hours=1))
    assert [(t.insight.id, t.view_count) for t in ranked] == [(2, 2), (3, 1), (1, 1)]
    assert [p.first_name for p in ranked[0].recent_viewers] == ["bob", "ada@example.com"]
    insights.update_insight(ports, ADMIN, 2, patch(deleted=True), NOW)
    assert [t.insight.id for t in insights.trending(ports, ADMIN, 7, NOW)] == [3, 1]
    assert [v.insight.id for v in insights.my_last_viewed(ports, ADMIN)] == [1]
    with pytest.raises(RequestInvalidError):
        insights.trending(ports, ADMIN, 0, NOW)


# --- sharing ----------------------------------------------------------------------------------------
def test_sharing_is_created_on_first_use_and_changes_keep_their_version(ports: InsightFakePorts) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)

    first = insights.get_sharing(ports, SPACE, 1, NOW)
    again = insights.get_sharing(ports, SPACE, 1, NOW)
    enabled = insights.update_sharing(ports, SPACE, 1, SharingChanges(enabled=True, settings={"theme": "dark"}), NOW)

    assert (first.enabled, first.version, first.access_token.startswith(insights.TOKEN_PREFIX)) == (False, 1, True)
    assert again == first
    assert (enabled.enabled, enabled.settings, enabled.version) == (True, {"theme": "dark"}, 2)
    assert enabled.access_token == first.access_token
    assert insights.update_sharing(ports, SPACE, 1, SharingChanges(), NOW).enabled is True  # nulls change nothing


def test_a_password_link_opens_with_a_session_until_the_password_goes_or_the_link_is_refreshed(
    ports: InsightFakePorts,
) -> None:
    insights.create_insight(ports, ADMIN, draft(name="Shared"), NOW)
    sharing = insights.update_sharing(ports, SPACE, 1, SharingChanges(enabled=True, password_required=True), NOW)
    token = sharing.access_token
    added = insights.add_share_password(ports, ADMIN, 1, "correct horse", "ops", NOW)
    stored = ports.insights().sharing[(SPACE, 1)].share_passwords

    assert (added.password, added.note, [p.id for p in stored]) == ("correct horse", "ops", [added.id])
    assert stored[0].hash != "correct horse"
    assert stored[0].kdf is not None and stored[0].kdf.n == 2**14
    with pytest.raises(AuthenticationInvalidError):
        insights.login_shared(ports, token, "wrong", NOW)
    session = insights.login_shared(ports, token, "correct horse", NOW)
    space_id, insight = insights.open_shared(ports, token, session, NOW)
    assert (space_id, insight.name) == (SPACE, "Shared")
    with pytest.raises(AuthenticationInvalidError):
        insights.open_shared(ports, token, session, NOW + timedelta(hours=insights.SESSION_HOURS, seconds=1))

    refreshed = insights.refresh_sharing(ports, SPACE, 1, NOW)

    with pytest.raises(ResourceNotFoundError):
        insights.open_shared(ports, token, session, NOW)  # the old link is gone
    with pytest.raises(AuthenticationInvalidError):
        insights.open_shared(ports, refreshed.access_token, session, NOW)  # and its session opens no other
    fresh = insights.login_shared(ports, refreshed.access_token, "correct horse", NOW)
    insights.delete_share_password(ports, SPACE, 1, added.id, NOW)
    with pytest.raises(AuthenticationInvalidError):
        insights.open_shared(ports, refreshed.access_token, fresh, NOW)
    with pytest.raises(ResourceNotFoundError):
        insights.delete_share_password(ports, SPACE, 1, added.id, NOW)


def test_a_link_holds_at_most_ten_passwords(ports: InsightFakePorts) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)
    for _ in range(insights.MAX_SHARE_PASSWORDS):
        insights.add_share_password(ports, ADMIN, 1, None, None, NOW)

    with pytest.raises(RequestInvalidError) as raised:
        insights.add_share_password(ports, ADMIN, 1, None, None, NOW)

    assert raised.value.code == "max_share_passwords"


# --- thresholds -------------------------------------------------------------------------------------
def settings(*, lower: float | None = None, upper: float | None = None, **fields: Any) -> ThresholdSettings:
    condition = Condition(bounds=Bounds(lower=lower, upper=upper))
    return ThresholdSettings.model_validate({"name": "Deploys", "condition": condition, **fields})


def test_threshold_crud(ports: InsightFakePorts) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)
    created = insights.create_threshold(ports, ADMIN, 1, settings(lower=2, calculation_interval="hourly"), NOW)
    later = insights.create_threshold(ports, ADMIN, 1, settings(upper=9), NOW + timedelta(seconds=1))

    assert (created.insight, created.state, created.checks, created.enabled) == (1, None, (), True)
    assert [t.id for t in insights.list_thresholds(ports, SPACE, 1)] == [created.id, later.id]
    renamed = insights.update_threshold(ports, SPACE, 1, created.id, ThresholdChanges(name="Renamed", enabled=None))
    assert (renamed.name, renamed.enabled, renamed.condition) == ("Renamed", True, created.condition)
    assert insights.get_threshold(ports, SPACE, 1, created.id) == renamed
    insights.delete_threshold(ports, SPACE, 1, created.id, NOW)
    with pytest.raises(ResourceNotFoundError):
        insights.get_threshold(ports, SPACE, 1, created.id)
    with pytest.raises(ResourceNotFoundError):
        insights.create_threshold(ports, ADMIN, 5, settings(lower=1), NOW)


def test_a_delete_racing_a_check_owes_one_clearing_whichever_wins(
    ports: InsightFakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Firing threshold's delete read it Firing; a scheduled check then recorded it NotFiring (and its
    own InsightThresholdCleared) before the delete was written. The delete's condition fails, it reads
    the threshold again and deletes it owing nothing: one clearing in all, not two."""
    insights.create_insight(ports, ADMIN, draft(name="Deploys"), NOW)
    threshold = insights.create_threshold(ports, ADMIN, 1, settings(lower=3, calculation_interval="hourly"), NOW)
    repository = ports.insights()
    bus = Bus()
    values = iter([1.0, 5.0])
    alerts.evaluate_thresholds(repository, lambda _: next(values), bus, SPACE, NOW)
    real_get = repository.get_threshold
    raced: list[bool] = []

    def read_then_checked(space_id: str, insight_id: int, threshold_id: str) -> Threshold | None:
        found = real_get(space_id, insight_id, threshold_id)
        if not raced:  # the check lands between the delete's read and its write
            raced.append(True)
            alerts.evaluate_thresholds(repository, lambda _: next(values), bus, SPACE, NOW + timedelta(hours=1))
        return found

    monkeypatch.setattr(repository, "get_threshold", read_then_checked)
    insights.delete_threshold(ports, SPACE, 1, threshold.id, NOW + timedelta(hours=1, minutes=1))
    alerts.evaluate_thresholds(repository, lambda _: None, bus, SPACE, NOW + timedelta(hours=2))

    assert [e.detail_type for e in bus.sent] == ["InsightThresholdBreached", "InsightThresholdCleared"]
    assert json.loads(bus.sent[1].detail)["reason"] == "check"
    assert repository.thresholds_of(SPACE, 1) == []


def test_a_threshold_fires_once_per_move_into_firing_and_its_event_leaves_the_outbox_when_sent(
    ports: InsightFakePorts,
) -> None:
    insights.create_insight(ports, ADMIN, draft(name="Deploys"), NOW)
    threshold = insights.create_threshold(
        ports, ADMIN, 1, settings(lower=3, calculation_interval="hourly", subscribed_users=("ops",)), NOW
    )
    repository = ports.insights()
    values = iter([1.0, 0.0, 5.0, 2.0])
    bus = Bus()

    def run(at: timedelta) -> alerts.AlertCounts:
        return alerts.evaluate_thresholds(repository, lambda _: next(values), bus, SPACE, NOW + at)

    fired = run(timedelta(0))
    early = run(timedelta(minutes=30))  # not due: hourly
    still = run(timedelta(hours=1))  # still below: no second event
    back = run(timedelta(hours=2))
    again = run(timedelta(hours=3))

    assert [(c.checked, c.fired, c.cleared, c.sent) for c in (fired, early, still, back, again)] == [
        (1, 1, 0, 1),
        (0, 0, 0, 0),
        (1, 0, 0, 0),
        (1, 0, 1, 1),  # back within bounds: the clearing is an event too (InsightThresholdCleared)
        (1, 1, 0, 1),
    ]
    assert [e.detail_type for e in bus.sent] == [
        "InsightThresholdBreached",
        "InsightThresholdCleared",
        "InsightThresholdBreached",
    ]
    checked = repository.thresholds[(SPACE, threshold.id)]
    assert (checked.state, checked.last_value) == (ThresholdState.FIRING, 2.0)
    assert [c.calculated_value for c in checked.checks] == [2.0, 5.0, 0.0, 1.0]
    detail = json.loads(bus.sent[0].detail)
    assert detail == {
        "notification_id": f"{threshold.id}:{format_instant(NOW)}",
        "space_id": SPACE,
        "insight_id": 1,
        "insight_short_id": insights.get_insight(ports, SPACE, 1).short_id,
        "insight_name": "Deploys",
        "threshold_id": threshold.id,
        "threshold_name": "Deploys",
        "value": 1.0,
        "bounds": {"lower": 3},
        "previous_state": None,
        "state": "Firing",
        "checked_at": format_instant(NOW),
        "subscribed_users": ["ops"],
        "reason": "check",
    }
    cleared = json.loads(bus.sent[1].detail)
    assert (cleared["previous_state"], cleared["state"], cleared["value"]) == ("Firing", "NotFiring", 5.0)
    assert json.loads(bus.sent[2].detail)["previous_state"] == "NotFiring"
    assert repository.outbox == {}


def test_undelivered_events_stay_in_the_outbox_for_the_next_run(ports: InsightFakePorts) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)
    insights.create_threshold(ports, ADMIN, 1, settings(upper=1), NOW)
    bus = Bus()
    bus.down = True

    refused = alerts.evaluate_thresholds(ports.insights(), lambda _: 4.0, bus, SPACE, NOW)
    bus.down = False
    delivered = alerts.evaluate_thresholds(ports.insights(), lambda _: 4.0, bus, SPACE, NOW + timedelta(minutes=1))

    assert (refused.fired, refused.sent, refused.undelivered) == (1, 0, 1)
    assert (delivered.checked, delivered.sent, delivered.undelivered) == (0, 1, 0)  # daily: not due yet
    assert len(bus.sent) == 1
    assert ports.insights().outbox == {}


def test_thresholds_of_deleted_insights_disabled_ones_and_failing_checks_are_skipped(
    ports: InsightFakePorts,
) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)
    insights.create_insight(ports, ADMIN, draft(), NOW)
    insights.create_threshold(ports, ADMIN, 1, settings(upper=1), NOW)
    insights.create_threshold(ports, ADMIN, 2, settings(upper=1, enabled=False), NOW)
    insights.update_insight(ports, ADMIN, 1, patch(deleted=True), NOW)
    insights.create_insight(ports, ADMIN, draft(), NOW)
    insights.create_threshold(ports, ADMIN, 3, settings(upper=1), NOW)

    def value_of(insight: Insight) -> float:
        raise RuntimeError(f"no value for {insight.id}")

    counts = alerts.evaluate_thresholds(ports.insights(), value_of, None, SPACE, NOW)

    assert (counts.checked, counts.fired, counts.failed) == (0, 0, 1)


def test_evaluate_reads_the_value_through_insight_value(
    ports: InsightFakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    insights.create_insight(ports, ADMIN, draft(), NOW)
    insights.create_threshold(ports, ADMIN, 1, settings(upper=1), NOW)
    asked: list[tuple[str, int]] = []

    def insight_value(store: Any, space_id: str, insight: Insight, now: Any) -> float:
        asked.append((space_id, insight.id))
        return 2.0

    monkeypatch.setattr(alerts, "insight_value", insight_value)
    bus = Bus()

    counts = alerts.evaluate(ports, bus, SPACE, NOW)

    assert (counts.checked, counts.fired, counts.sent) == (1, 1, 1)
    assert asked == [(SPACE, 1)]
