"""The one exception hierarchy of the core. Each dialect renders these in its own error shape
(``dialects/*`` and ``handlers/http.py``); nothing matches on messages."""

from __future__ import annotations

from collections.abc import Iterable


class DoraError(Exception):
    """Base: an error a client caused, rendered as a 4xx. ``field`` names the offending input."""

    status = 400
    code = "bad_request"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: object) -> None:
        """A subclass names its HTTP status and error code beside its base (``class X(DoraError, status=404,
        code="not_found")``); what it leaves out it inherits."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class RequestInvalidError(DoraError, status=400, code="invalid_request"):
    """The body, a parameter or a header is malformed or fails validation (400)."""

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


class PayloadTooLargeError(DoraError, status=413, code="payload_too_large"):
    """A body over the service's limit (413)."""


class UnsupportedMediaTypeError(DoraError, status=415, code="unsupported_media_type"):
    """A body in a media type no route accepts (415)."""


class ItemTooLargeError(PayloadTooLargeError, code="item_too_large"):
    """What a request would store exceeds DynamoDB's 400 KB item limit (or 4 MB per transaction): 413.

    Raised by the table adapter before it writes (``dal.limits``), so nothing is sent to AWS."""


class KeyTooLargeError(RequestInvalidError, code="key_too_large"):
    """A name or id makes a key longer than DynamoDB allows in UTF-8 bytes (2048 for a partition
    key, 1024 for a sort key, table and indexes alike): 400, before anything is written."""


class ItemInvalidError(ValueError):
    """Not a client error: a value DynamoDB would refuse (an unstorable number, an empty key or map
    name, nesting over 32 levels) reached the table adapter. The boundary refuses such input with a
    4xx (``dialects.limits``), so this is a bug, reported clearly instead of as AWS's ValidationException."""


class ResponseTooLargeError(DoraError, status=400, code="response_too_large"):
    """The answer would exceed what a Lambda function can return (400: ask for less, or for gzip)."""


class AuthenticationMissingError(DoraError, status=401, code="not_authed"):
    """No credentials were sent (401)."""


class AuthenticationInvalidError(DoraError, status=401, code="invalid_auth"):
    """Credentials were sent but are unknown, revoked or do not verify (401)."""


class ScopeMissingError(DoraError, status=403, code="forbidden"):
    """The key is valid but lacks the scope the route needs (403)."""


class ResourceNotFoundError(DoraError, status=404, code="not_found"):
    """Unknown id, or an id in another space (404: another space's existence is not revealed)."""


class MethodNotAllowedError(DoraError, status=405, code="method_not_allowed"):
    """The route exists but refuses this method (405)."""


class ResourceConflictError(DoraError, status=409, code="conflict"):
    """An idempotency key reused with a different body (code ``ID_REUSED``), or a concurrent update
    lost (409)."""


# The code of the one conflict a repeated create can meet: its client id or idempotency key is stored
# already with other values. A dialect may name it after its own key (DX's ``reference_id_exists``).
ID_REUSED = "id_reused"


def id_reused() -> ResourceConflictError:
    """The refusal of a create whose id or idempotency key holds other values (code ``ID_REUSED``): the
    write's (``dal.deployments``) and the check before a name is registered (``logic.deployments``) alike,
    so every dialect answers both as it answers one."""
    return ResourceConflictError("this id was already used with different values", field="id", code=ID_REUSED)


class RateLimitedError(DoraError, status=429, code="rate_limited"):
    """Too many attempts; try again in ``retry_after`` seconds at most (429, with ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after: int, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message, field=field, code=code)
        self.retry_after = retry_after


class PreconditionFailedError(DoraError, status=412, code="precondition_failed"):
    """A conditional request whose condition no longer holds: the ``revision`` or ``If-Match`` it
    sent is not the current one (412: read again, then retry)."""


class ServiceUnavailableError(DoraError, status=503, code="service_unavailable"):
    """Not the client's doing: a dependency the route needs refuses it now (the secrets key disabled, or
    the function's role without the KMS permission: a misconfiguration, logged as an error where it is
    raised), or is briefly contended (``WriteContendedError``: the same request sent again succeeds).
    Rendered as a 503 in the dialect's shape, never as a stack trace."""


class WriteContendedError(ServiceUnavailableError, code="write_contended"):
    """DynamoDB kept cancelling a write for concurrent writes of the same items (``TransactionConflict``)
    or throttling, after retries, with no condition failed: nothing was stored; retry the request (503)."""


class ThrottledError(ServiceUnavailableError):
    """AWS throttling the service, or failing internally, still after the SDK's and the store's own
    retries (``dal.store.refusal_for_now``, a batch call's keys left unprocessed): load, not a defect, so
    logged as a warning like ``WriteContendedError`` (503; retry the request)."""


class MessagesUnsentError(RuntimeError):
    """SQS refused some messages of a batch send for good (``dal.aws.send_messages``: their
    ``SenderFault`` true, or still failing after its resends): ``sent`` of them went, ``unsent`` did
    not, ``codes`` are SQS's error codes of those that did not. Not a client's error: a caller that
    can say what was sent (the schedule's tick, the sweep) counts it; otherwise it is raised."""

    def __init__(self, what: str, sent: int, unsent: int, codes: Iterable[str]) -> None:
        self.sent = sent
        self.unsent = unsent
        self.codes = sorted(set(codes))
        detail = f" ({', '.join(self.codes)})" if self.codes else ""
        super().__init__(f"SQS refused {unsent} of {sent + unsent} {what}{detail}; {sent} were sent")
