"""Cold import of the ingest handler against the framework floor (issue 17, item 6), in the same run.

The floor (bench/cold_floor.py) is a Powertools ``APIGatewayHttpResolver`` with validation and one
pydantic model: the least a route of this stack imports. Goal: the ingest handler's import within 1.1x
of it. boto3 is imported with the first AWS client (dal/aws.py), not at import: its import time is
printed for reference (a route that reaches DynamoDB pays it on its first request, as any boto3
program does; the health, OpenAPI and dashboard routes never pay it).

Each figure is the median of fresh interpreters (wall clock around the import), alternated so machine
noise hits all alike. The package's bytecode is compiled first, as functions/Makefile ships it (Lambda's
read-only /var/task cannot cache it: a package of sources alone compiles at every cold start, about 40 ms
more here); site-packages have theirs from pip, in the Deps layer as here.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 9
GOAL = 1.1
HANDLER = "dora_insights.handlers.deployments"
FLOOR = "cold_floor"
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
_LOADED = "import sys, {module}; print(int('boto3' in sys.modules))"


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT / 'bench'}"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "dora-insights")
    return env


def _run(probe: str) -> str:
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), check=True
    )
    return out.stdout.strip()


def _time_import(module: str) -> float:
    return float(_run(_PROBE.format(module=module)))


def run() -> None:
    """Print the medians and the ratio to the floor."""
    modules = (FLOOR, HANDLER, "boto3")
    for package in (ROOT / "functions" / "dora_insights", ROOT / "bench"):
        compileall.compile_dir(package, quiet=1)
    for module in modules:  # warm the bytecode caches
        _time_import(module)
    times: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(RUNS):
        for module in modules:
            times[module].append(_time_import(module))
    floor, ours, boto = (statistics.median(times[m]) for m in modules)
    loads_boto = _run(_LOADED.format(module=HANDLER)) == "1"
    print(f"cold import (median of {RUNS} fresh interpreters each, alternated)")
    print(f"  floor: Powertools resolver + one pydantic model   {floor * 1000:7.1f} ms")
    print(f"  {HANDLER}             {ours * 1000:7.1f} ms")
    verdict = "met" if ours / floor <= GOAL else "NOT met"
    print(f"  ratio to the floor                                {ours / floor:7.2f}x  (goal <= {GOAL}x: {verdict})")
    print(f"  import boto3 (reference; at the first AWS client) {boto * 1000:7.1f} ms")
    print(f"  the handler's import loads boto3: {'yes' if loads_boto else 'no'}")


if __name__ == "__main__":
    run()
