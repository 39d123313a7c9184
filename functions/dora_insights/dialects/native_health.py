"""Native API models of the scheduled recompute's health: ``GET /api/{spaceId}/health`` and the
``stream_health`` a deployment shows when its stream does not recompute."""

from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from dora_insights.domain.base import Model

if TYPE_CHECKING:
    from dora_insights.domain.health import StreamHealthRecord
    from dora_insights.logic.health import SpaceHealth

StreamState = Literal["failing", "quarantined"]


class StreamHealthOut(Model):
    """A stream whose recompute fails: the figures shown for it are from its last good recompute."""

    state: StreamState = Field(
        description="`failing`: retried every run; `quarantined`: left out of the recompute until something "
        "new is written to the stream or its retry time comes"
    )
    failures: int = Field(description="failed recompute runs in a row")
    first_failure_at: str
    last_failure_at: str
    quarantined_at: str | None = None
    error_type: str = Field(description="the last error's type")
    error_message: str = Field(description="the last error, one line, bounded length")

    @classmethod
    def of(cls, record: "StreamHealthRecord") -> Self:
        """A stream's failure record as a deployment shows it."""
        return cls.model_validate(_record_fields(record))


class SpaceStreamHealthOut(StreamHealthOut):
    """A failing or quarantined stream of the space, named as deployments name it."""

    stream: str = Field(description="the stream key: project, channel, environment and tenant ids")
    project: str | None = None
    project_id: str | None = None
    environment: str | None = None
    environment_id: str | None = None
    tenant: str | None = None
    tenant_id: str | None = None
    channel: str | None = None
    channel_id: str | None = None


class SpaceFailureOut(Model):
    """The last visit of the space that failed as a whole (not one stream, report or threshold)."""

    at: str
    stage: str = Field(description="`setup`, `streams`, `reports` or `thresholds`")
    error_type: str
    error_message: str


class RecomputeHealthOut(Model):
    """``GET /api/{spaceId}/health``: how the scheduled recompute is doing for the space."""

    space_id: str
    status: Literal["ok", "degraded"] = Field(description="`degraded` while any stream fails or is quarantined")
    last_success_at: str | None = Field(
        description="the last visit without any failure (recorded when it did work or followed a failure, "
        "otherwise at most hourly)"
    )
    last_failure: SpaceFailureOut | None
    dirty_streams: int = Field(description="streams waiting for the recompute, quarantined ones included")
    quarantine_after: int = Field(description="failed runs in a row after which a stream is quarantined")
    failing: list[SpaceStreamHealthOut]
    quarantined: list[SpaceStreamHealthOut]

    @classmethod
    def of(cls, report: "SpaceHealth", *, quarantine_after: int) -> Self:
        """The route's answer from the space's health."""
        streams = [
            SpaceStreamHealthOut.model_validate(
                {
                    **_record_fields(s.record),
                    "stream": s.record.stream,
                    "project": s.project,
                    "project_id": s.project_id,
                    "environment": s.environment,
                    "environment_id": s.environment_id,
                    "tenant": s.tenant,
                    "tenant_id": s.tenant_id,
                    "channel": s.channel,
                    "channel_id": s.channel_id,
                }
            )
            for s in report.streams
        ]
        space = report.space
        last_failure = None
        if space is not None and space.last_failure_at is not None:
            last_failure = SpaceFailureOut(
                at=space.last_failure_at,
                stage=space.stage or "",
                error_type=space.error_type or "",
                error_message=space.error_message or "",
            )
        return cls(
            space_id=report.space_id,
            status="degraded" if streams else "ok",
            last_success_at=space.last_success_at if space else None,
            last_failure=last_failure,
            dirty_streams=report.dirty_streams,
            quarantine_after=quarantine_after,
            failing=[s for s in streams if s.state == "failing"],
            quarantined=[s for s in streams if s.state == "quarantined"],
        )


def _record_fields(record: "StreamHealthRecord") -> dict[str, object]:
    return {
        "state": "quarantined" if record.quarantined else "failing",
        "failures": record.failures,
        "first_failure_at": record.first_failure_at,
        "last_failure_at": record.last_failure_at,
        "quarantined_at": record.quarantined_at,
        "error_type": record.error_type,
        "error_message": record.error_message,
    }
