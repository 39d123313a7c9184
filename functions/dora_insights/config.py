"""Configuration: environment variables declared in template.yaml, read here and only here."""

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    """Read at first use (cold start) and cached; ``reset_settings`` is for tests.

    A plain dataclass, not a pydantic model: nothing outside the stack's own template sets these, and
    a model's schema was built at every function's import (1.7 ms of the ingest route's cold start,
    bench/cold_start.py) to check one length.
    """

    table_name: str
    retry_queue_url: str | None = None
    # The recompute's work-item queue (the schedule sends, the worker consumes; docs/recompute.md).
    recompute_queue_url: str | None = None
    event_bus_name: str | None = None
    stage: str = "dev"
    # Where the service is public (used for absolute links such as PostHog's next/previous).
    public_base_url: str | None = None
    # Alert destinations may be http(s)://127.0.0.1, [::1] or localhost: set by the local runtime only
    # (ALERT_ALLOW_LOOPBACK_HTTP=true), never in template.yaml, so a deployment sends to public https URLs only.
    alert_allow_loopback_http: bool = False
    # The stack's KMS key that encrypts the secrets the service reads back (dal/secrets.py): set only for the
    # functions that encrypt or decrypt one (template/base.yaml, SECRETS_KEY_ARN).
    secrets_key_arn: str | None = None

    def __post_init__(self) -> None:
        # DynamoDB's shortest table name: an unset TABLE_NAME fails at first use, naming the variable.
        if len(self.table_name) < 3:
            raise ValueError(f"TABLE_NAME must name the table (3 characters at least), not {self.table_name!r}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this function, from its environment."""
    env = os.environ
    return Settings(
        table_name=env.get("TABLE_NAME", ""),
        retry_queue_url=env.get("RETRY_QUEUE_URL") or None,
        recompute_queue_url=env.get("RECOMPUTE_QUEUE_URL") or None,
        event_bus_name=env.get("EVENT_BUS_NAME") or None,
        stage=env.get("STAGE", "dev"),
        public_base_url=env.get("PUBLIC_BASE_URL") or None,
        alert_allow_loopback_http=env.get("ALERT_ALLOW_LOOPBACK_HTTP", "").lower() == "true",
        secrets_key_arn=env.get("SECRETS_KEY_ARN") or None,
    )


def reset_settings() -> None:
    """Forget the cached settings (tests and the local runtime switch environments)."""
    get_settings.cache_clear()
