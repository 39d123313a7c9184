"""``dora-insights deployment``: one native deployment (``POST /api/{spaceId}/deployments``).

Each value comes from its flag, else the CI's variables (cli/README.md "CI variables"), else the local
git checkout (sha, origin, branch; not with ``--skip-git``). The body's ``id`` makes it idempotent:
derived from the CI run, attempt and job and from what makes a deployment distinct (its stream:
project, environment, tenant and channel; and its state) (:func:`ci.idempotency_id`), so a job step
that runs twice in one attempt is stored once, while a retried job (a new attempt), or the same job
deploying to another channel, is a deployment of its own.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from dora_insights_cli import ci as ci_module
from dora_insights_cli import git
from dora_insights_cli.client import Api, ApiError, NetworkError, backoff, created, fail
from dora_insights_cli.context import Context
from dora_insights_cli.errors import OK, USAGE, CliError
from dora_insights_cli.times import format_time, parse_time

STATES = ("Success", "Failed", "TimedOut", "Canceled", "Executing", "Queued")
MAX_VALUE = 200  # characters of a name, tag or version the service takes (API.md "Native API")
DEFAULT_CHANNEL = "default"  # the service's channel when none is named (API.md "Channel": `Default`)


def time_flag(value: str | None, flag: str) -> str | None:
    """A time flag in the service's form, or a usage error naming the flag."""
    if value is None:
        return None
    try:
        return format_time(parse_time(value))
    except ValueError as error:
        raise CliError(f"{flag}: {error}", USAGE) from None


def fit(ctx: Context, value: str, what: str) -> str:
    """A value this command derived (from the CI or git, not a flag), cut to what the service takes, with
    a warning: a long branch or tag name must not cost the deployment."""
    if len(value) <= MAX_VALUE:
        return value
    ctx.warn(f"{what} has {len(value)} characters; the service takes {MAX_VALUE}: sent cut to {MAX_VALUE}")
    return value[:MAX_VALUE]


def environment_of(args: argparse.Namespace, ctx: Context, run: ci_module.CiRun | None) -> str | None:
    """``--env``, else ``$DORA_INSIGHTS_ENV`` / ``$DD_ENV``, else the environment the CI job declares,
    else the config files' ``env`` (a repository-wide default yields to the job's own)."""
    given = ctx.environment_setting(args)
    if given is not None:
        return given.value
    if run is not None and run.environment:
        return run.environment
    from_file = ctx.sources(args).file_value("env")
    return from_file.value if from_file is not None else None


def build(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    """The request body, from flags, the CI and git (warnings for what lead time will miss)."""
    run = ctx.ci(args)
    service = ctx.service(args)
    project = service.value if service else run.project if run else None
    if not project:
        raise CliError(
            "no service: pass --service (or set DORA_INSIGHTS_SERVICE, or `service` in .dora-insights.toml)", USAGE
        )
    environment = environment_of(args, ctx, run)
    if not environment:
        where = f"{run.name} does not name the job's environment in its variables" if run else "not in a known CI"
        raise CliError(f"no environment: pass --env (or set DORA_INSIGHTS_ENV); {where}", USAGE)

    sha = repository = None
    if not args.skip_git:  # datadog-ci's --skip-git: send no commit sha and no repository
        sha = args.git_commit_sha or (run.sha if run else None) or git.head(ctx.cwd)
        repository = ci_module.clean_url(
            args.git_repository_url or (run.repository_url if run else None) or git.origin_url(ctx.cwd)
        )
    branch = args.branch or (run.branch if run else None) or git.branch(ctx.cwd)
    missing = [
        what
        for what, value in (("commit sha (--git-commit-sha)", sha), ("repository (--git-repository-url)", repository))
        if not value
    ]
    if not args.skip_git and missing:
        ctx.warn(
            f"no {' and no '.join(missing)}: neither the CI nor git names it; change lead time will fall back to"
            " version history for this deployment"
        )

    started_at = time_flag(args.started_at, "--started-at")
    if started_at is None and run is not None and run.started_at:
        try:
            started_at = format_time(parse_time(run.started_at))
        except ValueError:
            ctx.warn(f"ignoring the start time {run.name} gave ({run.started_at!r}): not a time")
    finished_at = time_flag(args.finished_at, "--finished-at") or format_time(ctx.now())
    if args.started_at is None and started_at is not None and parse_time(started_at) > parse_time(finished_at):
        # The CI's start is its server's clock, the finish this runner's: a short job on a runner a few
        # seconds behind would otherwise be refused (a start after the finish).
        ctx.warn(
            f"ignoring the start time {run.name if run else 'the CI'} gave ({started_at}): after the finish"
            f" ({finished_at}); the CI's and this machine's clocks differ"
        )
        started_at = None

    tenant = args.tenant
    client_id = args.id
    if client_id is None and run is not None:
        # A channel is part of the stream: `--channel beta` after `--channel stable` in one job is another
        # deployment. No channel and the service's default one are the same stream, and hash as before
        # channels counted, so a job without --channel keeps the ids it had.
        channel = (args.channel or "").strip().casefold()
        distinct = [channel] if channel and channel != DEFAULT_CHANNEL else []
        client_id = ci_module.idempotency_id(
            run,
            "deployment",
            project.casefold(),
            environment.casefold(),
            (tenant or "").casefold(),
            args.state,
            *distinct,
        )
    if client_id is None:  # outside CI: one id per invocation still makes this command's own retries safe
        client_id = f"cli-{uuid.uuid4().hex}"

    tags = list(args.tags or [])
    if branch and not any(t.split(":", 1)[0] == "branch" for t in tags):
        tags.append(fit(ctx, f"branch:{branch}", "the tag branch:<the branch>"))
    integration_branch = None
    if args.integration_branch is not None:
        integration_branch = args.integration_branch or branch
        if not integration_branch:
            raise CliError("--integration-branch without a value needs a branch (from the CI, git or --branch)", USAGE)
        if not args.integration_branch and len(integration_branch) > MAX_VALUE:
            ctx.warn(f"the branch has more than {MAX_VALUE} characters: sent without --integration-branch")
            integration_branch = None
    version = args.version or (
        fit(ctx, run.tag, f"the tag {run.name} built (the version)") if run and run.tag else None
    )

    body: dict[str, Any] = {
        "id": client_id,
        "project": project,
        "environment": environment,
        "finished_at": finished_at,
        "started_at": started_at,
        "version": version,
        "state": args.state,
        "rollback": True if args.rollback else None,
        "fixes": args.fixes,
        "tenant": tenant,
        "channel": args.channel,
        "team": args.team,
        "tenant_tags": list(args.tenant_tags or []) or None,
        "tags": tags or None,
        "commit_sha": sha,
        "repository": repository,
        "integration_branch": integration_branch,
        "source_name": args.source_name or (run.name if run else "dora-insights CLI"),
        "source_url": args.run_url or (run.run_url if run else None),
        "metadata": {"ci": run.context()} if run else None,
    }
    return {k: v for k, v in body.items() if v is not None}


def run(args: argparse.Namespace, ctx: Context) -> int:
    body = build(args, ctx)
    api = ctx.api(args, need_key=not args.dry_run)
    path = api.space_path("deployments")
    if args.dry_run:
        print(api.describe("POST", path, body), file=ctx.out)
        return OK
    what = f"sending deployment {body['id']}"
    attempts = api.connection.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            response = api.request("POST", path, body=body)
        except NetworkError as error:
            raise fail(error, api.connection, what=what) from None
        except ApiError as error:
            if error.status != 409:
                raise fail(error, api.connection, what=what) from None
            stored = _stored(api, body["id"], what)
            if stored is not None:
                _report(ctx, args, stored, body, repeat="conflict")
                return OK
            if attempt == attempts:
                raise fail(error, api.connection, what=what) from None
            ctx.sleep(backoff(attempt, api.connection.retry_delay))  # being written by a concurrent request
            continue
        stored = created(response, body["id"], api.connection, what=what)
        _report(ctx, args, stored, body, repeat=None if response.status == 201 else "same")
        return OK
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _stored(api: Api, deployment_id: str, what: str) -> dict[str, Any] | None:
    """After a 409: the deployment stored under this id, or None while it is still being written.
    A key without ``deployments:read`` cannot look, and a read still failing after its retries (5xx,
    network) cannot tell: the 409 itself says the id is taken, which is all idempotency needs, so it
    counts as stored."""
    try:
        found = api.request("GET", api.space_path("deployments", deployment_id))
    except ApiError as error:
        if error.status == 404:
            return None
        if error.status in (401, 403, 429) or error.status >= 500:
            return {"id": deployment_id}
        raise fail(error, api.connection, what=what) from None
    except NetworkError:
        return {"id": deployment_id}
    return found.body if isinstance(found.body, dict) else {"id": deployment_id}


def _report(ctx: Context, args: argparse.Namespace, stored: Any, sent: dict[str, Any], *, repeat: str | None) -> None:
    if args.output == "json":
        print(json.dumps(stored, indent=2, ensure_ascii=False), file=ctx.out)
        return
    record = stored if isinstance(stored, dict) else {}
    deployment_id = record.get("id", sent["id"])
    sha = str(sent.get("commit_sha") or "")[:12]
    where = ", ".join(x for x in (sha, sent.get("source_url")) if x)
    summary = f"{sent['project']} to {sent['environment']}" + (f" ({where})" if where else "")
    if repeat is None:
        print(f"Recorded deployment {deployment_id}: {summary}", file=ctx.out)
    elif repeat == "same":
        print(f"Already recorded: deployment {deployment_id} ({summary}); stored once", file=ctx.out)
    else:
        print(
            f"Already recorded: deployment {deployment_id} was sent before by this CI run and attempt; stored once"
            " (the first send stands)",
            file=ctx.out,
        )
