"""Native deployments (``/api/{spaceId}/deployments``) created and read back through the routes, for the
tests whose subject is something else (attribution, figures, metrics, the recompute...).

Every helper works in the ``space`` fixture's space with its admin key unless told another ``space`` and
``key``. The ones named for what they return assert the answer's status, the body in the message;
:func:`get_deployment` asserts nothing, for a test that checks the answer itself.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api, HttpResult

SPACE = "Spaces-1"  # the ``space`` fixture's space, whose admin key is ADMIN_KEY
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"


def create_deployment(
    api: Api,
    *,
    space: str = SPACE,
    key: str = ADMIN_KEY,
    expect: int = 201,
    project: str = "shop",
    environment: str = "production",
    finished_at: str | int = "2024-03-01T12:00:00Z",
    **fields: Any,
) -> dict[str, Any]:
    """``POST`` a deployment of ``project`` to ``environment`` finished at ``finished_at``, with ``fields``
    (``version``, ``commit_sha``, ``id``...) added; asserts the status is ``expect`` (201: created, 200: the
    same deployment again). The answer's body."""
    body = {"project": project, "environment": environment, "finished_at": finished_at, **fields}
    created = api.call("POST", DEPLOYMENTS, path_params={"spaceId": space}, body=body, key=key)
    assert created.status == expect, created.body
    return created.body  # type: ignore[no-any-return]


def get_deployment(
    api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY, query: dict[str, str] | None = None
) -> HttpResult:
    """``GET`` one deployment (``query``: e.g. ``attribution_cursor``), whatever the answer: nothing asserted."""
    return api.call("GET", ONE, path_params={"spaceId": space, "deploymentId": deployment_id}, query=query, key=key)


def list_all(
    api: Api, route: str = DEPLOYMENTS, *, space: str = SPACE, key: str = ADMIN_KEY, limit: int = 500
) -> list[dict[str, Any]]:
    """Every item of a cursor-paged native list (deployments by default, or failures), page after page."""
    items: list[dict[str, Any]] = []
    query = {"limit": str(limit)}
    while True:
        r = api.call("GET", route, path_params={"spaceId": space}, query=query, key=key)
        assert r.status == 200, r.body
        items += r.body["items"]
        if not r.body.get("next_cursor"):
            return items
        query = {"limit": str(limit), "cursor": r.body["next_cursor"]}


def read_deployment(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> dict[str, Any]:
    """The deployment as the native API shows it; asserts a 200."""
    found = get_deployment(api, deployment_id, space=space, key=key)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def attribution_of(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> Any:
    """The deployment's ``attribution`` (its first page), None while it has none; asserts a 200."""
    return read_deployment(api, deployment_id, space=space, key=key)["attribution"]


def send_stream(
    api: Api,
    states: list[str | None],
    code: list[dict[str, Any]],
    *,
    space: str = SPACE,
    key: str = ADMIN_KEY,
    first_version: int = 1,
) -> list[str | None]:
    """One deployment of the stream an hour from 2024-03-01 10:00 per state (None: not sent), the n-th
    naming ``code[n]`` (its repository and sha, say) and version ``first_version + n``; their ids (None
    for those not sent)."""
    ids: list[str | None] = []
    for n, state in enumerate(states):
        if state is None:
            ids.append(None)
            continue
        created = create_deployment(
            api,
            space=space,
            key=key,
            version=f"{first_version + n}.0",
            state=state,
            finished_at=f"2024-03-01T{10 + n}:00:00Z",
            **code[n],
        )
        ids.append(created["id"])
    return ids


def as_client(api: Api, method: str, route: str, *, space: str = SPACE, key: str = ADMIN_KEY, **kw: Any) -> HttpResult:
    """``route`` called in ``space`` (``path``: the other path parameters) as a client sees it: an exception
    escaping the handler is API Gateway's bare 500."""
    try:
        return api.call(method, route, path_params={"spaceId": space, **kw.pop("path", {})}, key=key, **kw)
    except Exception as error:
        return HttpResult(status=500, headers={}, body={"exception": repr(error)})


def ok(result: HttpResult, status: int = 200) -> Any:
    """The body of an answer that must have ``status``."""
    assert result.status == status, result.body
    return result.body
