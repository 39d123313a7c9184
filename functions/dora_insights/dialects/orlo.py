"""Orlo dialect (API.md "Dialect: Orlo", mounted at ``/orlo``): request, query and response models.

Field names, time format (``%Y-%m-%dT%H:%M:%SZ``) and the bodies of Orlo's 404s live here and
nowhere else; the rules are in ``domain/orlo.py``. Errors render as ``{"message", "errors"}``
(``dialects/errors.py``); every parser here raises ``RequestInvalidError`` (400) for bad input.

Orlo is lenient where it does not hurt (unknown body keys are ignored, a single platform or
reference string is taken as a list, ``null`` stands for absent) and strict where Orlo answers
an error: unknown query filters, a status outside its enum, a limit that is not an integer.
"""

import uuid
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
)

from dora_insights.dialects.errors import from_validation_errors
from dora_insights.dialects.limits import FreeJson, free_json_problem, key_name, not_blank
from dora_insights.domain.base import Model
from dora_insights.domain.orlo import (
    DEFAULT_LIMIT,
    NULL,
    ImportedPackage,
    ImportedRelease,
    OrloPackage,
    OrloRelease,
    OrloStatus,
    PackageFilters,
    Page,
    ReleaseFilters,
    Subject,
    TextFilter,
    Unit,
    duration_seconds,
    format_time,
    new_release,
)
from dora_insights.domain.times import InstantError, from_unix, parse_instant
from dora_insights.errors import RequestInvalidError

MAX_NAME = 200
MAX_TEXT = 16 * 1024
MAX_IMPORT = 500
MAX_URL = 2048  # a package's diff_url, which each of its deployments holds twice (source_url, metadata)

ROOT_MESSAGE = "Orlo server, see http://orlo.readthedocs.org/"
IMPORT_MESSAGE = "This is the orlo import url"
INFO_MESSAGE = "/info endpoint"
INFO_URLS: tuple[str, ...] = (
    "/info",
    "/info/packages",
    "/info/packages/<package>",
    "/info/packages/list",
    "/info/packages/versions",
    "/info/platforms",
    "/info/platforms/<platform>",
    "/info/users",
    "/info/users/<username>",
)
_STATUSES = [s.value for s in OrloStatus]


# --------------------------------------------------------------------------- value parsers


def parse_orlo_time(value: object) -> datetime:
    """A time as Orlo (Arrow) takes it: unix seconds (number or digits), or ISO-8601; no offset = UTC.

    Within the service's range (1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z, ``domain.times``)."""
    if isinstance(value, bool):
        raise ValueError("expected a time, got a boolean")
    if not isinstance(value, datetime | int | float | str) or (isinstance(value, str) and not value.strip()):
        raise ValueError("expected an ISO-8601 time or a unix timestamp")
    try:
        if isinstance(value, str) and value.strip().isascii() and value.strip().replace(".", "", 1).isdigit():
            text = value.strip()
            return from_unix(float(text) if "." in text else int(text))
        return parse_instant(value, assume_utc=True)
    except InstantError as error:
        raise ValueError(str(error)) from None


def _time(value: object) -> datetime:
    return parse_orlo_time(value)


def _optional_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_orlo_time(value)


def _as_list(value: object) -> object:
    """A single string is a one-item list (Orlo's create_release); null is an empty list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


def _null_false(value: object) -> object:
    return False if value is None else value


_KEY_NAME = key_name()


def _team(value: str) -> str:
    """A team as the other names (not blank, ``key_name``); ``""`` stands for no team, as Orlo's clients send it."""
    return value if value == "" else _KEY_NAME(not_blank(value))


def _text(value: object) -> object:
    # Versions such as 1.2 or 42 arrive as JSON numbers; Orlo stores them as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _status(value: object) -> object:
    if value is None:
        return OrloStatus.NOT_STARTED
    if isinstance(value, str) and value not in _STATUSES:
        raise ValueError(f"Invalid package status, {value[:64]} is not in {_STATUSES}")
    return value


def _query_status(value: object) -> object:
    if isinstance(value, str) and value not in _STATUSES:
        raise ValueError(f"Invalid package status, {value[:64]} is not in {_STATUSES}")
    return value


def parse_uuid(value: str, what: str = "Release") -> str:
    """A path id as a canonical UUID string; 400 ``"<What> ID given is not a valid UUID"`` otherwise."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise RequestInvalidError(f"{what} ID given is not a valid UUID", field=f"{what.lower()}_id") from None


OrloTime = Annotated[datetime, BeforeValidator(_time)]
OptionalTime = Annotated[datetime | None, BeforeValidator(_optional_time)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(not_blank), AfterValidator(key_name())]
Names = Annotated[list[Annotated[str, Field(max_length=MAX_NAME)]], BeforeValidator(_as_list)]
Notes = Annotated[list[Annotated[str, Field(max_length=MAX_TEXT)]], BeforeValidator(_as_list)]  # as /notes takes
Version = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=MAX_NAME)]
Flag = Annotated[bool, BeforeValidator(_null_false)]
Platforms = Annotated[list[Name], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
Team = Annotated[str, Field(max_length=MAX_NAME), AfterValidator(_team)]
Url = Annotated[str, Field(max_length=MAX_URL)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


# --------------------------------------------------------------------------- request bodies


class ReleaseIn(Model):
    """``POST /orlo/releases``: ``user`` and ``platforms`` required; the release starts now."""

    model_config = ConfigDict(extra="ignore")

    user: Name
    platforms: Platforms
    team: Team | None = None
    references: Names = Field(default_factory=list)
    note: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    metadata: FreeJson | None = None

    def to_release(self, release_id: str, now: datetime) -> OrloRelease:
        """The new, started release."""
        return new_release(
            release_id,
            user=self.user,
            platforms=self.platforms,
            now=now,
            team=self.team,
            references=self.references,
            note=self.note,
            metadata=self.metadata,
        )


class PackageIn(Model):
    """``POST /orlo/releases/{rid}/packages``: ``name`` and ``version`` required."""

    model_config = ConfigDict(extra="ignore")

    name: Name
    version: Version
    rollback: Flag = False
    diff_url: Url | None = None


class PackageStopIn(Model):
    """``.../packages/{pid}/stop``: ``success`` true|false|"true"|"false" (also 1/0, "t"/"f")."""

    model_config = ConfigDict(extra="ignore")

    success: bool


class NotesIn(Model):
    """``POST /orlo/releases/{rid}/notes``: ``{"text": "..."}``."""

    model_config = ConfigDict(extra="ignore")

    text: Text


class MetadataIn(RootModel[dict[str, Any]]):
    """``POST /orlo/releases/{rid}/metadata``: a non-empty object, merged into the release's."""

    @field_validator("root")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError('Must include metadata in posted document: e.g. {"key": "value"}')
        problem = free_json_problem(value)
        if problem is not None:
            raise ValueError(f"metadata {problem}")
        return value


class ResultsIn(Model):
    """``.../packages/{pid}/results``: free content (Orlo stores the document as text)."""

    model_config = ConfigDict(extra="allow")

    content: Any = None


# --------------------------------------------------------------------------- import


class ImportPackageIn(Model):
    """A package of an import document. ``name`` may be empty (the reference's example is)."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(max_length=MAX_NAME), AfterValidator(key_name())]
    version: Version
    status: Annotated[OrloStatus, BeforeValidator(_status)] = OrloStatus.NOT_STARTED
    rollback: Flag = False
    diff_url: Url | None = None
    stime: OptionalTime = None
    ftime: OptionalTime = None
    id: uuid.UUID | None = None

    def to_domain(self) -> ImportedPackage:
        """The typed package: the same fields, its id as text."""
        return ImportedPackage(**self.model_dump(exclude={"id"}), id=str(self.id) if self.id else None)


class ImportReleaseIn(Model):
    """A release of an import document (the reference's format; an exported R re-imports too)."""

    model_config = ConfigDict(extra="ignore")

    user: Name
    platforms: Platforms
    packages: list[ImportPackageIn]
    team: Team | None = None
    references: Names = Field(default_factory=list)
    notes: Notes = Field(default_factory=list)
    metadata: FreeJson | None = None
    stime: OptionalTime = None
    ftime: OptionalTime = None
    id: uuid.UUID | None = None

    def to_domain(self) -> ImportedRelease:
        """The typed release."""
        return ImportedRelease(
            user=self.user,
            platforms=tuple(self.platforms),
            packages=tuple(p.to_domain() for p in self.packages),
            team=self.team or None,
            references=tuple(self.references),
            notes=tuple(self.notes),
            metadata=dict(self.metadata or {}),
            stime=self.stime,
            ftime=self.ftime,
            id=str(self.id) if self.id else None,
        )


class ImportIn(RootModel[list[ImportReleaseIn]]):
    """``POST /orlo/releases/import``: a JSON list of release documents."""

    @field_validator("root")
    @classmethod
    def _size(cls, value: list[ImportReleaseIn]) -> list[ImportReleaseIn]:
        if not value:
            raise ValueError("the document must contain at least one release")
        if len(value) > MAX_IMPORT:
            raise ValueError(f"at most {MAX_IMPORT} releases per import")
        return value


def parse_import(body: object) -> list[ImportedRelease]:
    """An import body as typed releases, or one 400 listing every problem (nothing is imported)."""
    if not isinstance(body, list):
        raise RequestInvalidError("The document must contain a list of full releases, in json format")
    try:
        parsed = ImportIn.model_validate(body)
    except ValidationError as error:
        raise from_validation_errors([dict(e) for e in error.errors()]) from None
    return [r.to_domain() for r in parsed.root]


# --------------------------------------------------------------------------- query parameters

# Text filters are taken as sent (Orlo compares them with SQL equality: "amy " is not "amy"); numbers and
# times allow white space around them, their parsers' own leniency.
_FORBID = ConfigDict(extra="forbid")
QueryStatus = Annotated[OrloStatus, BeforeValidator(_query_status)]
Seconds = Annotated[int, Field(ge=0)]
Boolean = bool  # pydantic's lax bool: true/false, t/f, 1/0, yes/no, case-insensitive


def _null_word(value: object) -> object:
    """Orlo's ``null``/``none`` (any case) as a filter's value: ``NULL``, the attribute absent (its IS NULL)."""
    if isinstance(value, str) and value.lower() in ("null", "none"):
        return NULL
    return value


# A text filter of ``GET /releases`` and ``/packages``: exact text, or ``NULL`` (Orlo's queries turn every
# such value into None first).
FilterText = Annotated[TextFilter, BeforeValidator(_null_word)]


def _package_filters(params: BaseModel, prefix: str) -> PackageFilters:
    """The package filters of a query that names each ``prefix`` + the filter's name."""
    return PackageFilters(**{f.name: getattr(params, prefix + f.name) for f in fields(PackageFilters)})


class _PackageFilterParams(Model):
    """The package filters, with Orlo's ``package_`` prefix (as on ``GET /releases``)."""

    model_config = _FORBID

    package_name: FilterText = None
    package_version: FilterText = None
    package_rollback: Boolean | None = None
    package_status: QueryStatus | None = None
    package_diff_url: FilterText = None
    package_duration_lt: Seconds | None = None
    package_duration_gt: Seconds | None = None
    package_stime_before: OrloTime | None = Field(
        None, validation_alias=AliasChoices("package_stime_before", "package_stime_lt")
    )
    package_stime_after: OrloTime | None = Field(
        None, validation_alias=AliasChoices("package_stime_after", "package_stime_gt")
    )
    package_ftime_before: OrloTime | None = Field(
        None, validation_alias=AliasChoices("package_ftime_before", "package_ftime_lt")
    )
    package_ftime_after: OrloTime | None = Field(
        None, validation_alias=AliasChoices("package_ftime_after", "package_ftime_gt")
    )

    def package_filters(self) -> PackageFilters:
        """The package part of the filters."""
        return _package_filters(self, "package_")


class ReleaseFilterParams(_PackageFilterParams):
    """Every ``GET /orlo/releases`` filter (also accepted by ``/stats/by_date``)."""

    user: FilterText = None
    team: FilterText = None
    platform: FilterText = None
    reference: str | None = None
    status: QueryStatus | None = None
    rollback: Boolean | None = None
    stime_before: OrloTime | None = Field(None, validation_alias=AliasChoices("stime_before", "stime_lt"))
    stime_after: OrloTime | None = Field(None, validation_alias=AliasChoices("stime_after", "stime_gt"))
    ftime_before: OrloTime | None = Field(None, validation_alias=AliasChoices("ftime_before", "ftime_lt"))
    ftime_after: OrloTime | None = Field(None, validation_alias=AliasChoices("ftime_after", "ftime_gt"))
    duration_lt: Seconds | None = None
    duration_gt: Seconds | None = None

    def filters(self) -> ReleaseFilters:
        """The typed filters; ``team=null``/``none`` selects teamless releases (Orlo's IS NULL)."""
        return ReleaseFilters(
            user=self.user,
            team=self.team if isinstance(self.team, str) else None,
            teamless=self.team is NULL,
            platform=self.platform,
            reference=self.reference,
            status=self.status,
            rollback=self.rollback,
            stime_before=self.stime_before,
            stime_after=self.stime_after,
            ftime_before=self.ftime_before,
            ftime_after=self.ftime_after,
            duration_lt=self.duration_lt,
            duration_gt=self.duration_gt,
            package=self.package_filters(),
        )


class _Paging(Model):
    model_config = _FORBID

    asc: Boolean = False
    limit: Annotated[int, Field(ge=0, strict=False)] = DEFAULT_LIMIT
    offset: Annotated[int, Field(ge=0)] = 0

    def page(self) -> Page:
        """Ordering and paging."""
        return Page(asc=self.asc, limit=self.limit, offset=self.offset)


class ReleaseQueryIn(ReleaseFilterParams, _Paging):
    """``GET /orlo/releases`` query: filters plus ``asc``, ``limit`` (default 100), ``offset``.

    ``latest`` is accepted and ignored, as Orlo does.
    """

    latest: str | None = None


class PackageQueryIn(_Paging):
    """``GET /orlo/packages`` query: package attributes without the ``package_`` prefix."""

    name: FilterText = None
    version: FilterText = None
    rollback: Boolean | None = None
    status: QueryStatus | None = None
    diff_url: FilterText = None
    duration_lt: Seconds | None = None
    duration_gt: Seconds | None = None
    stime_before: OrloTime | None = Field(None, validation_alias=AliasChoices("stime_before", "stime_lt"))
    stime_after: OrloTime | None = Field(None, validation_alias=AliasChoices("stime_after", "stime_gt"))
    ftime_before: OrloTime | None = Field(None, validation_alias=AliasChoices("ftime_before", "ftime_lt"))
    ftime_after: OrloTime | None = Field(None, validation_alias=AliasChoices("ftime_after", "ftime_gt"))

    def filters(self) -> PackageFilters:
        """The typed filters."""
        return _package_filters(self, "")


class ByDateQueryIn(ReleaseFilterParams):
    """``GET /orlo/stats/by_date/{subject}`` query: ``unit`` (default month), ``summarize_by_unit``, filters."""

    unit: Unit = "month"
    summarize_by_unit: Boolean = False


class StatsQueryIn(Model):
    """``GET /orlo/stats[/...]`` query: inclusive bounds on release stime.

    Other parameters are ignored, as Orlo does (``orloclient`` also sends ``platform``).
    """

    model_config = ConfigDict(extra="ignore")

    stime: OrloTime | None = None
    ftime: OrloTime | None = None


class InfoQueryIn(Model):
    """``GET /orlo/info/...`` query: ``platform`` as sent (Orlo's ``Platform.name == platform``)."""

    model_config = ConfigDict(extra="ignore")

    platform: str | None = None


class VersionsQueryIn(InfoQueryIn):
    """``GET /orlo/info/packages/versions`` query."""

    by_release: Boolean = False


_Q = TypeVar("_Q", bound=BaseModel)

_QUERY_MESSAGES = {
    "limit": "limit must be a valid integer value",
    "offset": "offset must be a valid integer value",
}


def parse_query(model: type[_Q], params: Mapping[str, str | None] | None) -> _Q:
    """A query-string mapping as ``model``; a 400 naming every unknown or bad parameter.

    Empty values count as absent. Orlo's own messages are used for the cases its clients
    may match: an invalid field, an invalid status, a non-integer limit/offset, a bad time.
    """
    values = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
    if model is PackageQueryIn:
        prefixed = sorted(k for k in values if k.startswith("package_"))
        if prefixed:
            raise RequestInvalidError(
                "'package_' parameters are only valid for Release queries. (hint: retry without the package_ prefix)",
                field=prefixed[0],
            )
    try:
        return model.model_validate(values)
    except ValidationError as error:
        errors = error.errors()
        invalid = from_validation_errors([dict(e) for e in errors])
        first = errors[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "extra_forbidden":
            invalid.message = f"An invalid field was specified: {name}"
        elif name in _QUERY_MESSAGES:
            invalid.message = _QUERY_MESSAGES[name]
        elif model is StatsQueryIn:
            invalid.message = "A badly formatted datetime string was given"
        invalid.args = (invalid.message,)
        raise invalid from None


def parse_body(model: type[_Q], body: object) -> _Q:
    """A JSON body as ``model``; a 400 listing every problem (Orlo's missing-field 500s become 400s)."""
    if body is None or (isinstance(body, dict | list) and not body and model is not ResultsIn):
        raise RequestInvalidError("Missing application/json header")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise from_validation_errors([dict(e) for e in error.errors()]) from None


def parse_subject(value: str) -> Subject:
    """``release`` or ``package`` (by_date's path); 400 otherwise."""
    if value == "release":
        return "release"
    if value == "package":
        return "package"
    raise RequestInvalidError(f"subject must be release or package, not '{value[:64]}'", field="subject")


# --------------------------------------------------------------------------- responses


class IdOut(Model):
    """``{"id": "<uuid>"}`` for a created release or package."""

    id: str


# A stored release's or package's times as Orlo shows them (the output models read domain records): its
# datetimes in Orlo's time format, its duration in whole seconds.
TimeOut = Annotated[str | None, BeforeValidator(format_time)]
DurationOut = Annotated[int | None, BeforeValidator(duration_seconds)]


class PackageOut(Model):
    """Orlo's P."""

    id: str
    release_id: str
    name: str
    version: str
    status: OrloStatus
    rollback: bool
    diff_url: str | None
    stime: TimeOut
    ftime: TimeOut
    duration: DurationOut

    @classmethod
    def from_domain(cls, package: OrloPackage) -> Self:
        """Render a package: its attributes field for field, times as ``TimeOut`` and ``DurationOut`` say."""
        return cls.model_validate(package, from_attributes=True)


class ReleaseOut(Model):
    """Orlo's R."""

    id: str
    user: str
    team: str | None
    platforms: list[str]
    references: list[str]
    notes: list[str]
    metadata: dict[str, Any]
    stime: TimeOut
    ftime: TimeOut
    duration: DurationOut
    packages: list[PackageOut]

    @classmethod
    def from_domain(cls, release: OrloRelease) -> Self:
        """Render a release with its packages: their attributes field for field (times as for a package)."""
        return cls.model_validate(release, from_attributes=True)


class ReleasesOut(Model):
    """``{"releases": [R...]}``."""

    releases: list[ReleaseOut]


class PackagesOut(Model):
    """``{"packages": [P...]}``."""

    packages: list[PackageOut]


class ImportOut(Model):
    """``{"releases": ["<uuid>", ...]}`` in document order."""

    releases: list[str]


class MessageOut(Model):
    """``{"message": "..."}``."""

    message: str


class VersionOut(Model):
    """``GET /orlo/version``: ``{"version": "..."}``."""

    version: str


class TokenOut(Model):
    """``GET /orlo/token``: ``{"token": "..."}``, accepted as ``X-Auth-Token`` for 1 hour."""

    token: str


class InfoOut(Model):
    """``GET /orlo/info``."""

    message: str = INFO_MESSAGE
    urls: list[str] = Field(default_factory=lambda: list(INFO_URLS))


def render_releases(releases: list[OrloRelease]) -> tuple[int, dict[str, Any]]:
    """200 ``{"releases": [R]}``, or Orlo's 404 ``{"message": "No releases found", "releases": []}``."""
    if not releases:
        return 404, {"message": "No releases found", "releases": []}
    return 200, ReleasesOut(releases=[ReleaseOut.from_domain(r) for r in releases]).model_dump(mode="json")


def render_packages(packages: list[OrloPackage]) -> tuple[int, dict[str, Any]]:
    """200 ``{"packages": [P]}``, or Orlo's 404 ``{"message": "No packages found", "packages": []}``."""
    if not packages:
        return 404, {"message": "No packages found", "packages": []}
    return 200, PackagesOut(packages=[PackageOut.from_domain(p) for p in packages]).model_dump(mode="json")
