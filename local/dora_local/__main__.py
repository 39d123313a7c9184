"""``make serve``: run the whole service locally until Ctrl-C (SIGINT) or SIGTERM.

Environment: ``PORT`` (default 3000), ``SCHEDULE_SECONDS`` (run the scheduled functions this often
instead of their template rate), ``DORA_LOCAL_API_KEY``, ``DORA_LOCAL_WEBHOOK_SECRET``,
``DORA_LOCAL_QUIET=1`` (no access log); chaos (``dora_local.faults``): ``DORA_LOCAL_FAULT_RATE`` (the share of
the functions' DynamoDB and SQS calls that fail, off by default), ``DORA_LOCAL_FAULT_SEED``,
``DORA_LOCAL_FAULT_OPERATIONS`` and ``DORA_LOCAL_FAULT_FUNCTIONS`` (comma-separated names to limit it to).

Arguments: ``--data DIR`` keeps the DynamoDB tables in ``DIR`` across restarts (``dora_local.persistence``;
``make serve`` passes ``$DORA_LOCAL_DATA``, default ``.dora-local``), ``--fresh`` empties it first. Without
``--data`` nothing is kept. (An argument, not an environment variable: the tests start this module with
their own environment, which must never reach a developer's data.)
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from dora_local import faults
from dora_local.persistence import DataDirectoryError
from dora_local.server import LocalRuntime
from dora_local.template import ACCOUNT, REGION


def _port() -> int:
    """``PORT``: a TCP port (default 3000)."""
    text = os.environ.get("PORT", "").strip() or "3000"
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise ValueError(f"PORT={text!r} is not a TCP port (1 to 65535)")
    return int(text)


def _schedule_seconds() -> float | None:
    """``SCHEDULE_SECONDS``: seconds between scheduled runs (0: never on a timer); None: the template's rate."""
    text = os.environ.get("SCHEDULE_SECONDS", "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"SCHEDULE_SECONDS={text!r} is not a number of seconds (0 or more; 0: no timer)")
    return seconds


def main(argv: list[str] | None = None) -> int:
    # The process is the runtime's: no developer profile may point boto3 at a real account.
    os.environ.pop("AWS_PROFILE", None)
    arguments = _arguments().parse_args(argv)
    try:
        chaos = faults.from_environment()
    except ValueError as error:
        print(f"DORA_LOCAL_FAULT_*: {error}", file=sys.stderr)
        return 2
    try:
        port, schedule_seconds = _port(), _schedule_seconds()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    local = LocalRuntime(port, schedule_seconds, data_dir=arguments.data, fresh=arguments.fresh)
    try:
        local.start()
    except (DataDirectoryError, RuntimeError) as error:  # RuntimeError: a data directory on an unverified moto
        print(f"cannot use the data directory: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cannot serve on 127.0.0.1:{local.port}: {error} (set PORT to another port)", file=sys.stderr)
        return 1
    os.environ.update(local.runtime.aws_environment())
    stopped = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        if stopped.is_set() and signum == signal.SIGINT:  # a second Ctrl-C: quit at once. The journal
            os.write(2, b"stopped at once\n")  # (unbuffered) holds every write answered so far; only
            os._exit(130)  # the requests in progress are cut off
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    runtime = local.runtime
    print(f"dora-insights (local) is running at {local.url}")
    print("  space:          Spaces-1")
    print(f"  API key:        {local.api_key}   (header  Authorization: Bearer {local.api_key})")
    print(f"  GitHub webhook: POST {local.url}/webhooks/github/Spaces-1   (secret: {local.webhook_secret})")
    print(f"  dashboard:      {local.url}/app/   (sign in with the API key)")
    print(f"  API docs:       {local.url}/docs   (OpenAPI: {local.url}/openapi.json)")
    print(f"  AWS (moto):     {runtime.endpoint}   (region {REGION}, account {ACCOUNT}, keys testing/testing)")
    print(f"  table:          {runtime.table_name}")
    if runtime.data is not None:
        loaded = f"{runtime.data.loaded_items:,} items loaded"
        if runtime.data.replayed_units:
            loaded += f", {runtime.data.replayed_units:,} writes replayed from the journal"
        print(f"  data:           {runtime.data.path} ({loaded}; queues start empty)")
    else:
        print("  data:           in memory only (make serve keeps it in $DORA_LOCAL_DATA, default .dora-local)")
    for logical_id, url in runtime.queue_urls.items():
        print(f"  queue:          {logical_id} {url}")
    schedules = ", ".join(f"{f.logical_id} {t.expression}" for f, t in runtime.schedule_triggers()) or "none"
    if local.schedule_seconds is None:
        every = "template rate"
    elif local.schedule_seconds > 0:
        every = f"every {local.schedule_seconds:g}s (SCHEDULE_SECONDS)"
    else:
        every = (
            f"timer off: SCHEDULE_SECONDS={local.schedule_seconds:g}; run it with POST {local.url}/_local/schedule/run"
        )
    print(f"  schedule:       {schedules} ({every})")
    print(f"  local only:     POST {local.url}/_local/schedule/run   POST {local.url}/_local/queues/drain")
    print(f"                  POST {local.url}/_local/clock/advance   GET|POST {local.url}/_local/faults")
    if chaos.rate > 0:
        faults.configure(chaos)
        print(f"  faults:         {chaos.rate:.0%} of the functions' DynamoDB/SQS calls fail (seed {chaos.seed})")
    print("ready", flush=True)
    while not stopped.wait(0.5):
        pass
    print("stopping (Ctrl-C again to quit at once)", file=sys.stderr, flush=True)
    local.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dora_local", description="Run dora-insights locally.")
    parser.add_argument("--data", type=Path, metavar="DIR", help="keep the DynamoDB tables in DIR across restarts")
    parser.add_argument("--fresh", action="store_true", help="start with an empty data directory")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
