"""The local runtime: moto server, resources from template.yaml, seeding, and function invocation."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from dora_local import template
from dora_local.template import ACCOUNT, REGION, Function, Resolver

DEFAULT_API_KEY = "local-dev-key"
DEFAULT_WEBHOOK_SECRET = "local-webhook-secret"
SPACE_ID = "Spaces-1"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LambdaContext:
    """What a handler sees as its context object, as Lambda gives it."""

    def __init__(self, function: Function) -> None:
        self.function_name = f"dora-insights-local-{function.logical_id}"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = function.memory
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Runtime:
    """moto + the template's resources + invocation of any function with its own environment."""

    def __init__(self, *, api_key: str | None = None, webhook_secret: str | None = None) -> None:
        self.api_key = api_key or os.environ.get("DORA_LOCAL_API_KEY") or DEFAULT_API_KEY
        self.webhook_secret = webhook_secret or os.environ.get("DORA_LOCAL_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET
        self.functions = template.functions()
        self.routes = [route for f in self.functions.values() for route in f.routes]
        self._invoke_lock = threading.RLock()
        self._moto: ThreadedMotoServer | None = None
        self.endpoint = ""
        self.resolver = Resolver({}, {}, {})
        self.queue_urls: dict[str, str] = {}

    # --- AWS ---------------------------------------------------------------------------------
    def start_aws(self) -> None:
        """Start moto on loopback and create the template's table, queues and event bus in it."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        port = free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self._create_resources()

    def _client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def _create_resources(self) -> None:
        names: dict[str, str] = {}
        urls: dict[str, str] = {}
        arns: dict[str, str] = {}
        resolver = Resolver(names, urls, arns)
        ddb, sqs, events = self._client("dynamodb"), self._client("sqs"), self._client("events")
        for logical_id, resource in template.resources("AWS::DynamoDB::Table").items():
            props = resource["Properties"]
            name = resolver.resolve(props.get("TableName", logical_id))
            kwargs = {
                k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes") if k in props
            }
            ddb.create_table(TableName=name, BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"), **kwargs)
            names[logical_id] = name
            arns[logical_id] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        queues = template.resources("AWS::SQS::Queue")
        # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
        ordered = sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]["Properties"])
        for logical_id in ordered:
            props = queues[logical_id]["Properties"]
            name = resolver.resolve(props.get("QueueName", logical_id))
            attributes: dict[str, str] = {}
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
                if key in props:
                    attributes[key] = str(props[key])
            if "RedrivePolicy" in props:
                redrive = props["RedrivePolicy"]
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": resolver.resolve(redrive["deadLetterTargetArn"]),
                        "maxReceiveCount": int(redrive["maxReceiveCount"]),
                    }
                )
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            names[logical_id], urls[logical_id] = name, url
            arns[logical_id] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            self.queue_urls[logical_id] = url
        for logical_id, resource in template.resources("AWS::Events::EventBus").items():
            name = resolver.resolve(resource["Properties"].get("Name", logical_id))
            events.create_event_bus(Name=name)
            names[logical_id] = name
            arns[logical_id] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
        self.resolver = resolver

    def stop_aws(self) -> None:
        """Stop moto."""
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    # --- functions ---------------------------------------------------------------------------
    def environment_of(self, function: Function) -> dict[str, str]:
        """A function's environment variables with the template's references resolved locally."""
        return {k: str(self.resolver.resolve(v)) for k, v in function.environment.items()}

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke one function with one event, in its own environment (one invocation at a time)."""
        function = self.functions[logical_id]
        with self._invoke_lock:
            saved = dict(os.environ)
            os.environ.update(self.environment_of(function))
            try:
                from dora_insights.config import reset_settings

                reset_settings()
                module_name, _, entry = function.handler.rpartition(".")
                handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module_name), entry)
                return handler(event, LambdaContext(function))
            finally:
                os.environ.clear()
                os.environ.update(saved)

    def seed(self) -> None:
        """Space ``Spaces-1`` with the local admin key and GitHub webhook secret."""
        table = next(iter(template.resources("AWS::DynamoDB::Table")))
        with self._invoke_lock:
            os.environ["TABLE_NAME"] = self.resolver.names[table]
            from dora_insights.config import reset_settings
            from dora_insights.dal.dynamo import reset_clients
            from dora_insights.dal.store import Store
            from dora_insights.logic import admin

            reset_settings()
            reset_clients()
            store = Store(self.resolver.names[table])
            now = datetime.now(UTC)
            admin.ensure_space(store, SPACE_ID, "Default", now)
            admin.ensure_api_key(store, SPACE_ID, "local admin", self.api_key, now)
            admin.set_webhook_secret(store, SPACE_ID, self.webhook_secret)

    # --- SQS ---------------------------------------------------------------------------------
    def deliver(self, logical_id: str, queue: str, batch_size: int, *, wait_seconds: int = 0) -> tuple[int, int]:
        """Receive one batch from ``queue`` and deliver it in the SQS event shape; (delivered, failed)."""
        sqs = self._client("sqs")
        url = self.queue_urls[queue]
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0, 0
        arn = self.resolver.arns[queue]
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in received
        ]
        try:
            response = self.invoke(logical_id, {"Records": records})
        except Exception:
            traceback.print_exc()
            return 0, len(records)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        done = [r for r in records if r["messageId"] not in failed]
        for chunk in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done[chunk : chunk + 10])
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        return len(done), len(failed)

    def queue_triggers(self) -> list[tuple[str, str, int]]:
        """(function, queue, batch size) of every SQS trigger."""
        return [(f.logical_id, q, size) for f in self.functions.values() for q, size in f.queues]

    def schedule_triggers(self) -> list[tuple[str, str]]:
        """(function, schedule expression) of every Schedule trigger."""
        return [(f.logical_id, s) for f in self.functions.values() for s in f.schedules]

    def run_scheduled(self, logical_id: str, expression: str) -> Any:
        """Invoke a scheduled function with the EventBridge "Scheduled Event" shape."""
        now = datetime.now(UTC)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/dora-insights-local-{logical_id}-{expression}"],
            "detail": {},
        }
        return self.invoke(logical_id, event)


def encode_body(raw: bytes, content_type: str) -> tuple[str | None, bool]:
    """An HTTP API event's body: text as-is when it is UTF-8 of a textual type, else base64."""
    if not raw:
        return None, False
    textual = not content_type or any(
        t in content_type.lower() for t in ("json", "text/", "csv", "xml", "x-www-form-urlencoded", "javascript")
    )
    if textual:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode(), True
