"""The GitHub Action's ``send`` step (action.yml), run as the runner runs it: its bash script, with its
``env:`` block filled from inputs the way ``${{ inputs.x }}`` is, and this interpreter as the one it installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
_INPUT = re.compile(r"^\$\{\{ inputs\.([a-z-]+) \}\}$")


def action() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "action.yml").read_text()))


def run_send_step(
    inputs: dict[str, str], variables: dict[str, str], output: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run the ``send`` step with ``inputs`` (defaults from action.yml for the rest) and the CI's ``variables``."""
    metadata = action()
    given = {name: str(spec.get("default", "")) for name, spec in metadata["inputs"].items()} | inputs
    (step,) = [s for s in metadata["runs"]["steps"] if s.get("id") == "send"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(cwd),
        "PYTHONPATH": str(ROOT / "cli" / "src"),
        "GITHUB_OUTPUT": str(output),
        **variables,
    }
    for name, expression in step["env"].items():
        match = _INPUT.match(str(expression))
        if match:
            env[name] = given[match.group(1)]
    env["DORA_INSIGHTS_PYTHON"] = sys.executable  # what the install step set up
    return subprocess.run(  # noqa: S603 - bash running the action's own script
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],  # noqa: S607 - as the runner does
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
