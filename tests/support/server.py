"""``python -m dora_local`` (what ``make serve`` runs) in a process of its own, as a user runs it.

For tests that need the runtime apart from the test process: its own moto, its own clock (time travel
moves it for good), faults from its environment. Tests that can share the session's in-process runtime
use the ``local`` fixture (tests/e2e/conftest.py) instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 90  # a cold start of the runtime (moto, the template's resources, the seed) on a slow runner


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def runtime_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a ``dora_local`` process, plus ``extra``: the project's packages on
    ``PYTHONPATH``; no AWS endpoint (the runtime starts its own moto) and no fault settings but ``extra``'s."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "DORA_LOCAL_FAULT"))}
    inherited["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("functions", "local"))
    return {**inherited, **extra}


def refused_start(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """``python -m dora_local`` with ``arguments``, on a free port and quiet (``environment`` over that),
    run to its end: a start it refuses, with its exit code and what it printed."""
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "dora_local", *arguments],
        env=runtime_environment(**{"PORT": str(free_port()), "DORA_LOCAL_QUIET": "1", **environment}),
        capture_output=True,
        text=True,
        timeout=READY_SECONDS,
        cwd=ROOT,
        check=False,
    )


@dataclass
class Served:
    """A running ``python -m dora_local``: where it answers and where its output goes."""

    url: str
    log: Path

    def tail(self, characters: int = 4000) -> str:
        """The end of its output (for a failing test's message)."""
        return self.log.read_text(errors="replace")[-characters:]


@contextmanager
def serve(log: Path, *arguments: str, **environment: str) -> Iterator[Served]:
    """``python -m dora_local ARGUMENTS`` (e.g. ``--data DIR``) on a free port, quiet, with no timer schedule
    (tests call ``POST /_local/schedule/run``), its output in ``log`` and ``environment`` added to its
    environment (e.g. ``DORA_LOCAL_API_KEY``, ``DORA_LOCAL_FAULT_RATE``). Yields once ``GET /health`` answers
    200; stops it after.
    """
    port = free_port()
    env = runtime_environment(PORT=str(port), DORA_LOCAL_QUIET="1", SCHEDULE_SECONDS="0", **environment)
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, the caller's arguments
            [sys.executable, "-m", "dora_local", *arguments], env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
        )
        served = Served(f"http://127.0.0.1:{port}", log)
        try:
            deadline = time.monotonic() + READY_SECONDS
            while True:
                assert process.poll() is None, served.tail()
                assert time.monotonic() < deadline, (
                    f"the local runtime did not become ready in {READY_SECONDS} s\n{served.tail()}"
                )
                try:
                    if requests.get(f"{served.url}/health", timeout=2).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):  # not listening yet, or busy starting
                    time.sleep(0.2)
            yield served
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
