"""Logger and metrics for every function, configured by template Globals
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``).

X-Ray tracing is switched on for every function in template.yaml (``Tracing: Active``);
the Powertools Tracer is not used because it needs aws-xray-sdk on the cold-start path of
every request, which the ingest cold-start budget cannot afford.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
