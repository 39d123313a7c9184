"""``make bench``: run every benchmark and print a report."""

from __future__ import annotations

from bench import attribution, cold_start, dialects, freshness, ingest, recompute


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


if __name__ == "__main__":
    main()
