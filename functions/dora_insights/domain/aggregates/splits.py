"""Which series a stream, or a failure event, counts in under each ``split`` (METRICS §4).

Series membership of a stream comes from its :class:`StreamDims` (the caller takes them from the
stream's latest deployment). Untenanted streams are the series ``Untenanted``; streams with no
project group ``No project group``; ``EnvironmentGroup`` puts a stream in every group that lists
its environment (none: left out); ``TenantTagSet`` in every tag of the set it has (none: left
out). Failure events (``TimeToRestore``) count in series by project, project group, environment
and environment group (events have no tenant, so the tenant splits have none), and in ``All``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dora_insights.domain.base import CaselessEnum
from dora_insights.domain.model import Deployment, FailureEvent
from dora_insights.domain.reports import tenant_tag_key

ALL_SERIES = "All"
UNTENANTED_SERIES = "Untenanted"
NO_PROJECT_GROUP_SERIES = "No project group"


class Split(CaselessEnum):
    """Octopus ``split``: how deployments are divided into series."""

    NONE = "None"
    PROJECT = "Project"
    PROJECT_GROUP = "ProjectGroup"
    ENVIRONMENT = "Environment"
    ENVIRONMENT_GROUP = "EnvironmentGroup"
    TENANT = "Tenant"
    TENANT_TAG_SET = "TenantTagSet"


SplitKey = tuple[Split, str | None]
"""A split and, for ``TenantTagSet``, the name of its tag set (else None)."""


@dataclass(frozen=True, slots=True)
class StreamDims:
    """The names a stream is split by (take them from its latest deployment)."""

    project_id: str
    project: str
    environment_id: str
    environment: str
    project_group: str | None = None
    tenant: str | None = None
    tenant_tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, deployment: Deployment) -> StreamDims:
        """The dimensions of a deployment's stream."""
        return cls(**deployment.stream_names, project_group=deployment.team, tenant_tags=tuple(deployment.tenant_tags))

    def record(self) -> dict[str, Any]:
        """The dimensions as a stream's registration stores them (``dims``; no None values)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def series_names(
    dims: StreamDims,
    split: Split,
    *,
    environment_groups: Mapping[str, Sequence[str]] | None = None,
    tenant_tag_set: str | None = None,
) -> tuple[str, ...]:
    """The series a stream belongs to under ``split`` (possibly several, possibly none).

    ``environment_groups`` maps the report's group names to environment ids; ``tenant_tag_set``
    is the *name* of the tag set (``Location`` for tags ``Location/Europe``).
    """
    if split is Split.NONE:
        return (ALL_SERIES,)
    if split is Split.PROJECT:
        return (dims.project,)
    if split is Split.PROJECT_GROUP:
        return (dims.project_group or NO_PROJECT_GROUP_SERIES,)
    if split is Split.ENVIRONMENT:
        return (dims.environment,)
    if split is Split.ENVIRONMENT_GROUP:
        groups = environment_groups or {}
        return tuple(name for name, ids in groups.items() if dims.environment_id in ids)
    if split is Split.TENANT:
        return (dims.tenant or UNTENANTED_SERIES,)
    if tenant_tag_set is None:
        raise ValueError("the TenantTagSet split needs a tenant tag set")
    wanted = tenant_tag_set.casefold()  # one set whatever the case it was sent in (``tenant_tag_key``)
    return tuple(dict.fromkeys(tag for tag_set, tag in map(tenant_tag_key, dims.tenant_tags) if tag_set == wanted))


def failure_series_names(
    event: FailureEvent,
    split: Split,
    *,
    projects: Mapping[tuple[str, str], StreamDims],
    environment_groups: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The series a failure event's ``TimeToRestore`` counts in; ``projects`` gives the report's streams'
    names by (project id, environment id): a project counts the failure only where the report includes
    one of its streams in the failure's environment (METRICS §4)."""
    known = [projects[(p, event.environment_id)] for p in event.project_ids if (p, event.environment_id) in projects]
    if split is Split.NONE:
        return (ALL_SERIES,)
    if split is Split.PROJECT:
        return tuple(dict.fromkeys(d.project for d in known))
    if split is Split.PROJECT_GROUP:
        return tuple(dict.fromkeys(d.project_group or NO_PROJECT_GROUP_SERIES for d in known))
    if split is Split.ENVIRONMENT:
        return (event.environment,)
    if split is Split.ENVIRONMENT_GROUP:
        groups = environment_groups or {}
        return tuple(name for name, ids in groups.items() if event.environment_id in ids)
    return ()
