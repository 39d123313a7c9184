"""``make invoke FN=<LogicalId> EVENT=events/<file>.json``: one function, one event, as ``sam local invoke``
would, without Docker (moto as the AWS endpoint, the local space and key seeded)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dora_local.runtime import Runtime


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m dora_local.invoke <LogicalId> <event.json>", file=sys.stderr)
        return 2
    logical_id, event_path = argv
    runtime = Runtime()
    if logical_id not in runtime.functions:
        print(
            f"no function '{logical_id}' in template.yaml; functions: {', '.join(sorted(runtime.functions))}",
            file=sys.stderr,
        )
        return 2
    event = json.loads(Path(event_path).read_text())
    runtime.start_aws()
    try:
        runtime.seed()
        result = runtime.invoke(logical_id, event)
    finally:
        runtime.stop_aws()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
