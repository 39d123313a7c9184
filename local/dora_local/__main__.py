"""``make serve``: run the whole service locally until Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from dora_local.server import LocalRuntime


def main() -> int:
    local = LocalRuntime().start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"dora-insights is running at {local.url}")
    print("  space:   Spaces-1")
    print(f"  API key: {local.api_key}   (Authorization: Bearer {local.api_key})")
    print(f"  GitHub webhook secret of Spaces-1: {local.runtime.webhook_secret}")
    print(f"  OpenAPI: {local.url}/openapi.json")
    print(f"  local only: POST {local.url}/_local/schedule/run, POST {local.url}/_local/queues/drain")
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    print("stopping", file=sys.stderr)
    local.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
