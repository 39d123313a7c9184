"""Boundary checks every dialect shares, so bad input is a 4xx at the door, never a 5xx later.

- ``Instant``: the pydantic type of every time field (``domain.times.parse_instant``: ISO-8601
  with an offset or unix s/ms/µs/ns, within 1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z).
- :func:`load_json`: ``json.loads`` that refuses what the service cannot hold, with the path of
  the first problem: nesting deeper than ``MAX_JSON_DEPTH`` (64) levels (without recursion;
  a parse that would recurse deeper than Python allows is caught), numbers DynamoDB cannot
  store (more than 38 significant digits, magnitude outside 1E-130 .. 9.99E+125, ``NaN``,
  ``Infinity``) and escaped lone surrogates (not text: UTF-8 cannot encode them). The Lambda
  entry point runs it on every JSON body (``handlers.http``); routes that find JSON inside
  other text (CSV cells, JSON in a string field) call it themselves.
- :func:`load_payload_json`: a webhook's payload (a code host's, an incident tool's), which holds
  far more than the service reads (free-form deployment payloads, custom properties): only escaped
  lone surrogates and nesting Python cannot parse are refused; the route's models check the
  fields they keep (``StorableInt``), so a number in a field never read costs no delivery.
- ``FreeJson``: free-form objects clients may attach (metadata, settings): at most
  ``MAX_FREE_JSON_BYTES`` (16 KiB) of JSON, ``MAX_FREE_JSON_DEPTH`` (16) levels, no empty keys
  (DynamoDB refuses empty map keys), storable numbers.
- :func:`key_name`: names that become part of DynamoDB keys (catalogue names, users, branches):
  at most a number of UTF-8 bytes (also once case-folded, as catalogue keys store them), so
  every key built from them stays within DynamoDB's 1024/2048-byte limits (``dal.limits``
  refuses any key that would not, whatever the route: the caps only name the field).
- :func:`pushed_branch`: the branch a code host's push names (webhooks), checked as a ``/changes``
  branch: not blank, at most ``MAX_BRANCH_BYTES`` of UTF-8 (a code host caps refs in characters,
  and 4-byte characters would pass the commit and branch-counter sort keys' 1024 bytes).
- :func:`not_blank`: a name that is more than white space.
- :func:`some_named`: a list of names beside its one-name twin (``services`` and ``service``,
  ``projects`` and ``project``): between them, at least one name.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

from dora_insights.domain.numbers import number_problem
from dora_insights.domain.times import InstantError, parse_instant

MAX_JSON_DEPTH = 64
MAX_FREE_JSON_BYTES = 16 * 1024
MAX_FREE_JSON_DEPTH = 16
# Names inside keys: 200 four-byte characters fit; the composite keys of dal.keys stay in bounds.
MAX_NAME_BYTES = 800
MAX_BRANCH_BYTES = 500

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonShapeError(Exception):
    """JSON the service cannot hold; ``path`` (``a.b[2]``) names where, None for the document."""

    def __init__(self, path: str | None, message: str) -> None:
        if path is not None and len(path) > 120:
            path = path[:119] + "…"
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class _UnstorableNumberError(Exception):
    """Raised by the number hooks of the fast parse; the slow walk then finds the path."""


def _int(text: str) -> int:
    if len(text) - text.startswith("-") > 38:
        raise _UnstorableNumberError
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if number_problem(value) is not None:
        raise _UnstorableNumberError
    return value


def _constant(text: str) -> float:
    raise _UnstorableNumberError


def _join(path: str | None, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path or ''}[{part}]"
    return f"{path}.{part}" if path else part


def json_problem(
    value: Any,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    empty_keys: bool = True,
    path: str | None = None,
    numbers: bool = True,
) -> tuple[str | None, str] | None:
    """The first (path, message) of what the service cannot hold in a parsed JSON value, or None
    (``numbers=False``: numbers are not looked at).

    Iterative: depth is counted by containers (an object or array is level 1)."""
    stack: list[tuple[Any, str | None, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth + 1 > max_depth:
                return where, f"is nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for name, child in item.items():
                    if not empty_keys and not name:
                        return where, "must not have an empty key"
                    stack.append((child, _join(where, name), depth + 1))
            else:
                stack.extend((child, _join(where, i), depth + 1) for i, child in enumerate(item))
        elif numbers and isinstance(item, int | float) and not isinstance(item, bool):
            problem = number_problem(item)
            if problem is not None:
                return where, f"{_show(item)} is not a number this service can store ({problem})"
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where, "is not valid Unicode text (an unpaired surrogate escape)"
    return None


def _show(number: float) -> str:
    text = repr(number)
    return text if len(text) <= 24 else text[:20] + "…"


def load_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text; ``JsonShapeError`` for what the service cannot hold, ``ValueError`` if not JSON.

    The common case costs one parse: numbers are checked by the parser's hooks, and the
    (iterative) walk runs only when the text could nest deeper than ``max_depth`` or escapes a
    surrogate."""
    deep = JsonShapeError(None, f"the JSON is nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _UnstorableNumberError:
        try:
            value = json.loads(text)  # the same document, to find where
        except RecursionError:
            raise deep from None
    except RecursionError:
        raise deep from None
    else:
        if text.count("[") + text.count("{") <= max_depth and not _ESCAPED_SURROGATE.search(text):
            return value
    problem = json_problem(value, max_depth=max_depth)
    if problem is not None:
        raise JsonShapeError(*problem)
    return value


def load_payload_json(text: str) -> Any:
    """Parse a webhook payload; ``JsonShapeError`` for an escaped lone surrogate (anywhere: text the
    service keeps must be UTF-8) or nesting past what Python parses, ``ValueError`` if not JSON.
    Numbers and depth are left to the models of the fields read."""
    try:
        value = json.loads(text, parse_int=_any_int)
    except RecursionError:
        raise JsonShapeError(None, "the JSON is nested too deep to read") from None
    if _ESCAPED_SURROGATE.search(text):
        problem = json_problem(value, max_depth=sys.maxsize, numbers=False)
        if problem is not None:
            raise JsonShapeError(*problem)
    return value


def _any_int(text: str) -> int | Decimal:
    """An integer as parsed, or past Python's 4,300 digits of ``int`` conversion the exact ``Decimal``."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def free_json_problem(value: Any, *, limit: int = MAX_FREE_JSON_BYTES) -> str | None:
    """Why a free-form JSON value cannot be stored, or None."""
    problem = json_problem(value, max_depth=MAX_FREE_JSON_DEPTH, empty_keys=False)
    if problem is not None:
        where, message = problem
        return f"{where}: {message}" if where else message
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False, default=str))
    except (TypeError, ValueError) as error:  # pragma: no cover - the walk refuses NaN first
        return f"is not JSON: {error}"
    if size > limit:
        return f"must be at most {limit} bytes of JSON (it is {size})"
    return None


def _free_json(value: dict[str, Any]) -> dict[str, Any]:
    problem = free_json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


FreeJson = Annotated[dict[str, Any], AfterValidator(_free_json)]


def utf8_size(value: str) -> int:
    """Bytes of ``value`` in UTF-8, also counting its case-folded form (catalogue keys store that)."""
    folded = value.casefold()
    return max(len(value.encode("utf-8", errors="surrogatepass")), len(folded.encode("utf-8", errors="surrogatepass")))


def key_name(limit: int = MAX_NAME_BYTES) -> Callable[[str], str]:
    """An AfterValidator: a name that becomes part of a key holds at most ``limit`` bytes of UTF-8."""

    def check(value: str) -> str:
        if utf8_size(value) > limit:
            raise ValueError(f"must be at most {limit} bytes in UTF-8 (it is {utf8_size(value)})")
        return value

    return check


def pushed_branch(branch: str) -> str:
    """A validator's check of the branch a pushed ref names: what a ``/changes`` branch may be (not
    blank, at most ``MAX_BRANCH_BYTES`` bytes of UTF-8, ``key_name``); else a ValueError saying why."""
    return key_name(MAX_BRANCH_BYTES)(not_blank(branch))


def not_blank(value: str) -> str:
    """An AfterValidator: a name must hold more than white space."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def some_named(single: str, message: str) -> Callable[[list[str] | None, ValidationInfo], list[str] | None]:
    """A field validator of a list of names whose one-name twin ``single`` is declared before it: when
    neither names anything, ``message``. When the twin failed validation its own error is enough."""

    def check(value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if not value and single in info.data and not info.data[single]:
            raise ValueError(message)
        return value

    return check


def instant(value: object) -> datetime:
    """A validator's instant (``domain.times.parse_instant``): what it refuses, a ValueError saying why."""
    try:
        return parse_instant(value)
    except InstantError as error:
        raise ValueError(str(error)) from None


Instant = Annotated[datetime, BeforeValidator(instant)]


def _storable(value: float) -> float:
    problem = number_problem(value)
    if problem is not None:
        raise ValueError(f"{_show(value)} is not a number this service can store ({problem})")
    return value


# Numeric fields that are stored: a JSON number the body check let through is fine, but pydantic also
# coerces strings ("1e300", "NaN", forty digits), which only the field itself can check.
StorableInt = Annotated[int, AfterValidator(_storable)]
StorableFloat = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_storable)]
