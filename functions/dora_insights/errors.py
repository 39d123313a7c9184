"""The one exception hierarchy of the core. Each dialect renders these in its own error shape
(``dialects/*`` and ``handlers/http.py``); nothing matches on messages."""

from __future__ import annotations


class DoraError(Exception):
    """Base: an error a client caused, rendered as a 4xx. ``field`` names the offending input."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class RequestInvalidError(DoraError):
    """The body, a parameter or a header is malformed or fails validation (400)."""

    status = 400
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        details: list[tuple[str | None, str]] | None = None,
    ) -> None:
        super().__init__(message, field=field, code=code)
        # (field path or None, message) for every problem found, the first one being ``message``.
        self.details = details or [(field, message)]


class PayloadTooLargeError(DoraError):
    """A body over the service's limit (413)."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(DoraError):
    """A body in a media type no route accepts (415)."""

    status = 415
    code = "unsupported_media_type"


class ItemTooLargeError(PayloadTooLargeError):
    """What a request would store exceeds DynamoDB's 400 KB item limit (or 4 MB per transaction): 413.

    Raised by the table adapter before it writes (``dal.limits``), so nothing is sent to AWS."""

    code = "item_too_large"


class KeyTooLargeError(RequestInvalidError):
    """A name or id makes a key longer than DynamoDB allows in UTF-8 bytes (2048 for a partition
    key, 1024 for a sort key, table and indexes alike): 400, before anything is written."""

    code = "key_too_large"


class ItemInvalidError(ValueError):
    """Not a client error: a value DynamoDB would refuse (an unstorable number, an empty key or map
    name, nesting over 32 levels) reached the table adapter. The boundary refuses such input with a
    4xx (``dialects.limits``), so this is a bug, reported clearly instead of as AWS's ValidationException."""


class ResponseTooLargeError(DoraError):
    """The answer would exceed what a Lambda function can return (400: ask for less, or for gzip)."""

    status = 400
    code = "response_too_large"


class AuthenticationMissingError(DoraError):
    """No credentials were sent (401)."""

    status = 401
    code = "not_authed"


class AuthenticationInvalidError(DoraError):
    """Credentials were sent but are unknown, revoked or do not verify (401)."""

    status = 401
    code = "invalid_auth"


class ScopeMissingError(DoraError):
    """The key is valid but lacks the scope the route needs (403)."""

    status = 403
    code = "forbidden"


class ResourceNotFoundError(DoraError):
    """Unknown id, or an id in another space (404: another space's existence is not revealed)."""

    status = 404
    code = "not_found"


class MethodNotAllowedError(DoraError):
    """The route exists but refuses this method (405)."""

    status = 405
    code = "method_not_allowed"


class ResourceConflictError(DoraError):
    """An idempotency key reused with a different body, or a concurrent update lost (409)."""

    status = 409
    code = "conflict"


class RateLimitedError(DoraError):
    """Too many attempts; try again later (429)."""

    status = 429
    code = "rate_limited"


class PreconditionFailedError(DoraError):
    """A conditional request whose condition no longer holds: the ``revision`` or ``If-Match`` it
    sent is not the current one (412: read again, then retry)."""

    status = 412
    code = "precondition_failed"
