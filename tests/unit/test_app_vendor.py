"""The dashboard's vendored browser files (`make vendor`, tools/vendor.py) are exactly what vendor.json
records: the npm package versions pinned in tools/vendor.py, and each file's SHA-256."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "functions" / "dora_insights" / "static" / "vendor"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_tool", ROOT / "tools" / "vendor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads((VENDOR / "vendor.json").read_text())
    return record


def test_every_vendored_file_matches_its_recorded_sha256() -> None:
    for package in _record()["packages"]:
        for file in package["files"]:
            data = (VENDOR / file["path"]).read_bytes()
            assert len(data) == file["bytes"], file["path"]
            assert hashlib.sha256(data).hexdigest() == file["sha256"], f"{file['path']} differs from {package['name']}"


def test_the_record_lists_every_vendored_file_and_nothing_else() -> None:
    recorded = {file["path"] for package in _record()["packages"] for file in package["files"]}
    present = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file() and p.name != "vendor.json"}
    assert present == recorded


def test_the_record_is_of_the_versions_pinned_in_the_vendor_tool() -> None:
    pinned = {p.name: (p.version, sorted(p.files.values())) for p in _tool().PACKAGES}
    recorded = {
        p["name"]: (p["version"], sorted(Path(f["path"]).name for f in p["files"])) for p in _record()["packages"]
    }
    assert recorded == pinned
    for package in _record()["packages"]:
        assert package["integrity"].startswith("sha512-"), package["name"]
        assert package["license"], package["name"]
