"""Logger and metrics for every function, configured by template Globals
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``).

X-Ray tracing of every function is the stack's ``TracingMode`` parameter (``PassThrough`` by default:
nothing here records a segment of its own, so a trace holds only Lambda's timings, which its REPORT log
line gives too; ``Active`` when a team wants them in X-Ray's service map);
the Powertools Tracer is not used because it needs aws-xray-sdk on the cold-start path of
every request, which the ingest cold-start budget cannot afford.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
# An invocation with nothing to count sends no metric (``count``): that is expected, not worth a warning line.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add ``name`` to this invocation's metrics when it is not zero. CloudWatch bills a custom metric for
    each hour it receives a value: counters sent as 0 on every tick (26 of them) cost their whole month for
    nothing. A counter not sent reads as no data (an alarm on one treats missing data as not breaching);
    a metric that must always have a value (``RecomputeLag``, whose alarm counts no data as a stopped
    schedule) is added with ``metrics.add_metric``."""
    if value:
        metrics.add_metric(name=name, unit=unit, value=value)
