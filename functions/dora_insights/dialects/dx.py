"""DX Deployments API dialect (reference: dx-deployments-api.txt; API.md "Dialect: DX").

Request field names are DX's own (``deployed_at``, ``service``, ``commit_sha``, ...) and live
only here. Every validation problem is reported with DX's error code, not a generic one: each
validator raises a ``PydanticCustomError`` whose type *is* the DX code, and ``dx_error`` turns
the first problem into the core error that renders ``{"ok": false, "error", "message"}``.

Codes beyond the reference: ``invalid_arguments`` (a field of the wrong type or size that has
no code of its own, e.g. ``deployed_at: "yesterday"``) and ``invalid_csv`` (backfill).
"""

import csv
import hashlib
import io
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from dora_insights.dialects.limits import (
    MAX_BRANCH_BYTES,
    MAX_NAME_BYTES,
    JsonShapeError,
    free_json_problem,
    load_json,
    utf8_size,
)
from dora_insights.domain.base import Model
from dora_insights.domain.changes import (
    MAX_SHA_LENGTH,
    MIN_SHA_LENGTH,
    CommitShaError,
    RepositoryNameError,
    normalise_branch,
    normalise_repository,
    normalise_sha,
)
from dora_insights.domain.model import Deployment, DeploymentDraft, Source, TaskState
from dora_insights.domain.times import InstantError, parse_instant, parse_stored
from dora_insights.errors import DoraError, RequestInvalidError, ResourceNotFoundError
from dora_insights.logic.dx import DxDeployment

MAX_NAME = 200
MAX_URL = 2048
MAX_REFERENCE_ID = 255
MAX_METADATA_BYTES = 16 * 1024
MAX_MERGE_COMMIT_SHAS = 1000
MAX_SERVICES = 100
MAX_BACKFILL_ROWS = 1000

CODES = frozenset(
    {
        "required_params_missing",
        "repository_not_found",
        "repo_not_found",
        "commit_sha_invalid",
        "reference_id_exists",
        "metadata_invalid",
        "integration_branch_not_valid",
        "ambiguous_commit_sha_arguments",
        "merge_commit_shas_blank",
        "merge_commit_shas_invalid",
        "invalid_json",
        "invalid_arguments",
        "invalid_csv",
    }
)
_NOT_FOUND_CODES = frozenset({"repository_not_found", "repo_not_found"})
_METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")  # the whole key: fullmatch
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _fail(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- field validators (each raises its DX code) ---------------------------------------------
def _deployed_at(value: object) -> datetime:
    if _blank(value):
        raise _fail("required_params_missing", "deployed_at is required")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail("invalid_arguments", "deployed_at must be a unix timestamp")
    try:
        return parse_instant(value)
    except (InstantError, OverflowError, ValueError) as error:
        raise _fail("invalid_arguments", f"deployed_at: {error}") from None


def _service(value: object) -> str:
    if _blank(value):
        raise _fail("required_params_missing", "service is required")
    if not isinstance(value, str) or len(value) > MAX_NAME or utf8_size(value.strip()) > MAX_NAME_BYTES:
        raise _fail(
            "invalid_arguments",
            f"service must be a string of at most {MAX_NAME} characters and {MAX_NAME_BYTES} bytes in UTF-8",
        )
    return value.strip()


def _repository(code: str) -> Any:
    def check(value: object) -> str | None:
        if _blank(value):
            return None
        if not isinstance(value, str):
            raise _fail(code, "repository must be a name 'org/name'")
        try:
            return normalise_repository(value)
        except RepositoryNameError as error:
            raise _fail(code, str(error)) from None

    return check


def _commit_sha(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("commit_sha_invalid", "commit_sha must be a string of 7 to 40 hexadecimal characters")
    try:
        return normalise_sha(value)
    except CommitShaError:
        raise _fail(
            "commit_sha_invalid", f"commit_sha must be {MIN_SHA_LENGTH} to {MAX_SHA_LENGTH} hexadecimal characters"
        ) from None


def _merge_commit_shas(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise _fail("merge_commit_shas_invalid", "merge_commit_shas must be an array of commit SHA strings")
    if not isinstance(value, list | tuple):
        raise _fail("merge_commit_shas_invalid", "merge_commit_shas must be an array of commit SHA strings")
    if not value or all(_blank(v) for v in value):
        raise _fail("merge_commit_shas_blank", "merge_commit_shas is blank or an empty array")
    if len(value) > MAX_MERGE_COMMIT_SHAS:
        raise _fail("merge_commit_shas_invalid", f"at most {MAX_MERGE_COMMIT_SHAS} merge_commit_shas")
    shas: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _fail("merge_commit_shas_invalid", "every merge commit SHA must be a string")
        try:
            shas.append(normalise_sha(item))
        except CommitShaError:
            raise _fail(
                "merge_commit_shas_invalid",
                f"'{item[:64]}' is not {MIN_SHA_LENGTH} to {MAX_SHA_LENGTH} hexadecimal characters",
            ) from None
    return tuple(dict.fromkeys(shas))


def _metadata(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail("metadata_invalid", "metadata must be a JSON object")
    for key in value:
        if not isinstance(key, str) or not _METADATA_KEY.fullmatch(key):
            raise _fail(
                "metadata_invalid",
                f"metadata key '{str(key)[:64]}' may only use letters, numbers, dashes and underscores",
            )
    problem = free_json_problem(value, limit=MAX_METADATA_BYTES)
    if problem is not None:
        raise _fail("metadata_invalid", f"metadata {problem}")
    return value


def _integration_branch(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME or utf8_size(value) > MAX_BRANCH_BYTES:
        raise _fail(
            "integration_branch_not_valid",
            f"integration_branch must be a branch name of at most {MAX_NAME} characters and {MAX_BRANCH_BYTES} bytes",
        )
    try:
        return normalise_branch(value)
    except ValueError:
        raise _fail("integration_branch_not_valid", "integration_branch must not be blank") from None


def _reference_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REFERENCE_ID:
        raise _fail("invalid_arguments", f"reference_id must be a non-blank string of at most {MAX_REFERENCE_ID}")
    return value.strip()  # as a backfill's CSV cell is read: one key whichever route carries it


def _success(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):  # as the CSV cells "1" and "0" read
        return value == 1
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _fail("invalid_arguments", "success must be a boolean")


def _text(name: str, limit: int) -> Any:
    def check(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > limit or (name == "environment" and not value.strip()):
            raise _fail("invalid_arguments", f"{name} must be a string of at most {limit} characters")
        if name == "environment" and utf8_size(value.strip()) > MAX_NAME_BYTES:
            raise _fail("invalid_arguments", f"environment must be at most {MAX_NAME_BYTES} bytes in UTF-8")
        return value.strip()  # as a backfill's CSV cell is read: the same values whichever route sends them

    return check


# What the validators above accept beyond their field's type, for the OpenAPI document (schemas only).
_INSTANT = WithJsonSchema(
    {
        "anyOf": [{"type": "number"}, {"type": "string"}],
        "description": "unix timestamp (seconds, milliseconds or nanoseconds) or an ISO-8601 time with its offset",
    }
)
_REFERENCE_ID = WithJsonSchema(
    {"anyOf": [{"type": "string", "maxLength": MAX_REFERENCE_ID}, {"type": "integer"}, {"type": "null"}]}
)
_SUCCESS = WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, {"type": "string"}], "default": True})
_POSITIVE_INT = WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^\\s*[0-9]+\\s*$"}, {"type": "null"}]}
)
_SERVICES = WithJsonSchema(
    {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_SERVICES},
            {"type": "string", "description": "a JSON array as text, or names separated by spaces or commas"},
        ]
    }
)


class DxDeploymentIn(Model):
    """``deployments.create`` / ``upsert`` body and one backfill row (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    deployed_at: Annotated[datetime, BeforeValidator(_deployed_at), _INSTANT]
    service: Annotated[str, BeforeValidator(_service)]
    repository: Annotated[str | None, BeforeValidator(_repository("repository_not_found"))] = None
    commit_sha: Annotated[str | None, BeforeValidator(_commit_sha)] = None
    merge_commit_shas: Annotated[tuple[str, ...] | None, BeforeValidator(_merge_commit_shas)] = None
    reference_id: Annotated[str | None, BeforeValidator(_reference_id), _REFERENCE_ID] = None
    source_url: Annotated[str | None, BeforeValidator(_text("source_url", MAX_URL))] = None
    source_name: Annotated[str | None, BeforeValidator(_text("source_name", MAX_NAME))] = None
    metadata: Annotated[dict[str, Any] | None, BeforeValidator(_metadata)] = None
    integration_branch: Annotated[str | None, BeforeValidator(_integration_branch)] = None
    success: Annotated[bool, BeforeValidator(_success), _SUCCESS] = True
    environment: Annotated[str | None, BeforeValidator(_text("environment", MAX_NAME))] = None

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        if self.commit_sha is not None and self.merge_commit_shas is not None:
            raise _fail("ambiguous_commit_sha_arguments", "provide either commit_sha or merge_commit_shas, not both")
        if self.commit_sha is not None and self.repository is None:
            raise _fail("required_params_missing", "repository is required with commit_sha")
        if self.integration_branch is not None and (self.commit_sha is None or self.repository is None):
            raise _fail("integration_branch_not_valid", "integration_branch needs commit_sha and repository")
        return self

    def to_request(self, *, reference_id: str | None = None) -> DxDeployment:
        """The core draft and the idempotency key (a new UUID when the client sent none, as DX)."""
        draft = DeploymentDraft(
            source=Source.DX,
            project=self.service,
            environment=self.environment.strip() if self.environment else None,
            finished_at=self.deployed_at,
            state=TaskState.SUCCESS if self.success else TaskState.FAILED,
            commit_sha=self.commit_sha,
            repository=self.repository,
            merge_commit_shas=self.merge_commit_shas,
            integration_branch=self.integration_branch,
            source_name=self.source_name,
            source_url=self.source_url,
            metadata=self.metadata,
        )
        return DxDeployment(draft=draft, reference_id=self.reference_id or reference_id or str(uuid.uuid4()))


def _service_list(value: object) -> tuple[str, ...]:
    """``services``: an array of strings. The reference's monorepo workflow sends it through
    ``jq --arg`` as one string like ``"[svc-a svc-b]"``; that form is read as the names inside."""
    if value is None:
        raise _fail("required_params_missing", "services is required")
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = load_json(text)
        except JsonShapeError as error:
            raise _fail("invalid_arguments", f"services: {error}") from None
        except ValueError:
            parsed = [p for p in re.split(r"[\s,]+", text.strip("[]")) if p]
        if isinstance(parsed, dict):
            raise _fail("invalid_arguments", "services must be an array of strings")
        # JSON text of a list is the list; of a string, that string; any other scalar is the name as sent
        # (a service called "true" or "1.5e3"), never Python's spelling of the parsed value.
        value = parsed if isinstance(parsed, list) else [parsed if isinstance(parsed, str) else text]
    if not isinstance(value, list | tuple):
        raise _fail("invalid_arguments", "services must be an array of strings")
    if not value:
        raise _fail("required_params_missing", "services must name at least one service")
    if len(value) > MAX_SERVICES or not all(isinstance(s, str) and s.strip() and len(s) <= MAX_NAME for s in value):
        raise _fail("invalid_arguments", f"services must be at most {MAX_SERVICES} non-blank strings")
    return tuple(dict.fromkeys(s.strip() for s in value))


def _positive_int(name: str) -> Any:
    def check(value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
            raise _fail("invalid_arguments", f"{name} must be a positive integer")
        return value

    return check


class SetPullServicesIn(Model):
    """``deployments.setPullServices`` body: ``github_pull_id``, or ``repository`` + ``pull_number``."""

    model_config = ConfigDict(extra="ignore")

    github_pull_id: Annotated[int | None, BeforeValidator(_positive_int("github_pull_id")), _POSITIVE_INT] = None
    repository: Annotated[str | None, BeforeValidator(_repository("repo_not_found"))] = None
    pull_number: Annotated[int | None, BeforeValidator(_positive_int("pull_number")), _POSITIVE_INT] = None
    services: Annotated[tuple[str, ...], BeforeValidator(_service_list), _SERVICES]

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.github_pull_id is None and (self.repository is None or self.pull_number is None):
            raise _fail("required_params_missing", "github_pull_id, or repository and pull_number, is required")
        return self


# --- errors ---------------------------------------------------------------------------------
def dx_error(error: ValidationError) -> DoraError:
    """The first problem of a validation error as a DX-coded core error (missing params first)."""
    problems = error.errors()
    missing = [p for p in problems if p["type"] == "missing" or p["type"] == "required_params_missing"]
    if missing:
        names = [str(p["loc"][0]) for p in missing if p["type"] == "missing" and p["loc"]]
        message = f"missing required params: {', '.join(names)}" if names else str(missing[0]["msg"])
        return RequestInvalidError(message, code="required_params_missing", field=names[0] if names else None)
    first = problems[0]
    code = first["type"] if first["type"] in CODES else "invalid_arguments"
    field = ".".join(str(p) for p in first["loc"]) or None
    message = str(first["msg"])
    if code == "invalid_arguments" and field and not message.startswith(field):
        message = f"{field}: {message}"
    if code in _NOT_FOUND_CODES:
        return ResourceNotFoundError(message, field=field, code=code)
    return RequestInvalidError(message, field=field, code=code)


def parse_object(body: str | None) -> dict[str, Any]:
    """The JSON object of a request body, or ``invalid_json``."""
    if body is None or not body.strip():
        raise RequestInvalidError("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = load_json(body)
    except JsonShapeError as error:
        raise RequestInvalidError(f"the JSON body: {error}", code="invalid_json", field=error.path) from None
    except ValueError:
        raise RequestInvalidError("the JSON body of the request could not be parsed", code="invalid_json") from None
    if not isinstance(data, dict):
        raise RequestInvalidError("the JSON body must be an object", code="invalid_json")
    return data


def read_deployment(data: dict[str, Any]) -> DxDeployment:
    """A create/upsert body as the core request, or a DX-coded error."""
    try:
        return DxDeploymentIn.model_validate(data).to_request()
    except ValidationError as error:
        raise dx_error(error) from None


def read_pull_services(data: dict[str, Any]) -> SetPullServicesIn:
    """A setPullServices body, or a DX-coded error."""
    try:
        return SetPullServicesIn.model_validate(data)
    except ValidationError as error:
        raise dx_error(error) from None


# --- backfill CSV ---------------------------------------------------------------------------
def _csv_list(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        try:
            parsed = load_json(text)
        except JsonShapeError as error:
            raise RequestInvalidError(f"merge_commit_shas: {error}", code="merge_commit_shas_invalid") from None
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    return [p for p in re.split(r"[\s,;|]+", text.strip("[]")) if p]


def _csv_row(raw: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or not value.strip():
            continue
        text = value.strip()
        if name == "merge_commit_shas":
            row[name] = _csv_list(text)
        elif name == "metadata":
            try:
                row[name] = load_json(text)
            except JsonShapeError as error:
                raise RequestInvalidError(f"metadata {error}", code="metadata_invalid", field="metadata") from None
            except ValueError:
                row[name] = text  # not an object: metadata_invalid
        else:
            row[name] = text
    return row


def row_reference_id(draft: DeploymentDraft) -> str:
    """The idempotency key of a backfill row without ``reference_id``: its content's fingerprint,
    so the same row in the same (or another) file is the same deployment."""
    return "row-" + hashlib.sha256(draft.fingerprint().encode()).hexdigest()[:32]


def read_backfill(body: str | None) -> list[tuple[int, DxDeployment | DoraError]]:
    """CSV rows (header row first, the create fields as columns) as requests or per-row errors.

    Row numbers are the file's line numbers of the records (the header is line 1)."""
    if body is None or not body.strip():
        raise RequestInvalidError("the CSV body is empty", code="required_params_missing")
    try:
        reader = csv.DictReader(io.StringIO(body.lstrip("\ufeff")), restval="")
        if reader.fieldnames is None:
            raise RequestInvalidError("the CSV has no header row", code="invalid_csv")
        reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames]
        missing = [c for c in ("deployed_at", "service") if c not in reader.fieldnames]
        if missing:
            raise RequestInvalidError(f"missing required columns: {', '.join(missing)}", code="required_params_missing")
        rows: list[tuple[int, DxDeployment | DoraError]] = []
        for record in reader:
            extra = [cell for cell in record.pop(None, None) or () if cell.strip()]  # a trailing "," is no cell
            # Where the record starts: a quoted cell may span lines, and reader.line_num is where it ends.
            line = reader.line_num - sum(str(v or "").count("\n") for v in (*record.values(), *extra))
            if not extra and not any(str(v or "").strip() for v in record.values()):
                continue  # an empty row (a sheet export's trailing ",,,"): no row, and not counted
            if len(rows) >= MAX_BACKFILL_ROWS:
                raise RequestInvalidError(
                    f"at most {MAX_BACKFILL_ROWS} rows per request; split the file", code="invalid_arguments"
                )
            if extra:
                rows.append((line, RequestInvalidError("the row has more cells than the header", code="invalid_csv")))
                continue
            try:
                values = _csv_row({str(k): v for k, v in record.items()})
            except DoraError as error:  # a cell the service cannot hold: this row fails, the others go on
                rows.append((line, error))
                continue
            if not values:
                continue
            try:
                parsed = DxDeploymentIn.model_validate(values)
            except ValidationError as error:
                rows.append((line, dx_error(error)))
                continue
            request = parsed.to_request(reference_id="pending")
            if parsed.reference_id is None:
                request = DxDeployment(draft=request.draft, reference_id=row_reference_id(request.draft))
            rows.append((line, request))
    except csv.Error as error:
        raise RequestInvalidError(f"the CSV could not be read: {error}", code="invalid_csv") from None
    if not rows:
        raise RequestInvalidError("the CSV has no rows", code="required_params_missing")
    return rows


# --- responses ------------------------------------------------------------------------------
class DxDeploymentOut(Model):
    """The ``deployment`` object of DX responses."""

    id: str
    reference_id: str
    service: str
    environment: str
    deployed_at: int
    success: bool
    repository: str | None = None
    commit_sha: str | None = None
    merge_commit_shas: list[str] | None = None
    integration_branch: str | None = None
    source_url: str | None = None
    source_name: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str

    @classmethod
    def from_domain(cls, deployment: Deployment, reference_id: str) -> Self:
        """The DX view of a stored deployment."""
        return cls(
            id=deployment.id,
            reference_id=reference_id,
            service=deployment.project,
            environment=deployment.environment,
            deployed_at=int(parse_stored(deployment.finished_at).timestamp()),
            success=deployment.state is TaskState.SUCCESS,
            repository=deployment.repository,
            commit_sha=deployment.commit_sha,
            merge_commit_shas=deployment.merge_commit_shas,
            integration_branch=deployment.integration_branch,
            source_url=deployment.source_url,
            source_name=deployment.source_name,
            metadata=deployment.metadata,
            created_at=deployment.received_at,
        )


class DxDeploymentResponse(Model):
    """``{"ok": true, "deployment": {...}}``."""

    ok: bool = True
    deployment: DxDeploymentOut


class DxPullServicesOut(Model):
    """The pull request a setPullServices call assigned (``placeholder`` until its webhook arrives)."""

    github_pull_id: int | None = None
    repository: str | None = None
    pull_number: int | None = None
    services: list[str]
    placeholder: bool


class DxPullServicesResponse(Model):
    """``{"ok": true, "pull_request": {...}}``."""

    ok: bool = True
    pull_request: DxPullServicesOut


class DxBackfillRow(Model):
    """One row's result: ``ok`` with the deployment (``created`` false when it was there already), or
    the row's DX error."""

    row: int
    ok: bool
    created: bool | None = None
    deployment: DxDeploymentOut | None = None
    error: str | None = None
    message: str | None = None


class DxBackfillResponse(Model):
    """``{"ok": true, "created", "unchanged", "failed", "results": [...]}``."""

    ok: bool = True
    created: int
    unchanged: int
    failed: int
    results: list[DxBackfillRow] = Field(default_factory=list)
