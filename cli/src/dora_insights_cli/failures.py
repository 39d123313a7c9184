"""``dora-insights failure open|resolve``: native failure (incident) events, ``POST /api/{spaceId}/failures``.

A failure event is stored once per id and never changed in place: the same id with other values is
a 409. So ``open`` records the event without ``finished_at`` and prints its id, and ``resolve``
records it again with ``finished_at``: it reads the open event (``GET /api/{spaceId}/failures/{id}``,
else the list), and when the open one holds the id, replaces it (``DELETE`` then ``POST``, on
services that offer ``DELETE /api/{spaceId}/failures/{id}``). ``resolve`` of an id never opened
records the whole failure at once (``--started-at`` needed).
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from dora_insights_cli import ci as ci_module
from dora_insights_cli.client import Api, ApiError, NetworkError, created, fail, not_the_service
from dora_insights_cli.context import Context
from dora_insights_cli.deployment import environment_of, time_flag
from dora_insights_cli.errors import NOT_FOUND, OK, REJECTED, USAGE, CliError
from dora_insights_cli.times import format_time

LIST_PAGES = 20  # pages of 500 read when looking for an open failure in the list
# What a resolve copies from the open event when its flag is not given.
CARRIED = (
    "projects",
    "environment",
    "name",
    "severity",
    "started_at",
    "deployment_id",
    "commit_sha",
    "repository",
    "team",
    "version",
    "tags",
)


def _projects(args: argparse.Namespace, ctx: Context) -> list[str]:
    if args.service:
        return list(dict.fromkeys(args.service))
    found = ctx.sources(args).lookup(None, "--service", ("DORA_INSIGHTS_SERVICE", "DD_SERVICE"), "service")
    if found is not None:
        return [found.value]
    run = ctx.ci(args)
    return [run.project] if run is not None and run.project else []


def _fields(args: argparse.Namespace, ctx: Context, *, defaults: bool) -> dict[str, Any]:
    """What the flags say of the failure, None where they say nothing; with ``defaults``, the service
    and environment fall back on the environment variables, config files and CI."""
    explicit_env = ctx.environment_setting(args)
    return {
        "projects": (_projects(args, ctx) if defaults else list(dict.fromkeys(args.service or []))) or None,
        "environment": environment_of(args, ctx, ctx.ci(args))
        if defaults
        else (explicit_env.value if explicit_env else None),
        "name": args.name,
        "severity": args.severity,
        "started_at": time_flag(args.started_at, "--started-at"),
        "deployment_id": args.deployment_id,
        "commit_sha": args.git_commit_sha,  # the cause, only when named: never the CI's own commit
        "repository": args.git_repository_url,
        "team": args.team,
        "version": args.version,
        "tags": list(args.tags) if args.tags else None,
    }


def _body(failure_id: str, fields: dict[str, Any], finished_at: str | None) -> dict[str, Any]:
    body = {"id": failure_id, **fields, "finished_at": finished_at}
    projects = body.pop("projects", None) or []
    if len(projects) == 1:
        body["project"] = projects[0]
    elif projects:
        body["projects"] = projects
    return {k: v for k, v in body.items() if v is not None}


def open_failure(args: argparse.Namespace, ctx: Context) -> int:
    fields = _fields(args, ctx, defaults=True)
    if not fields["projects"]:
        raise CliError("no service: pass --service (one or more) or set DORA_INSIGHTS_SERVICE", USAGE)
    fields["started_at"] = fields["started_at"] or format_time(ctx.now())
    failure_id = args.id
    run = ctx.ci(args)
    if failure_id is None and run is not None:
        failure_id = ci_module.idempotency_id(
            run,
            "failure",
            ",".join(sorted(p.casefold() for p in fields["projects"])),
            (fields["environment"] or "").casefold(),
            args.name or "",
        )
    body = _body(failure_id or f"cli-{uuid.uuid4().hex}", fields, None)
    api = ctx.api(args, need_key=not args.dry_run)
    path = api.space_path("failures")
    if args.dry_run:
        print(api.describe("POST", path, body), file=ctx.out)
        return OK
    what = f"opening failure {body['id']}"
    try:
        stored = _post(api, body, what)
    except ApiError as error:
        if error.status != 409:
            raise fail(error, api.connection, what=what) from None
        stored = find(api, body["id"], fields["projects"], what)
        if stored is None:
            raise fail(error, api.connection, what=what) from None
        _print(ctx, args, stored, f"Already open: failure {body['id']} was opened before (stored once)")
        return OK
    _print(
        ctx,
        args,
        stored,
        f"Opened failure {body['id']}: resolve it with `dora-insights failure resolve --id {body['id']}`",
    )
    return OK


def resolve_failure(args: argparse.Namespace, ctx: Context) -> int:
    fields = _fields(args, ctx, defaults=False)
    finished_at = time_flag(args.finished_at, "--finished-at") or format_time(ctx.now())
    api = ctx.api(args, need_key=not args.dry_run)
    what = f"resolving failure {args.id}"
    existing = None if args.dry_run else find(api, args.id, fields["projects"] or [], what)
    if existing is not None and existing.get("finished_at"):
        _print(ctx, args, existing, f"Already resolved: failure {args.id} finished at {existing['finished_at']}")
        return OK
    if existing is not None:  # the open event's values, where no flag says otherwise
        for key in CARRIED:
            if fields.get(key) is None and existing.get(key) not in (None, []):
                fields[key] = existing[key]
    else:  # recorded whole: the service and environment defaults apply, as for `open`
        fallback = _fields(args, ctx, defaults=True)
        fields["projects"], fields["environment"] = fallback["projects"], fallback["environment"]
    if not fields["projects"] or not fields["started_at"]:
        if args.dry_run:
            raise CliError("a dry run does not look the failure up: pass --service and --started-at", USAGE)
        raise CliError(
            f"failure '{args.id}' is not recorded in space '{api.connection.space}': to record it resolved, pass"
            " --service and --started-at",
            NOT_FOUND,
        )
    body = _body(args.id, fields, finished_at)
    path = api.space_path("failures")
    if args.dry_run:
        print(api.describe("POST", path, body), file=ctx.out)
        return OK
    try:
        stored = _post(api, body, what)
    except ApiError as error:
        if error.status != 409 or existing is None:
            raise fail(error, api.connection, what=what) from None
        stored = _replace(api, body, what)
    _print(ctx, args, stored, f"Resolved failure {args.id} at {finished_at}")
    return OK


def _post(api: Api, body: dict[str, Any], what: str) -> Any:
    """The stored event; :class:`ApiError` for a refusal (the caller decides), a :class:`CliError` for
    the rest, an answer that is not the service's included."""
    try:
        response = api.request("POST", api.space_path("failures"), body=body)
    except NetworkError as error:
        raise fail(error, api.connection, what=what) from None
    return created(response, body["id"], api.connection, what=what)


def _cannot_replace(what: str, failure_id: str, status: int) -> CliError:
    return CliError(
        f"{what}: failure '{failure_id}' is recorded open, and this service cannot replace a failure event"
        f" (DELETE /api/{{spaceId}}/failures/{{id}} answered {status}). The resolved event was not"
        " stored; send it under a new --id once the open one is deleted.",
        REJECTED,
    )


def _not_stored(what: str, body: dict[str, Any], error: Exception) -> CliError:
    return CliError(
        f"{what}: the open event was deleted but the resolved one could not be stored; send it again with"
        f" `failure resolve` and these values: {json.dumps(body)} ({error})",
        REJECTED,
    )


def _replace(api: Api, body: dict[str, Any], what: str) -> Any:
    """The open event holds the id: delete it and record the resolved one under the same id.

    A 404 to the DELETE means the event is gone already (most often this DELETE's own retry, its first
    answer lost after the delete was done): the resolved event is recorded all the same. Only a service
    without the route answers 404 with the open event still there, and the POST's 409 then says so."""
    deleted_status = 204
    try:
        api.request("DELETE", api.space_path("failures", body["id"]))
    except ApiError as error:
        if error.status == 405:
            raise _cannot_replace(what, body["id"], error.status) from None
        if error.status != 404:
            raise fail(error, api.connection, what=what) from None
        deleted_status = 404
    except NetworkError as error:
        raise fail(error, api.connection, what=what) from None
    try:
        return _post(api, body, what)
    except ApiError as error:
        if error.status == 409 and deleted_status == 404:
            raise _cannot_replace(what, body["id"], deleted_status) from None
        raise _not_stored(what, body, error) from None
    except CliError as error:
        raise _not_stored(what, body, error) from None


def find(api: Api, failure_id: str, projects: list[str], what: str) -> dict[str, Any] | None:
    """The failure stored under ``failure_id``: ``GET .../failures/{id}`` where the service has it, else
    the newest ``LIST_PAGES`` pages of the list (filtered by the first project given). None: not found."""
    try:
        found = api.request("GET", api.space_path("failures", failure_id))
        if isinstance(found.body, dict):
            return found.body
    except ApiError as error:
        if error.status not in (404, 405):
            raise fail(error, api.connection, what=what) from None
    except NetworkError as error:
        raise fail(error, api.connection, what=what) from None
    cursor: str | None = None
    for _ in range(LIST_PAGES):
        query = {"limit": "500", "cursor": cursor, "project": projects[0] if projects else None}
        try:
            page = api.request("GET", api.space_path("failures"), query=query).body
        except (ApiError, NetworkError) as error:
            raise fail(error, api.connection, what=what) from None
        items = page.get("items", []) if isinstance(page, dict) else []
        if not isinstance(items, list):
            raise not_the_service(what, "the failures list answered `items` that is not a list")
        for item in items:
            if isinstance(item, dict) and item.get("id") == failure_id:
                return item
        cursor = page.get("next_cursor") if isinstance(page, dict) else None
        if not cursor:
            return None
    return None


def _print(ctx: Context, args: argparse.Namespace, stored: Any, text: str) -> None:
    if args.output == "json":
        print(json.dumps(stored, indent=2, ensure_ascii=False), file=ctx.out)
    else:
        print(text, file=ctx.out)
