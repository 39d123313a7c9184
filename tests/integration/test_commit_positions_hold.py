"""A commit keeps the branch position it first got (issue 17): a client's quick retry of a ``/changes``
post, read before DynamoDB's replicas show the first one (``tests/support/replica_lag.py``), and two
overlapping posts racing between their read and their write, store nothing twice and move nothing.

Positions are what branch ranges and branch marks cover (``domain.attribution.ShippedRange``), so a
commit given a new position after a deployment shipped it would fall out of (or into) ranges."""

from __future__ import annotations

from typing import Any

import pytest

from dora_insights.errors import WriteContendedError
from tests.conftest import ADMIN_KEY, Api
from tests.support.replica_lag import ReplicaLag

SP = {"spaceId": "Spaces-1"}
REPO = "acme/shop"
NOW = "2024-03-01T12:00:00Z"


def sha(n: int) -> str:
    return f"{n + 1:040x}"


def _post(api: Api, shas: list[int]) -> dict[str, Any]:
    commits = [
        {"repository": REPO, "branch": "main", "sha": sha(n), "timestamp": f"2024-03-01T10:{n % 60:02d}:00Z"}
        for n in shas
    ]
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": commits}, key=ADMIN_KEY)
    assert result.status < 300, result.body
    return result.body["commits"]  # type: ignore[no-any-return]


def _positions(store: Any, shas: list[int]) -> dict[int, int]:
    from dora_insights.dal import keys

    found = {}
    for n in shas:
        item = store.get(keys.commit("Spaces-1", REPO, sha(n), "main"), consistent=True)
        found[n] = int(item["position"])
    return found


def test_a_quick_retry_of_a_post_finds_its_commits_and_gives_them_no_new_position(
    api: Api, store: Any, replica_lag: ReplicaLag
) -> None:
    replica_lag.on()  # the first post's commits are not on every replica yet when the retry reads
    assert _post(api, [1, 2, 3]) == {"received": 3, "stored": 3}
    first = _positions(store, [1, 2, 3])

    again = _post(api, [1, 2, 3])

    assert again == {"received": 3, "stored": 0}, replica_lag.hidden
    assert _positions(store, [1, 2, 3]) == first


def _racing(monkeypatch: pytest.MonkeyPatch, api: Api, shas: list[int]) -> None:
    """The next push reads what is stored, then another post of ``shas`` stores them before it writes."""
    from dora_insights.dal.code import CodeStore

    read = CodeStore.existing_commits
    armed = [True]

    def existing_then_raced(self: CodeStore, repository: str, pairs: Any) -> set[tuple[str, str]]:
        found = read(self, repository, pairs)
        if armed[0]:
            armed[0] = False
            _post(api, shas)  # the other request, between this one's read and its write
        return found

    monkeypatch.setattr(CodeStore, "existing_commits", existing_then_raced)


def test_two_posts_of_the_same_commits_racing_store_them_once_where_the_first_put_them(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _racing(monkeypatch, api, [1, 2, 3])

    late = _post(api, [1, 2, 3])

    assert late == {"received": 3, "stored": 0}
    assert _positions(store, [1, 2, 3]) == {1: 0, 2: 1, 3: 2}  # the racing post's, in push order


def test_an_overlapping_post_racing_stores_only_its_new_commits_after_the_others(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _racing(monkeypatch, api, [1, 2, 3])

    late = _post(api, [2, 3, 4, 5])

    assert late == {"received": 4, "stored": 2}
    positions = _positions(store, [1, 2, 3, 4, 5])
    assert [positions[n] for n in (1, 2, 3)] == [0, 1, 2]
    assert positions[3] < positions[4] < positions[5]


def test_commits_past_one_transactions_4_mb_are_stored_in_several(store: Any) -> None:
    from dora_insights.dal.code import CodeStore
    from dora_insights.domain.changes import Commit

    code = CodeStore(store, "Spaces-1")
    commits = [
        Commit(repository=REPO, sha=sha(n), timestamp=NOW, branch="main", position=n, message="m" * 60_000)
        for n in range(80)  # 80 x 60 KB: within 100 actions, over 4 MB
    ]

    assert code.put_commits(commits) == 80
    assert code.put_commits(commits) == 0  # each stored once, none written again
    assert sorted(_positions(store, list(range(80))).values()) == list(range(80))


def test_commits_still_contended_after_the_retries_are_a_503(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dora_insights.dal.code import CodeStore
    from dora_insights.dal.store import Store
    from dora_insights.domain.changes import Commit

    def contended(self: Store, operations: Any, **_: Any) -> list[dict[str, str]]:
        return [{"Code": "TransactionConflict"} for _ in operations]

    monkeypatch.setattr(Store, "transact_contended", contended)
    commit = Commit(repository=REPO, sha=sha(1), timestamp=NOW, branch="main", position=0)

    with pytest.raises(WriteContendedError):
        CodeStore(store, "Spaces-1").put_commits([commit])
