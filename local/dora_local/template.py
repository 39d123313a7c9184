"""template.yaml as the local runtime reads it: functions, their triggers and environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STAGE = "local"
REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Route:
    """One HttpApi event: method and path template of a function."""

    method: str
    path: str
    function: str
    pattern: re.Pattern[str]
    rank: tuple[int, ...]

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Function:
    """A function of the template, as the runtime invokes it."""

    logical_id: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any]
    routes: list[Route] = field(default_factory=list)
    queues: list[tuple[str, int]] = field(default_factory=list)  # (queue logical id, batch size)
    schedules: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The parsed template (short intrinsic tags in their long form)."""
    return yaml_parse(path.read_text())  # type: ignore[no-any-return]


def compile_path(path: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """A regex for an API Gateway path template and its precedence rank (lower wins).

    Exact segments win over ``{param}``, which wins over a greedy ``{proxy+}``.
    """
    parts: list[str] = []
    rank: list[int] = []
    for segment in path.strip("/").split("/"):
        greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
        param = re.fullmatch(r"\{(\w+)\}", segment)
        if greedy:
            parts.append(f"(?P<{greedy.group(1)}>.+)")
            rank.append(2)
        elif param:
            parts.append(f"(?P<{param.group(1)}>[^/]+)")
            rank.append(1)
        else:
            parts.append(re.escape(segment))
            rank.append(0)
    return re.compile("^/" + "/".join(parts) + "$"), tuple(rank)


def functions(doc: dict[str, Any] | None = None) -> dict[str, Function]:
    """Every ``AWS::Serverless::Function`` with Globals merged in."""
    doc = doc or load()
    defaults = doc.get("Globals", {}).get("Function", {})
    found: dict[str, Function] = {}
    for name, resource in doc["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        function = Function(
            logical_id=name,
            handler=props["Handler"],
            timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
            memory=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            environment=env,
        )
        for event in props.get("Events", {}).values():
            kind, properties = event["Type"], event.get("Properties", {})
            if kind == "HttpApi":
                pattern, rank = compile_path(properties["Path"])
                function.routes.append(Route(properties["Method"].upper(), properties["Path"], name, pattern, rank))
            elif kind == "SQS":
                queue = properties["Queue"]["Fn::GetAtt"][0]
                function.queues.append((queue, int(properties.get("BatchSize", 10))))
            elif kind == "Schedule":
                function.schedules.append(str(properties["Schedule"]))
        found[name] = function
    return found


def resources(kind: str, doc: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Resources of one CloudFormation type."""
    doc = doc or load()
    return {n: r for n, r in doc["Resources"].items() if r["Type"] == kind}


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific route for a request, with its path parameters (HTTP API semantics)."""
    candidates = []
    for route in routes:
        found = route.pattern.match(path)
        if found and route.method in (method, "ANY"):
            candidates.append((route.rank, route, found.groupdict()))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0])
    _, route, params = candidates[0]
    return route, params


def rate_seconds(expression: str) -> int:
    """Seconds between runs of ``rate(N unit)``; a cron expression runs every 5 minutes locally."""
    found = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not found:
        return 300
    unit = {"minute": 60, "hour": 3600, "day": 86400}[found.group(2).rstrip("s")]
    return int(found.group(1)) * unit


class Resolver:
    """Resolves the intrinsics the template uses for local names, URLs and ARNs."""

    def __init__(self, names: dict[str, str], urls: dict[str, str], arns: dict[str, str]) -> None:
        self.names, self.urls, self.arns = names, urls, arns

    def sub(self, text: str) -> str:
        values = {"Stage": STAGE, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "localhost"}
        return re.sub(
            r"\$\{([\w:.]+)\}", lambda m: values.get(m.group(1), self.names.get(m.group(1), m.group(0))), text
        )

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((intrinsic, argument),) = value.items()
            if intrinsic == "Ref":
                if argument == "Stage":
                    return STAGE
                return self.urls.get(argument) or self.names.get(argument, argument)
            if intrinsic == "Fn::GetAtt":
                return self.arns.get(argument[0], "")
            if intrinsic == "Fn::Sub":
                return self.sub(argument if isinstance(argument, str) else argument[0])
        return value
