"""HTTP wiring shared by every route function: resolver per area, body guard, errors, auth, and what
route bodies share in reading a request (instants, ``If-Match``, the public base URL) and answering it.

A handler module defines a ``Router`` and its resolver ``app = api(router, dialect)``, then each
route: its body (``_<entry>``) and, right below it, its Lambda entry point ``<entry> = entry(app, ...)``,
the name template.yaml's ``Handler`` gives. Entry points authenticate; routes read what the invocation
shares from ``handlers.runtime`` (``principal()``, ``store()``, ``now()``), then call one logic function.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import threading
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from dora_insights.config import get_settings
from dora_insights.dal.store import refusal_for_now, size_refusal
from dora_insights.dialects.errors import RENDERERS, ErrorDialect, from_validation_errors
from dora_insights.dialects.limits import JsonShapeError, load_json
from dora_insights.domain.scopes import Scope
from dora_insights.domain.times import InstantError, parse_instant
from dora_insights.errors import (
    DoraError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestInvalidError,
    ResourceNotFoundError,
    ResponseTooLargeError,
    ThrottledError,
    UnsupportedMediaTypeError,
    WriteContendedError,
)
from dora_insights.handlers import runtime
from dora_insights.handlers.params import LEADING_ZERO
from dora_insights.logic.auth import Principal, authenticate
from dora_insights.observability import logger

MAX_BODY_BYTES = 1024 * 1024
# Code hosts' webhooks carry more: a GitHub push lists up to 2,048 commits (~1 MB of JSON, more with
# long file lists) and is never sent again after a refusal. Lambda takes a synchronous event of at most
# 6 MB (the body JSON-escaped inside it, with the headers): 5 MiB of body leaves room for both.
WEBHOOK_MAX_BODY_BYTES = 5 * 1024 * 1024
JSON = "application/json"
# A synchronous Lambda invocation returns at most 6 MB, counted on the JSON of the whole response
# (the body escaped inside it); beyond it API Gateway answers 502. The margin covers the rest.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
RESPONSE_MARGIN_BYTES = 16 * 1024
# Bodies from this size are gzipped for clients that accept it. Level 1: a 7 MB /metrics answer
# takes ~35 ms and shrinks to ~1 MB (Powertools' route option compress=True uses level 9: ~230 ms).
COMPRESS_FROM_BYTES = 64 * 1024
GZIP_LEVEL = 1
# Every 503 tells the client when to send the request again (RFC 9110 §10.2.3): a write contended by
# others goes through a moment later, and a client retrying at once only adds to the load.
RETRY_AFTER_SECONDS = 1
# What every answer says about caching unless its route says otherwise (``_no_store``).
NO_STORE = "no-store"
# The most digits an ``If-Match`` revision has: a revision body field is at most 2**53 (16 digits, what a
# JSON client holds exactly), far within the 38 digits of a DynamoDB number.
MAX_REVISION_DIGITS = 16
_ASCII_DIGITS = re.compile(r"[0-9]+")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
# ``authenticate``'s signature: (key finder, headers, scope, *, space_id=, any_space_for_admin=) -> Principal.
Authenticator = Callable[..., Principal]


def instant_param(name: str, value: str | None) -> datetime | None:
    """A query parameter holding an instant (ISO-8601 with offset or unix time); 400 naming it otherwise."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except InstantError as error:
        # The field is named once: "from: <problem>", as a validation error names it.
        raise RequestInvalidError(f"{name}: {error}", field=name, details=[(name, str(error))]) from None


def _if_match_revision(value: str | None, what: str, max_digits: int) -> int | None:
    """The revision an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None for ``*`` or none.
    Anything else (digits other than ASCII 0-9: ``str.isdigit`` takes ``²`` and ``int`` does not), or more
    than ``max_digits`` digits, is a 400 "If-Match must be <what>"."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip().strip('"')
    if _ASCII_DIGITS.fullmatch(tag) is None or len(tag) > max_digits:
        raise RequestInvalidError(f"If-Match must be {what}", field="If-Match")
    return int(tag)


def expected_revision(
    if_match: str | None, revision: int | None, what: str, *, max_digits: int = MAX_REVISION_DIGITS
) -> int | None:
    """The revision a conditional write expects, from ``If-Match`` (:func:`_if_match_revision`) or the body's
    ``revision``, which must agree when both are given (400 otherwise); None when neither names one."""
    expected = _if_match_revision(if_match, what, max_digits)
    if revision is not None:
        if expected is not None and expected != revision:
            raise RequestInvalidError("revision and If-Match name different revisions", field="revision")
        expected = revision
    return expected


def public_base(headers: Mapping[str, Any] | None) -> str:
    """Where the service is reached, for links in answers: ``PUBLIC_BASE_URL``, else the request's scheme
    (``X-Forwarded-Proto``) and host."""
    configured = get_settings().public_base_url
    if configured:
        return configured
    found = headers or {}
    return f"{found.get('x-forwarded-proto', 'https')}://{found.get('host', 'localhost')}"


def json_response(
    status: int, body: BaseModel | dict[str, Any] | list[Any], headers: Mapping[str, str] | None = None
) -> Response[Any]:
    """A JSON response; a model body is validated and serialised by the resolver (by alias)."""
    return Response(status_code=status, content_type=JSON, body=body, headers=dict(headers or {}))


def no_content(status: int = 204) -> Response[None]:
    """An answer without a body (204 No Content; Datadog's corrections answer 202 Accepted)."""
    return Response(status_code=status, body=None)


def error_response(dialect: ErrorDialect, error: DoraError) -> Response[Any]:
    """A core error in the dialect's shape (a 429 says when to retry in ``Retry-After``, as DRF's throttling
    answers PostHog's)."""
    status, body = RENDERERS[dialect](error)
    return json_response(status, body, _retry_headers(error))


def _retry_headers(error: DoraError) -> dict[str, str] | None:
    return {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimitedError) else None


def _retry_after(response: dict[str, Any]) -> dict[str, Any]:
    """A 503 answer given ``Retry-After``, whatever built it (an error handler, a route's own Response)."""
    if response.get("statusCode") == 503:
        headers = response.setdefault("headers", {})
        if not any(k.lower() == "retry-after" for k in headers):
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _no_store(response: dict[str, Any]) -> dict[str, Any]:
    """An answer given ``Cache-Control: no-store`` unless it set its own caching (the dashboard's pages and
    assets do). API answers hold a space's private data or secrets (a share link's access token, a share
    session token, a protected insight) and are read with credentials a shared cache may not recognise
    (``X-Api-Key``, Orlo's ``X-Auth-Token``, a share session): no cache, browser or proxy, may keep them.
    Errors too: a cached 401 or 404 would outlive the change that ends it."""
    headers = response.setdefault("headers", {})
    if not any(k.lower() == "cache-control" for k in headers):
        headers["Cache-Control"] = NO_STORE
    return response


def _log_error(error: DoraError, message: str = "client error") -> None:
    """Log an error a route answers: a client's at info (``message``); a write contended by others or
    AWS throttling (503) at warning, without a trace: load, which the client's retry rides out; any
    other server error (a dependency refusing: a disabled KMS key...) at error, with its trace."""
    fields = {"status": error.status, "code": error.code}
    if isinstance(error, WriteContendedError | ThrottledError):
        logger.warning("write contended or throttled; the client is told to retry", extra=fields)
    elif error.status >= 500:
        logger.error("server error", exc_info=error, extra=fields)
    else:
        logger.info(message, extra={**fields, "field": error.field})


class DialectResolver(APIGatewayHttpResolver):
    """A resolver for one area's routes, which knows the dialect its errors are rendered in.

    It takes its router's routes at its first request rather than when it is built: a module builds it
    before its routes, so that each route's entry point (``entry(app, ...)``) stands beside the route.
    """

    def __init__(self, router: APIGatewayHttpRouter, dialect: ErrorDialect) -> None:
        # A response that fails its own model is our bug: a 500, never a client's 4xx.
        super().__init__(enable_validation=True, response_validation_error_http_code=500)
        self.area_router = router
        self.dialect = dialect
        self._routes_taken = False
        self._taking = threading.Lock()

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        if not self._routes_taken:
            with self._taking:
                if not self._routes_taken:
                    self.include_router(self.area_router)
                    self._routes_taken = True
        return super().resolve(event, context)


def api(
    router: APIGatewayHttpRouter, dialect: ErrorDialect, *, validation_code: str = "invalid_request"
) -> DialectResolver:
    """A validating resolver for one area's routes that renders every error in ``dialect``'s shape
    (build it before the routes: it takes them at its first request)."""
    app = DialectResolver(router, dialect)

    @app.exception_handler(DoraError)
    def _dora_error(error: DoraError) -> Response[Any]:
        _log_error(error)
        return error_response(dialect, error)

    @app.exception_handler(RequestValidationError)
    def _validation_error(error: RequestValidationError) -> Response[Any]:
        if _names_nothing(list(error.errors())):
            return error_response(dialect, ResourceNotFoundError("no such resource"))
        invalid = from_validation_errors(list(error.errors()), code=validation_code)
        logger.info("invalid request", extra={"errors": [d[1] for d in invalid.details][:10]})
        return error_response(dialect, invalid)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(error: RequestUnsupportedContentType) -> Response[Any]:
        # A body in a media type Powertools does not parse (JSON, form, multipart): 415 in the dialect's
        # shape, not Powertools' own {"statusCode", "detail"}.
        return error_response(dialect, UnsupportedMediaTypeError("send the body as application/json"))

    @app.not_found
    def _not_found(_: Exception) -> Response[Any]:
        # A path the API routed here whose parameters the route's pattern refuses (e.g. an empty or
        # odd id): the dialect's 404, not Powertools' own {"statusCode", "message"} body.
        return error_response(dialect, ResourceNotFoundError("no such resource"))

    return app


# Validation errors of a path id that no stored id can match: longer or shorter than any id written, or a
# number outside the ids written or in a spelling never written (a leading zero: ``params.LEADING_ZERO``).
_NO_SUCH_ID = frozenset({"string_too_long", "string_too_short", "less_than_equal", "greater_than_equal", LEADING_ZERO})


def _names_nothing(errors: list[Any]) -> bool:
    """Whether every problem is an id in the path that no stored id can be (a deployment's, a failure's, a
    report's, an insight's, a share link's token): longer or shorter than any, a number past the ones
    written or spelt with a leading zero. It names nothing, so the answer is the 404 of an unknown id
    (API.md), not a 400 about a body the client never sent. The space's id is the caller's own and keeps
    its 400."""
    return bool(errors) and all(
        isinstance(e, Mapping)
        and len(loc := tuple(e.get("loc", ()))) == 2
        and loc[0] == "path"
        and loc[1] != "spaceId"
        and e.get("type") in _NO_SUCH_ID
        for e in errors
    )


def header(headers: Mapping[str, Any], name: str) -> str:
    """A request header's value by its lower-case name (HTTP header names are case-insensitive); "" if absent."""
    return next((str(v) for k, v in headers.items() if k.lower() == name), "")


_GZIP = frozenset({"gzip", "x-gzip"})
# Compressions a client may send that no route inflates: a 415. Any other value (``identity``, or a
# misused ``utf-8``) is not a compression and is left alone, as it always was.
_COMPRESSIONS = _GZIP | {"deflate", "br", "compress", "x-compress", "zstd"}


def _gunzipped(raw: bytes, max_bytes: int) -> bytes | DoraError:
    """A gzip body inflated, never past ``max_bytes`` (a small body that inflates without bound is a 413, not
    a Lambda out of memory)."""
    inflated = b""
    rest = raw
    while rest:  # gzip allows several members one after another (``cat a.gz b.gz``): all of them are the body
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflated += inflater.decompress(rest, max_bytes + 1 - len(inflated))
        except zlib.error:
            return RequestInvalidError("the body is not valid gzip (Content-Encoding: gzip)")
        if len(inflated) > max_bytes:
            return PayloadTooLargeError(f"the body is larger than {max_bytes} bytes once inflated")
        if not inflater.eof:
            return RequestInvalidError("the body is not valid gzip (Content-Encoding: gzip): it is cut short")
        rest = inflater.unused_data
    return inflated


def _guard_body(event: dict[str, Any], max_bytes: int = MAX_BODY_BYTES, *, inflate: bool = False) -> DoraError | None:
    """Reject bodies the routes must never see: over ``max_bytes``, broken base64, or not UTF-8. With
    ``inflate`` a gzip body (``Content-Encoding: gzip``, which some HTTP clients send) is inflated for the
    route; another compression is a 415 (so is any compressed body of a route that checks a signature over
    the body as sent: it is not given ``inflate``); a ``Content-Encoding`` naming no compression is ignored."""
    body = event.get("body")
    if body is None:
        return None
    rewritten = bool(event.get("isBase64Encoded"))  # the route gets the body as text, decoded below
    if rewritten:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return RequestInvalidError("the body is not valid base64")
    else:
        raw = body.encode("utf-8", errors="surrogatepass") if isinstance(body, str) else bytes(body)
    if len(raw) > max_bytes:
        return PayloadTooLargeError(f"the body is larger than {max_bytes} bytes")
    coding = header(event.get("headers") or {}, "content-encoding").strip().lower()
    if coding in _COMPRESSIONS and raw:
        if not inflate or coding not in _GZIP:
            accepted = "gzip or none" if inflate else "none"
            return UnsupportedMediaTypeError(f"Content-Encoding {coding[:32]} is not accepted here: send {accepted}")
        inflated = _gunzipped(raw, max_bytes)
        if isinstance(inflated, DoraError):
            return inflated
        raw, rewritten = inflated, True
    content_type = header(event.get("headers") or {}, "content-type")
    if content_type.strip().lower().startswith("multipart/"):
        # No route takes multipart bodies (and Powertools fails on one without a boundary).
        return UnsupportedMediaTypeError("multipart bodies are not accepted: send application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return RequestInvalidError("the body is not UTF-8 text")
    if rewritten:
        # Routes read text: hand them the decoded body (API Gateway base64-encodes binary types, and a
        # gzip body is one).
        event["body"] = text
        event["isBase64Encoded"] = False
    return None


def _guard_json(event: dict[str, Any], dialect: ErrorDialect) -> DoraError | None:
    """Refuse a JSON body the service cannot hold, wherever in it: nesting over 64 levels (a
    RecursionError in any later parse), numbers DynamoDB cannot store, unpaired surrogate escapes
    (``dialects.limits.load_json``). Bodies that are not JSON are left to their route."""
    body = event.get("body")
    if not isinstance(body, str) or body.lstrip()[:1] not in ("{", "["):
        return None
    try:
        load_json(body)
    except JsonShapeError as error:
        if error.message.startswith("is nested") or error.path is None:
            code = "invalid_json"
        else:
            code = "invalid_arguments" if dialect is ErrorDialect.DX else "invalid_request"
        return RequestInvalidError(str(error), field=error.path, code=code)
    except json.JSONDecodeError:
        return None  # not JSON: the route says so in its own words
    except ValueError:  # JSON Python will not read: an integer of over 4,300 digits
        return RequestInvalidError(
            "the body holds a number too long to read (DynamoDB keeps 38 digits)", code="invalid_json"
        )
    return None


def gzip_response(status: int, packed: bytes, headers: Mapping[str, str] | None = None) -> Response[Any]:
    """A JSON answer already gzip-compressed (a stored one), for a client that accepts gzip.

    The body travels base64-encoded as a string through Powertools' response validation (which
    would try to decode bytes as text); :func:`fit_response` marks it ``isBase64Encoded``.
    """
    return Response(
        status_code=status,
        content_type=JSON,
        body=base64.b64encode(packed).decode("ascii"),
        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding", **(headers or {})},
    )


def accepts_gzip(headers: dict[str, Any]) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: ``gzip`` (or ``x-gzip``) with a non-zero q-value, else ``*``
    with one. A coding named wins over ``*`` wherever it stands (RFC 9110 12.5.3): ``*;q=0, gzip`` allows it,
    ``gzip;q=0, *`` does not."""
    weights: dict[str, float] = {}
    for part in header(headers, "accept-encoding").split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        name, _, weight = params.strip().partition("=")
        try:
            q = float(weight) if name.strip().lower() == "q" else 1.0
        except ValueError:
            q = 0.0
        weights.setdefault("gzip" if coding == "x-gzip" else coding, q)
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _payload_bytes(body: str) -> int:
    """The size of a response with this body as the Lambda runtime serialises it (body escaped)."""
    if body.isascii():
        escaped = len(body) + 2 + body.count('"') + body.count("\\") + body.count("\n")
    else:
        escaped = len(json.dumps(body))
    return escaped + RESPONSE_MARGIN_BYTES


def fit_response(event: dict[str, Any], response: dict[str, Any], dialect: ErrorDialect) -> dict[str, Any]:
    """Gzip a large text answer for a client that accepts it; refuse one Lambda cannot return.

    An answer over the 6 MB a Lambda function can return would reach the client as API Gateway's
    502; it is a 400 in the dialect's shape instead, saying how to ask for less.
    """
    body = response.get("body")
    if not isinstance(body, str):
        return response
    headers = response.setdefault("headers", {})
    if any(k.lower() == "content-encoding" for k in headers):
        response["isBase64Encoded"] = True  # a gzip_response: its body is base64 already
    elif len(body) >= COMPRESS_FROM_BYTES and accepts_gzip(event.get("headers") or {}):
        packed = gzip.compress(body.encode("utf-8"), GZIP_LEVEL, mtime=0)
        response["body"] = base64.b64encode(packed).decode("ascii")
        response["isBase64Encoded"] = True
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    if _payload_bytes(response["body"]) <= MAX_RESPONSE_BYTES:
        return response
    size = len(body.encode("utf-8"))
    if response.get("isBase64Encoded"):
        advice = "even gzip-compressed; ask for less"
    else:
        advice = "send Accept-Encoding: gzip (curl --compressed), or ask for less"
    error = ResponseTooLargeError(
        f"the answer is {size / 1_000_000:.1f} MB, over the 6 MB an AWS Lambda function can return {advice}"
        " (a shorter timeRange, a coarser granularity, a smaller page)"
    )
    logger.info("response too large", extra={"bytes": size})
    return _rendered(dialect, error)


def entry(
    app: APIGatewayHttpResolver,
    dialect: ErrorDialect,
    scope: Scope | None,
    *,
    any_space_for_admin: bool = False,
    authenticator: Authenticator = authenticate,
    max_body_bytes: int = MAX_BODY_BYTES,
    checks_json: bool = True,
) -> LambdaHandler:
    """The Lambda entry point of one route of ``app``.

    The caller is authenticated here, before the body is even validated, so a request for
    another space answers 404 and an unauthenticated one 401 whatever it carries. Then a JSON
    body the service cannot hold (nesting over 64 levels, numbers DynamoDB cannot store) is a
    400 in the dialect's shape, for every route at once (``_guard_json``). Every answer that does not
    set its own ``Cache-Control`` says ``no-store`` (``_no_store``). ``scope``
    None marks a public route. A dialect with its own credentials (Orlo's ``X-Auth-Token``)
    passes an ``authenticator`` with ``authenticate``'s signature. A body over ``max_body_bytes`` is a
    413 (a code host's webhook takes ``WEBHOOK_MAX_BODY_BYTES``). ``checks_json=False``: the route parses
    its body itself (webhooks: ``handlers.webhooks.json_object``), since a payload it reads a few fields of
    must not be refused for a number in a field it never reads.
    """

    @logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runtime.set_caller(None)
        try:
            _guard_route(event)
            rejected = _guard_body(event, max_body_bytes, inflate=checks_json)
            if rejected is not None:
                raise rejected
            if scope is not None:
                space_id = (event.get("pathParameters") or {}).get("spaceId")
                headers = event.get("headers") or {}
                caller = authenticator(
                    runtime.store(), headers, scope, space_id=space_id, any_space_for_admin=any_space_for_admin
                )
                logger.append_keys(space_id=caller.space_id, key_id=caller.key_id)
                runtime.set_caller(caller)
            if checks_json:
                _bom_dropped(event)
                _json_sent_as_form(event)
            rejected = _guard_json(event, dialect) if checks_json else None
            if rejected is not None:
                raise rejected
            _media_type_lowered(event)
            return _no_store(_retry_after(fit_response(event, app.resolve(event, context), dialect)))
        except DoraError as error:  # before the route: the route's own are rendered by ``api``'s handler
            _log_error(error, "refused")
            return _no_store(_rendered(dialect, error))
        except Exception as error:
            too_large = size_refusal(error)
            if too_large is not None:  # dal.limits let through an item AWS (or moto) counts as larger
                logger.error("DynamoDB refused an item for its size", extra={"aws_error": repr(error)})
                return _no_store(_rendered(dialect, too_large))
            refused = refusal_for_now(error)
            if refused is None:
                raise  # a defect: Lambda reports it, API Gateway answers 500
            logger.warning("AWS refused for now; the client is told to retry", extra={"aws_error": repr(error)})
            return _no_store(_rendered(dialect, refused))

    return handler


_FORM = "application/x-www-form-urlencoded"
_BOM = "\ufeff"


def _bom_dropped(event: dict[str, Any]) -> None:
    """A UTF-8 byte order mark before a JSON body is dropped: RFC 8259 lets a parser ignore one, and
    Windows PowerShell 5's ``Set-Content -Encoding UTF8`` writes one into the file a CI step then sends
    (``curl --data @deployment.json``). Routes that check a signature over the body as sent (the
    webhooks) are not given this (``checks_json=False``)."""
    body = event.get("body")
    if isinstance(body, str) and body.startswith(_BOM):
        event["body"] = body[len(_BOM) :]


def _json_sent_as_form(event: dict[str, Any]) -> None:
    """A JSON body sent as a form is read as JSON. ``curl -d '{...}'`` without ``-H 'Content-Type:
    application/json'`` sends ``application/x-www-form-urlencoded``: Powertools parsed the JSON as a form and
    the route answered that its fields were missing, quoting the whole body as a field name. Any other body
    is left as sent (the DX backfill reads a CSV whatever its type; the GitHub webhook reads its own form)."""
    headers = event.get("headers")
    body = event.get("body")
    if not isinstance(headers, dict) or not isinstance(body, str) or body.lstrip()[:1] not in ("{", "["):
        return
    for name, value in headers.items():
        if name.lower() == "content-type" and isinstance(value, str):
            if value.partition(";")[0].strip().lower() == _FORM:
                headers[name] = "application/json"
            return


def _media_type_lowered(event: dict[str, Any]) -> None:
    """A media type is case-insensitive (RFC 9110 8.3.1); Powertools compares ``content-type`` as sent, so
    ``Application/JSON`` was a 415. Its type is lowered here, its parameters (a boundary) kept as sent."""
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return
    for name, value in headers.items():
        if name.lower() == "content-type" and isinstance(value, str):
            media, sep, parameters = value.partition(";")
            headers[name] = media.lower() + sep + parameters


def _guard_route(event: dict[str, Any]) -> None:
    """A path parameter holding ``/`` (sent as ``%2F``) is a 404. The function is its route's
    (``routeKey``), but Powertools dispatches on the decoded path among every route of its module:
    ``.../insights/1%2Fsharing`` reached the sharing route from the insight route's function, past the
    scope that function checks. No route here takes a greedy (``{name+}``) parameter."""
    for value in (event.get("pathParameters") or {}).values():
        if "/" in str(value):
            raise ResourceNotFoundError("no such resource")


def _rendered(dialect: ErrorDialect, error: DoraError) -> dict[str, Any]:
    """An error as the whole answer, in ``dialect``'s shape (``Retry-After`` on a 503)."""
    status, body = RENDERERS[dialect](error)
    headers = {"Content-Type": JSON, **(_retry_headers(error) or {})}
    return _retry_after({"statusCode": status, "headers": headers, "body": json.dumps(body)})
