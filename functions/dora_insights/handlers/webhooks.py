"""What the public webhook routes (GitHub, GitLab, PagerDuty, Opsgenie) share: the space id a path may
name before it is looked up, the request's headers by lower-case name, and the body as a JSON object
with the native error for anything else. Each route authenticates its own way (signature or token)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dora_insights.dialects.limits import JsonShapeError, load_payload_json
from dora_insights.errors import RequestInvalidError

# A space id worth looking up (``Spaces-N`` or an id an admin chose); anything else answers as an
# unknown space does, without a read.
SPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def lower_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The request's headers by lower-case name (HTTP API events keep the sender's case)."""
    return {k.lower(): v for k, v in (headers or {}).items()}


def json_object(text: str) -> dict[str, Any]:
    """The webhook body as a JSON object (``load_payload_json``: what no field read can hold is left to
    the models of the fields read); 400 otherwise. Webhook entries skip the entry point's JSON check
    (``entry(checks_json=False)``): a code host resends nothing it was refused."""
    try:
        data = load_payload_json(text)
    except JsonShapeError as error:
        raise RequestInvalidError(f"the webhook body: {error}", field=error.path) from None
    except ValueError:
        raise RequestInvalidError("the webhook body is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestInvalidError("the webhook body must be a JSON object")
    return data
