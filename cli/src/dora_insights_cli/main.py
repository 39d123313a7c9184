"""``dora-insights``: the command line (argparse) and its exit codes."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from dora_insights_cli import __version__, changes, deployment, failures, metrics
from dora_insights_cli.ci import PROVIDERS
from dora_insights_cli.context import Context
from dora_insights_cli.errors import EXIT_CODES, OK, CliError

EPILOG = "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
Command = Callable[[argparse.Namespace, Context], int]
# The commands that send (and so take --dry-run, --no-fail, --output, --no-ci), by their names' words.
SENDING = (("deployment",), ("failure", "open"), ("failure", "resolve"), ("changes",))


def _state(text: str) -> str:
    """A deployment state in any case (``failed`` is ``Failed``); anything else as given, for ``choices`` to refuse."""
    return next((state for state in deployment.STATES if state.casefold() == text.strip().casefold()), text)


def _count(text: str) -> int:
    """An argparse type: a whole number, 0 or more (argparse then exits 2 naming the flag)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: give 0 or more")
    return value


MAX_SECONDS = 86_400.0  # a day: more is a mistake (and beyond what a timer or a socket takes)


def _seconds(*, zero: bool) -> Callable[[str], float]:
    """An argparse type: a number of seconds up to a day, above 0 (or 0 and above with ``zero``)."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero) or value > MAX_SECONDS:
            lowest = "0 or more" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"{text}: give a number of seconds {lowest}, at most {MAX_SECONDS:g}")
        return value

    seconds.__name__ = "seconds"  # argparse names the type in its message
    return seconds


def _days(text: str) -> int:
    """An argparse type: days back from --to (else now), 0 to 36,500."""
    value = _count(text)
    if value > 36_500:
        raise argparse.ArgumentTypeError(f"{value} days is more than a century")
    return value


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection (flags, else DORA_INSIGHTS_* variables, else a config file)")
    group.add_argument("--url", help="the service's base URL ($DORA_INSIGHTS_URL)")
    group.add_argument("--space", help="the space id, e.g. Spaces-1 ($DORA_INSIGHTS_SPACE)")
    group.add_argument(
        "--api-key", help="the API key ($DORA_INSIGHTS_API_KEY; prefer the variable: flags show in process lists)"
    )
    group.add_argument(
        "--config", help="a TOML config file (default: ./.dora-insights.toml, ~/.config/dora-insights/config.toml)"
    )
    group.add_argument(
        "--timeout",
        type=_seconds(zero=False),
        default=30.0,
        help="seconds per request, connecting to the answer's last byte (default 30)",
    )
    group.add_argument(
        "--retries", type=_count, default=4, help="retries on 408, 429, 5xx and network errors (default 4; 0: none)"
    )
    group.add_argument(
        "--retry-delay",
        type=_seconds(zero=True),
        default=1.0,
        help="first backoff in seconds, doubled each retry (default 1)",
    )
    return parent


def _send_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--dry-run", action="store_true", help="print the request (key redacted); send nothing")
    parent.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when sending fails (the error is still printed)"
    )
    parent.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or the stored JSON")
    parent.add_argument("--no-ci", action="store_true", help="ignore the CI's variables")
    return parent


def _filter_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--service", "--project", dest="service", help="one project (default: $DORA_INSIGHTS_SERVICE)")
    parent.add_argument("--env", "--environment", dest="env", help="one environment (default: the space's settings)")
    parent.add_argument("--from", dest="from_", metavar="TIME", help="range start, ISO-8601 or unix time")
    parent.add_argument("--to", metavar="TIME", help="range end (exclusive; default now)")
    parent.add_argument(
        "--days", type=_days, help="range start this many days before --to, else now (default: the service's 90)"
    )
    parent.add_argument("--benchmark", help="the tier table, e.g. 2023 (default: the space's)")
    return parent


def parser() -> argparse.ArgumentParser:
    connection, send, filters = _connection_options(), _send_options(), _filter_options()
    root = argparse.ArgumentParser(
        prog="dora-insights",
        description="Send deployments, failures and changes to dora-insights from CI; read and gate on its summary.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("-V", "--cli-version", action="version", version=f"dora-insights {__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    dep = commands.add_parser(
        "deployment",
        parents=[connection, send],
        help="record a deployment (values from the CI's variables unless given)",
        description=f"Record a deployment. Detected CIs: {', '.join(PROVIDERS)}.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dep.add_argument(
        "--service", "--project", dest="service", help="the project deployed (default: the repository name)"
    )
    dep.add_argument("--env", "--environment", dest="env", help="the environment deployed to")
    dep.add_argument("--version", help="the version deployed (default: the CI's tag)")
    dep.add_argument("--started-at", help="ISO-8601 or unix time (default: the CI's job start, where it gives one)")
    dep.add_argument("--finished-at", help="ISO-8601 or unix time (default: now)")
    dep.add_argument("--git-repository-url", help="the repository (default: the CI's, else git's origin)")
    dep.add_argument("--git-commit-sha", help="the commit deployed (default: the CI's, else git's HEAD)")
    dep.add_argument("--skip-git", action="store_true", help="send no commit sha and no repository")
    dep.add_argument("--branch", help="the branch built (default: the CI's, else git's); sent as tag branch:<name>")
    dep.add_argument(
        "--integration-branch",
        nargs="?",
        const="",
        metavar="BRANCH",
        help="attribute pull requests merged into this branch (no value: the branch built); needs pull request data",
    )
    dep.add_argument(
        "--state", type=_state, choices=deployment.STATES, default="Success", help="outcome (default Success; any case)"
    )
    dep.add_argument("--rollback", action="store_true", help="this deployment is a rollback")
    dep.add_argument("--fixes", metavar="ID_OR_VERSION", help="the earlier deployment this one remediates")
    dep.add_argument("--tenant")
    dep.add_argument("--channel")
    dep.add_argument("--team")
    dep.add_argument("--tenant-tag", dest="tenant_tags", action="append", metavar="TAGSET/TAG")
    dep.add_argument("--custom-tags", "--tags", dest="tags", action="append", metavar="KEY:VALUE", help="repeatable")
    dep.add_argument("--run-url", help="link to the CI run (default: the CI's)")
    dep.add_argument("--source-name", help="what sent it (default: the CI's name)")
    dep.add_argument("--id", help="the client id (default: derived from the CI run, attempt and job)")
    dep.set_defaults(handler=deployment.run)

    failure = commands.add_parser("failure", help="open or resolve a failure (incident)")
    failure_commands = failure.add_subparsers(dest="failure_command", metavar="open|resolve")
    failure_commands.required = True
    for name, handler, text in (
        ("open", failures.open_failure, "record a failure that has started (prints its id)"),
        ("resolve", failures.resolve_failure, "record that a failure has ended"),
    ):
        sub = failure_commands.add_parser(
            name,
            parents=[connection, send],
            help=text,
            description=text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--id", required=name == "resolve", help="the failure's id (open: default derived from the CI run)"
        )
        sub.add_argument(
            "--service", "--project", dest="service", action="append", help="a project it affects (repeatable)"
        )
        sub.add_argument("--env", "--environment", dest="env", help="where (default: the space's default environment)")
        sub.add_argument("--name")
        sub.add_argument("--severity")
        sub.add_argument("--started-at", help="ISO-8601 or unix time" + (" (default: now)" if name == "open" else ""))
        if name == "resolve":
            sub.add_argument("--finished-at", help="ISO-8601 or unix time (default: now)")
        sub.add_argument("--deployment-id", help="the deployment that caused it")
        sub.add_argument("--git-commit-sha", help="the commit that caused it")
        sub.add_argument("--git-repository-url", help="the repository of that commit")
        sub.add_argument("--version", help="the release that caused it")
        sub.add_argument("--team")
        sub.add_argument("--custom-tags", "--tags", dest="tags", action="append", metavar="KEY:VALUE")
        sub.set_defaults(handler=handler)

    chg = commands.add_parser(
        "changes",
        parents=[connection, send],
        help="send the commits of a range of the local checkout",
        description=changes.__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chg.add_argument("range", nargs="?", help="git revisions, e.g. v1.4.0..HEAD (default: what the CI run pushed)")
    chg.add_argument("--max-count", type=_count, default=1000, help="at most this many commits, the newest (0: all)")
    chg.add_argument("--branch", help="the branch they are on (default: the CI's, else git's)")
    chg.add_argument("--default-branch", help="the repository's default branch (default: the CI's, where it says)")
    chg.add_argument("--git-repository-url", help="the repository (default: the CI's, else git's origin)")
    chg.set_defaults(handler=changes.run)

    summary = commands.add_parser(
        "summary",
        parents=[connection, filters],
        help="the four keys and their tiers",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summary.add_argument("--format", choices=("table", "json", "csv"), default="table")
    summary.set_defaults(handler=metrics.summary_command)

    gate = commands.add_parser(
        "gate",
        parents=[connection, filters],
        help="exit 1 when a metric is below a tier",
        description=f"Exit {1} when a metric's tier is below --min-tier (Elite > High > Medium > Low).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gate.add_argument("--metric", action="append", required=True, help=f"repeatable; one of {', '.join(metrics.GATED)}")
    gate.add_argument("--min-tier", required=True, help="Elite, High, Medium or Low")
    gate.add_argument(
        "--on-no-data",
        choices=("fail", "pass"),
        default="fail",
        help="a metric without a tier (no data in the range): fail (default) or pass",
    )
    gate.set_defaults(handler=metrics.gate_command)
    return root


def _home() -> Path | None:
    """The user's home, None when there is none (a container running as a uid without HOME or passwd
    entry): then only the environment and the project's config file are read."""
    try:
        return Path.home()
    except (RuntimeError, KeyError):
        return None


def _console() -> None:
    """Printing never fails a command whose work is done: a console that cannot encode a name (a Windows
    runner's cp1252 pipe) shows it escaped."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _no_fail_given(words: Sequence[str]) -> bool:
    """Whether ``words`` give ``--no-fail`` to a command that takes it (a sending one), as a flag: after the
    command's name(s), before a ``--``. Used when argparse refused the words, so there is no namespace to ask;
    argparse reads that word as the flag there (an option of the command), never as another flag's value."""
    for names in SENDING:
        if tuple(words[: len(names)]) == names:
            rest = list(words[len(names) :])
            return "--no-fail" in (rest[: rest.index("--")] if "--" in rest else rest)
    return False


def main(argv: Sequence[str] | None = None, ctx: Context | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if ctx is None:
        _console()
    try:
        args = parser().parse_args(words)
    except SystemExit as exit_:  # argparse's own usage error (exit 2) or --help (exit 0)
        if exit_.code not in (None, 0) and _no_fail_given(words):
            print(f"dora-insights: exit {exit_.code} ignored (--no-fail)", file=sys.stderr)
            return OK
        raise
    no_fail = bool(getattr(args, "no_fail", False))  # only the sending commands have it
    context = ctx or Context(env=os.environ, cwd=Path.cwd(), home=_home())
    handler: Command = args.handler
    try:
        return handler(args, context)
    except CliError as error:
        context.warn(error.message)
        if no_fail:
            context.warn(f"exit {error.code} ignored (--no-fail)")
            return OK
        return error.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `dora-insights summary | head`: the reader left (recipe of Python's signal docs)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as error:  # a defect of this client: its traceback, unless the job must not fail for it
        if not no_fail:
            raise
        context.warn(f"unexpected error ({type(error).__name__}: {error}); exit 1 ignored (--no-fail)")
        return OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
