"""``figures.pages_wanted``: which deployments' further attribution pages a stream recompute reads for
rule 4 (METRICS §2). None unless a failure event of the stream names a commit, so the common recompute
reads nothing more; and then only the successful deployments with more than one page before the first
one whose own shas or first page show that commit (a later redeploy of it shows it without being the
first to ship it)."""

from __future__ import annotations

from typing import Any

from dora_insights.domain.figures import compute_stream_figures, pages_wanted
from dora_insights.domain.model import Attribution, Deployment, TaskState
from tests.unit.domain.builders import deployment, failure

SHIPPED = "a" * 40
ELSEWHERE = "b" * 40
MERGED = "c" * 40


def _paged(n: int, at: float, **fields: Any) -> Deployment:
    attribution = Attribution(
        state="Resolved",
        commits=[SHIPPED],
        pull_requests=[{"repository": "acme/shop", "number": 7, "merge_commit_sha": MERGED}],
        pages=3,
        details_id="details-1",
    )
    return deployment(n, at, attribution=attribution, **fields)


def test_no_failure_naming_a_commit_reads_no_page() -> None:
    history = [_paged(1, 1), _paged(2, 2)]
    assert pages_wanted(history, [failure(1, 3)]) == []
    assert pages_wanted(history, [failure(2, 3, deployment_id="Deployments-1", commit_sha=ELSEWHERE)]) == []


def test_a_commit_found_on_a_first_page_or_as_a_merge_commit_reads_no_page() -> None:
    history = [_paged(1, 1), _paged(2, 2)]
    assert pages_wanted(history, [failure(1, 3, commit_sha=SHIPPED[:7])]) == []
    assert pages_wanted(history, [failure(1, 3, commit_sha=MERGED)]) == []


def test_a_commit_nothing_holds_reads_the_paged_successes_only() -> None:
    one_page = deployment(3, 3, attribution=Attribution(state="Resolved", commits=[SHIPPED]))
    failed = _paged(4, 4, state=TaskState.FAILED)
    history = [_paged(1, 1), one_page, failed, _paged(2, 5)]
    wanted = pages_wanted(history, [failure(1, 6, commit_sha=ELSEWHERE)])
    assert [d.id for d in wanted] == [history[0].id, history[3].id]


def test_a_commit_a_later_deployment_shows_reads_the_paged_successes_before_it() -> None:
    redeploy = deployment(3, 3, commit_sha=ELSEWHERE)
    history = [_paged(1, 1), _paged(2, 2), redeploy, _paged(4, 4)]
    wanted = pages_wanted(history, [failure(1, 6, commit_sha=ELSEWHERE[:7])])
    assert [d.id for d in wanted] == [history[0].id, history[1].id]
    assert pages_wanted([redeploy, _paged(4, 4)], [failure(1, 6, commit_sha=ELSEWHERE)]) == []


def test_a_failure_of_another_environment_reads_no_page() -> None:
    history = [_paged(1, 1)]
    assert pages_wanted(history, [failure(1, 3, commit_sha=ELSEWHERE, environment_id="Environments-2")]) == []


def test_a_commit_on_a_further_page_charges_its_deployment() -> None:
    history = [_paged(1, 1), _paged(2, 2)]
    named = failure(1, 30, commit_sha=ELSEWHERE)
    before = compute_stream_figures(history, failure_events=[named])
    after = compute_stream_figures(history, failure_events=[named], shipped_beyond={history[1].id: [ELSEWHERE]})
    assert [f.change_failure for f in before] == [False, False]
    assert [f.change_failure for f in after] == [False, True]


def test_a_merge_commit_of_a_first_page_pull_request_charges_its_deployment() -> None:
    history = [deployment(1, 1), _paged(2, 2)]
    (first, second) = compute_stream_figures(history, failure_events=[failure(1, 30, commit_sha=MERGED)])
    assert (first.change_failure, second.change_failure) == (False, True)
