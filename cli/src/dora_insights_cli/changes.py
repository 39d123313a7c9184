"""``dora-insights changes``: the commits of a range of the local checkout (``git log``) to the native
changes route (``POST /api/{spaceId}/changes``), for VCS hosts whose webhooks the service does not take.

The range defaults to what the CI says this run pushed (GitHub's event ``before``, GitLab's
``CI_COMMIT_BEFORE_SHA``, Jenkins' ``GIT_PREVIOUS_SUCCESSFUL_COMMIT``, up to the run's sha), else
``HEAD``; at most ``--max-count`` commits, the newest. The service keeps a commit once per repository
and sha, so sending a range again stores nothing new. Commits are sent oldest first (parents before
children), in batches, with their committer time as the commit timestamp.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dora_insights_cli import ci as ci_module
from dora_insights_cli import git
from dora_insights_cli.client import ApiError, NetworkError, fail, not_the_service
from dora_insights_cli.context import Context
from dora_insights_cli.errors import OK, USAGE, CliError

BATCH = 500  # commits per request at most: well under the route's 5,000
BATCH_BYTES = 768 * 1024  # and a request's JSON at most this big: under the route's 1 MiB body


def revisions(args: argparse.Namespace, run: ci_module.CiRun | None, ctx: Context) -> str:
    """The range to send: ``range``, else what the CI run pushed, else its sha (or ``HEAD``). A pushed
    range whose ``before`` the checkout lacks (a force push replaced it) falls back to the run's sha."""
    if args.range:
        return str(args.range)
    head = run.sha if run is not None and run.sha else "HEAD"
    if run is not None and run.before_sha:
        if git.resolve(run.before_sha, ctx.cwd) is not None:
            return f"{run.before_sha}..{run.sha or 'HEAD'}"
        ctx.warn(
            f"the commit {run.name} says was pushed over ({run.before_sha[:12]}) is not in this checkout (a force"
            f" push, or a shallow clone): sending the history of {head[:12]} instead"
        )
    return head


def batches_of(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Requests of at most ``BATCH`` commits and ``BATCH_BYTES`` of JSON each (long non-ASCII subjects
    make a commit several kilobytes)."""
    batches: list[list[dict[str, Any]]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, ensure_ascii=False).encode("utf-8")) + 1
        if not batches or len(batches[-1]) == BATCH or size + item_size > BATCH_BYTES:
            batches.append([])
            size = len('{"commits": []}')
        batches[-1].append(item)
        size += item_size
    return batches


def _count_of(counts: dict[str, Any], key: str, default: int, what: str) -> int:
    value = counts.get(key, default)
    if type(value) is not int or value < 0:
        raise not_the_service(what, f"the answer's commits.{key} is {value!r}, not a count")
    return value


def run(args: argparse.Namespace, ctx: Context) -> int:
    ci_run = ctx.ci(args)
    repository = ci_module.clean_url(
        args.git_repository_url or (ci_run.repository_url if ci_run else None) or git.origin_url(ctx.cwd)
    )
    if not repository:
        raise CliError("no repository: pass --git-repository-url (no CI variable or git origin names one)", USAGE)
    branch = args.branch or (ci_run.branch if ci_run else None) or git.branch(ctx.cwd)
    if not branch:
        raise CliError("no branch: pass --branch (the checkout is on a detached HEAD and the CI names none)", USAGE)
    default_branch = args.default_branch or (ci_run.default_branch if ci_run else None)
    revision_range = revisions(args, ci_run, ctx)
    try:
        commits = git.log(revision_range, max_count=args.max_count or None, cwd=ctx.cwd)
    except CliError as error:
        raise CliError(
            f"{error.message} (a shallow CI checkout lacks older commits: fetch the history, e.g."
            " actions/checkout `fetch-depth: 0` or GitLab `GIT_DEPTH: 0`)",
            error.code,
        ) from None
    items: list[dict[str, Any]] = []
    for commit in commits:
        item = {"repository": repository, "branch": branch, "sha": commit.sha, "timestamp": commit.timestamp}
        if commit.message:
            item["message"] = commit.message
        if default_branch:
            item["default_branch"] = default_branch
        items.append(item)
    api = ctx.api(args, need_key=not args.dry_run)
    path = api.space_path("changes")
    batches = batches_of(items)
    if args.dry_run:
        for batch in batches:
            print(api.describe("POST", path, {"commits": batch}), file=ctx.out)
        if not batches:
            print(f"no commits in {revision_range}: nothing to send", file=ctx.out)
        return OK
    received = stored = sent = 0
    for batch in batches:
        what = f"sending commits {sent + 1}-{sent + len(batch)} of {len(items)}"
        sent += len(batch)
        try:
            response = api.request("POST", path, body={"commits": batch})
        except (ApiError, NetworkError) as error:
            raise fail(error, api.connection, what=what) from None
        answer = response.body
        if not isinstance(answer, dict) or not isinstance(answer.get("commits"), dict):
            raise not_the_service(
                what,
                f"{api.connection.url} answered {response.status} with something other than a JSON object with"
                " `commits` (nothing is known to be stored)",
            )
        counts = answer["commits"]
        received += _count_of(counts, "received", len(batch), what)
        stored += _count_of(counts, "stored", 0, what)
    if args.output == "json":
        print(json.dumps({"commits": {"received": received, "stored": stored}}, indent=2), file=ctx.out)
    else:
        print(
            f"Sent {len(items)} commit(s) of {repository} on {branch} ({revision_range}): {stored} new, "
            f"{received - stored} already known",
            file=ctx.out,
        )
    return OK
