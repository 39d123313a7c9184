"""``make bench``: run every benchmark and print a report."""

from __future__ import annotations

from bench import (
    attribution,
    batch,
    cold_start,
    dashboard,
    datadog_list,
    dialects,
    dora_metrics,
    fanout,
    freshness,
    ingest,
    local_runtime,
    native_list,
    recompute,
)


def main() -> None:
    print("dora-insights benchmarks\n")
    ingest.run()
    print()
    batch.run()  # the native batch and the DX backfill in bulk (issue 17)
    print()
    dialects.run()
    print()
    attribution.run()
    print()
    cold_start.run()
    print()
    recompute.run()
    print()
    fanout.run()  # the recompute fanned out: 1,000 spaces x 1,000 deployments (issue 17)
    print()
    freshness.run()
    print()
    dora_metrics.run()
    print()
    datadog_list.run()
    print()
    native_list.run()  # the native list with each deployment's recomputed figures
    print()
    local_runtime.run()
    print()
    dashboard.run()  # last: it starts the local runtime (moto's server) in this process


if __name__ == "__main__":
    main()
