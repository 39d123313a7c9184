"""The metrics a function emitted, read back from the EMF lines Powertools prints on stdout."""

from __future__ import annotations

import json


class Emitted(dict[str, float]):
    """Metrics by name; one not emitted reads 0 (``emitted["X"]``): the functions send a counter only when
    it is not zero (``observability.count``). ``.get`` and ``in`` still tell whether it was sent."""

    def __missing__(self, name: str) -> float:
        return 0.0


def emitted_metrics(output: str) -> Emitted:
    """Each metric's values in the EMF lines of ``output`` (``capsys``), added up over lines."""
    found = Emitted()
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
