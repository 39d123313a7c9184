"""An external fuzzer against the served OpenAPI document: schemathesis over every operation of
`make serve`'s runtime (its own process, as a user runs it), with a real key.

Checks: ``not_a_server_error`` (no generated input reaches a 5xx), ``status_code_conformance`` (every
status answered is one the document declares for the operation) and ``response_schema_conformance``
(every answer matches the schema of its status: the success models and each dialect's error shape).
The run is bounded by examples per operation so `make test` stays within budget; the number of
generated requests is printed in the test summary (``record_property``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.server import serve

pytestmark = pytest.mark.e2e
KEY = "fuzz-admin-key"
SPACE = "Spaces-1"
EXAMPLES_PER_OPERATION = 8
SEED = 20261204
# Revoking the key mid-run would turn every later request into a 401 (DESIGN §6).
EXCLUDED_PATHS = ("/api/{spaceId}/apikeys/{keyId}",)
CONFIG = f"""
[parameters]
"path.spaceId" = "{SPACE}"

[generation]
allow-x00 = true
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m dora_local` (what `make serve` runs) in a process of its own, on a free port."""
    with serve(tmp_path_factory.mktemp("serve") / "serve.log", DORA_LOCAL_API_KEY=KEY) as local:
        yield local.url


def _seed(url: str) -> None:
    """Some data, so list and read routes have something to answer with."""
    headers = {"Authorization": f"Bearer {KEY}"}
    for number in range(3):
        body = {
            "project": "shop",
            "environment": "production",
            "finished_at": f"2026-11-0{number + 1}T12:00:00Z",
            "version": f"1.0.{number}",
            "id": f"fuzz-seed-{number}",
        }
        response = requests.post(f"{url}/api/{SPACE}/deployments", json=body, headers=headers, timeout=30)
        assert response.status_code in (200, 201), response.text
    requests.post(f"{url}/_local/schedule/run", timeout=120).raise_for_status()


# Two schemathesis processes of one worker each, over disjoint halves of the operations, instead of one
# process of two worker threads: CPython 3.11's AST constructor keeps its recursion depth in state shared
# by threads (python/cpython gh-106905, fixed in later releases), so two workers in one process could die
# with "SystemError: AST constructor recursion depth mismatch" while hypothesis described a strategy, a
# crash of the generator rather than a finding about the API. One thread per process cannot race.
HALF = r"^/api/(\{spaceId\}|projects)/"
HALVES = (("--include-path-regex", HALF), ("--exclude-path-regex", HALF))


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    served: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    _seed(served)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(config),
        "run",
        f"{served}/openapi.json",
        "--header",
        f"Authorization: Bearer {KEY}",
        "--checks",
        "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--continue-on-failure",
        *[option for path in EXCLUDED_PATHS for option in ("--exclude-path", path)],
    ]
    runs = [
        subprocess.Popen(  # noqa: S603 - the venv's own schemathesis
            [*command, *half], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
        )
        for half in HALVES
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    generated = [re.search(r"(\d+) generated", output) for output in outputs]
    assert all(generated), "\n".join(output[-4000:] for output in outputs)
    record_property("schemathesis_generated_requests", sum(int(match.group(1)) for match in generated if match))
    tested = [re.search(r"Tested: (\d+)", output) for output in outputs]
    assert all(tested), "\n".join(output[-4000:] for output in outputs)
    assert sum(int(match.group(1)) for match in tested if match) >= 140, "\n".join(outputs)
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-12000:]
