"""Datadog DORA dialect (reference: datadog-dora-deployment-event-api.txt; API.md "Dialect: Datadog DORA").

Request models mirror Datadog's JSON:API bodies field for field (``data.attributes.*``) and
are the only place those names live. Errors render as JSON:API errors whose
``source.pointer`` names the offending field (``/data/attributes/service``).

Decisions where the reference is silent (also in the module's tests):
- Unix times (``started_at``, ``finished_at``) are strict JSON integers (int64), told apart by
  magnitude (s/ms/µs/ns, ``domain.times``); strings, floats, booleans, values <= 0 and instants
  outside 1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z are refused. ``started_at`` after
  ``finished_at`` is refused (pointer ``started_at``).
- ``git``: when present, both ``commit_sha`` (7–64 hex characters, stored lower case) and
  ``repository_url`` are required. The URL (``https://host/org/name(.git)``,
  ``ssh://git@host/org/name``, ``git@host:org/name.git`` or plain ``org/name``) is normalised to
  ``org/name`` (the path, so GitLab subgroups keep every segment) as the deployment's
  ``repository`` for attribution; the URL as sent is kept in ``metadata.repository_url``.
- ``custom_tags``: at most 100, each ``key:value`` with a non-blank key and value, at most 200
  characters. Every tag is kept in ``tags`` as sent. Two keys are also mapped:
  ``tenant:<name>`` sets the tenant (one tenant per event: a second, different one is refused),
  and ``tenant_tag:<TagSet>/<Tag>`` adds the Octopus tenant tag ``TagSet/Tag`` (a
  ``tenant_tag`` value not of that shape is refused). Values of other keys are never read as
  tenant tags, so ``repo:org/name`` stays an ordinary tag.
- ``id``: 16–128 of ``[A-Za-z0-9_.:-]``. A deployment with an id is stored under that id and
  is idempotent (same id + same content: the same deployment; different content: 409). Without
  an id the event is stored under a generated id, which the response returns.
- Unknown attributes are ignored (forward compatible, as Datadog adds attributes over time);
  known ones are type-checked strictly.
- Failure events: at least one service (``services`` and/or ``service``; both are merged in
  order, duplicates dropped) is required, since a failure must name what failed.

Corrections (patch by id and by version, datadog-api-client 2.62 ``DORADeploymentPatch*`` bodies;
decisions where Datadog is silent):
- ``change_failure`` sets the deployment's change-failure override (``true``: a change failure,
  ``false``: back to stable, whatever the rules say); ``null`` removes the override (the rules decide
  again), left out leaves it as it is. ``remediation`` names the deployment that remediated this one
  by ``id`` or by ``version`` (exactly one) with its ``type`` (``rollback`` or ``rollforward``, required:
  without it nothing can be linked); ``null`` removes it. Every attribute is optional, by version too
  (the client always sends ``change_failure`` there); an empty patch changes nothing.
- By version: ``service`` and ``version`` are required; ``env`` left out means the space's default
  environment (where events that name none are stored). The latest deployment (by finish) of that
  service, environment and version is patched.
- ``data.id`` (by id) is optional; when sent it must be the path's id (400, pointer ``/data/id``).
  ``data.type``, when sent, must be ``dora_deployment_patch_request``.

Reads (get and list, datadog-api-client 2.62 shapes; decisions where Datadog is silent):
- Every deployment and failure event of the space is shown, whatever dialect sent it: service =
  project, env = environment, team, version, custom tags (as sent), git, id. Times are the stored
  ISO-8601 instants (the client's models parse date-times, not integers); a deployment without a
  start shows its finish as its start.
- ``from``/``to`` bound the time the list is ordered by (inclusive): a deployment's finish, a
  failure's start. ``sort`` names ``timestamp``, ``started_at`` or ``finished_at`` (``-`` first for
  descending) and always orders by that same time; without ``sort``, newest first. ``limit``
  1-1000, default 10 (Datadog's).
- ``query``: Datadog's event search syntax (``domain.event_search``). ``service``, ``env``,
  ``team``, ``version``, ``git.commit_sha``, ``git.repository_id``, ``git.repository_url`` (and a
  failure's ``name``, ``severity``) name the event's attributes; any other key a custom tag.
- Paging: an answer with more to come carries ``meta.page.after``; the same request with
  ``data.attributes.page.cursor`` set to it continues (the client keeps both as extra properties).
"""

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dora_insights.dialects.limits import instant, key_name, not_blank, some_named
from dora_insights.domain import event_search
from dora_insights.domain.base import Model
from dora_insights.domain.corrections import DeploymentCorrection
from dora_insights.domain.failures import FailureDraft, unique_names
from dora_insights.domain.model import (
    Deployment,
    DeploymentDraft,
    FailureEvent,
    Remediation,
    RemediationType,
    Source,
)
from dora_insights.domain.times import InstantError, from_unix

MAX_TAGS = 100
MAX_TAG = 200
MAX_NAME = 200
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{16,128}$"
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_SEGMENT = r"[A-Za-z0-9_.\-]+"
_REPO_PATH = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})+$")
_SCP_URL = re.compile(rf"^[A-Za-z0-9_.\-]+@(?P<host>[A-Za-z0-9_.\-]+):(?P<path>{_SEGMENT}(?:/{_SEGMENT})+?)/?$")
_URL = re.compile(
    rf"^(?:https?|ssh|git)://(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9_.\-]+)(?::\d+)?/(?P<path>{_SEGMENT}(?:/{_SEGMENT})+?)/?$"
)
TENANT_KEY = "tenant"
TENANT_TAG_KEY = "tenant_tag"
INT64_MAX = 2**63 - 1


def _unix(value: int) -> int:
    if value <= 0:
        raise ValueError("must be a positive unix timestamp in seconds, milliseconds or nanoseconds")
    try:
        from_unix(value)
    except InstantError as error:
        raise ValueError(str(error)) from None
    return value


def _sha(value: str) -> str:
    if not _SHA.fullmatch(value):
        raise ValueError("must be a git commit SHA (7 to 64 hexadecimal characters)")
    return value.lower()


def _repository_url(value: str) -> str:
    if normalise_repository(value) is None:
        raise ValueError("must be a git repository URL such as https://github.com/org/name")
    return value


def _tag(value: str) -> str:
    key, sep, tag_value = value.partition(":")
    if not sep or not key.strip() or not tag_value.strip():
        raise ValueError(f"tag '{value[:64]}' must follow the key:value pattern")
    return value


def _check_tags(tags: list[str]) -> list[str]:
    """Tenant rules of the custom tags (module docstring)."""
    tenant: str | None = None
    for index, tag in enumerate(tags):
        key, _, value = tag.partition(":")
        key, value = key.strip(), value.strip()
        if key == TENANT_KEY:
            if tenant is not None and value != tenant:
                raise ValueError(f"tag {index}: only one tenant:<name> tag may be given")
            tenant = value
        elif key == TENANT_TAG_KEY:
            tag_set, sep, name = value.partition("/")
            if not sep or not tag_set.strip() or not name.strip() or "/" in name:
                raise ValueError(f"tag {index} ('{tag[:64]}') must be tenant_tag:<TagSet>/<Tag>")
    return tags


def _not_before_finish(value: int | None, info: ValidationInfo) -> int | None:
    """``started_at`` (declared after ``finished_at``, as in the reference) must not be after it."""
    finished = info.data.get("finished_at")
    if value is not None and finished is not None and to_instant(value) > to_instant(finished):
        raise ValueError("started_at must not be after finished_at")
    return value


UnixTime = Annotated[StrictInt, Field(le=INT64_MAX), AfterValidator(_unix)]
Name = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_NAME), AfterValidator(not_blank), AfterValidator(key_name())
]
Text = Annotated[StrictStr, Field(max_length=MAX_NAME)]
Tag = Annotated[StrictStr, Field(max_length=MAX_TAG), AfterValidator(_tag), AfterValidator(key_name())]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_check_tags)]
EventId = Annotated[StrictStr, Field(pattern=ID_PATTERN)]


def normalise_repository(url: str) -> str | None:
    """``org/name`` of a repository URL (``.git`` and trailing ``/`` dropped), or None if it is not one."""
    text = url.strip()
    for pattern in (_URL, _SCP_URL):
        match = pattern.fullmatch(text)
        if match:
            text = match.group("path")
            break
    else:
        if "://" in text or "@" in text:
            return None
    text = text.rstrip("/").removesuffix(".git")
    return text if _REPO_PATH.fullmatch(text) and len(text) <= 300 else None


def to_instant(value: int) -> datetime:
    """A validated Datadog unix time as an instant."""
    return from_unix(value)


class Incoming(Model):
    """A part of a request body: attributes Datadog adds over time are ignored (module docstring)."""

    model_config = ConfigDict(extra="ignore")


AttributesT = TypeVar("AttributesT", bound=Model)
DataT = TypeVar("DataT", bound=Model)


class RequestData(Incoming, Generic[AttributesT]):
    """A request's JSON:API ``data``: its ``attributes`` (a subclass adds ``id`` and ``type`` where sent)."""

    attributes: AttributesT


class Document(Incoming, Generic[DataT]):
    """A JSON:API document, a request's body or a read's answer: ``{"data": ...}``."""

    data: DataT


class GitInfo(Incoming):
    """``DORAGitInfo``: both fields are required when ``git`` is sent."""

    commit_sha: Annotated[StrictStr, AfterValidator(_sha)]
    repository_url: Annotated[StrictStr, Field(min_length=1, max_length=2048), AfterValidator(_repository_url)]

    @property
    def repository(self) -> str:
        """``org/name`` for attribution."""
        name = normalise_repository(self.repository_url)
        if name is None:  # pragma: no cover - validated on the field
            raise ValueError("repository_url was validated")
        return name


class TagMapping(Model):
    """What the custom tags say beside themselves: the tenant and the Octopus tenant tags."""

    tenant: str | None = None
    tenant_tags: tuple[str, ...] = ()


def map_tags(tags: list[str]) -> TagMapping:
    """``tenant:<name>`` -> tenant; ``tenant_tag:<TagSet>/<Tag>`` -> tenant tag (module docstring)."""
    tenant: str | None = None
    tenant_tags: list[str] = []
    for tag in tags:
        key, _, value = tag.partition(":")
        key, value = key.strip(), value.strip()
        if key == TENANT_KEY:
            tenant = value
        elif key == TENANT_TAG_KEY:
            tag_set, _, name = value.partition("/")
            tenant_tag = f"{tag_set.strip()}/{name.strip()}"
            if tenant_tag not in tenant_tags:
                tenant_tags.append(tenant_tag)
    return TagMapping(tenant=tenant, tenant_tags=tuple(tenant_tags))


class DeploymentAttributes(Incoming):
    """``DORADeploymentRequestAttributes``."""

    custom_tags: Tags | None = None
    env: Name | None = None
    finished_at: UnixTime
    git: GitInfo | None = None
    id: EventId | None = None
    service: Name
    started_at: UnixTime
    team: Name | None = None
    version: Text | None = None

    _started = field_validator("started_at")(_not_before_finish)

    def to_draft(self) -> DeploymentDraft:
        """The core's input model (METRICS §1: service -> project, env -> environment, team -> group)."""
        tags = list(self.custom_tags or [])
        mapped = map_tags(tags)
        return DeploymentDraft(
            source=Source.DATADOG,
            client_id=self.id,
            project=self.service,
            environment=self.env,
            finished_at=to_instant(self.finished_at),
            started_at=to_instant(self.started_at),
            version=self.version or None,
            tenant=mapped.tenant,
            team=self.team,
            tenant_tags=mapped.tenant_tags,
            tags=tuple(tags),
            commit_sha=self.git.commit_sha if self.git else None,
            repository=self.git.repository if self.git else None,
            source_name="datadog",
            metadata={"repository_url": self.git.repository_url} if self.git else None,
        )


class DeploymentData(RequestData[DeploymentAttributes]):
    """``DORADeploymentRequestData``."""


class DeploymentRequest(Document[DeploymentData]):
    """``DORADeploymentRequest``: ``POST /api/v2/dora/deployment`` body."""


class FailureAttributes(Incoming):
    """``DORAFailureRequestAttributes`` (also the legacy ``/incident`` body)."""

    custom_tags: Tags | None = None
    env: Name | None = None
    finished_at: UnixTime | None = None
    git: GitInfo | None = None
    id: EventId | None = None
    name: Text | None = None
    service: Name | None = None
    services: Annotated[list[Name] | None, Field(max_length=100, validate_default=True)] = None
    severity: Text | None = None
    started_at: UnixTime
    team: Name | None = None
    version: Text | None = None

    _started = field_validator("started_at")(_not_before_finish)
    _some_service = field_validator("services")(
        some_named("service", "services (or service) must name at least one service")
    )

    def to_draft(self) -> FailureDraft:
        """The core's input model (services -> projects, env -> environment)."""
        return FailureDraft(
            source=Source.DATADOG,
            client_id=self.id,
            projects=unique_names(([self.service] if self.service else []) + list(self.services or [])),
            environment=self.env,
            name=self.name or None,
            severity=self.severity or None,
            started_at=to_instant(self.started_at),
            finished_at=to_instant(self.finished_at) if self.finished_at is not None else None,
            commit_sha=self.git.commit_sha if self.git else None,
            repository=self.git.repository if self.git else None,
            team=self.team,
            version=self.version or None,
            tags=tuple(self.custom_tags or []),
        )


class FailureData(RequestData[FailureAttributes]):
    """``DORAFailureRequestData``."""


class FailureRequest(Document[FailureData]):
    """``DORAFailureRequest``: ``POST /api/v2/dora/failure`` (and ``/incident``) body."""


class ResponseData(Model):
    """``{"id", "type"}`` of a received event."""

    id: str
    type: Literal["dora_deployment", "dora_failure"]


class EventResponse(Model):
    """``DORADeploymentResponse`` / ``DORAFailureResponse``: ``{"data": {"id", "type"}}``."""

    data: ResponseData

    @classmethod
    def deployment(cls, event_id: str) -> Self:
        """The answer to a deployment event."""
        return cls(data=ResponseData(id=event_id, type="dora_deployment"))

    @classmethod
    def failure(cls, event_id: str) -> Self:
        """The answer to a failure event."""
        return cls(data=ResponseData(id=event_id, type="dora_failure"))


# --- reads: get and list (datadog-api-client 2.62 ``DORAMetricsApi``) --------------------------------
# Response shapes are the client's models (``DORADeploymentObject``, ``DORAIncidentObject``, their list and
# fetch responses): it parses ``started_at``/``finished_at`` as ISO-8601 date-times (an integer there is a
# type error in the client), so they are the stored instants; ``git`` of a deployment is
# ``DORAGitInfoResponse`` (``commit_sha`` and ``repository_id``, both required) plus ``repository_url``;
# ``git`` of a failure is ``DORAGitInfo`` (``commit_sha``, ``repository_url``). An attribute the event does
# not have is left out, never ``null`` (the client refuses ``null`` for a string).

LIST_DEFAULT_LIMIT = 10  # Datadog's default
LIST_MAX_LIMIT = 1000
SORT_FIELDS = ("timestamp", "started_at", "finished_at")
DEPLOYMENTS_LIST_TYPE = "dora_deployments_list_request"
FAILURES_LIST_TYPE = "dora_failures_list_request"
# Keys a query names the event's own attributes by; a custom tag with one of these keys is not searched.
DEPLOYMENT_KEYS = ("service", "env", "team", "version", "git.commit_sha", "git.repository_id", "git.repository_url")
FAILURE_KEYS = (*DEPLOYMENT_KEYS, "name", "severity")


def _is_none(value: object) -> bool:
    return value is None


def _omitted() -> Any:
    """A field left out of the JSON when it is None."""
    return Field(default=None, exclude_if=_is_none)


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def repository_id(url: str) -> str:
    """Datadog's repository id of a repository URL: host and path, without scheme, user, port or ``.git``
    (``https://github.com/org/name.git`` -> ``github.com/org/name``); a plain ``org/name`` stays as it is."""
    text = url.strip()
    for pattern in (_URL, _SCP_URL):
        match = pattern.fullmatch(text)
        if match:
            return f"{match.group('host')}/{match.group('path').removesuffix('.git')}"
    return text.rstrip("/").removesuffix(".git")


class GitInfoOut(Model):
    """``DORAGitInfoResponse`` (a deployment's git info), with the URL as sent beside Datadog's id."""

    commit_sha: str
    repository_id: str
    repository_url: str


class DeploymentObjectAttributes(Model):
    """``DORADeploymentObjectAttributes``."""

    custom_tags: list[str]
    env: str | None = _omitted()
    finished_at: Timestamp
    git: GitInfoOut | None = _omitted()
    service: str
    started_at: Timestamp
    team: str | None = _omitted()
    version: str | None = _omitted()


class EventObject(Model, Generic[AttributesT]):
    """A JSON:API resource object of an event: its ``attributes`` and ``id`` (a subclass fixes ``type``)."""

    attributes: AttributesT
    id: str


class DeploymentObject(EventObject[DeploymentObjectAttributes]):
    """``DORADeploymentObject``: one deployment event as Datadog lists it."""

    type: Literal["dora_deployment"] = "dora_deployment"

    @classmethod
    def from_domain(cls, deployment: Deployment) -> Self:
        """A stored deployment of any source in Datadog's shape (the inverse of the create mapping:
        project -> service, environment -> env, team, version, tags, commit and repository).

        A deployment without a start (native ones may have none) started when it finished; ``git`` is
        given when both the commit and the repository are known (the client requires both)."""
        git = None
        if deployment.commit_sha and deployment.repository:
            sent = (deployment.metadata or {}).get("repository_url")
            url = sent if isinstance(sent, str) and sent else deployment.repository
            git = GitInfoOut(commit_sha=deployment.commit_sha, repository_id=repository_id(url), repository_url=url)
        return cls(
            id=deployment.id,
            attributes=DeploymentObjectAttributes(
                custom_tags=list(deployment.tags),
                env=deployment.environment,
                finished_at=deployment.finished_at,
                git=git,
                service=deployment.project,
                started_at=deployment.started_at or deployment.finished_at,
                team=deployment.team,
                version=deployment.version,
            ),
        )


class DeploymentFetchResponse(Document[DeploymentObject]):
    """``DORADeploymentFetchResponse``: ``GET /api/v2/dora/deployments/{deployment_id}``."""


class PageOut(Model):
    """Where the next page starts: send it back as ``data.attributes.page.cursor``."""

    after: str


class ListMeta(Model):
    """``meta`` of a list answer (beside the client's model, which keeps it as an extra property)."""

    page: PageOut


def list_meta(after: str | None) -> ListMeta | None:
    """The ``meta`` of a list page: the cursor of the next one, None on the last page."""
    return ListMeta(page=PageOut(after=after)) if after else None


class ListDocument(Model, Generic[DataT]):
    """A list answer: a page of events and, while there are more pages, ``meta.page.after``."""

    data: list[DataT]
    meta: ListMeta | None = _omitted()


class DeploymentsListResponse(ListDocument[DeploymentObject]):
    """``DORADeploymentsListResponse`` (+ ``meta.page.after`` while there are more pages)."""


class FailureGitOut(Model):
    """``DORAGitInfo`` of a failure event."""

    commit_sha: str
    repository_url: str


class IncidentObjectAttributes(Model):
    """``DORAIncidentObjectAttributes``."""

    custom_tags: list[str]
    env: str | None = _omitted()
    finished_at: Timestamp | None = _omitted()
    git: FailureGitOut | None = _omitted()
    name: str | None = _omitted()
    services: list[str]
    severity: str | None = _omitted()
    started_at: Timestamp
    team: str | None = _omitted()
    version: str | None = _omitted()


class IncidentObject(EventObject[IncidentObjectAttributes]):
    """``DORAIncidentObject``: one failure (incident) event as Datadog lists it."""

    type: Literal["dora_failure"] = "dora_failure"

    @classmethod
    def from_domain(cls, failure: FailureEvent) -> Self:
        """A stored failure event in Datadog's shape (projects -> services, environment -> env). A failure
        keeps its repository as ``org/name`` (what the create path normalised the URL to), so that is
        its ``git.repository_url``; an open failure has no ``finished_at``."""
        git = None
        if failure.commit_sha and failure.repository:
            git = FailureGitOut(commit_sha=failure.commit_sha, repository_url=failure.repository)
        return cls(
            id=failure.id,
            attributes=IncidentObjectAttributes(
                custom_tags=list(failure.tags),
                env=failure.environment,
                finished_at=failure.finished_at,
                git=git,
                name=failure.name,
                services=list(failure.projects),
                severity=failure.severity,
                started_at=failure.started_at,
                team=failure.team,
                version=failure.version,
            ),
        )


class FailureFetchResponse(Document[IncidentObject]):
    """``DORAFailureFetchResponse``: ``GET /api/v2/dora/failures/{failure_id}``."""


class FailuresListResponse(ListDocument[IncidentObject]):
    """``DORAFailuresListResponse`` (+ ``meta.page.after`` while there are more pages)."""


# --- what a query searches ------------------------------------------------------------------------------
def _tag_document(tags: list[str], reserved: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Custom tags by key (``key:value``; a tag without ``:`` is a key with an empty value), keys lower case;
    tags whose key names an attribute are left out (the attribute answers for that key)."""
    found: dict[str, list[str]] = {}
    for tag in tags:
        key, _, value = tag.partition(":")
        key = key.strip().casefold()
        if key and key not in reserved:
            found.setdefault(key, []).append(value.strip())
    return {key: tuple(values) for key, values in found.items()}


def _present(values: dict[str, str | None]) -> dict[str, tuple[str, ...]]:
    return {key: (value,) for key, value in values.items() if value}


def deployment_document(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    """A deployment as its list's ``query`` searches it: the attributes Datadog shows (``service``, ``env``,
    ``team``, ``version``, ``git.*``) and the custom tags by key."""
    shown = DeploymentObject.from_domain(deployment).attributes
    git = shown.git
    return {
        **_tag_document(deployment.tags, DEPLOYMENT_KEYS),
        **_present(
            {
                "service": shown.service,
                "env": shown.env,
                "team": shown.team,
                "version": shown.version,
                "git.commit_sha": git.commit_sha if git else None,
                "git.repository_id": git.repository_id if git else None,
                "git.repository_url": git.repository_url if git else None,
            }
        ),
    }


def failure_document(failure: FailureEvent) -> dict[str, tuple[str, ...]]:
    """A failure event as its list's ``query`` searches it: ``service`` is each of its services; its
    repository, kept as ``org/name``, is also its ``git.repository_id`` (a deployment's without a URL is
    the same)."""
    shown = IncidentObject.from_domain(failure).attributes
    git = shown.git
    document = {
        **_tag_document(failure.tags, FAILURE_KEYS),
        **_present(
            {
                "env": shown.env,
                "team": shown.team,
                "version": shown.version,
                "name": shown.name,
                "severity": shown.severity,
                "git.commit_sha": git.commit_sha if git else None,
                "git.repository_id": repository_id(git.repository_url) if git else None,
                "git.repository_url": git.repository_url if git else None,
            }
        ),
    }
    if shown.services:
        document["service"] = tuple(shown.services)
    return document


# --- list requests ----------------------------------------------------------------------------------------
def _instant(value: object) -> datetime:
    """``from``/``to``: ISO-8601 with an offset (what the client sends) or unix time (s, ms, ns)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be an ISO-8601 time (2024-03-01T12:00:00Z) or a unix timestamp")
    return instant(value)


def _query(value: str) -> str:
    try:
        event_search.parse(value)
    except event_search.QuerySyntaxError as error:
        raise ValueError(f"query: {error}") from None
    return value


def _sort(value: str) -> str:
    if value.removeprefix("-") not in SORT_FIELDS:
        choices = ", ".join(f"{name}, -{name}" for name in SORT_FIELDS)
        raise ValueError(f"sort must be one of {choices}")
    return value


def _not_before_from(value: datetime | None, info: ValidationInfo) -> datetime | None:
    lowest = info.data.get("from_")
    if value is not None and lowest is not None and value < lowest:
        raise ValueError("to must not be before from")
    return value


Instant = Annotated[datetime, BeforeValidator(_instant)]


class PageRequest(Incoming):
    """``page``: where to continue (``meta.page.after`` of the previous answer)."""

    cursor: Annotated[StrictStr, Field(min_length=1, max_length=2048)]


class ListAttributes(Incoming):
    """``DORAListDeploymentsRequestAttributes`` / ``DORAListFailuresRequestAttributes``, plus ``page``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Instant | None = Field(default=None, alias="from")
    to: Instant | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=LIST_MAX_LIMIT)] = LIST_DEFAULT_LIMIT
    query: Annotated[StrictStr, Field(max_length=event_search.MAX_QUERY_LENGTH), AfterValidator(_query)] | None = None
    sort: Annotated[StrictStr, AfterValidator(_sort)] | None = None
    page: PageRequest | None = None

    _to = field_validator("to")(_not_before_from)

    @property
    def expression(self) -> event_search.Expr:
        """The parsed query (every event when there is none)."""
        return event_search.parse(self.query or "")

    @property
    def ascending(self) -> bool:
        """Oldest first only when asked (``sort`` without ``-``); newest first by default."""
        return self.sort is not None and not self.sort.startswith("-")

    @property
    def cursor(self) -> str | None:
        """The cursor to continue from, if any."""
        return self.page.cursor if self.page else None


class DeploymentListData(RequestData[ListAttributes]):
    """``DORAListDeploymentsRequestData``."""

    type: Literal["dora_deployments_list_request"] | None = None


class DeploymentListRequest(Document[DeploymentListData]):
    """``DORAListDeploymentsRequest``: ``POST /api/v2/dora/deployments`` body."""


class FailureListData(RequestData[ListAttributes]):
    """``DORAListFailuresRequestData``."""

    type: Literal["dora_failures_list_request"] | None = None


class FailureListRequest(Document[FailureListData]):
    """``DORAListFailuresRequest``: ``POST /api/v2/dora/failures`` body."""


# --- corrections: patch by id and by version (datadog-api-client 2.62 ``DORAMetricsApi``) -----------------
PATCH_TYPE = "dora_deployment_patch_request"
MAX_EVENT_ID = 128
PatchedId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_EVENT_ID)]
VersionName = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]


class RemediationRequest(Incoming):
    """``DORADeploymentPatchRemediation`` (by id) / ``DORADeploymentPatchByVersionRemediation`` (by
    version): the deployment that remediated this one, named by ``id`` or ``version`` (one of them)."""

    id: PatchedId | None = None
    type: RemediationType
    version: VersionName | None = None

    @model_validator(mode="after")
    def _names_one(self) -> Self:
        if (self.id is None) == (self.version is None):
            raise ValueError("name the remediation deployment by id or by version (one of them, not both)")
        return self

    def to_domain(self) -> Remediation:
        """The core's remediation."""
        return Remediation(id=self.id, version=self.version, type=self.type)


class PatchAttributes(Incoming):
    """``DORADeploymentPatchRequestAttributes``: what a patch changes (module docstring)."""

    change_failure: StrictBool | None = None
    remediation: RemediationRequest | None = None

    def to_correction(self) -> DeploymentCorrection:
        """The core's correction: only the attributes sent apply (``null`` sent clears the field)."""
        given: dict[str, Any] = {}
        if "change_failure" in self.model_fields_set:
            given["change_failure"] = self.change_failure
        if "remediation" in self.model_fields_set:
            given["remediation"] = self.remediation.to_domain() if self.remediation is not None else None
        return DeploymentCorrection(**given)


class PatchData(RequestData[PatchAttributes]):
    """``DORADeploymentPatchRequestData``."""

    id: PatchedId | None = None
    type: Literal["dora_deployment_patch_request"] | None = None


class PatchRequest(Document[PatchData]):
    """``DORADeploymentPatchRequest``: ``PATCH /api/v2/dora/deployments/{deployment_id}`` body."""


class PatchByVersionAttributes(PatchAttributes):
    """``DORADeploymentPatchByVersionRequestAttributes``: the deployment by service, env and version,
    and what the patch changes."""

    service: Name
    env: Name | None = None
    version: VersionName


class PatchByVersionData(RequestData[PatchByVersionAttributes]):
    """``DORADeploymentPatchByVersionRequestData``."""

    type: Literal["dora_deployment_patch_request"] | None = None


class PatchByVersionRequest(Document[PatchByVersionData]):
    """``DORADeploymentPatchByVersionRequest``: ``PATCH /api/v2/dora/deployments`` body."""
