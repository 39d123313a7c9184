"""template.yaml as data: the single source of truth for routes and resources in tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@lru_cache(maxsize=1)
def template() -> dict[str, Any]:
    """The parsed template (short intrinsic tags become their long form)."""
    return yaml_parse(TEMPLATE.read_text())  # type: ignore[no-any-return]


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one CloudFormation type by logical id."""
    return {name: r for name, r in template()["Resources"].items() if r["Type"] == kind}


def http_routes() -> dict[tuple[str, str], str]:
    """(METHOD, path) -> function logical id, for every HttpApi event."""
    routes: dict[tuple[str, str], str] = {}
    for name, function in resources("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes[(event["Properties"]["Method"].upper(), event["Properties"]["Path"])] = name
    return routes


def handler_of(logical_id: str) -> str:
    """The ``module.entry`` handler string of a function."""
    return str(template()["Resources"][logical_id]["Properties"]["Handler"])
