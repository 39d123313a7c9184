"""Code data for the attribution tests: numbered commits of one repository sent through the native changes
API (``/api/{spaceId}/changes``), pull requests merged by them, and deployments naming them, in the
``space`` fixture's space with its admin key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.conftest import ADMIN_KEY, Api
from tests.support.native import create_deployment

REPO = "acme/shop"


def sha(n: int) -> str:
    """Commit ``n``'s sha: ``n + 1`` in hex, 40 digits."""
    return f"{n + 1:040x}"


def commit(n: int, hour: int, branch: str = "main") -> dict[str, Any]:
    """Commit ``n`` of ``REPO`` on ``branch``, made at ``hour``:00 on 2024-03-01."""
    return {"repository": REPO, "branch": branch, "sha": sha(n), "timestamp": f"2024-03-01T{hour:02d}:00:00Z"}


def pull(number: int, merge: int, merged_at: str, created_at: str = "2024-03-01T00:30:00Z") -> dict[str, Any]:
    """Pull request ``number`` of ``REPO`` merged into main by commit ``merge``."""
    return {
        "repository": REPO,
        "number": number,
        "base_ref": "main",
        "merge_commit_sha": sha(merge),
        "created_at": created_at,
        "merged_at": merged_at,
    }


def send_changes(
    api: Api,
    *,
    commits: Sequence[Mapping[str, Any]] = (),
    pulls: Sequence[Mapping[str, Any]] = (),
    space: str = "Spaces-1",
    key: str = ADMIN_KEY,
) -> None:
    """POST the commits and pull requests to the changes API (asserts it took them)."""
    body = {"commits": list(commits), "pull_requests": list(pulls)}
    result = api.call("POST", "/api/{spaceId}/changes", path_params={"spaceId": space}, body=body, key=key)
    assert result.status < 300, result.body


def deploy(api: Api, finished_at: str, **fields: Any) -> str:
    """A native deployment of ``REPO`` (unless ``fields`` names another repository) finished at ``finished_at``;
    its id."""
    fields.setdefault("repository", REPO)
    return str(create_deployment(api, finished_at=finished_at, **fields)["id"])
