"""Which numbers DynamoDB can store: up to 38 significant digits, magnitude 1E-130 to 9.99E+125."""

from __future__ import annotations

import math
from decimal import Decimal

MAX_DIGITS = 38
SMALLEST_NUMBER = Decimal("1E-130")
LARGEST_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")


def number_problem(value: int | float | Decimal) -> str | None:
    """Why DynamoDB cannot store this number, or None when it can."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN and infinities cannot be stored"
        value = Decimal(repr(value))
    elif isinstance(value, int):
        # boto3 keeps every digit of an int (10**38 has 39), so count them as written.
        if len(str(abs(value))) > MAX_DIGITS:
            return f"more than {MAX_DIGITS} digits cannot be stored"
        value = Decimal(value)
    if not value.is_finite():
        return "NaN and infinities cannot be stored"
    if value.is_zero():
        return None
    digits = value.normalize().as_tuple().digits
    if len(digits) > MAX_DIGITS:
        return f"more than {MAX_DIGITS} significant digits cannot be stored"
    if not SMALLEST_NUMBER <= abs(value) <= LARGEST_NUMBER:
        return "the magnitude must be between 1E-130 and 9.99E+125"
    return None
