"""The ``stream_health`` a deployment shows when its stream does not recompute (native API). The
space's whole answer, ``GET /api/{spaceId}/health``, extends it in ``dialects.native_admin``: the
ingest function, which renders deployments, does not build that route's models."""

from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from dora_insights.domain.base import Model

if TYPE_CHECKING:
    from dora_insights.domain.health import StreamHealthRecord

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
        return cls.model_validate(health_fields(record))


def health_fields(record: "StreamHealthRecord") -> dict[str, object]:
    """A stream's failure record as the answers' fields (``StreamHealthOut`` and what extends it)."""
    return {
        "state": "quarantined" if record.quarantined else "failing",
        "failures": record.failures,
        "first_failure_at": record.first_failure_at,
        "last_failure_at": record.last_failure_at,
        "quarantined_at": record.quarantined_at,
        "error_type": record.error_type,
        "error_message": record.error_message,
    }
