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
from dora_insights_cli.client import ApiError, NetworkError, fail
from dora_insights_cli.context import Context
from dora_insights_cli.errors import OK, REJECTED, USAGE, CliError

BATCH = 500  # commits per request: well under the route's 5,000 and its 1 MiB body


def revisions(args: argparse.Namespace, run: ci_module.CiRun | None) -> str:
    if args.range:
        return str(args.range)
    if run is not None and run.before_sha:
        return f"{run.before_sha}..{run.sha or 'HEAD'}"
    return run.sha if run is not None and run.sha else "HEAD"


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
    revision_range = revisions(args, ci_run)
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
    batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    if args.dry_run:
        for batch in batches:
            print(api.describe("POST", path, {"commits": batch}), file=ctx.out)
        if not batches:
            print(f"no commits in {revision_range}: nothing to send", file=ctx.out)
        return OK
    received = stored = 0
    for number, batch in enumerate(batches, 1):
        what = f"sending commits {BATCH * (number - 1) + 1}-{BATCH * (number - 1) + len(batch)} of {len(items)}"
        try:
            response = api.request("POST", path, body={"commits": batch})
        except (ApiError, NetworkError) as error:
            raise fail(error, api.connection, what=what) from None
        answer = response.body
        if not isinstance(answer, dict) or not isinstance(answer.get("commits"), dict):
            raise CliError(
                f"{what}: {api.connection.url} answered {response.status} with something that is not the service's"
                " answer (a JSON object with `commits`): nothing is known to be stored. Check that DORA_INSIGHTS_URL"
                " (--url) is the service's own URL, not a page in front of it.",
                REJECTED,
            )
        counts = answer["commits"]
        received += int(counts.get("received", len(batch)))
        stored += int(counts.get("stored", 0))
    if args.output == "json":
        print(json.dumps({"commits": {"received": received, "stored": stored}}, indent=2), file=ctx.out)
    else:
        print(
            f"Sent {len(items)} commit(s) of {repository} on {branch} ({revision_range}): {stored} new, "
            f"{received - stored} already known",
            file=ctx.out,
        )
    return OK
