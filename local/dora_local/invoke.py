"""``make invoke FN=<LogicalId> EVENT=events/<file>.json``: one function, one event, as ``sam local invoke``
would, without Docker: moto as the AWS endpoint with the template's resources, the local space, key and
webhook secret seeded. The function's result is printed on stdout as JSON; its logs go to stderr.

``-`` as the event file reads the event from stdin.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from dora_local.runtime import Runtime


def invoke(logical_id: str, event: Any, runtime: Runtime | None = None) -> Any:
    """Start moto, seed, invoke ``logical_id`` with ``event`` and stop moto; the function's result."""
    runtime = runtime or Runtime()
    runtime.start_aws()
    try:
        runtime.seed()
        return runtime.invoke(logical_id, event)
    finally:
        runtime.stop_aws()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m dora_local.invoke <LogicalId> <event.json | ->", file=sys.stderr)
        return 2
    logical_id, event_path = argv
    runtime = Runtime()
    if logical_id not in runtime.functions:
        print(f"no function '{logical_id}' in template.yaml; functions:", file=sys.stderr)
        print("  " + "\n  ".join(sorted(runtime.functions)), file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if event_path == "-" else Path(event_path).read_text()
        event = json.loads(text)
    except (OSError, ValueError) as error:
        print(f"cannot read the event {event_path}: {error}", file=sys.stderr)
        return 2
    try:
        # Logs (Powertools writes them to stdout) go to stderr: stdout is the result, as with sam local invoke.
        with contextlib.redirect_stdout(sys.stderr):
            result = invoke(logical_id, event, runtime)
    except Exception as error:
        import traceback

        traceback.print_exc()
        print(json.dumps({"errorMessage": str(error), "errorType": type(error).__name__}))
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
