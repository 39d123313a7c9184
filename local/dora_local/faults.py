"""Chaos for the local runtime: a seeded share of the AWS calls that functions make fail as AWS fails.

Opt-in and off by default. :func:`configure` (``python -m dora_local`` reads ``DORA_LOCAL_FAULT_RATE``,
``DORA_LOCAL_FAULT_SEED`` and ``DORA_LOCAL_FAULT_OPERATIONS``; a served runtime also takes
``POST /_local/faults``) sets a :class:`Plan`; every DynamoDB or SQS call made *by a function* (inside
:func:`invoking`, which ``Runtime.invoke`` wraps around the handler) then fails with probability
``rate``. The runtime's own calls (creating resources, seeding, the SQS poller's receives and deletes)
and a test's arrange and assert steps are never touched.

A fault takes one of three forms, as AWS gives them:

- **before**: botocore's ``ClientError`` with a code AWS answers under load, and the call never reaches
  moto (nothing written). DynamoDB: ``ProvisionedThroughputExceededException``, ``ThrottlingException``
  (400) or ``InternalServerError`` (500); SQS: ``ServiceUnavailable`` (503).
- **after** (writes only): the call reaches moto and succeeds, then the function gets DynamoDB's
  ``InternalServerError`` or SQS's ``ServiceUnavailable``: AWS's "the request may or may not have
  succeeded", a timeout after the commit. The nasty case: the write is there, the function thinks not.
- **crash** (writes only): the write succeeds, then :class:`FunctionCrash` (a ``BaseException``, which
  no handler's ``except Exception`` catches) ends the invocation, as a Lambda process killed right after
  a write. ``Runtime.invoke`` turns it into :class:`FunctionCrashedError`: the HTTP front answers
  API Gateway's 500, an SQS batch stays on its queue for a retry.

Faults are raised from ``BaseClient._make_api_call`` (one wrapper, outside :mod:`dora_local.iam`'s), so
botocore's own retries (the functions' clients use ``adaptive`` mode, 4 attempts) never see them: each
fault is what a function sees once every retry has failed. That is harsher than AWS, on purpose.

One ``random.Random(seed)`` draws for every call in the process, under a lock: a run is reproducible up
to the order in which concurrent invocations (HTTP requests, the SQS poller) make their calls.
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "FunctionCrash",
    "FunctionCrashedError",
    "Plan",
    "configure",
    "from_environment",
    "install",
    "invoking",
    "plan",
    "report",
]

SERVICES = frozenset({"dynamodb", "sqs"})
# Calls that change state: only they can fail after succeeding, or be followed by a crash.
WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "SendMessage",
        "SendMessageBatch",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    }
)
# (code, HTTP status) AWS answers for a call it did not execute, by service.
_BEFORE = {
    "dynamodb": (
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("InternalServerError", 500),
    ),
    "sqs": (("ServiceUnavailable", 503),),
}
# ... and for one that may have succeeded.
_AFTER = {"dynamodb": ("InternalServerError", 500), "sqs": ("ServiceUnavailable", 503)}
_MESSAGES = {
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
    "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "InternalServerError": "Internal server error",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
}


class FunctionCrash(BaseException):
    """The function process died right after a write (raised inside the handler: nothing catches it)."""


class FunctionCrashedError(RuntimeError):
    """What the runtime sees of an invocation that ended in a :class:`FunctionCrash`."""


@dataclass(frozen=True)
class Plan:
    """Which calls fail and how. ``rate``: the share of function calls that fail (0 turns faults off);
    of those on a write, ``after_share`` fail after succeeding and ``crash_share`` crash the function
    after succeeding (the rest fail before). ``operations``: only these operation names (e.g.
    ``TransactWriteItems``), every DynamoDB and SQS operation when empty; ``functions``: only these
    logical ids, every function when empty."""

    rate: float = 0.0
    seed: int = 0
    after_share: float = 0.3
    crash_share: float = 0.1
    operations: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("rate", "after_share", "crash_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
        if self.after_share + self.crash_share > 1.0:
            raise ValueError("after_share + crash_share must not exceed 1")

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Plan:
        """A plan from its JSON form (``POST /_local/faults``); unknown keys are refused."""
        unknown = set(data) - {"rate", "seed", "after_share", "crash_share", "operations", "functions"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        defaults = cls()

        def names(key: str) -> frozenset[str]:
            value = data.get(key) or ()
            listed = value.split(",") if isinstance(value, str) else value
            return frozenset(str(n).strip() for n in listed if str(n).strip())

        return cls(
            rate=float(data.get("rate", defaults.rate)),
            seed=int(data.get("seed", defaults.seed)),
            after_share=float(data.get("after_share", defaults.after_share)),
            crash_share=float(data.get("crash_share", defaults.crash_share)),
            operations=names("operations"),
            functions=names("functions"),
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["operations"], data["functions"] = sorted(self.operations), sorted(self.functions)
        return data


@dataclass
class _State:
    plan: Plan = field(default_factory=Plan)
    rng: random.Random = field(default_factory=random.Random)
    calls: int = 0  # function calls seen since the plan was set
    injected: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # (kind, function, service, op)


_LOCK = threading.Lock()
_CURRENT = [_State()]  # the one state of the process (replaced whole by ``configure``)
_FUNCTION: ContextVar[str | None] = ContextVar("dora_local_faults_function", default=None)


def configure(new: Plan) -> None:
    """Use ``new`` from now on (its own seeded draws, counts from zero); ``Plan()`` turns faults off."""
    if new.rate > 0:
        install()
    with _LOCK:
        _CURRENT[0] = _State(plan=new, rng=random.Random(new.seed))  # noqa: S311 - seeded draws, not secrets


def plan() -> Plan:
    """The plan in force."""
    return _CURRENT[0].plan


def report() -> dict[str, Any]:
    """The plan and what it injected so far: totals by kind, and by kind, function and operation."""
    with _LOCK:
        state = _CURRENT[0]
        by_kind: Counter[str] = Counter()
        detail: Counter[str] = Counter()
        for (kind, function, service, operation), count in state.injected.items():
            by_kind[kind] += count
            detail[f"{kind} {function} {service}:{operation}"] += count
        return {
            "plan": state.plan.as_dict(),
            "calls": state.calls,
            "injected": dict(sorted(by_kind.items())),
            "detail": dict(sorted(detail.items())),
        }


def from_environment(environ: Mapping[str, str] | None = None) -> Plan:
    """The plan ``DORA_LOCAL_FAULT_RATE`` / ``_SEED`` / ``_OPERATIONS`` / ``_FUNCTIONS`` ask for
    (comma-separated names); ``Plan()`` (off) without a rate."""
    env = os.environ if environ is None else environ
    rate = env.get("DORA_LOCAL_FAULT_RATE", "").strip()
    if not rate:
        return Plan()

    return Plan.of(
        {
            "rate": rate,
            "seed": env.get("DORA_LOCAL_FAULT_SEED", "0").strip() or "0",
            "operations": env.get("DORA_LOCAL_FAULT_OPERATIONS", ""),
            "functions": env.get("DORA_LOCAL_FAULT_FUNCTIONS", ""),
        }
    )


@contextmanager
def invoking(logical_id: str) -> Iterator[None]:
    """Mark the current context as running function ``logical_id``: its AWS calls may fail."""
    token = _FUNCTION.set(logical_id)
    try:
        yield
    finally:
        _FUNCTION.reset(token)


def _draw(function: str, service: str, operation: str) -> str | None:
    """The fault for one call ("before", "after", "crash") or None, counted."""
    with _LOCK:
        state = _CURRENT[0]
        current = state.plan
        if (
            current.rate <= 0
            or service not in SERVICES
            or (current.operations and operation not in current.operations)
            or (current.functions and function not in current.functions)
        ):
            return None
        state.calls += 1
        if state.rng.random() >= current.rate:
            return None
        kind = "before"
        if operation in WRITES:
            share = state.rng.random()
            if share < current.crash_share:
                kind = "crash"
            elif share < current.crash_share + current.after_share:
                kind = "after"
        state.injected[(kind, function, service, operation)] += 1
        return kind


def _client_error(service: str, operation: str, code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": _MESSAGES.get(code, code)},
        "ResponseMetadata": {
            "RequestId": str(uuid.uuid4()),
            "HTTPStatusCode": status,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }
    return ClientError(response, operation)  # type: ignore[no-any-return]


def install() -> None:
    """Wrap ``BaseClient._make_api_call`` once per process, outside :mod:`dora_local.iam`'s wrapper
    (installed first, so a denied call is still denied and counted by its check)."""
    from botocore.client import BaseClient

    from dora_local import iam

    iam.install()
    if getattr(BaseClient._make_api_call, "_dora_faults", False):
        return
    original = BaseClient._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        function = _FUNCTION.get()
        if function is None:
            return original(self, operation_name, api_params)
        service = str(self.meta.service_model.endpoint_prefix)
        kind = _draw(function, service, operation_name)
        if kind is None:
            return original(self, operation_name, api_params)
        if kind == "before":
            options = _BEFORE.get(service) or (("InternalFailure", 500),)
            with _LOCK:
                code, status = options[_CURRENT[0].rng.randrange(len(options))]
            raise _client_error(service, operation_name, code, status)
        original(self, operation_name, api_params)
        if kind == "crash":
            raise FunctionCrash(f"{function} died right after {service}:{operation_name} succeeded (injected)")
        code, status = _AFTER.get(service, ("InternalFailure", 500))
        raise _client_error(service, operation_name, code, status)

    _make_api_call._dora_faults = True  # type: ignore[attr-defined]
    _make_api_call.__wrapped__ = original  # type: ignore[attr-defined]
    BaseClient._make_api_call = _make_api_call
