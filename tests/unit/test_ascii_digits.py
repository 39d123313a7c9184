"""Numbers read from text take ASCII digits only: ``str.isdigit`` is also true for superscript,
Arabic-Indic and fullwidth digits, which ``int`` refuses ("²": a ValueError where a 400 was meant) or
reads as another number ("١٢" is 12: another id than the one written)."""

from __future__ import annotations

import pytest

from dora_insights.domain.alert_destinations import signature, verify
from dora_insights.domain.reports import report_number
from dora_insights.domain.times import InstantError, parse_instant

OTHER_DIGITS = ["\u00b2", "\u0661\u0662", "\uff11\uff12"]


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_a_report_id_with_other_digits_is_no_report_id(digits: str) -> None:
    with pytest.raises(ValueError, match="is not a report id"):
        report_number(f"InsightsReports-{digits}")
    assert report_number("InsightsReports-12") == 12


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_a_time_of_other_digits_is_an_instant_error(digits: str) -> None:
    with pytest.raises(InstantError):
        parse_instant(digits)


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_a_signature_stamp_of_other_digits_does_not_verify(digits: str) -> None:
    body = b"{}"
    good = signature("secret", 1_700_000_000, body)
    assert verify("secret", f"t=1700000000,v1={good}", body, now=1_700_000_000)
    assert not verify("secret", f"t={digits},v1={good}", body, now=1_700_000_000)
