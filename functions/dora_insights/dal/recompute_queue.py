"""The recompute queue (SQS): the schedule sends work items, the recompute worker consumes them.

The bodies are opaque here (``logic.recompute`` writes and reads them); this adapter only sends
them in ``SendMessageBatch`` calls of ten and reports how many messages still wait.
"""

from __future__ import annotations

from collections.abc import Sequence

from dora_insights.dal import aws


class RecomputeQueue:
    """The recompute's work-item queue of this function's configuration (``RECOMPUTE_QUEUE_URL``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def backlog(self) -> int:
        """Messages waiting to be received (SQS's approximate count, about a minute behind); those a
        worker holds are being done and not counted."""
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def send(self, bodies: Sequence[str]) -> int:
        """Send messages, ten per ``SendMessageBatch``, in order; how many were sent.

        Raises when SQS refused any (the schedule's next tick sends every item again)."""
        return aws.send_messages(self.url, bodies, "recompute work items")
