"""boto3 clients of the local runtime's moto server, as a test outside the functions reaches it."""

from __future__ import annotations

from typing import Any

import boto3

from dora_local.server import LocalRuntime


def client(local: LocalRuntime, service: str) -> Any:
    """A ``service`` client (``"sqs"``, ``"dynamodb"``...) of ``local``'s moto endpoint, with moto's test
    credentials."""
    return boto3.client(
        service,
        endpoint_url=local.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
