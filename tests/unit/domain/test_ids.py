"""Identifiers (``domain.ids``): ids sort by creation time, every character Crockford base32; secrets
keep their prefix and carry the random bytes asked for, URL-safe."""

import base64
import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.ids import new_id, new_secret, sha256_hex

_CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(instants, st.integers(min_value=1, max_value=10**9))
def test_a_later_millisecond_sorts_after(earlier: datetime, step_ms: int) -> None:
    later = earlier + timedelta(milliseconds=step_ms)
    first, second = new_id(earlier), new_id(later)
    assert _CROCKFORD.fullmatch(first) and _CROCKFORD.fullmatch(second)
    assert first < second


def test_ids_of_one_millisecond_differ_in_their_random_part() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    ids = {new_id(now) for _ in range(1000)}
    assert len(ids) == 1000
    assert len({i[:10] for i in ids}) == 1  # the 48-bit time prefix: ten characters, shared


@given(st.integers(min_value=1, max_value=64))
def test_a_secret_carries_its_prefix_and_the_bytes_asked_for(nbytes: int) -> None:
    secret = new_secret("dk_", nbytes)
    assert secret.startswith("dk_")
    body = secret.removeprefix("dk_")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", body)
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == nbytes


def test_sha256_hex_is_the_digest_of_the_utf8_text() -> None:
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
