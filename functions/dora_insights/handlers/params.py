"""Path and query parameter types that more than one route takes, defined once.

A route names its parameter as the API does (``spaceId: SpaceId``); the type carries the validation
(and the OpenAPI schema) every route then agrees on. Parameters only one area takes stay in its module.
"""

from __future__ import annotations

import re
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

_PLAIN_NUMBER = re.compile(r"0|[1-9][0-9]*")
_LEADING_ZERO = re.compile(r"0[0-9]+")
# The error type of a number spelt with a leading zero: ids are written without one, so such a path id
# names nothing (``http._names_nothing``: a 404, as an id past the ones written).
LEADING_ZERO = "leading_zero"


def _plain_number(value: object) -> object:
    """A path's number as written: ASCII digits without a leading zero, sign, space or fraction ("0" is
    left to the type's bound)."""
    if isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value) is None:
        if _LEADING_ZERO.fullmatch(value):
            raise PydanticCustomError(LEADING_ZERO, "must be a positive integer without a leading zero")
        raise ValueError("must be a positive integer without a leading zero")
    return value


# --- path: ids ------------------------------------------------------------------------------------
SpaceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DeploymentId = Annotated[str, Path(min_length=1, max_length=128)]
# A failure event's id: a client's (at most 128) or an incident's "<tool>-<its id of at most 128>"
# (``domain.incidents.failure_id``: "pagerduty-" is the longest prefix; tests/unit pin the sum).
MAX_FAILURE_ID = 138
FailureId = Annotated[str, Path(min_length=1, max_length=MAX_FAILURE_ID)]
ReportId = Annotated[str, Path(min_length=1, max_length=64)]
# An insight's id is the integer the service wrote, in its one spelling: pydantic's lax int would also
# read "01", "+1", " 1" or "1.0" as insight 1 (as "InsightsReports-01" names no report).
InsightId = Annotated[int, BeforeValidator(_plain_number), Path(ge=1, le=2_000_000_000)]
KeyId = Annotated[str, Path(min_length=1, max_length=64)]
ThresholdId = Annotated[str, Path(min_length=1, max_length=64)]
PasswordId = Annotated[str, Path(min_length=1, max_length=64)]
AccessToken = Annotated[str, Path(min_length=8, max_length=128)]

# --- query: filters of native lists and summaries --------------------------------------------------
From = Annotated[str | None, Query(alias="from", max_length=64)]  # an instant (``http.instant_param``)
To = Annotated[str | None, Query(max_length=64)]  # an instant (``http.instant_param``)
ProjectName = Annotated[str | None, Query(max_length=200)]
EnvironmentName = Annotated[str | None, Query(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=2048)]

# --- header: the revision a conditional write expects (``http.expected_revision``) -----------------
IfMatch = Annotated[str | None, Header(alias="if-match", max_length=64)]

# --- query: Octopus collection paging (catalogue lists, reports) ---------------------------------
ALL = 2_147_483_647  # Octopus' "every item" page size
Skip = Annotated[int, Query(ge=0, le=ALL)]
Take = Annotated[int, Query(ge=1, le=ALL)]
DEFAULT_TAKE = 30
