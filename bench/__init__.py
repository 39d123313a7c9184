"""Benchmarks (``make bench``): round trips, capacity units and cold-start import cost."""
