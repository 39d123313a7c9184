"""The metrics a function emitted, read back from the EMF lines Powertools prints on stdout."""

from __future__ import annotations

import json


def emitted_metrics(output: str) -> dict[str, float]:
    """Each metric's values in the EMF lines of ``output`` (``capsys``), added up over lines."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                found[metric["Name"]] = found.get(metric["Name"], 0) + sum(
                    value if isinstance(value, list) else [value]
                )
    return found
