"""The ingest route's cold import (issue 17, item 6; timed by bench/cold_start.py, not here) loads only what
the route needs: none of the modules below, which its import once pulled in through a top-level import of a
rarely used path (boto3 comes with the first AWS client; the figures engine and the list queries belong to
the recompute and the read routes; corrections to their own routes). A fresh interpreter, as a cold start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_AT_IMPORT = (
    "boto3",
    "dora_insights.domain.figures",
    "dora_insights.domain.aggregates",
    "dora_insights.domain.queries",
    "dora_insights.logic.corrections",
)


def test_the_ingest_handlers_import_loads_none_of_the_heavy_modules_it_does_not_need() -> None:
    probe = (
        "import sys, dora_insights.handlers.deployments; "
        f"print(' '.join(m for m in {NOT_AT_IMPORT!r} if m in sys.modules))"
    )
    loaded = subprocess.run(  # noqa: S603 - this interpreter, a fixed probe
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "functions"), "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
    ).stdout.split()
    assert loaded == []
