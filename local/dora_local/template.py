"""template.yaml as the local runtime reads it: functions, their triggers and environment, routes, schedules.

Everything is read generically from the template (it grows while people work): no route, queue or
function name is written here. Intrinsics (``!Ref``, ``!GetAtt``, ``!Sub``, ``!Join``) are resolved
to the local names, URLs and ARNs of the resources the runtime creates in moto.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STAGE = "local"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "dora-insights-local"

_PARAM = re.compile(r"\{([^{}+]+)\}")
_GREEDY = re.compile(r"\{([^{}+]+)\+\}")
EXACT, PARAMETER, GREEDY = 0, 1, 2


# --------------------------------------------------------------------------------------------- loading
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The parsed template (short intrinsic tags in their long form), re-read when the file changes."""
    return _load(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _load(path: Path, _mtime: int) -> dict[str, Any]:
    return yaml_parse(path.read_text())  # type: ignore[no-any-return]


def resources(kind: str, doc: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Resources of one CloudFormation type, by logical id."""
    doc = doc if doc is not None else load()
    return {n: r for n, r in doc.get("Resources", {}).items() if r.get("Type") == kind}


# --------------------------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class Route:
    """One HttpApi event of a function: method and path template."""

    method: str
    path: str
    function: str
    event: str = "Api"

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def segments(self) -> tuple[str, ...]:
        """The route's segments; a trailing slash is a last, empty one (``/orlo/`` is not ``/orlo``)."""
        return tuple(split_path(self.path))

    @property
    def rank(self) -> tuple[int, ...]:
        """Per segment: exact 0, ``{param}`` 1, ``{proxy+}`` 2; the lowest tuple is the most specific."""
        if self.path == "$default":
            return (3,)
        return tuple(
            GREEDY if _GREEDY.fullmatch(s) else PARAMETER if _PARAM.fullmatch(s) else EXACT for s in self.segments
        )

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters (URL-decoded) when the request's raw segments fit this route, else None."""
        if self.path == "$default":
            return {}
        params: dict[str, str] = {}
        mine = self.segments
        for index, pattern in enumerate(mine):
            greedy = _GREEDY.fullmatch(pattern)
            if greedy:
                rest = segments[index:]
                if index != len(mine) - 1 or not rest or not "".join(rest):
                    return None
                params[greedy.group(1)] = unquote("/".join(rest))
                return params
            if index >= len(segments):
                return None
            param = _PARAM.fullmatch(pattern)
            if param:
                if not segments[index]:
                    return None
                params[param.group(1)] = unquote(segments[index])
            elif unquote(segments[index]) != pattern:
                return None
        return params if len(segments) == len(mine) else None


def split_path(raw_path: str) -> list[str]:
    """A request path's raw (still percent-encoded) segments."""
    stripped = raw_path[1:] if raw_path.startswith("/") else raw_path
    return stripped.split("/") if stripped else []


def match(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific route for a request and its path parameters, HTTP API style.

    Exact segments win over ``{param}``, which wins over a greedy ``{proxy+}`` (compared segment by
    segment from the left); a route of the request's method wins over ``ANY``. A path known only
    under other methods does not match (HTTP API answers 404 there too).
    """
    segments = split_path(raw_path)
    best: tuple[tuple[tuple[int, ...], bool], Route, dict[str, str]] | None = None
    for route in routes:
        if route.method not in (method.upper(), "ANY"):
            continue
        params = route.match(segments)
        if params is None:
            continue
        key = (route.rank, route.method == "ANY")
        if best is None or key < best[0]:
            best = (key, route, params)
    return None if best is None else (best[1], best[2])


# --------------------------------------------------------------------------------------------- functions
@dataclass(frozen=True)
class QueueTrigger:
    """An SQS event source of a function."""

    name: str
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int = 10
    report_failures: bool = False  # FunctionResponseTypes: [ReportBatchItemFailures]
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleTrigger:
    """A Schedule (EventBridge rule) event source of a function."""

    name: str
    expression: str
    enabled: bool = True
    input: str | None = None  # the rule's constant Input (JSON text), which replaces the scheduled event


@dataclass(frozen=True)
class Function:
    """A function of the template, as the runtime invokes it (Globals merged in)."""

    logical_id: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any]
    routes: list[Route] = field(default_factory=list)
    queues: list[QueueTrigger] = field(default_factory=list)
    schedules: list[ScheduleTrigger] = field(default_factory=list)


def _logical_id_of(value: Any) -> str:
    """The resource a ``!GetAtt X.Arn`` / ``!Ref X`` names."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Ref" in value:
            return str(value["Ref"])
    return str(value).split(".")[0]


def _enabled(properties: dict[str, Any]) -> bool:
    if "Enabled" in properties:
        return properties["Enabled"] not in (False, "false", "False")
    return str(properties.get("State", "ENABLED")).upper() == "ENABLED"


def functions(doc: dict[str, Any] | None = None) -> dict[str, Function]:
    """Every ``AWS::Serverless::Function`` of the template with Globals merged in."""
    doc = doc if doc is not None else load()
    defaults = doc.get("Globals", {}).get("Function", {})
    found: dict[str, Function] = {}
    for name, resource in resources("AWS::Serverless::Function", doc).items():
        props = resource.get("Properties", {})
        env = {
            **(defaults.get("Environment", {}).get("Variables") or {}),
            **(props.get("Environment", {}).get("Variables") or {}),
        }
        function = Function(
            logical_id=name,
            handler=str(props.get("Handler", defaults.get("Handler", ""))),
            timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
            memory=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            environment=env,
        )
        for event_name, event in (props.get("Events") or {}).items():
            kind, properties = event.get("Type"), event.get("Properties") or {}
            if kind == "HttpApi":
                method = str(properties.get("Method", "ANY")).upper()
                method = "ANY" if method in ("*", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method
                path = str(properties.get("Path", "$default"))
                function.routes.append(Route(method, path, name, event_name))
            elif kind == "SQS":
                function.queues.append(
                    QueueTrigger(
                        name=event_name,
                        queue=_logical_id_of(properties["Queue"]),
                        batch_size=int(properties.get("BatchSize", 10)),
                        report_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
                        enabled=_enabled(properties),
                    )
                )
            elif kind in ("Schedule", "ScheduleV2"):
                expression = properties.get("Schedule") or properties.get("ScheduleExpression") or ""
                raw_input = properties.get("Input")
                function.schedules.append(
                    ScheduleTrigger(
                        name=event_name,
                        expression=str(expression),
                        enabled=_enabled(properties),
                        input=raw_input if isinstance(raw_input, str) else None,
                    )
                )
        found[name] = function
    return found


# --------------------------------------------------------------------------------------------- schedules
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of ``rate(N unit)``; None for other expressions."""
    found = _RATE.fullmatch(expression.strip())
    return int(found.group(1)) * _UNITS[found.group(2).rstrip("s")] if found else None


def _cron_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """The values one field of an EventBridge cron expression allows (``L``/``W``/``#`` read as ``*``)."""
    if text in ("*", "?") or any(c in text for c in "LW#"):
        return set(range(low, high + 1))
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1

        def value(token: str) -> int:
            return names[token.upper()] if names and token.upper() in names else int(token)

        if spec == "*":
            start, stop = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, stop = value(first), value(last)
        else:
            start = value(spec)
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    return {v for v in values if low <= v <= high}


def next_run(expression: str, after: datetime) -> datetime | None:
    """The next time after ``after`` (UTC) a ``rate(...)`` or ``cron(...)`` schedule fires; None if never."""
    seconds = rate_seconds(expression)
    if seconds is not None:
        return after + timedelta(seconds=seconds)
    found = re.fullmatch(r"cron\((.+)\)", expression.strip())
    if not found or len(found.group(1).split()) != 6:
        return None
    minute, hour, dom, month, dow, year = found.group(1).split()
    minutes, hours = _cron_field(minute, 0, 59), _cron_field(hour, 0, 23)
    days, months = _cron_field(dom, 1, 31), _cron_field(month, 1, 12, _MONTHS)
    weekdays, years = _cron_field(dow, 1, 7, _DAYS), _cron_field(year, 1970, 2199)
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = moment + timedelta(days=366 * 4)
    while moment < limit:
        _, last_day = monthrange(moment.year, moment.month)
        weekday = (moment.isoweekday() % 7) + 1  # EventBridge: 1 = Sunday
        if moment.year not in years or moment.month not in months:
            moment = (moment.replace(day=1, hour=0, minute=0) + timedelta(days=last_day)).replace(day=1)
        elif moment.day not in days or weekday not in weekdays:
            moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
        elif moment.hour not in hours:
            moment = moment.replace(minute=0) + timedelta(hours=1)
        elif moment.minute not in minutes:
            moment += timedelta(minutes=1)
        else:
            return moment
    return None


# --------------------------------------------------------------------------------------------- intrinsics
class Resolver:
    """Resolves the intrinsics of the template to the local names, URLs and ARNs.

    ``names``: logical id -> physical name (``!Ref`` of a table or bus, a queue's name);
    ``urls``: logical id -> queue URL (``!Ref`` of a queue); ``arns``: logical id -> ARN.
    """

    def __init__(
        self,
        names: dict[str, str] | None = None,
        urls: dict[str, str] | None = None,
        arns: dict[str, str] | None = None,
        doc: dict[str, Any] | None = None,
    ) -> None:
        self.names = names if names is not None else {}
        self.urls = urls if urls is not None else {}
        self.arns = arns if arns is not None else {}
        self.parameters: dict[str, str] = {
            name: str(spec.get("Default", "")) for name, spec in ((doc or {}).get("Parameters") or {}).items()
        }
        self.parameters["Stage"] = STAGE

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "localhost",
            "AWS::StackName": STACK,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/local",
        }.get(name)

    def ref(self, name: str) -> str:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.parameters:
            return self.parameters[name]
        return self.urls.get(name) or self.names.get(name) or name

    def get_att(self, name: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arns.get(name, "")
        if attribute == "QueueUrl":
            return self.urls.get(name, "")
        if attribute in ("QueueName", "Name"):
            return self.names.get(name, "")
        return ""

    def sub(self, text: str, variables: dict[str, Any] | None = None) -> str:
        def replace(found: re.Match[str]) -> str:
            token = found.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if variables and token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and self._pseudo(token) is None:
                resource, _, attribute = token.partition(".")
                return self.get_att(resource, attribute)
            return self.ref(token)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its local value (recursively)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((intrinsic, argument),) = value.items()
            if intrinsic == "Ref":
                return self.ref(str(argument))
            if intrinsic == "Fn::GetAtt":
                target = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self.get_att(str(target[0]), str(target[1]) if len(target) > 1 else "Arn")
            if intrinsic == "Fn::Sub":
                if isinstance(argument, list):
                    return self.sub(str(argument[0]), argument[1] if len(argument) > 1 else None)
                return self.sub(str(argument))
            if intrinsic == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.resolve(p)) for p in self.resolve(parts))
            if intrinsic == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
        return {k: self.resolve(v) for k, v in value.items()}

    def environment_value(self, value: Any) -> str:
        """An environment variable's value as Lambda would set it (booleans in lower case)."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        return str(resolved)
