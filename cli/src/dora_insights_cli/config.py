"""Where the service is, which space, which key: flags, then environment, then a config file.

Config files (TOML, flat keys ``url``, ``space``, ``api_key``, ``service``, ``env``): ``--config PATH``
or ``$DORA_INSIGHTS_CONFIG`` when given, else ``./.dora-insights.toml`` and then
``$XDG_CONFIG_HOME/dora-insights/config.toml`` (``~/.config/...``); the first file found that sets
a key wins. The key is never printed: only :func:`redact`'s prefix is.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dora_insights_cli.errors import USAGE, CliError

ENV_URL = "DORA_INSIGHTS_URL"
ENV_API_KEY = "DORA_INSIGHTS_API_KEY"
ENV_SPACE = "DORA_INSIGHTS_SPACE"
ENV_CONFIG = "DORA_INSIGHTS_CONFIG"
PROJECT_FILE = ".dora-insights.toml"
KEYS = ("url", "space", "api_key", "service", "env")

_LINE = re.compile(r"""^\s*([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:#.*)?$""")


@dataclass(frozen=True)
class Value:
    """A setting and where it came from (for messages: "the key from DORA_INSIGHTS_API_KEY")."""

    value: str
    source: str


@dataclass(frozen=True)
class Connection:
    """What every request needs."""

    url: str
    space: str
    api_key: Value | None
    timeout: float
    retries: int
    retry_delay: float

    def key_text(self) -> str:
        """The key as messages show it: a redacted prefix and where it came from."""
        if self.api_key is None:
            return "no API key"
        return f"the API key {redact(self.api_key.value)} (from {self.api_key.source})"


def redact(key: str) -> str:
    """A prefix short enough to say nothing of the rest: ``loca…`` for ``local-dev-key``."""
    shown = 4 if len(key) >= 12 else 2 if len(key) >= 8 else 0
    return f"{key[:shown]}…" if shown else "…"


def _parse_toml(text: str) -> dict[str, object]:
    if sys.version_info >= (3, 11):
        import tomllib

        return dict(tomllib.loads(text))
    return _parse_flat(text)  # pragma: no cover - Python < 3.11: the flat subset the CLI reads


def _parse_flat(text: str) -> dict[str, object]:
    """``key = "value"`` lines before any ``[table]`` (what the CLI reads), for Pythons without tomllib."""
    found: dict[str, object] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            break
        match = _LINE.match(line)
        if match:
            raw = match.group(2)
            found[match.group(1)] = raw.encode("utf-8").decode("unicode_escape") if raw is not None else match.group(3)
    return found


def read_file(path: Path) -> dict[str, str]:
    """The string settings of one config file (unknown keys ignored), or a usage error naming it."""
    try:
        data = _parse_toml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read config file {path}: {error}", USAGE) from None
    except ValueError as error:  # tomllib.TOMLDecodeError is a ValueError
        raise CliError(f"config file {path} is not valid TOML: {error}", USAGE) from None
    return {k: v for k, v in data.items() if k in KEYS and isinstance(v, str) and v.strip()}


def config_files(env: Mapping[str, str], cwd: Path, home: Path, explicit: str | None) -> list[Path]:
    """The files to read, first wins."""
    chosen = explicit or env.get(ENV_CONFIG)
    if chosen:
        return [Path(chosen).expanduser()]
    xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return [p for p in (cwd / PROJECT_FILE, Path(xdg) / "dora-insights" / "config.toml") if p.is_file()]


@dataclass(frozen=True)
class Sources:
    """Settings from the environment and config files, looked up by key."""

    env: Mapping[str, str]
    files: list[tuple[Path, dict[str, str]]]

    @classmethod
    def load(cls, env: Mapping[str, str], cwd: Path, home: Path, explicit: str | None) -> Sources:
        paths = config_files(env, cwd, home, explicit)
        if explicit and not paths[0].is_file():
            raise CliError(f"config file {paths[0]} does not exist", USAGE)
        return cls(env, [(p, read_file(p)) for p in paths])

    def lookup(self, flag: str | None, flag_name: str, env_names: tuple[str, ...], key: str | None) -> Value | None:
        """The flag, else the first environment variable set, else the first file that sets ``key``
        (``key`` None: files are not consulted)."""
        if flag is not None and flag.strip():
            return Value(flag.strip(), flag_name)
        for name in env_names:
            if self.env.get(name, "").strip():
                return Value(self.env[name].strip(), name)
        return self.file_value(key) if key is not None else None

    def file_value(self, key: str) -> Value | None:
        for path, values in self.files:
            if key in values:
                return Value(values[key].strip(), str(path))
        return None

    def key_in_project_file(self, cwd: Path) -> Path | None:
        """A config file inside the working directory that holds a key (it may get committed)."""
        for path, values in self.files:
            if "api_key" in values and path.resolve().parent == cwd.resolve():
                return path
        return None


def connection(
    sources: Sources,
    *,
    url: str | None,
    space: str | None,
    api_key: str | None,
    timeout: float,
    retries: int,
    retry_delay: float,
    need_key: bool = True,
) -> Connection:
    """The connection settings, or a usage error that says which is missing and how to set it."""
    found_url = sources.lookup(url, "--url", (ENV_URL,), "url")
    found_space = sources.lookup(space, "--space", (ENV_SPACE,), "space")
    found_key = sources.lookup(api_key, "--api-key", (ENV_API_KEY,), "api_key")
    missing = [
        f"{what} ({flag}, ${env_name} or `{key}` in a config file)"
        for what, found, flag, env_name, key in (
            ("the service URL", found_url, "--url", ENV_URL, "url"),
            ("the space", found_space, "--space", ENV_SPACE, "space"),
            ("the API key", found_key if need_key else True, "--api-key", ENV_API_KEY, "api_key"),
        )
        if found is None
    ]
    if missing or found_url is None or found_space is None:
        raise CliError("missing " + "; ".join(missing), USAGE)
    base = found_url.value.rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise CliError(f"the service URL must start with http:// or https:// (got {found_url.source})", USAGE)
    return Connection(
        url=base,
        space=found_space.value,
        api_key=found_key,
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
    )
