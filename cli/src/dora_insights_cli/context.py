"""What a command runs with: the process's environment, working directory, streams and clock.

Commands read no global state but this, so tests can hand them their own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TextIO

from dora_insights_cli import ci as ci_module
from dora_insights_cli.client import Api
from dora_insights_cli.config import Sources, Value, connection, sends_in_cleartext
from dora_insights_cli.times import utc_now

SERVICE_VARIABLES = ("DORA_INSIGHTS_SERVICE", "DD_SERVICE")
ENV_VARIABLES = ("DORA_INSIGHTS_ENV", "DD_ENV")


@dataclass
class Context:
    env: Mapping[str, str]
    cwd: Path
    home: Path | None  # None: the user has no home (only the environment and the project's file count)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    now: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    _sources: Sources | None = None
    _ci: tuple[ci_module.CiRun | None] | None = None

    def warn(self, message: str) -> None:
        print(f"dora-insights: {message}", file=self.err)

    def ci(self, args: argparse.Namespace) -> ci_module.CiRun | None:
        """The CI run this job is, unless ``--no-ci``."""
        if getattr(args, "no_ci", False):
            return None
        if self._ci is None:
            self._ci = (ci_module.detect(self.env, self._github_event()),)
        return self._ci[0]

    def _github_event(self) -> Mapping[str, Any]:
        """GitHub's event payload (``GITHUB_EVENT_PATH``), for the pushed range; {} when absent or unreadable."""
        path = self.env.get("GITHUB_EVENT_PATH") if self.env.get("GITHUB_ACTIONS") == "true" else None
        if not path:
            return {}
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def sources(self, args: argparse.Namespace) -> Sources:
        if self._sources is None:
            self._sources = Sources.load(self.env, self.cwd, self.home, args.config)
            project_file = self._sources.key_in_project_file(self.cwd)
            if project_file is not None:
                self.warn(
                    f"{project_file} holds an api_key: keep keys out of the repository (set DORA_INSIGHTS_API_KEY)"
                )
        return self._sources

    def api(self, args: argparse.Namespace, *, need_key: bool = True) -> Api:
        settings = connection(
            self.sources(args),
            url=args.url,
            space=args.space,
            api_key=args.api_key,
            timeout=args.timeout,
            retries=args.retries,
            retry_delay=args.retry_delay,
            need_key=need_key,
        )
        if need_key and settings.api_key is not None and sends_in_cleartext(settings.url):
            self.warn(
                f"{settings.url} is http:// to another machine: the API key goes over the network in cleartext;"
                " use the service's https:// URL"
            )
        return Api(settings, log=self.err, sleep=self.sleep)

    def service(self, args: argparse.Namespace) -> Value | None:
        """``--service``, else ``$DORA_INSIGHTS_SERVICE`` / ``$DD_SERVICE``, else the config files' ``service``."""
        return self.sources(args).lookup(args.service, "--service", SERVICE_VARIABLES, "service")

    def environment_setting(self, args: argparse.Namespace) -> Value | None:
        """``--env``, else ``$DORA_INSIGHTS_ENV`` / ``$DD_ENV`` (config files and the CI come after, per command)."""
        return self.sources(args).lookup(args.env, "--env", ENV_VARIABLES, None)
