"""A stream that deploys branch heads (a staging environment deploying pull request branches before they
merge), through the real routes against moto (METRICS §5 rule 3): a pull request whose branch was deployed
to the stream before it merged still ships there once its merge commit is deployed."""

from __future__ import annotations

from tests.conftest import Api, Clock
from tests.support.code import commit, deploy, pull, send_changes, sha
from tests.support.native import attribution_of

SP = {"spaceId": "Spaces-1"}


def test_a_pull_request_merged_after_its_branch_was_deployed_to_staging_still_ships_there(
    api: Api, clock: Clock
) -> None:
    """METRICS §5 rule 3: the commits of `git log prev..sha` "plus the pull requests whose merge commits
    are among them"; "a change is deployed to a stream once a successful deployment in that stream has
    shipped it". Staging deploys main (2), then branch a's head (3), then branch b's head (5). Then PR #1
    (a, merge commit 4) and PR #2 (b, merge commit 6) merge into main: main = 1,2,3,4,5,6. Deploying 6
    to staging ships merge commit 4 and PR #1, which no staging deployment had shipped (`git log 5..6`
    holds 3 and 4: 5's deployment was of branch b, not of main)."""
    send_changes(api, commits=[commit(1, 1), commit(2, 2)])
    deploy(api, "2024-03-01T08:00:00Z", commit_sha=sha(1), environment="staging")
    deploy(api, "2024-03-01T09:00:00Z", commit_sha=sha(2), environment="staging")
    send_changes(api, commits=[commit(3, 3, "a")])
    send_changes(api, commits=[commit(5, 5, "b")])
    on_a = deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(3), environment="staging")
    on_b = deploy(api, "2024-03-01T11:00:00Z", commit_sha=sha(5), environment="staging")
    assert attribution_of(api, on_a)["commits"] == [sha(3)]
    assert attribution_of(api, on_b)["commits"] == [sha(5)]
    # Both merge into main (merge commits 4 and 6), main's push lists 3,4,5,6.
    send_changes(
        api,
        commits=[commit(3, 3), commit(4, 12), commit(5, 5), commit(6, 13)],
        pulls=[pull(1, 4, "2024-03-01T12:00:00Z"), pull(2, 6, "2024-03-01T13:00:00Z")],
    )
    merged = deploy(api, "2024-03-01T14:00:00Z", commit_sha=sha(6), environment="staging")
    shipped = attribution_of(api, merged)
    numbers = sorted(p["number"] for p in shipped["pull_requests"])
    assert numbers == [1, 2], shipped
    assert sha(4) in shipped["commits"], shipped
    # The branch heads were shipped with their own deployments: not again with the merge.
    assert sorted(shipped["commits"]) == [sha(4), sha(6)], shipped


def test_the_next_deployment_of_main_starts_after_the_merge_again(api: Api, clock: Clock) -> None:
    """Once a deployment of main shipped, the next one's range is bounded by its sha as ever."""
    send_changes(api, commits=[commit(1, 1), commit(2, 2)])
    deploy(api, "2024-03-01T08:00:00Z", commit_sha=sha(1), environment="staging")
    send_changes(api, commits=[commit(5, 5, "b")])
    deploy(api, "2024-03-01T09:00:00Z", commit_sha=sha(5), environment="staging")
    send_changes(api, commits=[commit(5, 5), commit(6, 13)], pulls=[pull(2, 6, "2024-03-01T13:00:00Z")])
    merged = deploy(api, "2024-03-01T14:00:00Z", commit_sha=sha(6), environment="staging")
    assert sorted(attribution_of(api, merged)["commits"]) == [sha(2), sha(6)]
    send_changes(api, commits=[commit(7, 15)])
    after = deploy(api, "2024-03-01T16:00:00Z", commit_sha=sha(7), environment="staging")
    assert attribution_of(api, after)["commits"] == [sha(7)]
