"""The functions' package as `sam build` makes it (functions/Makefile): sources with their bytecode.

Lambda's /var/task is read-only, so a package without bytecode is compiled again at every cold start
(bench/cold_start.py measures what that costs). Every function must therefore be built by the Makefile,
and the Makefile must leave, beside each source, Python 3.11 bytecode that the runtime uses without
checking the source's timestamp (a zip may not keep it) and that was compiled from that very source.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.template import resources

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "functions" / "dora_insights"
_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based (bit 0), check_source (bit 1) unset
MAKE = shutil.which("make") or "make"


def test_every_function_is_built_by_the_makefile_that_compiles_its_bytecode() -> None:
    functions = resources("AWS::Serverless::Function")
    assert len(functions) > 80
    unbuilt = sorted(n for n, r in functions.items() if (r.get("Metadata") or {}).get("BuildMethod") != "makefile")
    assert unbuilt == []


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("artifacts")
    subprocess.run(  # noqa: S603 - make with our own Makefile and interpreter
        [MAKE, "--no-print-directory", "-f", str(ROOT / "functions" / "Makefile"), "build-AnyFunction"],
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    return artifacts / "dora_insights"


def test_the_build_ships_every_source_and_file_of_the_package(built: Path) -> None:
    def files(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    assert files(built) == files(SOURCES)


def test_every_module_has_unchecked_bytecode_of_its_own_source_for_python_3_11(built: Path) -> None:
    sources = sorted(built.rglob("*.py"))
    assert len(sources) > 50
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert cached.name.endswith(".cpython-311.pyc"), cached
        header = cached.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(header[4:8], "little") == _UNCHECKED_HASH, source
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), source


def test_the_build_refuses_to_run_outside_sam(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - make with our own Makefile
        [MAKE, "--no-print-directory", "-f", str(ROOT / "functions" / "Makefile"), "build-AnyFunction"],
        env={k: v for k, v in os.environ.items() if k != "ARTIFACTS_DIR"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode != 0
    assert "ARTIFACTS_DIR is not set" in done.stdout + done.stderr
