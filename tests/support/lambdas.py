"""Invoking the template's functions in tests as Lambda would: under their role's IAM policy.

moto checks no IAM; ``dora_local.iam`` does. Every handler a test runs goes through :func:`running_as`
(the ``api`` fixture for routes, :func:`invoke` for any function by logical id), so each AWS call it
makes is checked against its role in template.yaml, with the test's own table and queue names standing
for the template's resources. A denied call raises AWS's ``AccessDenied`` error in the handler, and the
test fails even if the code swallowed it. Calls from handler modules outside these helpers are refused
(see ``dora_local.iam.install``'s guard), so a direct handler call cannot skip the check.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dora_local import iam
from tests.support.template import handler_of

HANDLER_PACKAGE = "dora_insights.handlers"


def guard() -> None:
    """Check calls under a function, and refuse those handler code makes outside one (idempotent)."""
    iam.install(guard=HANDLER_PACKAGE)


def principal(logical_id: str) -> iam.Principal:
    """What ``logical_id`` runs as, its role's resources resolved to the names in this test's environment."""
    return iam.principal_of(logical_id, iam.environment_resolver(logical_id, os.environ))


@contextmanager
def running_as(logical_id: str, *, allow_denials: bool = False) -> Iterator[iam.Principal]:
    """Check every AWS call of the block against ``logical_id``'s role; fail the test on any denial unless
    ``allow_denials`` (a test about denials inspects ``principal.denials`` itself)."""
    guard()
    acting = principal(logical_id)
    try:
        with iam.acting_as(acting):
            yield acting
    finally:
        if acting.denials and not allow_denials:
            listed = "\n  ".join(d.message for d in acting.denials)
            raise AssertionError(f"{logical_id} made calls its role in template.yaml does not allow:\n  {listed}")


def handler(logical_id: str) -> Any:
    """The entry point a function's ``Handler`` names."""
    module, _, entry = handler_of(logical_id).rpartition(".")
    return getattr(importlib.import_module(module), entry)


def invoke(logical_id: str, event: Any, context: Any) -> Any:
    """Invoke a function of the template by logical id with one event, under its role; its result."""
    with running_as(logical_id):
        return handler(logical_id)(event, context)
