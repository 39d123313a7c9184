"""AWS IAM where moto checks none: every AWS call a function makes is allowed by its role in template.yaml, or fails.

moto lets any caller do anything, so a function whose role may only read the table would write freely
locally and in tests, then get ``AccessDenied`` in AWS. This module evaluates a function's
identity-based policy as AWS does and refuses, with the error AWS raises, every call the policy does
not allow:

- **Policies** come from the template: the function's ``Role: !GetAtt XRole.Arn`` (the role's inline
  ``Policies``, its ``ManagedPolicyArns`` and any ``AWS::IAM::Policy``/``ManagedPolicy`` attached to
  it), or, without ``Role``, the role SAM generates from ``Policies`` (SAM policy templates expanded by
  aws-sam-translator, inline statements, AWS managed policies), ``Tracing`` and queue events.
  References resolve with the runtime's :class:`~dora_local.template.Resolver` (the resources it
  created in moto), or in tests with :func:`environment_resolver` (the names a test put in the
  function's environment variables).
- **Evaluation** as AWS documents it: an explicit ``Deny`` wins, else some ``Allow`` must match,
  else the call is implicitly denied. ``Action``/``NotAction`` match case-insensitively,
  ``Resource``/``NotResource`` case-sensitively, both with the ``*`` and ``?`` wildcards. A statement
  with a ``Condition`` is not evaluated here: an ``Allow`` under a condition grants nothing, a ``Deny``
  under a condition always applies (never more permissive than AWS).
- **Requests** are mapped to IAM actions and resources as AWS authorises them: a transaction's items
  one by one with their own action (``TransactWriteItems`` → ``PutItem``/``UpdateItem``/``DeleteItem``/
  ``ConditionCheckItem``, ``TransactGetItems`` → ``GetItem``) on their own table, batches on every
  table they name, ``IndexName`` on the index ARN, SQS batch operations as their single action on the
  queue's ARN (from ``QueueUrl``), ``PutEvents`` on each entry's bus, KMS calls on the key they name
  (``KeyId``: a key ARN, or a key id made into its ARN; a ``Decrypt`` without ``KeyId`` on the key its
  ciphertext names, as moto writes it). An alias is authorised as the alias ARN, which no key statement
  matches: AWS resolves it to its key first, so use the key ARN (the functions get it in ``SECRETS_KEY_ARN``).
- **Enforcement**: :func:`acting_as` marks the current context (a ``ContextVar``: a thread or task
  of its own) as running a function; one process-wide wrapper of botocore's
  ``BaseClient._make_api_call`` (:func:`install`, idempotent) checks every call made in that context
  and raises botocore's ``ClientError`` with AWS's code and message when the policy does not allow it.
  Calls made outside (the runtime's own setup, a test's arrange and assert steps) pass untouched.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from dora_local.template import ACCOUNT, REGION, STACK, Resolver, functions, load

__all__ = [
    "Decision",
    "Denial",
    "PolicyUnsupportedError",
    "Principal",
    "Request",
    "Role",
    "Statement",
    "UncheckedCallError",
    "acting_as",
    "active",
    "environment_resolver",
    "evaluate",
    "install",
    "kms_key_arn",
    "principal_of",
    "requests_of",
    "role_of",
]


class PolicyUnsupportedError(ValueError):
    """A policy this module cannot evaluate faithfully (an external role, an unknown managed policy)."""


class UncheckedCallError(BaseException):
    """An AWS call from function code that runs outside :func:`acting_as` (see :func:`install`'s guard).

    A ``BaseException``, as pytest's own ``fail``: a handler's catch-all ``except Exception`` (which turns
    errors into 500 answers) must not hide that the check was skipped.
    """


# --------------------------------------------------------------------------------------------- evaluation
class Decision(Enum):
    """The outcome of evaluating identity-based policies for one action on one resource."""

    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard pattern (``*`` any run of characters, ``?`` one character) as a regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _matches(patterns: tuple[str, ...], value: str, *, ignore_case: bool) -> bool:
    return any(_pattern(p, ignore_case).fullmatch(value) for p in patterns)


@dataclass(frozen=True)
class Statement:
    """One statement of an identity-based policy, references already resolved."""

    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None  # NotAction instead of Action
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None  # NotResource instead of Resource
    conditional: bool = False
    source: str = ""  # where it comes from, for messages: "ApiReadRole/table-read"

    @classmethod
    def parse(cls, raw: Mapping[str, Any], source: str = "") -> Statement:
        """A statement from its JSON form; :class:`PolicyUnsupportedError` for what IAM would reject too."""

        def strings(name: str) -> tuple[str, ...] | None:
            if name not in raw:
                return None
            value = raw[name]
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise PolicyUnsupportedError(f"{source}: {name} has a value that is not a string: {value!r}")
            return tuple(values)

        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyUnsupportedError(f"{source}: Effect must be Allow or Deny, not {effect!r}")
        actions, not_actions = strings("Action"), strings("NotAction")
        resources, not_resources = strings("Resource"), strings("NotResource")
        if (actions is None) == (not_actions is None):
            raise PolicyUnsupportedError(f"{source}: a statement has exactly one of Action and NotAction")
        if (resources is None) == (not_resources is None):
            raise PolicyUnsupportedError(f"{source}: a statement has exactly one of Resource and NotResource")
        return cls(
            effect=effect,
            actions=actions or (),
            not_actions=not_actions,
            resources=resources or (),
            not_resources=not_resources,
            conditional=bool(raw.get("Condition")),
            source=source,
        )

    def applies_to(self, action: str, resource: str) -> bool:
        """Whether the statement's action and resource elements (not its effect) cover the request."""
        if self.not_actions is not None:
            action_ok = not _matches(self.not_actions, action, ignore_case=True)
        else:
            action_ok = _matches(self.actions, action, ignore_case=True)
        if not action_ok:
            return False
        if self.not_resources is not None:
            return not _matches(self.not_resources, resource, ignore_case=False)
        return _matches(self.resources, resource, ignore_case=False)


def evaluate(statements: Iterable[Statement], action: str, resource: str) -> Decision:
    """AWS's identity-policy logic: an applicable Deny wins; else an applicable Allow; else implicit deny.

    A conditional Allow grants nothing and a conditional Deny always applies (conditions are not
    evaluated), so the answer is never more permissive than AWS's.
    """
    allowed = False
    for statement in statements:
        if not statement.applies_to(action, resource):
            continue
        if statement.effect == "Deny":
            return Decision.EXPLICIT_DENY
        if not statement.conditional:
            allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Request:
    """One authorisation AWS makes for a call: an IAM action on a resource ARN."""

    action: str
    resource: str


# Operations whose IAM action is another operation's name (the batch forms of single-message SQS calls).
_ACTION_OF = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}
# IAM prefixes that differ from the endpoint prefix.
_IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "runtime.lambda": "lambda"}
_TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _table_arn(name: str, region: str, account: str, index: str | None = None) -> str:
    arn = name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def queue_arn(url: str, region: str) -> str:
    """The ARN of a queue from its URL (AWS's ``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`` or a local one)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2:
        return url
    host = parts.hostname or ""
    found = re.fullmatch(r"(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.com(?:\.cn)?", host)
    return f"arn:aws:sqs:{found.group(1) if found else region}:{segments[-2]}:{segments[-1]}"


_KMS_KEY_ID = re.compile(r"(?:mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_MOTO_KEY_ID_BYTES = 36  # moto's ciphertext blobs begin with the id of the key that made them


def kms_key_arn(key_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """The ARN a KMS call naming ``key_id`` is authorised on: a key or alias ARN as given, a key id as its key
    ARN, an alias name as its alias ARN (never matched by a statement on the key: see the module docstring)."""
    if key_id.startswith("arn:"):
        return key_id
    if key_id.startswith("alias/"):
        return f"arn:aws:kms:{region}:{account}:{key_id}"
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def _ciphertext_key_arn(blob: Any, region: str, account: str) -> str:
    """The key a moto ciphertext names (``*`` when it names none: a statement on a key does not cover it)."""
    head = bytes(blob[:_MOTO_KEY_ID_BYTES]) if isinstance(blob, bytes | bytearray) else b""
    key_id = head.decode("ascii", errors="replace")
    return kms_key_arn(key_id, region, account) if _KMS_KEY_ID.fullmatch(key_id) else "*"


def _bus_arn(name: str | None, region: str, account: str) -> str:
    bus = name or "default"
    return bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{bus}"


def requests_of(
    service: str, operation: str, params: Mapping[str, Any], *, region: str = REGION, account: str = ACCOUNT
) -> list[Request]:
    """The authorisations AWS makes for one API call (``service`` is the endpoint prefix: ``dynamodb``...).

    A call is allowed only if every one of them is. Operations not modelled here are authorised as
    ``service:Operation`` on ``*``: a policy scoped to resources does not allow them, as it would not
    for most such calls in AWS either.
    """
    prefix = _IAM_PREFIX.get(service, service)
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return [
                Request(f"dynamodb:{action}", _table_arn(item[kind]["TableName"], region, account))
                for item in params.get("TransactItems") or []
                for kind, action in _TRANSACT_WRITE_ACTIONS.items()
                if kind in item
            ]
        if operation == "TransactGetItems":
            return [
                Request("dynamodb:GetItem", _table_arn(item["Get"]["TableName"], region, account))
                for item in params.get("TransactItems") or []
                if "Get" in item
            ]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [
                Request(f"dynamodb:{operation}", _table_arn(table, region, account))
                for table in params.get("RequestItems") or {}
            ]
        if "TableName" in params:
            table = _table_arn(str(params["TableName"]), region, account, params.get("IndexName"))
            return [Request(f"dynamodb:{operation}", table)]
    elif service == "sqs":
        action = f"sqs:{_ACTION_OF.get((service, operation), operation)}"
        if "QueueUrl" in params:
            return [Request(action, queue_arn(str(params["QueueUrl"]), region))]
        if "QueueName" in params:
            owner = params.get("QueueOwnerAWSAccountId") or account
            return [Request(action, f"arn:aws:sqs:{region}:{owner}:{params['QueueName']}")]
    elif service == "events" and operation == "PutEvents":
        buses = {_bus_arn(entry.get("EventBusName"), region, account) for entry in params.get("Entries") or []}
        return [Request("events:PutEvents", bus) for bus in sorted(buses)]
    elif service == "kms":
        if params.get("KeyId"):
            return [Request(f"kms:{operation}", kms_key_arn(str(params["KeyId"]), region, account))]
        if operation == "Decrypt":
            return [Request("kms:Decrypt", _ciphertext_key_arn(params.get("CiphertextBlob"), region, account))]
    return [Request(f"{prefix}:{_ACTION_OF.get((service, operation), operation)}", "*")]


# --------------------------------------------------------------------------------------------- roles
# AWS managed policies the template may attach: their statements as AWS publishes them (actions on "*").
_LOGS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
_XRAY = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
)
_MANAGED: dict[str, tuple[str, ...]] = {
    "AWSLambdaBasicExecutionRole": _LOGS,
    "AWSXRayDaemonWriteAccess": _XRAY,
    "AWSXrayWriteOnlyAccess": _XRAY,
    "AWSLambdaSQSQueueExecutionRole": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS),
}


def _managed(name_or_arn: str) -> list[Statement]:
    name = name_or_arn.rsplit("/", 1)[-1]
    if name not in _MANAGED:
        raise PolicyUnsupportedError(
            f"the AWS managed policy {name_or_arn} is not known to dora_local.iam: add its statements to _MANAGED"
        )
    return [Statement("Allow", _MANAGED[name], resources=("*",), source=name)]


@dataclass(frozen=True)
class Role:
    """A function's execution role: its name and every statement of its identity-based policies."""

    logical_id: str
    name: str
    statements: tuple[Statement, ...]


def _document_statements(document: Any, source: str) -> list[Statement]:
    if not isinstance(document, Mapping):
        raise PolicyUnsupportedError(f"{source}: a policy document is not an object: {document!r}")
    raw = document.get("Statement") or []
    return [Statement.parse(s, source) for s in (raw if isinstance(raw, list) else [raw])]


def _refers_to(value: Any, logical_id: str) -> bool:
    return value in ({"Ref": logical_id}, logical_id)


def _iam_role(doc: Mapping[str, Any], logical_id: str, resolver: Resolver) -> Role:
    """An ``AWS::IAM::Role`` of the template with the policies attached to it."""
    all_resources: Mapping[str, Any] = doc.get("Resources") or {}
    resource = all_resources.get(logical_id) or {}
    if resource.get("Type") != "AWS::IAM::Role":
        raise PolicyUnsupportedError(f"{logical_id} is not an AWS::IAM::Role of the template")
    props = resource.get("Properties") or {}
    statements: list[Statement] = []
    for policy in props.get("Policies") or []:
        source = f"{logical_id}/{policy.get('PolicyName', '?')}"
        statements += _document_statements(resolver.resolve(policy.get("PolicyDocument")), source)
    for arn in props.get("ManagedPolicyArns") or []:
        target = str(arn.get("Ref")) if isinstance(arn, Mapping) else ""
        if target in all_resources:  # an AWS::IAM::ManagedPolicy of the template
            document = (all_resources[target].get("Properties") or {}).get("PolicyDocument")
            statements += _document_statements(resolver.resolve(document), target)
        else:
            statements += _managed(str(resolver.resolve(arn)))
    for name, other in all_resources.items():  # policies that attach themselves to the role
        if other.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            other_props = other.get("Properties") or {}
            if any(_refers_to(r, logical_id) for r in other_props.get("Roles") or []):
                statements += _document_statements(resolver.resolve(other_props.get("PolicyDocument")), name)
    name = str(resolver.resolve(props["RoleName"])) if props.get("RoleName") else f"{STACK}-{logical_id}"
    return Role(logical_id, name, tuple(statements))


def _sam_role(doc: Mapping[str, Any], function_id: str, resolver: Resolver) -> Role:
    """The role SAM generates for a function without ``Role``: basic execution, ``Policies``, tracing, events."""
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

    defaults = (doc.get("Globals") or {}).get("Function") or {}
    props = ((doc.get("Resources") or {}).get(function_id) or {}).get("Properties") or {}
    statements = _managed("AWSLambdaBasicExecutionRole")
    if str(resolver.resolve(props.get("Tracing", defaults.get("Tracing", "")))) == "Active":  # a !Ref TracingMode
        statements += _managed("AWSXrayWriteOnlyAccess")
    if any((e or {}).get("Type") == "SQS" for e in (props.get("Events") or {}).values()):
        statements += _managed("AWSLambdaSQSQueueExecutionRole")
    policies = props.get("Policies") or []
    processor = PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())
    for policy in policies if isinstance(policies, list) else [policies]:
        if isinstance(policy, str):
            statements += _managed(policy)
        elif isinstance(policy, Mapping) and "Statement" in policy:
            statements += _document_statements(resolver.resolve(policy), function_id)
        elif isinstance(policy, Mapping) and len(policy) == 1 and processor.has(next(iter(policy))):
            ((name, parameters),) = policy.items()
            expanded = processor.convert(name, parameters or {})
            statements += _document_statements(resolver.resolve(expanded), f"{function_id}/{name}")
        else:
            raise PolicyUnsupportedError(f"{function_id}: a policy of Policies is not understood: {policy!r}")
    return Role(f"{function_id}Role", f"{STACK}-{function_id}Role", tuple(statements))


def role_of(function_id: str, resolver: Resolver, doc: Mapping[str, Any] | None = None) -> Role:
    """The execution role of a function of the template, its statements resolved with ``resolver``."""
    doc = doc if doc is not None else load()
    resource = (doc.get("Resources") or {}).get(function_id)
    if not resource or resource.get("Type") != "AWS::Serverless::Function":
        raise PolicyUnsupportedError(f"{function_id} is not an AWS::Serverless::Function of the template")
    role = (resource.get("Properties") or {}).get("Role")
    if role is None:
        return _sam_role(doc, function_id, resolver)
    if isinstance(role, Mapping) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return _iam_role(doc, str(target[0] if isinstance(target, list) else str(target).split(".")[0]), resolver)
    raise PolicyUnsupportedError(f"{function_id}: Role {role!r} is not a role of the template; it cannot be checked")


def environment_resolver(
    function_id: str, environment: Mapping[str, str], doc: Mapping[str, Any] | None = None
) -> Resolver:
    """A resolver for a function run outside the runtime (tests): its template environment variables say
    which variable holds which resource (``TABLE_NAME: !Ref Table``), ``environment`` holds the values.

    Resources no variable names stay unresolved: statements naming only them allow nothing.
    """
    doc = doc if doc is not None else load()
    all_resources: Mapping[str, Any] = doc.get("Resources") or {}
    resolver = Resolver(doc=dict(doc))
    variables = functions(dict(doc))[function_id].environment
    for variable, reference in variables.items():
        value = environment.get(variable)
        if not value or not isinstance(reference, Mapping) or len(reference) != 1:
            continue
        ((intrinsic, argument),) = reference.items()
        if intrinsic == "Ref":
            target, attribute = str(argument), "Ref"
        elif intrinsic == "Fn::GetAtt":
            parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
            target, attribute = str(parts[0]), str(parts[1])
        else:
            continue
        kind = (all_resources.get(target) or {}).get("Type")
        if kind == "AWS::DynamoDB::Table":
            name = value.rsplit("/", 1)[-1] if value.startswith("arn:") else value
            resolver.names[target], resolver.arns[target] = name, _table_arn(name, REGION, ACCOUNT)
        elif kind == "AWS::SQS::Queue" and attribute in ("Ref", "QueueUrl"):
            resolver.urls[target] = value
            resolver.arns[target] = queue_arn(value, REGION)
            resolver.names[target] = resolver.arns[target].rsplit(":", 1)[-1]
        elif kind == "AWS::SQS::Queue" and attribute == "Arn":
            resolver.arns[target], resolver.names[target] = value, value.rsplit(":", 1)[-1]
        elif kind == "AWS::Events::EventBus":
            resolver.arns[target] = _bus_arn(value, REGION, ACCOUNT)
            resolver.names[target] = resolver.arns[target].rsplit("/", 1)[-1]
        elif kind == "AWS::KMS::Key":  # the key ARN (``!GetAtt Key.Arn``) or its id (``!Ref Key``)
            resolver.arns[target] = kms_key_arn(value, REGION, ACCOUNT)
            resolver.names[target] = resolver.arns[target].rsplit("/", 1)[-1]
    return resolver


# --------------------------------------------------------------------------------------------- enforcement
@dataclass(frozen=True)
class Denial:
    """A call a function's role does not allow, as AWS words it."""

    function: str
    operation: str
    request: Request
    decision: Decision
    message: str


@dataclass
class Principal:
    """A function running under its execution role (what :func:`acting_as` makes current)."""

    function: str  # logical id
    function_name: str
    role: Role
    denials: list[Denial] = field(default_factory=list)
    allowed: list[Request] = field(default_factory=list)

    @property
    def arn(self) -> str:
        """The assumed-role session ARN AWS names in its messages."""
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role.name}/{self.function_name}"

    def check(self, service: str, operation: str, params: Mapping[str, Any], region: str) -> Denial | None:
        """The first authorisation of a call the role does not allow (recorded), or None."""
        for request in requests_of(service, operation, params, region=region):
            decision = evaluate(self.role.statements, request.action, request.resource)
            if decision is Decision.ALLOWED:
                self.allowed.append(request)
                continue
            reason = (
                "with an explicit deny in an identity-based policy"
                if decision is Decision.EXPLICIT_DENY
                else f"because no identity-based policy allows the {request.action} action"
            )
            message = (
                f"User: {self.arn} is not authorized to perform: {request.action} "
                f"on resource: {request.resource} {reason}"
            )
            denial = Denial(self.function, operation, request, decision, message)
            self.denials.append(denial)
            return denial
        return None


def principal_of(function_id: str, resolver: Resolver, doc: Mapping[str, Any] | None = None) -> Principal:
    """The principal a function of the template runs as (its role resolved with ``resolver``)."""
    return Principal(function_id, f"{STACK}-{function_id}", role_of(function_id, resolver, doc))


_ACTIVE: ContextVar[Principal | None] = ContextVar("dora_local_iam_principal", default=None)
_GUARDED: list[str] = []  # module prefixes whose AWS calls must run under a principal


def active() -> Principal | None:
    """The function running in this context, if any."""
    return _ACTIVE.get()


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Check every AWS call made in this context against ``principal``'s role until the block ends."""
    install()
    token = _ACTIVE.set(principal)
    try:
        yield principal
    finally:
        _ACTIVE.reset(token)


def _access_denied(client: Any, operation: str, denial: Denial) -> Exception:
    from botocore.exceptions import ClientError

    metadata = client.meta.service_model.metadata
    query_style = metadata.get("protocol") in ("query", "ec2", "rest-xml") or "awsQueryCompatible" in metadata
    code, status = ("AccessDenied", 403) if query_style else ("AccessDeniedException", 400)
    response = {
        "Error": {"Code": code, "Message": denial.message},
        "ResponseMetadata": {
            "RequestId": str(uuid.uuid4()),
            "HTTPStatusCode": status,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }
    return ClientError(response, operation)  # type: ignore[no-any-return]


def _guarded_caller() -> str | None:
    """The first guarded module on the call stack, if any."""
    frame = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if any(name == prefix or name.startswith(prefix + ".") for prefix in _GUARDED):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _wrapped_with(function: Any, marker: str) -> bool:
    """Whether ``function`` or a wrapper it wraps (``__wrapped__``, as :mod:`dora_local.faults` sets) has ``marker``."""
    while function is not None:
        if getattr(function, marker, False):
            return True
        function = getattr(function, "__wrapped__", None)
    return False


def install(*, guard: str | None = None) -> None:
    """Wrap ``BaseClient._make_api_call`` once per process so that calls under :func:`acting_as` are checked.

    ``guard``: a module prefix (tests pass ``dora_insights.handlers``) whose AWS calls must run under
    :func:`acting_as`; one made outside raises :class:`UncheckedCallError` (a handler a test invoked
    directly instead of through the checked helpers).
    """
    from botocore.client import BaseClient

    if guard and guard not in _GUARDED:
        _GUARDED.append(guard)
    if _wrapped_with(BaseClient._make_api_call, "_dora_iam"):
        return
    original = BaseClient._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        principal = _ACTIVE.get()
        if principal is not None:
            denial = principal.check(
                self.meta.service_model.endpoint_prefix, operation_name, api_params, self.meta.region_name or REGION
            )
            if denial is not None:
                raise _access_denied(self, operation_name, denial)
        elif _GUARDED:
            caller = _guarded_caller()
            if caller is not None:
                raise UncheckedCallError(
                    f"{caller} called {operation_name} outside dora_local.iam.acting_as: invoke function handlers "
                    "through the checked helpers (tests.support.lambdas.invoke, the api fixture)"
                )
        return original(self, operation_name, api_params)

    _make_api_call._dora_iam = True  # type: ignore[attr-defined]
    _make_api_call.__wrapped__ = original  # type: ignore[attr-defined]
    BaseClient._make_api_call = _make_api_call
