"""The local runtime: the whole service in one process on loopback, no Docker, no AWS account.

moto's server is the AWS endpoint (the table, queues and event bus of template.yaml are created in
it); an HTTP front turns requests into API Gateway HTTP API (payload 2.0) events and routes them by
template.yaml; a poller delivers SQS messages to the queue-triggered functions; the schedule runs the
scheduled functions. See DESIGN.md §4. ``python -m dora_local`` serves; ``python -m dora_local.invoke``
invokes one function with one event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["LocalRuntime", "Runtime"]

if TYPE_CHECKING:
    from dora_local.runtime import Runtime
    from dora_local.server import LocalRuntime


def __getattr__(name: str) -> Any:
    """``LocalRuntime`` and ``Runtime`` imported on first use (moto and boto3 are slow to import)."""
    if name == "LocalRuntime":
        from dora_local.server import LocalRuntime

        return LocalRuntime
    if name == "Runtime":
        from dora_local.runtime import Runtime

        return Runtime
    raise AttributeError(name)
