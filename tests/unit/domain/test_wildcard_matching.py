"""``event_search.Pattern.matches`` on wildcards: the same answers as a regular expression (the oracle,
here only), in time linear in the value per pattern character. The regular expression it replaced
backtracked exponentially in the stars (``*a*a*a*a*a*a*a*b`` held a list past its Lambda's timeout):
the steps are counted here, not timed."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dora_insights.domain.event_search import Pattern, Wild, _glob, _tokens

_piece = st.one_of(st.sampled_from([Wild.STAR, Wild.ONE]), st.text(alphabet="abAB.ß", min_size=1, max_size=3))


def _oracle(pieces: list[str | Wild], value: str) -> bool:
    regex = "".join(".*" if p is Wild.STAR else "." if p is Wild.ONE else re.escape(p.casefold()) for p in pieces)
    return re.fullmatch(regex, value.casefold(), re.DOTALL) is not None


@settings(max_examples=500, deadline=None)
@given(st.lists(_piece, max_size=7), st.text(alphabet="abAB.ß\n", max_size=12))
def test_matches_as_the_regular_expression_does(pieces: list[str | Wild], value: str) -> None:
    pattern = Pattern.of(pieces)
    assert pattern.matches(value) == _oracle(list(pattern.pieces), value)


class _Counted(str):
    """A value that counts the characters the matcher reads."""

    reads = 0

    def __getitem__(self, index: Any) -> str:
        _Counted.reads += 1
        return str.__getitem__(self, index)


def test_an_almost_matching_value_takes_steps_linear_in_it_per_pattern_character() -> None:
    """``*a*a*...*a*b`` (25 stars) on 200 ``a``s: at most len(value) x len(pattern) character reads. The
    regular expression it replaced took minutes on 60 characters with 8 stars."""
    tokens = _tokens(Pattern.of([Wild.STAR, *(x for _ in range(24) for x in ("a", Wild.STAR)), "b"]).pieces)
    value = _Counted("a" * 200)
    _Counted.reads = 0
    assert not _glob(tokens, value)
    assert _Counted.reads <= len(value) * len(tokens)


def test_question_marks_and_stars_together() -> None:
    assert Pattern.of(["web", Wild.ONE, Wild.STAR, "-", Wild.ONE]).matches("WEB1-api-x")
    assert not Pattern.of(["web", Wild.ONE, Wild.STAR, "-", Wild.ONE]).matches("web-x")
    assert Pattern.of([Wild.STAR]).matches("")
    assert not Pattern.of([Wild.ONE]).matches("")
