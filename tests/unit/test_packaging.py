"""The Deps layer's lock, layers/deps/requirements.txt (`make lock`): pyproject's runtime pins, every
transitive dependency on the Lambda platform, a sha256 for every distribution, and the versions the
tests run with. Offline: the lock is checked against the installed packages' own metadata, which the
Makefile installs from the lock itself (hashes checked)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "layers/deps/requirements.txt"

# The platform `make lock` resolves for: the python3.11 Lambda runtime on arm64 (Amazon Linux 2).
LAMBDA_PLATFORM = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
}

_ENTRY = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!]+)(?P<hashes>(?:\s+--hash=\S+)+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]


def parse_lock(text: str) -> dict[str, Pin]:
    """The lock's pins by normalised name; ValueError for any entry that is not ``name==version`` with sha256s."""
    pins: dict[str, Pin] = {}
    logical = re.sub(r"\\\n", " ", "\n".join(line.split("#", 1)[0].rstrip() for line in text.splitlines()))
    for entry in filter(None, (line.strip() for line in logical.splitlines())):
        found = _ENTRY.fullmatch(entry)
        if found is None:
            raise ValueError(f"not an exact pin with hashes: {entry[:120]}")
        hashes = tuple(found.group("hashes").split())
        if not all(_HASH.fullmatch(h) for h in hashes):
            raise ValueError(f"{found.group('name')}: every hash must be a sha256")
        name = canonicalize_name(found.group("name"))
        if name in pins:
            raise ValueError(f"{name} is pinned twice")
        pins[name] = Pin(name, found.group("version"), hashes)
    return pins


def runtime_dependencies() -> list[Requirement]:
    return [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]


def closure_problems(
    roots: list[Requirement], pins: dict[str, Pin], requires_of: Callable[[str], list[Requirement]]
) -> list[str]:
    """What keeps ``pins`` from being exactly the dependency closure of ``roots`` on the Lambda platform:
    a needed package not pinned, a pin outside a dependent's range, a pin nothing needs."""
    problems: list[str] = []
    expanded: dict[str, set[str]] = {}
    todo = [(r, "pyproject.toml") for r in roots if r.marker is None or r.marker.evaluate(LAMBDA_PLATFORM)]
    while todo:
        requirement, needed_by = todo.pop()
        name = canonicalize_name(requirement.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{name} ({requirement.specifier or 'any'}, for {needed_by}) is not in the lock")
            continue
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{name}=={pin.version} is outside {needed_by}'s range {requirement.specifier}")
        new_extras = ({""} | set(requirement.extras)) - expanded.get(name, set())
        if not new_extras:
            continue
        expanded.setdefault(name, set()).update(new_extras)
        for child in requires_of(name):
            if child.marker is None or any(child.marker.evaluate({**LAMBDA_PLATFORM, "extra": e}) for e in new_extras):
                todo.append((child, name))
    problems += [f"{name} is locked but nothing needs it" for name in sorted(set(pins) - set(expanded))]
    return problems


def installed_requires(name: str) -> list[Requirement]:
    return [Requirement(r) for r in metadata.distribution(name).requires or []]


# ------------------------------------------------------------------------------------------ the real lock
def test_lock_pins_every_runtime_dependency_of_pyproject_at_its_version() -> None:
    pins = parse_lock(LOCK.read_text())
    for requirement in runtime_dependencies():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{requirement} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from the lock: run make lock"
        assert pins[name].version == spec.version, f"{name}: pyproject {spec.version}, lock {pins[name].version}"


def test_every_locked_distribution_is_pinned_with_sha256_hashes() -> None:
    pins = parse_lock(LOCK.read_text())  # refuses any entry without an exact version and sha256 hashes
    assert all(pin.hashes for pin in pins.values())
    # The ones the issue names: Powertools, the AWS SDK (also in the runtime, pinned on purpose), the
    # compiled pydantic-core (a wheel per platform: the arm64 one among its hashes).
    for name in ("aws-lambda-powertools", "boto3", "botocore", "pydantic", "pydantic-core"):
        assert name in pins, name
    assert len(pins["pydantic-core"].hashes) > 10


def test_lock_is_exactly_the_dependency_closure_of_the_runtime_pins() -> None:
    pins = parse_lock(LOCK.read_text())
    stale = {n: metadata.version(n) for n, p in pins.items() if metadata.version(n) != p.version}
    assert not stale, f"the test environment differs from the lock: {stale} (make reinstalls it from the lock)"
    assert closure_problems(runtime_dependencies(), pins, installed_requires) == []


def test_tests_run_with_the_locked_versions() -> None:
    for pin in parse_lock(LOCK.read_text()).values():
        assert metadata.version(pin.name) == pin.version, pin.name


# ------------------------------------------------------------------------------------------ the checks fail
SHA = "--hash=sha256:" + "a" * 64
SYNTHETIC = {
    "app-lib": [Requirement("helper>=2"), Requirement("winonly; sys_platform == 'win32'"), Requirement("x[fast]")],
    "helper": [],
    "x": [Requirement("speedup; extra == 'fast'"), Requirement("never; extra == 'slow'")],
    "speedup": [],
}


def _lock(*entries: str) -> dict[str, Pin]:
    return parse_lock("\n".join(f"{e} \\\n    {SHA}\n    # via something" for e in entries))


@pytest.mark.parametrize(
    "entry",
    ["helper==2.0", "helper>=2.0 " + SHA, "helper==2.0 --hash=md5:abc", "helper @ https://x/y.whl " + SHA],
)
def test_an_entry_without_an_exact_version_and_sha256_hashes_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"hash|pin"):
        parse_lock(entry)


def test_a_complete_lock_has_no_closure_problems() -> None:
    pins = _lock("app-lib==1.0", "helper==2.1", "x==1.0", "speedup==3.0")
    assert closure_problems([Requirement("app-lib==1.0")], pins, SYNTHETIC.__getitem__) == []


def test_a_missing_transitive_dependency_a_pin_out_of_range_and_an_orphan_are_reported() -> None:
    pins = _lock("app-lib==1.0", "helper==1.9", "x==1.0", "orphan==1.0")
    problems = closure_problems([Requirement("app-lib==1.0")], pins, SYNTHETIC.__getitem__)
    assert sorted(problems) == [
        "helper==1.9 is outside app-lib's range >=2",
        "orphan is locked but nothing needs it",
        "speedup (any, for x) is not in the lock",
    ]
