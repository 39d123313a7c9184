"""``make serve`` keeps its data: ``python -m dora_local --data DIR`` in a process of its own, stopped
(SIGTERM) or killed (SIGKILL) and started again on the same directory."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.server import READY_SECONDS, ROOT, free_port, refused_start, runtime_environment

KEY = "persistence-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
TIMEOUT = 30


@contextmanager
def serving(data: Path, log: Path, *arguments: str, stop: signal.Signals = signal.SIGTERM) -> Iterator[str]:
    """``python -m dora_local --data DATA ARGUMENTS`` until ready; its URL; then ``stop`` sent to it."""
    port = free_port()
    env = runtime_environment(PORT=str(port), DORA_LOCAL_QUIET="1", SCHEDULE_SECONDS="0", DORA_LOCAL_API_KEY=KEY)
    url = f"http://127.0.0.1:{port}"
    with log.open("a") as output:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "dora_local", "--data", str(data), *arguments],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + READY_SECONDS
            while True:
                assert process.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                try:
                    if requests.get(f"{url}/health", timeout=TIMEOUT).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a cold first import
                    time.sleep(0.2)
            yield url
        finally:
            process.send_signal(stop)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def post_deployment(url: str, version: str) -> dict[str, Any]:
    body = {"project": "kept", "environment": "production", "finished_at": "2024-03-01T12:00:00Z", "version": version}
    response = requests.post(f"{url}/api/Spaces-1/deployments", json=body, headers=HEADERS, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return dict(response.json())


def versions(url: str) -> list[str]:
    response = requests.get(f"{url}/api/Spaces-1/deployments?project=kept", headers=HEADERS, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return sorted(d["version"] for d in response.json()["items"])


def test_deployments_survive_a_stop_and_a_kill(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "serve.log"
    with serving(data, log) as url:
        first = post_deployment(url, "1.0.0")
    with serving(data, log, stop=signal.SIGKILL) as url:  # killed: no snapshot, the journal is all there is
        assert versions(url) == ["1.0.0"]
        post_deployment(url, "1.0.1")
    with serving(data, log) as url:
        assert versions(url) == ["1.0.0", "1.0.1"]
        again = requests.get(f"{url}/api/Spaces-1/deployments/{first['id']}", headers=HEADERS, timeout=TIMEOUT)
        assert again.status_code == 200
        assert again.json()["version"] == "1.0.0"
    assert "writes replayed from the journal" in log.read_text()


def test_fresh_starts_empty_and_a_second_runtime_cannot_share_the_directory(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "serve.log"
    with serving(data, log) as url:
        post_deployment(url, "2.0.0")
        second = refused_start("--data", str(data))
        assert second.returncode == 1
        assert "in use by another local runtime" in second.stderr
    with serving(data, log, "--fresh") as url:
        assert versions(url) == []
