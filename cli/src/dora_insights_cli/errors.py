"""Exit codes and the one exception every command raises to end with a message and a code."""

from __future__ import annotations

OK = 0
GATE_FAILED = 1  # `gate`: a metric is below the tier asked for (or has no data, by default)
USAGE = 2  # bad flags, missing configuration, not a git checkout (argparse also exits 2)
AUTH = 3  # 401 (key missing or refused) or 403 (key lacks the scope)
NOT_FOUND = 4  # 404: the space (or the failure named) does not exist for this key
REJECTED = 5  # any other 4xx, a 3xx (never followed), or an answer (to a create or a read) that is not the service's
UNAVAILABLE = 6  # 429, 5xx or network errors (timeouts, answers cut short), still failing after every retry

EXIT_CODES = {
    OK: "success",
    GATE_FAILED: "gate: a metric is below the minimum tier (or has no data)",
    USAGE: "usage or configuration error",
    AUTH: "the API key was refused (401) or lacks a scope (403)",
    NOT_FOUND: "the space (or the failure named) was not found (404)",
    REJECTED: "the server rejected the request (400, 409, 413, ...), redirected it (3xx), or is not the service",
    UNAVAILABLE: "the server could not be reached or kept failing (429, 5xx, network, timeout) after the retries",
}


class CliError(Exception):
    """Ends the command: ``message`` on stderr, ``code`` as the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
