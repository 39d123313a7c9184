"""``dora-insights``: send deployments, failures and changes to dora-insights from CI, read and gate on its summary."""

__version__ = "0.1.0"
