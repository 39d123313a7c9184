"""``make bench``: run every benchmark and print a report."""

from __future__ import annotations

from bench import (
    attribution,
    cold_start,
    dashboard,
    datadog_list,
    dialects,
    freshness,
    ingest,
    local_runtime,
    recompute,
)


def main() -> None:
    print("dora-insights benchmarks\n")
    ingest.run()
    print()
    dialects.run()
    print()
    attribution.run()
    print()
    cold_start.run()
    print()
    recompute.run()
    print()
    freshness.run()
    print()
    datadog_list.run()
    print()
    local_runtime.run()
    print()
    dashboard.run()  # last: it starts the local runtime (moto's server) in this process


if __name__ == "__main__":
    main()
