"""The local runtime's core: moto as the AWS endpoint, the template's resources in it, seeding, and
invoking any function with its own environment, in the event shapes AWS uses.

All functions run in this one process, one invocation at a time (``Runtime.lock``): around each
invocation the function's environment (Globals + its own variables, references resolved to the local
names, URLs and ARNs, plus the AWS endpoint variables) is set in ``os.environ`` and put back after,
so nothing leaks into the rest of the process (tests run beside in-process moto mocks).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from dora_local import faults, iam, kms
from dora_local.events import failed_message_ids, scheduled_event, sqs_record
from dora_local.template import (
    ACCOUNT,
    REGION,
    STACK,
    TEMPLATE,
    Function,
    QueueTrigger,
    Resolver,
    ScheduleTrigger,
    functions,
    load,
    resources,
)

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

    from dora_local.persistence import DataDirectory

DEFAULT_API_KEY = "local-dev-key"
DEFAULT_WEBHOOK_SECRET = "local-webhook-secret"
SPACE_ID = "Spaces-1"
SPACE_NAME = "Default"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=15, retries={"mode": "standard", "max_attempts": 3})
_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "StreamSpecification",
)
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
)


class LambdaContext:
    """What a handler sees as its context object, as Lambda gives it."""

    def __init__(self, function: Function) -> None:
        self.function_name = f"{STACK}-{function.logical_id}"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = function.memory
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.timeout_seconds = function.timeout
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Delivery:
    """Counts of one or more SQS deliveries: records handed to functions, and those left for a retry."""

    delivered: int = 0
    failed: int = 0

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(self.delivered + other.delivered, self.failed + other.failed)

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "succeeded": self.delivered - self.failed, "failed": self.failed}


def _call_if_present(module_name: str, attribute: str) -> None:
    """Call ``module.attribute`` (dotted) when the module has been imported and has it."""
    target: Any = sys.modules.get(module_name)
    for part in attribute.split("."):
        target = getattr(target, part, None)
    if callable(target):
        target()


class Runtime:
    """moto + the template's resources + invocation of any function in its own environment."""

    def __init__(
        self,
        *,
        template_path: Path | None = None,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        data_dir: Path | None = None,
        fresh: bool = False,
    ) -> None:
        self.template_path = template_path or TEMPLATE
        self.data_dir = data_dir
        self.fresh = fresh
        self.data: DataDirectory | None = None
        self.doc = load(self.template_path)
        self.functions: dict[str, Function] = functions(self.doc)
        self.routes = [route for f in self.functions.values() for route in f.routes]
        self.api_key = api_key or os.environ.get("DORA_LOCAL_API_KEY") or DEFAULT_API_KEY
        chosen = webhook_secret or os.environ.get("DORA_LOCAL_WEBHOOK_SECRET")
        self.webhook_secret = chosen or DEFAULT_WEBHOOK_SECRET
        self._webhook_secret_chosen = chosen is not None  # else a secret set over the API outlives restarts
        self.lock = threading.RLock()  # one invocation at a time: os.environ is process-wide
        self._last_invocation = threading.local()  # per thread: did its last invocation outlast its Timeout
        self.endpoint = ""
        self.resolver = Resolver(doc=self.doc)
        self.queue_urls: dict[str, str] = {}
        self.table_name = ""
        self._moto: ThreadedMotoServer | None = None
        self._created: dict[str, list[str]] = {"tables": [], "queues": [], "buses": [], "rules": []}
        self._bus_rules: list[tuple[str, str, list[str]]] = []  # (rule, bus, target ids) of AWS::Events::Rule
        self._kms = kms.Created()  # the template's KMS keys and aliases (kept across restarts with a data directory)
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # --- AWS -------------------------------------------------------------------------------------
    def aws_environment(self) -> dict[str, str]:
        """The variables that point boto3 at moto (set around every invocation)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, **CREDENTIALS}

    def start_aws(self) -> None:
        """Start moto's server on loopback (a free port) and create the template's resources in it; with a
        data directory, its tables hold what the directory holds and every write to them is kept there."""
        from moto.server import ThreadedMotoServer  # slow to import: only when moto is needed

        from dora_local import motofix

        patched = motofix.install()
        if self.data_dir is not None:
            from dora_local.persistence import DataDirectory

            if not patched:
                raise RuntimeError(
                    "the data directory needs the moto version local/dora_local/motofix.py was verified with "
                    f"({', '.join(motofix.VERIFIED_MOTO_VERSIONS)}); run without one (DORA_LOCAL_DATA=)"
                )
            self.data = DataDirectory.open(self.data_dir, fresh=self.fresh)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        try:
            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
            self._create_resources()
            if self.data is not None:
                self.data.attach(_dynamodb_backend(), self._created["tables"])
            for logical_id in self.functions:  # a role the IAM check cannot read fails here, not mid-request
                self.principal(logical_id)
        except BaseException:
            self.stop_aws()
            raise

    def stop_aws(self) -> None:
        """Close the data directory (if any), delete the resources created in moto and stop it (a runtime
        started again in this process starts from the data directory, or empty)."""
        try:
            if self.data is not None:
                self.data.close()
        finally:
            self.data = None
            if self._moto is not None:
                self._delete_resources()
                self._moto.stop()
                server = getattr(self._moto, "_server", None)
                if server is not None:
                    server.server_close()
                self._moto = None
            self._clients.clear()

    def load_items(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Store items (DynamoDB JSON) straight into the main table, as a data directory's are loaded, and
        keep them in the data directory if there is one: seeding at scale for benchmarks (moto's own
        writes cost milliseconds an item). The number of items stored."""
        from dora_local import motofix, motoindex

        listed = [dict(item) for item in items]
        largest = max((len(json.dumps(item).encode()) for item in listed), default=0)
        table = _dynamodb_backend().get_table(self.table_name)
        count = motofix.bulk_load(table, listed, size_bound=largest)
        with motofix.LOCK:
            motoindex.prepare(table)
        if self.data is not None:
            self.data.snapshot()
        return count

    def client(self, service: str) -> Any:
        """A boto3 client on moto with explicit credentials (independent of ``os.environ``)."""
        with self._clients_lock:
            if service not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    region_name=REGION,
                )
                self._clients[service] = session.client(service, endpoint_url=self.endpoint, config=_CLIENT_CONFIG)
            return self._clients[service]

    def _physical_name(self, logical_id: str, properties: dict[str, Any], key: str) -> str:
        return str(self.resolver.resolve(properties[key])) if key in properties else f"{STACK}-{logical_id}"

    def _create_resources(self) -> None:
        resolver = self.resolver
        ddb, sqs, events = self.client("dynamodb"), self.client("sqs"), self.client("events")
        self._kms = kms.create(self.doc, resolver, self.client("kms"), self.data_dir)
        for logical_id, resource in resources("AWS::DynamoDB::Table", self.doc).items():
            props = resolver.resolve(resource.get("Properties") or {})
            name = self._physical_name(logical_id, props, "TableName")
            kwargs = {k: props[k] for k in _TABLE_KEYS if k in props}
            if props.get("GlobalSecondaryIndexes"):
                kwargs["GlobalSecondaryIndexes"] = [
                    {k: index[k] for k in _INDEX_KEYS if k in index} for index in props["GlobalSecondaryIndexes"]
                ]
            kwargs.setdefault("BillingMode", "PAY_PER_REQUEST")
            ddb.create_table(TableName=name, **kwargs)
            self._created["tables"].append(name)
            ttl = props.get("TimeToLiveSpecification") or {}
            if ttl.get("Enabled") in (True, "true"):
                ddb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
                )
            resolver.names[logical_id] = name
            resolver.arns[logical_id] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        self._create_queues(sqs)
        for logical_id, resource in resources("AWS::Events::EventBus", self.doc).items():
            name = self._physical_name(logical_id, resource.get("Properties") or {}, "Name")
            if name != "default":
                events.create_event_bus(Name=name)
                self._created["buses"].append(name)
            resolver.names[logical_id] = name
            resolver.arns[logical_id] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
        # Schedule rules exist (for their ARN and for anyone listing rules) but never get targets:
        # moto never fires schedules, and a Lambda target breaks every PutEvents in moto.
        for function, trigger in self.schedule_triggers():
            events.put_rule(
                Name=self.rule_name(function, trigger),
                ScheduleExpression=trigger.expression,
                State="ENABLED" if trigger.enabled else "DISABLED",
            )
            self._created["rules"].append(self.rule_name(function, trigger))
        self._create_bus_rules(events)
        self.table_name = self._main_table()

    def _create_bus_rules(self, events: Any) -> None:
        """The template's event-pattern rules (``AWS::Events::Rule``) with their SQS targets, so moto routes a
        ``PutEvents`` to the queues as EventBridge would (alert events to the alert-delivery queue). Only SQS
        targets are attached: a Lambda target breaks every PutEvents in moto."""
        for logical_id, resource in resources("AWS::Events::Rule", self.doc).items():
            props = self.resolver.resolve(resource.get("Properties") or {})
            if "EventPattern" not in props:
                continue
            name = self._physical_name(logical_id, props, "Name")[:64]
            bus = str(props.get("EventBusName") or "default")
            pattern = props["EventPattern"]
            events.put_rule(
                Name=name,
                EventBusName=bus,
                EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
                State=str(props.get("State", "ENABLED")),
            )
            targets = [
                {"Id": str(t["Id"]), "Arn": str(t["Arn"])}
                for t in props.get("Targets") or []
                if str(t.get("Arn", "")).startswith("arn:aws:sqs:")
            ]
            if targets:
                events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
            self._bus_rules.append((name, bus, [t["Id"] for t in targets]))
            self.resolver.names[logical_id] = name
            self.resolver.arns[logical_id] = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{name}"

    def _create_queues(self, sqs: Any) -> None:
        """Queues in dependency order: a queue's redrive policy names its dead-letter queue's ARN."""
        resolver = self.resolver
        pending = dict(resources("AWS::SQS::Queue", self.doc))
        while pending:
            ready = [
                logical_id
                for logical_id, resource in pending.items()
                if not (set(_references(resource.get("Properties") or {})) & set(pending))
            ]
            if not ready:
                raise ValueError(f"queues refer to each other in a cycle: {sorted(pending)}")
            for logical_id in ready:
                props = resolver.resolve(pending.pop(logical_id).get("Properties") or {})
                name = self._physical_name(logical_id, props, "QueueName")
                if str(props.get("FifoQueue")).lower() == "true" and not name.endswith(".fifo"):
                    name += ".fifo"
                attributes = {k: _attribute(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
                for policy in ("RedrivePolicy", "RedriveAllowPolicy"):
                    if policy in props:
                        value = props[policy]
                        attributes[policy] = value if isinstance(value, str) else json.dumps(value)
                url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
                self._created["queues"].append(url)
                resolver.names[logical_id], resolver.urls[logical_id] = name, url
                resolver.arns[logical_id] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
                self.queue_urls[logical_id] = url

    def _delete_resources(self) -> None:
        """Delete what ``_create_resources`` created: moto's state outlives its server in this process."""
        kms.delete(self._kms, self.client("kms"))
        for rule, bus, target_ids in reversed(self._bus_rules):
            try:
                if target_ids:
                    self.client("events").remove_targets(Rule=rule, EventBusName=bus, Ids=target_ids)
                self.client("events").delete_rule(Name=rule, EventBusName=bus)
            except Exception:  # best effort: the server stops anyway
                print(f"dora_local: could not delete rule {rule} from moto", file=sys.stderr)
        self._bus_rules.clear()
        deletions: list[tuple[str, str, str, str]] = [  # kind, service, operation, parameter
            ("rules", "events", "delete_rule", "Name"),
            ("buses", "events", "delete_event_bus", "Name"),
            ("queues", "sqs", "delete_queue", "QueueUrl"),
            ("tables", "dynamodb", "delete_table", "TableName"),
        ]
        for kind, service, operation, parameter in deletions:
            for name in reversed(self._created[kind]):
                try:
                    getattr(self.client(service), operation)(**{parameter: name})
                except Exception:  # best effort: the server stops anyway
                    print(f"dora_local: could not delete {kind[:-1]} {name} from moto", file=sys.stderr)
            self._created[kind].clear()
        self.queue_urls.clear()

    def _main_table(self) -> str:
        """The table the functions name in ``TABLE_NAME`` (Globals), else the first table."""
        globals_env = (self.doc.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables") or {}
        if "TABLE_NAME" in globals_env:
            return str(self.resolver.resolve(globals_env["TABLE_NAME"]))
        tables = resources("AWS::DynamoDB::Table", self.doc)
        return self.resolver.names[next(iter(tables))] if tables else ""

    # --- environment -----------------------------------------------------------------------------
    def environment_of(self, function: Function) -> dict[str, str]:
        """A function's environment variables (Globals + its own) with references resolved locally."""
        return {k: self.resolver.environment_value(v) for k, v in function.environment.items()}

    def lambda_environment(self, function: Function) -> dict[str, str | None]:
        """Everything an invocation of ``function`` sees in ``os.environ`` besides the process's own
        (``None``: unset during the invocation)."""
        name = f"{STACK}-{function.logical_id}"
        return {
            **self.aws_environment(),
            "AWS_PROFILE": None,  # a developer's profile must not override the endpoint or credentials
            "AWS_SAM_LOCAL": "true",  # as `sam local` sets it: Powertools turns X-Ray tracing off
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "_HANDLER": function.handler,
            # Alert destinations may be loopback http URLs here (never in AWS), so local receivers get alerts.
            "ALERT_ALLOW_LOOPBACK_HTTP": "true",
            **self.environment_of(function),
        }

    @contextmanager
    def environment(self, variables: dict[str, str | None]) -> Iterator[None]:
        """Hold the invocation lock with ``variables`` set in ``os.environ``; put the old values back after."""
        with self.lock:
            saved = {name: os.environ.get(name) for name in variables}
            try:
                for name, value in variables.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
                self._adopt_process_state()
                yield
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    def _adopt_process_state(self) -> None:
        """Re-read settings, and forget the project's cached clients and lookups if they are not ours
        (another runtime or an in-process mock created them): the state of a warm container."""
        from dora_insights.config import reset_settings
        from dora_insights.dal import aws as dal_aws

        reset_settings()
        if any(dal_aws.client(s).meta.endpoint_url != self.endpoint for s in ("dynamodb", "sqs", "events", "kms")):
            dal_aws.reset_clients()
            for module_name, attribute in (
                ("dora_insights.dal.secrets", "clear_cache"),
                ("dora_insights.logic.spaces", "clear_cache"),
                ("dora_insights.logic.catalogue", "clear_cache"),
                ("dora_insights.handlers.runtime", "reset"),
            ):
                _call_if_present(module_name, attribute)

    # --- invocation ------------------------------------------------------------------------------
    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke one function with one event in its own environment, as Lambda would; its result.

        The handler's exceptions propagate (the caller maps them as the AWS integration would); a
        process killed by an injected fault (:mod:`dora_local.faults`) is a ``FunctionCrashedError``.
        """
        function = self.functions[logical_id]
        self._last_invocation.timed_out = False
        with self.environment(self.lambda_environment(function)):
            module_name, _, entry = function.handler.rpartition(".")
            handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), entry)
            context = LambdaContext(function)
            started = time.monotonic()
            principal = self.principal(logical_id)
            try:
                with iam.acting_as(principal), faults.invoking(logical_id):
                    return handler(event, context)
            except faults.FunctionCrash as crash:
                print(f"{logical_id}: the function process died: {crash}", file=sys.stderr)
                raise faults.FunctionCrashedError(str(crash)) from None
            finally:
                for denial in principal.denials:
                    print(f"{logical_id}: AccessDenied (its role in template.yaml): {denial.message}", file=sys.stderr)
                elapsed = time.monotonic() - started
                self._last_invocation.timed_out = elapsed > function.timeout
                if elapsed > function.timeout:
                    print(
                        f"{logical_id}: Task timed out after {elapsed:.2f} seconds (Timeout: {function.timeout}); "
                        "Lambda would have stopped it",
                        file=sys.stderr,
                    )

    def timed_out(self) -> bool:
        """Did this thread's last :meth:`invoke` run past its function's Timeout (Lambda would have
        stopped it: its result is not what AWS answers)?"""
        return bool(getattr(self._last_invocation, "timed_out", False))

    def principal(self, logical_id: str) -> iam.Principal:
        """What a function runs as: its role in the template, resolved to the resources created in moto."""
        return iam.principal_of(logical_id, self.resolver, self.doc)

    def globals_environment(self) -> dict[str, str]:
        """The template's ``Globals`` environment variables, references resolved locally."""
        variables = self.doc.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables") or {}
        return {k: self.resolver.environment_value(v) for k, v in variables.items()}

    def seed(self) -> None:
        """Space ``Spaces-1`` with the local admin API key and GitHub webhook secret (idempotent): the
        secret is set when the space has none, or when one is chosen (``DORA_LOCAL_WEBHOOK_SECRET``), so a
        secret set over the API (``PUT .../webhooks/github``) is kept across restarts.

        The package is first imported here, so under the template's Globals: the logger and metrics are
        made at import (``observability``) from ``POWERTOOLS_SERVICE_NAME`` and
        ``POWERTOOLS_METRICS_NAMESPACE``, as each function's are in Lambda (without them every
        function logged ``service_undefined`` and every metrics flush failed its run)."""
        variables: dict[str, str | None] = {
            **self.globals_environment(),
            **self.aws_environment(),
            "AWS_PROFILE": None,
            "TABLE_NAME": self.table_name,
        }
        with self.environment(variables):
            from dora_insights.dal.aws import reset_clients
            from dora_insights.dal.secrets import KmsSecretBox
            from dora_insights.dal.store import Store
            from dora_insights.logic import admin

            reset_clients()
            store = Store(self.table_name)
            now = datetime.now(UTC)
            admin.ensure_space(store, SPACE_ID, SPACE_NAME, now)
            admin.ensure_api_key(store, SPACE_ID, "local admin", self.api_key, now)
            secrets = KmsSecretBox(self.resolver.arns.get("SecretsKey"))  # the template's key, created in moto
            space = store.get_space(SPACE_ID)
            has_secret = space is not None and (space.webhook_secret_encrypted or space.webhook_secret) is not None
            if self._webhook_secret_chosen or not has_secret:
                admin.set_webhook_secret(store, secrets, SPACE_ID, self.webhook_secret)

    # --- SQS -------------------------------------------------------------------------------------
    def queue_triggers(self) -> list[tuple[Function, QueueTrigger]]:
        """Every enabled SQS trigger with its function."""
        return [(f, t) for f in self.functions.values() for t in f.queues if t.enabled and t.queue in self.queue_urls]

    def deliver(self, function: Function, trigger: QueueTrigger, *, wait_seconds: int = 0) -> Delivery:
        """Receive one batch (up to the trigger's batch size) and deliver it in the SQS event shape.

        A plain success deletes every message; with ReportBatchItemFailures a response's
        ``batchItemFailures`` are left for the visibility timeout (then moto's redrive to the DLQ)
        and the rest deleted; an exception leaves every message, and so does an invocation that ran
        past the function's Timeout, whatever it answered: Lambda would have stopped it, and a
        timed-out invocation returns the whole batch to the queue, the records it finished included.
        """
        sqs, url = self.client("sqs"), self.queue_urls[trigger.queue]
        # Lambda's event source mapping polls and deletes with the function's role.
        poller = self.principal(function.logical_id)
        messages: list[dict[str, Any]] = []
        while len(messages) < trigger.batch_size:
            with iam.acting_as(poller):
                received = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(10, trigger.batch_size - len(messages)),
                    WaitTimeSeconds=wait_seconds if not messages else 0,
                    AttributeNames=["All"],
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            messages.extend(received)
            if not received or trigger.batch_size <= 10:
                break
        if not messages:
            return Delivery()
        records = [sqs_record(m, self.resolver.arns[trigger.queue]) for m in messages]
        try:
            response = self.invoke(function.logical_id, {"Records": records})
        except Exception:
            print(f"{function.logical_id}: the SQS batch failed; its messages stay for a retry", file=sys.stderr)
            traceback.print_exc()
            return Delivery(len(records), len(records))
        if self.timed_out():
            print(f"{function.logical_id}: timed out: every message of its batch stays for a retry", file=sys.stderr)
            return Delivery(len(records), len(records))
        failed = failed_message_ids(response, records) if trigger.report_failures else set()
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done[start : start + 10])
            ]
            with iam.acting_as(poller):
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        return Delivery(len(records), len(failed))

    # --- schedules -------------------------------------------------------------------------------
    def schedule_triggers(self) -> list[tuple[Function, ScheduleTrigger]]:
        """Every Schedule trigger with its function."""
        return [(f, t) for f in self.functions.values() for t in f.schedules]

    def fanout_triggers(self, function: Function) -> list[tuple[Function, QueueTrigger]]:
        """The queue triggers a scheduled function fans its work out to: those of the queues its own
        Environment (not Globals) names, such as the recompute schedule's ``RECOMPUTE_QUEUE_URL``.
        ``POST /_local/schedule/run`` delivers them before it answers."""
        own = (self.doc["Resources"][function.logical_id].get("Properties") or {}).get("Environment") or {}
        named = set(_references(own.get("Variables") or {}))
        return [(f, t) for f, t in self.queue_triggers() if t.queue in named and f is not function]

    @staticmethod
    def rule_name(function: Function, trigger: ScheduleTrigger) -> str:
        return f"{STACK}-{function.logical_id}{trigger.name}"[:64]

    def run_scheduled(self, function: Function, trigger: ScheduleTrigger) -> Any:
        """Invoke a scheduled function with what its rule sends: the "Scheduled Event" (or the rule's Input)."""
        rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.rule_name(function, trigger)}"
        event = json.loads(trigger.input) if trigger.input else scheduled_event(rule_arn)
        return self.invoke(function.logical_id, event)


def _dynamodb_backend() -> Any:
    """moto's DynamoDB backend of the runtime's account and region (shared by its server in this process)."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT][REGION]


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _references(value: Any) -> Iterator[str]:
    """Logical ids a (template) value refers to."""
    if isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref":
                yield str(argument)
            elif key == "Fn::GetAtt":
                yield str(argument[0] if isinstance(argument, list) else str(argument).split(".")[0])
            else:
                yield from _references(argument)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
