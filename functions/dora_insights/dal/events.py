"""EventBridge adapter: the alert events users route to SNS, Slack or email with a rule."""

from __future__ import annotations

import json
from typing import Any

from dora_insights.dal import dynamo

SOURCE = "dora-insights"


class EventBus:
    """Puts events on the bus named in template.yaml (``EVENT_BUS_NAME``)."""

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put(self, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None) -> None:
        """One event; raises when EventBridge refuses it, so the caller retries on its next run."""
        response = dynamo.client("events").put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, separators=(",", ":")),
                    "EventBusName": self.bus_name,
                    "Resources": resources or [],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the {detail_type} event: {response['Entries']}")
