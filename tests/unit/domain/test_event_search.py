"""Datadog's event search syntax (``domain.event_search``): examples of each form, the errors, and
properties against a slow reference (a backtracking glob matcher, a direct evaluator) and a renderer
that writes the same query in every style the syntax allows."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dora_insights.domain.event_search import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    And,
    Everything,
    Expr,
    Not,
    Or,
    Pattern,
    QuerySyntaxError,
    Term,
    Wild,
    all_of,
    any_of,
    evaluate,
    parse,
    required_literal,
    to_text,
)

STAR, ONE = Wild.STAR, Wild.ONE


def term(field: str, *pieces: str | Wild) -> Term:
    return Term(field, Pattern.of(pieces))


# --- the forms, by example ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   ", "*", " * "])
def test_an_empty_query_or_a_lone_star_matches_everything(text: str) -> None:
    assert parse(text) == Everything()


def test_a_term_is_a_key_and_a_value() -> None:
    assert parse("service:web") == term("service", "web")


def test_keys_and_values_are_case_insensitive() -> None:
    assert parse("Service:WEB") == term("service", "web")
    assert evaluate(parse("service:web"), {"service": ["Web"]})


def test_an_at_sign_before_a_key_is_ignored() -> None:
    assert parse("@git.commit_sha:abc") == term("git.commit_sha", "abc")


def test_terms_side_by_side_are_anded() -> None:
    assert parse("service:web env:prod") == parse("service:web AND env:prod")
    assert parse("service:web env:prod") == And((term("service", "web"), term("env", "prod")))


def test_or_binds_looser_than_and() -> None:
    assert parse("a:1 OR b:2 c:3") == Or((term("a", "1"), And((term("b", "2"), term("c", "3")))))


def test_parentheses_group() -> None:
    assert parse("(a:1 OR b:2) c:3") == And((Or((term("a", "1"), term("b", "2"))), term("c", "3")))


@pytest.mark.parametrize("text", ["-env:prod", "NOT env:prod", "-(env:prod)", "NOT (env:prod)"])
def test_minus_and_not_negate(text: str) -> None:
    assert parse(text) == Not(term("env", "prod"))


def test_a_group_of_values_for_one_key() -> None:
    assert parse("service:(web OR api)") == Or((term("service", "web"), term("service", "api")))
    assert parse("service:(web -api)") == And((term("service", "web"), Not(term("service", "api"))))


def test_datadogs_documented_example_parses() -> None:
    query = "service:(shopist OR api-service OR payment-service) env:(production OR staging) team:(backend OR platform)"
    expr = parse(query)
    assert evaluate(expr, {"service": ["api-service"], "env": ["staging"], "team": ["platform"]})
    assert not evaluate(expr, {"service": ["api-service"], "env": ["dev"], "team": ["platform"]})


def test_a_quoted_value_is_literal_and_may_hold_spaces_and_stars() -> None:
    assert parse('name:"db down *now*"') == term("name", "db down *now*")
    assert parse(r'name:"say \"hi\""') == term("name", 'say "hi"')


def test_wildcards_in_words() -> None:
    assert parse("version:v1.*") == term("version", "v1.", STAR)
    assert parse("version:v?") == term("version", "v", ONE)
    assert evaluate(parse("version:v1.*"), {"version": ["v1.12.07"]})
    assert not evaluate(parse("version:v?"), {"version": ["v10"]})


def test_a_backslash_makes_the_next_character_literal() -> None:
    assert parse(r"tag:a\*b\ c\(d\)") == term("tag", "a*b c(d)")


def test_a_value_may_hold_colons_and_start_with_a_minus() -> None:
    assert parse("url:http://x/y") == term("url", "http://x/y")
    assert parse("version:-1") == term("version", "-1")


def test_key_star_means_the_key_is_present() -> None:
    assert evaluate(parse("team:*"), {"team": ["backend"]})
    assert not evaluate(parse("team:*"), {"service": ["web"]})
    assert evaluate(parse("-team:*"), {"service": ["web"]})


def test_a_term_matches_when_any_value_of_its_key_does() -> None:
    assert evaluate(parse("service:api"), {"service": ["web", "api"]})


def test_lower_case_and_or_are_values() -> None:
    assert parse("service:(web or)") == And((term("service", "web"), term("service", "or")))


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web", "free-text search is not supported"),
        ('"web"', "free-text search is not supported"),
        ("service:", "must be directly followed by a value"),
        ("service: web", "must be directly followed by a value"),
        ("(service:web", "'(' is never closed (at character 1)"),
        ("service:web)", "')' without a matching '('"),
        ("NOT)", "a term is missing before ')'"),
        ("AND service:web", "'AND' must stand between two terms"),
        ("service:web OR", "the query ends where a term was expected"),
        ("- service:web", "'-' must be directly followed by a term or '('"),
        ("service:(env:prod)", "'env:' cannot be used inside service:(...)"),
        ('name:"down', "unterminated quoted value"),
        ("serv*:web", "a key cannot contain wildcards"),
        (":web", "a key must come before ':'"),
        ("()", "empty parentheses"),
        ("service:()", "empty parentheses"),
        ('service:we"b', "a quote may only start a value"),
        ("service:web\\", "a backslash must be followed"),
    ],
)
def test_malformed_queries_say_what_is_wrong_and_where(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_nesting_is_bounded() -> None:
    deep = "(" * (MAX_DEPTH + 1) + "a:b" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(QuerySyntaxError, match="nested more than"):
        parse(deep)
    with pytest.raises(QuerySyntaxError, match="nested more than"):
        parse("-" * (MAX_DEPTH + 1) + "a:b")
    assert parse("(" * MAX_DEPTH + "a:b" + ")" * MAX_DEPTH) == term("a", "b")


def test_length_is_bounded() -> None:
    with pytest.raises(QuerySyntaxError, match="longer than"):
        parse("a:" + "b" * MAX_QUERY_LENGTH)


# --- planning: what a query pins ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service:web", "web"),
        ("service:Web env:prod", "web"),
        ("env:prod AND (service:web)", "web"),
        ("service:web OR service:WEB", "web"),
        ("service:web OR service:api", None),
        ("service:web*", None),
        ("-service:web", None),
        ("service:web OR env:prod", None),
        ("*", None),
    ],
)
def test_required_literal(text: str, expected: str | None) -> None:
    assert required_literal(parse(text), "service") == expected


# --- properties against a slow reference ----------------------------------------------------------
def reference_glob(pieces: Sequence[str | Wild], value: str) -> bool:
    """Backtracking over pieces and characters: obviously right, exponential at worst."""
    if not pieces:
        return value == ""
    head, rest = pieces[0], pieces[1:]
    if head is Wild.STAR:
        return any(reference_glob(rest, value[i:]) for i in range(len(value) + 1))
    if head is Wild.ONE:
        return value != "" and reference_glob(rest, value[1:])
    text = str(head)
    return value.startswith(text) and reference_glob(rest, value[len(text) :])


def reference_evaluate(expr: Expr, document: Mapping[str, Sequence[str]]) -> bool:
    if isinstance(expr, Everything):
        return True
    if isinstance(expr, Term):
        return any(reference_glob(expr.pattern.pieces, v.casefold()) for v in document.get(expr.field, []))
    if isinstance(expr, Not):
        return not reference_evaluate(expr.operand, document)
    results = [reference_evaluate(o, document) for o in expr.operands]
    return all(results) if isinstance(expr, And) else any(results)


FIELDS = ["service", "env", "team", "git.commit_sha", "my-tag"]
VALUE_CHARS = "abAB"
SPECIAL_CHARS = 'ab x-:()"\\'

pieces = st.lists(
    st.one_of(st.text(alphabet=SPECIAL_CHARS, min_size=1, max_size=3), st.just(STAR), st.just(ONE)), max_size=4
)
patterns = pieces.map(Pattern.of)
small_patterns = st.lists(
    st.one_of(st.text(alphabet=VALUE_CHARS, min_size=1, max_size=2), st.just(STAR), st.just(ONE)), max_size=3
).map(Pattern.of)
documents = st.dictionaries(
    st.sampled_from(FIELDS), st.lists(st.text(alphabet=VALUE_CHARS, max_size=3), min_size=1, max_size=2), max_size=4
)


def expressions(values: st.SearchStrategy[Pattern]) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(st.builds(Term, st.sampled_from(FIELDS), values), st.just(Everything()))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(Not, inner),
            st.lists(inner, min_size=2, max_size=3).map(all_of),
            st.lists(inner, min_size=2, max_size=3).map(any_of),
        ),
        max_leaves=8,
    )


@given(st.lists(st.one_of(st.text(alphabet="ab", min_size=1, max_size=2), st.just(STAR), st.just(ONE)), max_size=5))
def test_patterns_match_as_the_backtracking_reference(raw: list[str | Wild]) -> None:
    pattern = Pattern.of(raw)
    for value in ["", "a", "b", "ab", "ba", "aab", "abab", "bbba", "AB"]:
        assert pattern.matches(value) == reference_glob(pattern.pieces, value.casefold()), (pattern, value)


@given(expressions(patterns))
def test_canonical_text_parses_back_to_the_same_expression(expr: Expr) -> None:
    assert parse(to_text(expr)) == expr


def _leaves(expr: Expr) -> list[Expr]:
    if isinstance(expr, Not):
        return _leaves(expr.operand)
    if isinstance(expr, And | Or):
        return [leaf for o in expr.operands for leaf in _leaves(o)]
    return [expr]


def _group_field(expr: Expr) -> str | None:
    """The one key of every leaf, when all are terms of one key (so ``key:(...)`` can write them)."""
    fields = {leaf.field if isinstance(leaf, Term) else None for leaf in _leaves(expr)}
    return fields.pop() if len(fields) == 1 else None


def _value(pattern: Pattern, rng: random.Random) -> str:
    if pattern.literal is not None and rng.random() < 0.4:  # quoted
        text = pattern.literal.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text.upper() if rng.random() < 0.3 else text}"'
    out = []
    for piece in pattern.pieces:
        if isinstance(piece, Wild):
            out.append(piece.value)
            continue
        for char in piece.upper() if rng.random() < 0.3 else piece:
            needs = char in '()"\\*?:' or char.isspace()
            out.append(f"\\{char}" if needs or rng.random() < 0.1 else char)
    return "".join(out) or '""'


def styled(expr: Expr, rng: random.Random, group: str | None = None) -> str:
    """``expr`` written in one of the many ways the syntax allows (keyword or symbol negation, implicit
    or explicit AND, redundant parentheses, ``@`` keys, upper case, quoting, ``key:(...)`` groups)."""
    pad = " " * rng.randint(1, 2)
    if group is None and not isinstance(expr, Term) and rng.random() < 0.3 and (field := _group_field(expr)):
        return f"{field}:({styled(expr, rng, field)})"
    if isinstance(expr, Everything):
        return "*"
    if isinstance(expr, Term):
        value = _value(expr.pattern, rng)
        if group is not None:  # a bare value: a leading '-' would negate it
            return f"\\{value}" if value.startswith("-") else value
        key = expr.field.upper() if rng.random() < 0.2 else expr.field
        return f"{'@' if rng.random() < 0.2 else ''}{key}:{value}"
    if isinstance(expr, Not):
        inner = styled(expr.operand, rng, group)
        compound = isinstance(expr.operand, And | Or)
        if rng.random() < 0.5:
            return f"NOT{pad}({inner})" if compound else f"NOT{pad}{inner}"
        return f"-({inner})" if compound or inner.startswith(("-", '"')) else f"-{inner}"
    parts = []
    for operand in expr.operands:
        text = styled(operand, rng, group)
        wrap = (isinstance(expr, And) and isinstance(operand, Or)) or rng.random() < 0.15
        parts.append(f"({text})" if wrap else text)
    joiner = f"{pad}OR{pad}" if isinstance(expr, Or) else rng.choice([f"{pad}AND{pad}", pad])
    return joiner.join(parts)


@settings(max_examples=300)
@given(expressions(patterns), st.randoms(use_true_random=False))
def test_every_way_of_writing_a_query_parses_to_it(expr: Expr, rng: random.Random) -> None:
    text = styled(expr, rng)
    assert parse(text) == expr, text


@settings(max_examples=300)
@given(expressions(small_patterns), st.lists(documents, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_a_written_query_selects_what_the_reference_evaluator_selects(
    expr: Expr, docs: list[dict[str, list[str]]], rng: random.Random
) -> None:
    parsed = parse(styled(expr, rng))
    for document in docs:
        assert evaluate(parsed, document) == reference_evaluate(expr, document)


@settings(max_examples=300)
@given(expressions(small_patterns), st.lists(documents, min_size=1, max_size=8))
def test_a_required_literal_holds_in_every_event_the_query_matches(
    expr: Expr, docs: list[dict[str, list[str]]]
) -> None:
    for field in FIELDS:
        pinned = required_literal(expr, field)
        if pinned is None:
            continue
        for document in docs:
            if evaluate(expr, document):
                assert pinned in [v.casefold() for v in document.get(field, [])]


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        expr = parse(text)
    except QuerySyntaxError:
        return
    assert parse(to_text(expr)) == expr


@given(st.text(alphabet='ab:()"\\*? -@ANDORT', max_size=40))
def test_query_like_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        expr = parse(text)
    except QuerySyntaxError:
        return
    assert parse(to_text(expr)) == expr
