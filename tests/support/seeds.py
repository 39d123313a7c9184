"""Random seeds of property tests, widened by ``DORA_PROPERTY_SEEDS=a:b`` (each default seed d runs as
d*1000+a .. d*1000+b-1, so a wide run never repeats the default one)."""

from __future__ import annotations

import os


def seeds(default: list[int]) -> list[int]:
    """``default``, or with ``DORA_PROPERTY_SEEDS=a:b`` set, ``b - a`` seeds derived from each."""
    wider = os.environ.get("DORA_PROPERTY_SEEDS")
    if wider:
        a, b = map(int, wider.split(":"))
        return [d * 1000 + n for d in default for n in range(a, b)]
    return default
