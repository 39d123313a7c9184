"""The native batch route's models (``POST /api/{spaceId}/deployments/batch``, API.md "Native API").

Apart from dialects/native.py so that the single-deployment route, the busiest function of the
service, does not build them at its cold start.
"""

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from dora_insights.dialects.native import DeploymentOut
from dora_insights.domain.base import Model

MAX_BATCH = 500


class BatchIn(Model):
    """``POST /api/{spaceId}/deployments/batch`` body: each item is validated on its own."""

    model_config = ConfigDict(extra="forbid")

    deployments: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_BATCH)]


class BatchItemResult(Model):
    """The outcome of one batch item, in request order."""

    index: int
    status: int
    deployment: DeploymentOut | None = None
    message: str | None = None
    errors: list[str] = Field(default_factory=list)


class BatchOut(Model):
    """Per-item results; one bad item does not stop the others."""

    results: list[BatchItemResult]
    created: int
    failed: int
