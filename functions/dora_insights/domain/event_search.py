"""Datadog's event search syntax, as the ``query`` of its DORA lists takes it: parse, print, evaluate. Pure.

A query is a boolean expression over terms ``key:value`` (API.md, Datadog dialect):

- ``service:web``, ``env:prod``, ``team:backend``, ``version:v1.2``, ``language:java`` (a custom tag
  ``key:value``); an ``@`` before the key is allowed and ignored (``@git.commit_sha:abc``).
- Values: a word, or a quoted phrase ``"two words"`` (``\\"`` and ``\\\\`` inside). In a word, ``*``
  matches any run of characters and ``?`` one character; a backslash makes the next character
  literal (``\\*``, ``\\(``, ``\\ ``). Quoted values are literal (no wildcards). A word may contain
  ``:`` after the first one (``url:http://x``), and may start with ``-`` (``version:-1``).
- ``key:*``: the event has the key (any value); ``-key:*``: it has none.
- ``key:(a OR b)``, ``key:(a -b)``: a group of values for one key, with the operators below.
- Operators: ``AND`` (or nothing: terms side by side), ``OR``, ``NOT`` and ``-`` (directly before a
  term or a parenthesis), parentheses. Keywords are upper case; precedence ``NOT``/``-`` over
  ``AND`` over ``OR`` (``a OR b c`` is ``a OR (b AND c)``).
- ``*`` alone matches every event; an empty query too.

Matching is case-insensitive (keys and values: Datadog stores tags lower-cased, and catalogue names
are unique regardless of case). An event is presented as a :data:`Document`: each key (lower case)
with its values (a failure has several ``service`` values; tags may repeat a key). A term matches
when any value of its key matches its pattern.

Not supported (a clear :class:`QuerySyntaxError`): free text without a key, ranges and comparisons
are not recognised as such (``version:>2`` is the literal ``>2``). Bounds keep any query cheap to
parse: at most :data:`MAX_QUERY_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

MAX_QUERY_LENGTH = 4096
MAX_DEPTH = 32

Document = Mapping[str, Sequence[str]]
"""An event as the search sees it: lower-case key -> its values."""


class QuerySyntaxError(ValueError):
    """A query this module cannot read; the message says what and where (1-based character)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(f"{message} (at character {position + 1})" if position is not None else message)


class Wild(Enum):
    """A wildcard in a value."""

    STAR = "*"  # any run of characters, none included
    ONE = "?"  # exactly one character


Piece = str | Wild


@dataclass(frozen=True)
class Pattern:
    """A value to match: literal text and wildcards, in order. Build it with :meth:`of`, which
    normalises it (literal text case-folded and merged, runs of ``*`` collapsed), so that equal
    patterns compare equal."""

    pieces: tuple[Piece, ...]

    @classmethod
    def of(cls, pieces: Iterable[Piece]) -> Pattern:
        """The normalised pattern of these pieces."""
        kept: list[Piece] = []
        for piece in pieces:
            if isinstance(piece, str):
                if not piece:
                    continue
                folded = piece.casefold()
                if kept and isinstance(kept[-1], str):
                    kept[-1] += folded
                else:
                    kept.append(folded)
            elif not (piece is Wild.STAR and kept and kept[-1] is Wild.STAR):
                kept.append(piece)
        return cls(tuple(kept))

    @classmethod
    def literal_text(cls, text: str) -> Pattern:
        """A pattern matching exactly ``text`` (case-insensitively)."""
        return cls.of([text])

    @property
    def literal(self) -> str | None:
        """The (case-folded) text this pattern matches exactly, or None when it has wildcards."""
        if not self.pieces:
            return ""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], str):
            return self.pieces[0]
        return None

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches (case-insensitively, as a whole)."""
        literal = self.literal
        folded = value.casefold()
        if literal is not None:
            return folded == literal
        return _glob(_tokens(self.pieces), folded)


@lru_cache(maxsize=1024)
def _tokens(pieces: tuple[Piece, ...]) -> tuple[str | Wild, ...]:
    """A pattern as single characters and wildcards."""
    return tuple(token for piece in pieces for token in ((piece,) if isinstance(piece, Wild) else tuple(piece)))


def _glob(pattern: Sequence[str | Wild], text: str) -> bool:
    """Whether ``text`` matches ``pattern`` as a whole, in O(len(text) x len(pattern)) steps at worst.

    A backtracking regular expression (``.*a.*a.*b``) takes time exponential in the stars on a value
    that almost matches: a 24-character query held a list for longer than its Lambda may run. Here a
    mismatch only moves the text on from the last star's start (the usual wildcard matching: a later
    star can always take what an earlier one would have)."""
    t = p = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] is not Wild.STAR and (pattern[p] is Wild.ONE or pattern[p] == text[t]):
            t, p = t + 1, p + 1
        elif p < len(pattern) and pattern[p] is Wild.STAR:
            star, resume = p, t
            p += 1
        elif star >= 0:
            resume += 1
            t, p = resume, star + 1
        else:
            return False
    return all(token is Wild.STAR for token in pattern[p:])


@dataclass(frozen=True)
class Term:
    """``field:pattern``; ``field`` lower case, without ``@``."""

    field: str
    pattern: Pattern


@dataclass(frozen=True)
class Not:
    """``NOT operand`` / ``-operand``."""

    operand: Expr


@dataclass(frozen=True)
class And:
    """Every operand (two or more, none an ``And``: build it with :func:`all_of`)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Any operand (two or more, none an ``Or``: build it with :func:`any_of`)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Everything:
    """``*`` or an empty query: every event."""


Expr = Term | Not | And | Or | Everything


def all_of(operands: Sequence[Expr]) -> Expr:
    """The conjunction of ``operands`` (nested conjunctions flattened; one operand is itself)."""
    flat: list[Expr] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, And) else (operand,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def any_of(operands: Sequence[Expr]) -> Expr:
    """The disjunction of ``operands`` (nested disjunctions flattened; one operand is itself)."""
    flat: list[Expr] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, Or) else (operand,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


# --- evaluation --------------------------------------------------------------------------------
def evaluate(expr: Expr, document: Document) -> bool:
    """Whether an event (its :data:`Document`) matches the query."""
    if isinstance(expr, Term):
        return any(expr.pattern.matches(value) for value in document.get(expr.field, ()))
    if isinstance(expr, Not):
        return not evaluate(expr.operand, document)
    if isinstance(expr, And):
        return all(evaluate(operand, document) for operand in expr.operands)
    if isinstance(expr, Or):
        return any(evaluate(operand, document) for operand in expr.operands)
    return True


def required_literal(expr: Expr, field: str) -> str | None:
    """A value (case-folded) that ``field`` must have, exactly, in every event the query matches, or
    None when the query does not pin one (so a list may read only the events with that value)."""
    if isinstance(expr, Term):
        return expr.pattern.literal if expr.field == field else None
    if isinstance(expr, And):
        return next((v for v in (required_literal(o, field) for o in expr.operands) if v is not None), None)
    if isinstance(expr, Or):
        values = {required_literal(o, field) for o in expr.operands}
        return values.pop() if len(values) == 1 else None
    return None


# --- printing ----------------------------------------------------------------------------------
_FIELD = re.compile(r"[^\s()\"\\:*?@-][^\s()\"\\:*?]*")
_ESCAPED = frozenset('()"\\*?:')


def to_text(expr: Expr) -> str:
    """The query in canonical syntax: :func:`parse` reads it back as ``expr``."""
    if isinstance(expr, Term):
        if not _FIELD.fullmatch(expr.field):
            raise ValueError(f"field {expr.field!r} cannot be written in a query")
        return f"{expr.field}:{_value_text(expr.pattern)}"
    if isinstance(expr, Not):
        inner = to_text(expr.operand)
        return f"-({inner})" if isinstance(expr.operand, And | Or) else f"-{inner}"
    if isinstance(expr, And):
        return " AND ".join(f"({to_text(o)})" if isinstance(o, Or) else to_text(o) for o in expr.operands)
    if isinstance(expr, Or):
        return " OR ".join(to_text(o) for o in expr.operands)
    return "*"


def _value_text(pattern: Pattern) -> str:
    if not pattern.pieces:
        return '""'
    out = []
    for piece in pattern.pieces:
        if isinstance(piece, Wild):
            out.append(piece.value)
        else:
            out.extend(f"\\{c}" if c in _ESCAPED or c.isspace() else c for c in piece)
    return "".join(out)


# --- parsing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" "-" AND OR NOT TERM FIELD WORD QUOTED
    position: int
    field: str = ""
    pattern: Pattern | None = None


_KEYWORDS = frozenset({"AND", "OR", "NOT"})


class _Scanner:
    """Splits a query into tokens (see ``_Token``); every error names its character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def tokens(self) -> list[_Token]:
        found: list[_Token] = []
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            if char.isspace():
                self.at += 1
            elif char in "()":
                found.append(_Token(char, self.at))
                self.at += 1
            elif char == "-":
                following = text[self.at + 1] if self.at + 1 < len(text) else ""
                if not following or following.isspace() or following == ")":
                    raise QuerySyntaxError("'-' must be directly followed by a term or '('", self.at)
                found.append(_Token("-", self.at))
                self.at += 1
            elif char == '"':
                start = self.at
                found.append(_Token("QUOTED", start, pattern=Pattern.literal_text(self._quoted())))
            else:
                found.append(self._word())
        return found

    def _quoted(self) -> str:
        """The text of the quoted string starting at ``self.at`` (escapes undone); moves past it."""
        start = self.at
        self.at += 1
        out: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "\\" and self.at + 1 < len(self.text):
                out.append(self.text[self.at + 1])
                self.at += 2
            elif char == '"':
                self.at += 1
                return "".join(out)
            else:
                out.append(char)
                self.at += 1
        raise QuerySyntaxError("unterminated quoted value: a '\"' is never closed", start)

    def _word(self) -> _Token:
        """A word: ``key:value``, ``key:"value"``, ``key:(`` (a group follows), a keyword or a bare value."""
        start = self.at
        pieces, escaped = self._pieces(to_colon=True)
        if self.at < len(self.text) and self.text[self.at] == ":":
            return self._term(start, pieces, escaped)
        raw = self.text[start : self.at]
        if not escaped and raw in _KEYWORDS:
            return _Token(raw, start)
        return _Token("WORD", start, pattern=Pattern.of(pieces))

    def _pieces(self, *, to_colon: bool) -> tuple[list[Piece], bool]:
        """The characters from here to a space, a parenthesis or the end (with ``to_colon``, to the first
        unescaped ':' too) as literal runs and wildcards, and whether any character was escaped."""
        text = self.text
        pieces: list[Piece] = []
        literal: list[str] = []
        escaped = False
        while self.at < len(text):
            char = text[self.at]
            if char.isspace() or char in "()" or (to_colon and char == ":"):
                break
            if char == '"':
                raise QuerySyntaxError('a quote may only start a value; escape it as \\" inside a word', self.at)
            if char == "\\":
                if self.at + 1 >= len(text):
                    raise QuerySyntaxError("a backslash must be followed by the character it escapes", self.at)
                literal.append(text[self.at + 1])
                escaped = True
                self.at += 2
                continue
            if char in "*?":
                _flush(pieces, literal)
                pieces.append(Wild.STAR if char == "*" else Wild.ONE)
            else:
                literal.append(char)
            self.at += 1
        _flush(pieces, literal)
        return pieces, escaped

    def _term(self, start: int, pieces: list[Piece], escaped: bool) -> _Token:
        """At the first ':' of a word: the key is what came before it (``pieces``)."""
        if any(isinstance(p, Wild) for p in pieces):
            raise QuerySyntaxError("a key cannot contain wildcards", start)
        key = "".join(str(p) for p in pieces).lstrip("@").casefold()
        if not key:
            raise QuerySyntaxError("a key must come before ':'", self.at)
        if escaped or not _FIELD.fullmatch(key):
            raise QuerySyntaxError(f"'{key[:64]}' is not a key (letters, digits and . _ / - only)", start)
        self.at += 1  # past ':'
        following = self.text[self.at] if self.at < len(self.text) else ""
        if not following or following.isspace() or following == ")":
            raise QuerySyntaxError(f"'{key[:64]}:' must be directly followed by a value", self.at)
        if following == "(":
            return _Token("FIELD", start, field=key)
        if following == '"':
            return _Token("TERM", start, field=key, pattern=Pattern.literal_text(self._quoted()))
        value, _ = self._pieces(to_colon=False)
        return _Token("TERM", start, field=key, pattern=Pattern.of(value))


def _flush(pieces: list[Piece], literal: list[str]) -> None:
    if literal:
        pieces.append("".join(literal))
        literal.clear()


class _Parser:
    """Recursive descent over the tokens: or := and (OR and)*; and := unary ([AND] unary)*;
    unary := (NOT | -) unary | primary; primary := ( or ) | TERM | FIELD ( or ) | * ."""

    def __init__(self, tokens: list[_Token], length: int) -> None:
        self.tokens = tokens
        self.length = length
        self.at = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("the query ends where a term was expected", self.length)
        self.at += 1
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            return Everything()
        expr = self.or_(None)
        extra = self.peek()
        if extra is not None:
            what = "')' without a matching '('" if extra.kind == ")" else f"'{extra.kind}'"
            raise QuerySyntaxError(f"unexpected {what}", extra.position)
        return expr

    def or_(self, field: str | None) -> Expr:
        operands = [self.and_(field)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.at += 1
            operands.append(self.and_(field))
        return any_of(operands)

    def and_(self, field: str | None) -> Expr:
        operands = [self.unary(field)]
        while (token := self.peek()) is not None and token.kind not in (")", "OR"):
            if token.kind == "AND":
                self.at += 1
            operands.append(self.unary(field))
        return all_of(operands)

    def nested(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(f"the query is nested more than {MAX_DEPTH} levels deep", position)

    def unary(self, field: str | None) -> Expr:
        token = self.take()
        if token.kind in ("NOT", "-"):
            self.nested(token.position)
            operand = self.unary(field)
            self.depth -= 1
            return Not(operand)
        return self.primary(token, field)

    def group(self, opening: _Token, field: str | None) -> Expr:
        self.nested(opening.position)
        if (token := self.peek()) is not None and token.kind == ")":
            raise QuerySyntaxError("empty parentheses", opening.position)
        expr = self.or_(field)
        closing = self.peek()
        if closing is None or closing.kind != ")":
            raise QuerySyntaxError("'(' is never closed", opening.position)
        self.at += 1
        self.depth -= 1
        return expr

    def primary(self, token: _Token, field: str | None) -> Expr:
        kind = token.kind
        if kind == "(":
            return self.group(token, field)
        if kind in ("TERM", "FIELD") and field is not None:
            raise QuerySyntaxError(f"'{token.field[:64]}:' cannot be used inside {field[:64]}:(...)", token.position)
        if kind == "TERM" and token.pattern is not None:
            return Term(token.field, token.pattern)
        if kind == "FIELD":
            return self.group(self.take(), token.field)
        if kind in ("WORD", "QUOTED") and token.pattern is not None:
            if field is not None:
                return Term(field, token.pattern)
            if kind == "WORD" and token.pattern.pieces == (Wild.STAR,):
                return Everything()
            raise QuerySyntaxError(
                "free-text search is not supported: name a key, as in service:web or env:prod", token.position
            )
        if kind == ")":
            raise QuerySyntaxError("a term is missing before ')'", token.position)
        raise QuerySyntaxError(f"'{kind}' must stand between two terms", token.position)


def parse(text: str) -> Expr:
    """The query ``text`` as an expression; :class:`QuerySyntaxError` saying what is wrong and where."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(_Scanner(text).tokens(), len(text)).parse()
