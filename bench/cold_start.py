"""Cold import time of the ingest handler module against a bare ``import boto3``, in the same run.

Each figure is the median of fresh interpreters (``-X importtime`` style, wall clock around
the import), alternating the two so machine noise hits both alike. Goal: at most 1.6x.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 9
GOAL = 1.6
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _time_import(module: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}", "PYTHONDONTWRITEBYTECODE": "0"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "dora-insights")
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        [sys.executable, "-c", _PROBE.format(module=module)], capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip())


def run() -> None:
    """Print the medians and their ratio."""
    handler = "dora_insights.handlers.deployments"
    _time_import("boto3")
    _time_import(handler)  # warm the bytecode caches of both
    boto, ours = [], []
    for _ in range(RUNS):
        boto.append(_time_import("boto3"))
        ours.append(_time_import(handler))
    b, h = statistics.median(boto), statistics.median(ours)
    print("cold import (median of", RUNS, "fresh interpreters)")
    print(f"  import boto3                              {b * 1000:7.1f} ms")
    print(f"  import {handler}  {h * 1000:7.1f} ms")
    verdict = "within" if h / b <= GOAL else "OVER"
    print(f"  ratio                                     {h / b:7.2f}x  ({verdict} the {GOAL}x goal)")
