"""Vendor the dashboard's third-party browser files from their npm packages (``make vendor``).

The dashboard (``/app/``) and the API docs (``/docs``) are served by the service itself, with no CDN at
run time, so the few third-party files they load are copied into the repository, under
``functions/dora_insights/static/vendor/<package>/`` (the functions' ``CodeUri``: ``sam build`` ships
them), and committed: ``make serve`` and ``make test`` on a fresh clone need no npm.

What it does, for each package pinned in ``PACKAGES``:

1. ``npm pack <name>@<version>`` into a temporary directory (npm checks the tarball against the
   registry's ``dist.integrity``, which is recorded);
2. extracts the tarball (``tarfile``'s ``data`` filter: no links, no paths outside it) and copies the
   listed files, byte for byte, into the vendor folder (anything else there is removed);
3. writes ``vendor/vendor.json``: per package its version, tarball integrity and license, and per file
   where it came from, its size and its SHA-256. ``tests/unit/test_app_vendor.py`` checks the files
   against those hashes, so a file edited by hand (or a partial vendoring) fails ``make test``.

To upgrade a package: change its version here, run ``make vendor``, check the dashboard (``make serve``,
the browser tests), commit the files and ``vendor.json`` together. Needs Node's ``npm`` and the registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "functions" / "dora_insights" / "static" / "vendor"
RECORD = VENDOR / "vendor.json"


@dataclass(frozen=True)
class Package:
    """An npm package and the files of its tarball the pages load (tarball path -> vendored name)."""

    name: str
    version: str
    license: str
    files: dict[str, str]


PACKAGES = (
    # The charting library (docs/dashboard.md "Why uPlot"): 22 KB gzipped, canvas, no inline styles.
    Package(
        name="uplot",
        version="1.6.32",
        license="MIT",
        files={
            "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
            "package/LICENSE": "LICENSE",
        },
    ),
    # Swagger UI for /docs: the bundle without the standalone preset (no top bar is needed).
    Package(
        name="swagger-ui-dist",
        version="5.35.0",
        license="Apache-2.0",
        files={
            "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "package/swagger-ui.css": "swagger-ui.css",
            "package/LICENSE": "LICENSE",
            "package/NOTICE": "NOTICE",
        },
    ),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(package: Package, into: Path) -> tuple[Path, str]:
    """``npm pack`` the pinned version into ``into``: the tarball and its registry integrity."""
    spec = f"{package.name}@{package.version}"
    result = subprocess.run(  # noqa: S603 - a fixed command, the spec from the pins above
        ["npm", "pack", spec, "--json", "--pack-destination", str(into)],  # noqa: S607 - npm from PATH
        check=True,
        capture_output=True,
        text=True,
    )
    (packed,) = json.loads(result.stdout)
    if packed["version"] != package.version:
        raise SystemExit(f"{spec}: npm packed version {packed['version']}")
    return into / packed["filename"], str(packed["integrity"])


def vendor_package(package: Package, work: Path) -> dict[str, object]:
    """Copy one package's files into the vendor folder; its entry of ``vendor.json``."""
    tarball, integrity = _pack(package, work)
    extracted = work / package.name
    with tarfile.open(tarball) as archive:
        archive.extractall(extracted, filter="data")
    target = VENDOR / package.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    files = []
    for source, name in package.files.items():
        copied = target / name
        shutil.copyfile(extracted / source, copied)
        files.append(
            {
                "path": f"{package.name}/{name}",
                "from": source.removeprefix("package/"),
                "bytes": copied.stat().st_size,
                "sha256": sha256(copied),
            }
        )
    return {
        "name": package.name,
        "version": package.version,
        "license": package.license,
        "integrity": integrity,
        "tarball": f"https://registry.npmjs.org/{package.name}/-/{tarball.name}",
        "files": files,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.parse_args(argv)
    if shutil.which("npm") is None:
        sys.stderr.write("npm not found: install Node.js (npm) to vendor the dashboard's packages\n")
        return 2
    VENDOR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dora-vendor-") as temporary:
        entries = [vendor_package(package, Path(temporary)) for package in PACKAGES]
    record = {
        "note": "Written by `make vendor` (tools/vendor.py); tests/unit/test_app_vendor.py checks every hash.",
        "packages": entries,
    }
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    for package in PACKAGES:
        sys.stdout.write(f"vendored {package.name}@{package.version} ({len(package.files)} files)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
