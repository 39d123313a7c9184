"""Corrections of stored deployments (issue 16): what a correction may change, how it applies, and
the record every correction and removal leaves. Pure values, no I/O.

A correction changes only fields that leave the deployment in its stream: ``state``, the
change-failure ``override``, its ``remediation``, ``version`` and ``tags``. The fields that define the
stream (project, environment, tenant, channel) and the ones attribution read (times, code) are not
correctable: a deployment sent wrong there is deleted and sent again.

``DeploymentCorrection`` tells "not given" from "set to null" by the fields it was built with
(pydantic's ``model_fields_set``): ``DeploymentCorrection(change_failure=None)`` clears the override,
``DeploymentCorrection()`` leaves it.
"""

from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from dora_insights.domain.base import Model
from dora_insights.domain.model import Deployment, Remediation, RemediationType, TaskState

__all__ = [
    "CORRECTABLE",
    "CorrectionRecord",
    "DeploymentCorrection",
    "FieldChange",
    "Remediation",
    "RemediationType",
    "apply_correction",
    "changes_release_first_seen",
    "removal_snapshot",
]

# Correction field -> the deployment field it sets.
CORRECTABLE: dict[str, str] = {
    "state": "state",
    "change_failure": "change_failure_override",
    "remediation": "remediation",
    "version": "version",
    "tags": "tags",
}


class CorrectionInvalidError(ValueError):
    """A correction that cannot apply (a field that may not be null). ``field`` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class DeploymentCorrection(Model):
    """What a correction changes. Only the fields given apply; ``None`` given clears the field
    (``change_failure``: the override, the rules decide again; ``remediation``, ``version``: removed;
    ``tags``: none). ``state`` may not be None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: TaskState | None = None
    change_failure: bool | None = None
    remediation: Remediation | None = None
    version: str | None = None
    tags: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _state_not_null(self) -> Self:
        if "state" in self.model_fields_set and self.state is None:
            raise ValueError("state may not be null")
        return self

    def given(self, name: str) -> bool:
        """Whether the correction sets ``name`` (to a value or to None)."""
        return name in self.model_fields_set

    @property
    def fields(self) -> list[str]:
        """The fields given, in ``CORRECTABLE`` order."""
        return [name for name in CORRECTABLE if self.given(name)]


class FieldChange(Model):
    """One field's value before and after a correction (JSON values)."""

    model_config = ConfigDict(frozen=True)

    before: Any = None
    after: Any = None


class CorrectionRecord(Model):
    """Who changed or removed what, when (kept after a deployment is deleted, for audit).

    ``revision`` is the deployment's revision after the correction (for a removal: the one removed);
    ``changes`` the fields that changed; ``removed`` what a removal deleted (the deployment as it was,
    without its attribution and figures)."""

    model_config = ConfigDict(frozen=True)

    id: str
    space_id: str
    target: Literal["deployment", "failure"] = "deployment"
    target_id: str
    action: Literal["correct", "delete"]
    actor: str
    at: str
    revision: int | None = None
    changes: dict[str, FieldChange] = Field(default_factory=dict)
    removed: dict[str, Any] | None = None


def _json(value: Any) -> Any:
    if isinstance(value, Remediation):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, TaskState | RemediationType):
        return value.value
    if isinstance(value, tuple | list):
        return list(value)
    return value


def apply_correction(
    deployment: Deployment, correction: DeploymentCorrection
) -> tuple[Deployment, dict[str, FieldChange]]:
    """The corrected deployment (same revision: the store moves it on) and the fields that changed,
    keyed by the correction's field names. Fields given with their current value change nothing."""
    updates: dict[str, Any] = {}
    changes: dict[str, FieldChange] = {}
    for name in correction.fields:
        value = getattr(correction, name)
        if name == "state" and value is None:  # pragma: no cover - the model refuses it
            raise CorrectionInvalidError("state may not be null", "state")
        if name == "tags":
            value = list(value or ())
        attribute = CORRECTABLE[name]
        before = getattr(deployment, attribute)
        if _json(before) == _json(value):
            continue
        updates[attribute] = value
        changes[name] = FieldChange(before=_json(before), after=_json(value))
    return deployment.model_copy(update=updates), changes


def changes_release_first_seen(old: Deployment, new: Deployment | None) -> bool:
    """Whether correcting or replacing ``old`` by ``new`` (None: removing it) may move the first-seen time
    of a release of its project, which every stream of the project reads (METRICS §3, the Release lead
    time; ``release_first_seen`` counts every deployment of a version, whatever its environment, state or
    stream): a deployment with a version is removed, or what ``release_first_seen`` reads of it changes
    (its version, project, start or finish, release creation time)."""
    if new is None:
        return old.version is not None
    if old.version is None and new.version is None:
        return False
    return _first_seen_inputs(old) != _first_seen_inputs(new)


def _first_seen_inputs(deployment: Deployment) -> tuple[str | None, ...]:
    return (
        deployment.version,
        deployment.project_id,
        deployment.started_at,
        deployment.finished_at,
        deployment.release_created_at,
    )


def removal_snapshot(deployment: Deployment) -> dict[str, Any]:
    """What a removal record keeps of the deployment: every field but its attribution and figures."""
    return deployment.model_dump(mode="json", exclude_none=True, exclude={"attribution", "figures", "body_hash"})
