"""The framework floor of a route (issue 17, item 6): the least a Powertools HTTP API handler that
validates one pydantic model imports. bench/cold_start.py times importing this module against the
ingest handler's; nothing else uses it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel

app = APIGatewayHttpResolver(enable_validation=True)


class Deployment(BaseModel):
    """One field is enough: the cost is the framework's, not the model's."""

    project: str


@app.post("/deployments")
def create(deployment: Deployment) -> dict[str, Any]:
    return {"project": deployment.project}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
