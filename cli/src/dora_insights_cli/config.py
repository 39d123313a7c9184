"""Where the service is, which space, which key: flags, then environment, then a config file.

Config files (TOML, flat keys ``url``, ``space``, ``api_key``, ``service``, ``env``): ``--config PATH``
or ``$DORA_INSIGHTS_CONFIG`` when given, else ``./.dora-insights.toml`` and then
``$XDG_CONFIG_HOME/dora-insights/config.toml`` (``~/.config/...``); the first file found that sets
a key wins. The key is never printed: only :func:`redact`'s prefix is; nor is a URL's userinfo
(``https://ci:<key>@host``: the key as HTTP Basic's password, which the service accepts, is taken
out of the URL and used as the key).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from dora_insights_cli.errors import USAGE, CliError

ENV_URL = "DORA_INSIGHTS_URL"
ENV_API_KEY = "DORA_INSIGHTS_API_KEY"
ENV_SPACE = "DORA_INSIGHTS_SPACE"
ENV_CONFIG = "DORA_INSIGHTS_CONFIG"
PROJECT_FILE = ".dora-insights.toml"
KEYS = ("url", "space", "api_key", "service", "env")

_LINE = re.compile(r"""^\s*([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:#.*)?$""")
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.)|$)", re.DOTALL)
_SIMPLE_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_KEY_CHARACTERS = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no whitespace: what an HTTP header carries


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
    """A prefix short enough to say nothing of the rest: ``loca…`` for ``local-dev-key`` (a character
    that is not printable ASCII shows as ``?``, so a log line stays one line)."""
    shown = 4 if len(key) >= 12 else 2 if len(key) >= 8 else 0
    prefix = "".join(c if "\x21" <= c <= "\x7e" else "?" for c in key[:shown])
    return f"{prefix}…" if shown else "…"


def check_key(key: Value) -> None:
    """A usage error unless the key is printable ASCII without whitespace (a header value): a secret
    pasted with a line break or an invisible character would otherwise fail inside http.client, with
    the whole key in the traceback. The message shows the redacted prefix and the character's place."""
    if _KEY_CHARACTERS.match(key.value):
        return
    index, bad = next((i, c) for i, c in enumerate(key.value) if not "\x21" <= c <= "\x7e")
    what = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space"}.get(bad)
    what = what or f"U+{ord(bad):04X} (not printable ASCII)"
    raise CliError(
        f"the API key {redact(key.value)} (from {key.source}) holds {what} at character {index + 1} of"
        f" {len(key.value)}: a key is printable ASCII without spaces; copy it again (a secret pasted with a line"
        " break or an invisible character)",
        USAGE,
    )


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
            found[match.group(1)] = _unescape(raw) if raw is not None else match.group(3)
    return found


def _unescape(raw: str) -> str:
    """A TOML basic string's escapes (``\\\\ \\" \\n \\t \\r \\b \\f \\uXXXX \\UXXXXXXXX``), on the text itself
    (any other character, ``é`` included, stays as written); ``ValueError`` for any other escape."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        if code is not None:
            point = int(code, 16)
            if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
                raise ValueError(f"\\{'u' if match.group(1) else 'U'}{code} is not a Unicode scalar value")
            return chr(point)
        simple = _SIMPLE_ESCAPES.get(match.group(3) or "")
        if simple is None:
            raise ValueError(f"invalid escape {match.group(0)!r} in a basic string")
        return simple

    return _ESCAPE.sub(replace, raw)


def read_file(path: Path) -> dict[str, str]:
    """The string settings of one config file (unknown keys ignored), or a usage error naming it."""
    try:
        data = _parse_toml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read config file {path}: {error}", USAGE) from None
    except ValueError as error:  # tomllib.TOMLDecodeError is a ValueError
        raise CliError(f"config file {path} is not valid TOML: {error}", USAGE) from None
    return {k: v for k, v in data.items() if k in KEYS and isinstance(v, str) and v.strip()}


def config_files(env: Mapping[str, str], cwd: Path, home: Path | None, explicit: str | None) -> list[Path]:
    """The files to read, first wins (``home`` None: the user has none, so no user config file)."""
    chosen = explicit or env.get(ENV_CONFIG)
    if chosen:
        try:
            return [Path(chosen).expanduser()]
        except RuntimeError:  # `~` without a home: the path as written (the caller says it does not exist)
            return [Path(chosen)]
    xdg = env.get("XDG_CONFIG_HOME") or (str(home / ".config") if home is not None else None)
    user = [Path(xdg) / "dora-insights" / "config.toml"] if xdg else []
    return [p for p in (cwd / PROJECT_FILE, *user) if _is_file(p)]


def _is_file(path: Path) -> bool:
    """Whether a config file is there; a folder this user may not look into has none (a container's uid)."""
    try:
        return path.is_file()
    except OSError:
        return False


@dataclass(frozen=True)
class Sources:
    """Settings from the environment and config files, looked up by key."""

    env: Mapping[str, str]
    files: list[tuple[Path, dict[str, str]]]

    @classmethod
    def load(cls, env: Mapping[str, str], cwd: Path, home: Path | None, explicit: str | None) -> Sources:
        paths = config_files(env, cwd, home, explicit)
        if explicit and not _is_file(paths[0]):
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


def service_url(found: Value | None) -> tuple[str, Value | None]:
    """The service's base URL without userinfo, and the key its password carries (HTTP Basic with the key
    as password and any user name: API.md "Authentication"), or a usage error that shows no credential."""
    if found is None:
        return "", None
    text = found.value.rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises here rather than at the first request
    except ValueError:
        raise CliError(f"the service URL ({found.source}) is not a URL", USAGE) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise CliError(f"the service URL must start with http:// or https:// (got {found.source})", USAGE)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not host or host.startswith(":"):
        raise CliError(f"the service URL ({found.source}) names no host", USAGE)
    if not at:
        return text, None
    base = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)).rstrip("/")
    _, colon, password = userinfo.partition(":")
    key = unquote(password) if colon else ""
    return base, Value(key, f"the password in {found.source}") if key else None


def sends_in_cleartext(url: str) -> bool:
    """True for an ``http://`` URL to another machine (not ``localhost`` or a loopback address)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name
        return True


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
    base, url_key = service_url(found_url)
    if url_key is not None:
        if found_key is not None and found_key.value != url_key.value:
            raise CliError(
                f"the service URL carries an API key ({url_key.source}: {redact(url_key.value)}) and"
                f" {found_key.source} sets another ({redact(found_key.value)}): keep one (prefer {ENV_API_KEY},"
                " and the URL without credentials)",
                USAGE,
            )
        found_key = found_key or url_key
        missing = [m for m in missing if not m.startswith("the API key")]
    if missing or found_space is None:
        raise CliError("missing " + "; ".join(missing), USAGE)
    if found_key is not None:
        check_key(found_key)
    return Connection(
        url=base,
        space=found_space.value,
        api_key=found_key,
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
    )
