"""What a list asks for: the filters a client sends and, once logic has resolved their entity names
to catalogue ids, the query a repository reads, with the page. Pure values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dora_insights.domain.model import TaskState


@dataclass(frozen=True)
class DeploymentFilter:
    """Filters of ``GET /api/{spaceId}/deployments``; entity filters take a name or an id; ``tags``
    (``key:value``, exactly as sent) must all be on a deployment."""

    project: str | None = None
    environment: str | None = None
    tenant: str | None = None
    state: TaskState | None = None
    finished_from: datetime | None = None
    finished_to: datetime | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FailureFilter:
    """Filters of ``GET /api/{spaceId}/failures``; entity filters take a name or an id."""

    project: str | None = None
    environment: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None


@dataclass(frozen=True)
class DeploymentListQuery:
    """A page of the native deployment list (``DeploymentRepository.list_page``): deployments finished
    within [finished_from, finished_to] (either end open) matching every filter given, whose entity
    filters are catalogue ids here; at most ``limit``, from ``cursor`` (None: the first page)."""

    filters: DeploymentFilter
    limit: int
    cursor: str | None = None


@dataclass(frozen=True)
class FailureListQuery:
    """A page of the failure list (``FailureRepository.list_page``): failures started within
    [started_from, started_to] (either end open) of the project and environment when given (catalogue
    ids here); at most ``limit``, from ``cursor`` (None: the first page)."""

    filters: FailureFilter
    limit: int
    cursor: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventPage:
    """Which page of a time-ordered list: the time bounds (inclusive, either open), the order, the page
    size and where to continue (a cursor of the same list; None: its first page)."""

    lowest: datetime | None = None
    highest: datetime | None = None
    ascending: bool = False
    limit: int = 10
    cursor: str | None = None


@dataclass(frozen=True)
class ListScope:
    """The deployments a list reads: one stream's, else one project's, else (both None) the space's."""

    project_id: str | None = None
    stream: str | None = None
