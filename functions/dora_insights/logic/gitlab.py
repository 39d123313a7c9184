"""GitLab webhook use cases: what GitLab's payloads need beyond the shared code data paths.

Pushes, merged merge requests and deployments go through ``logic.code`` and
``logic.deployments`` exactly as GitHub's do; the one difference is the merge time. GitLab's
``Merge Request Hook`` has no ``merged_at``: the merge event's ``updated_at`` is the merge time,
but a later event of a merged merge request (a label, a comment thread resolved) carries a later
``updated_at``. Such an event keeps the merge time already stored rather than moving it.
"""

from __future__ import annotations

from datetime import datetime

from dora_insights.dal.code import is_pull_request, pull_request_from_item
from dora_insights.domain.changes import PullRequest
from dora_insights.logic import code
from dora_insights.logic.ports import Ports


def record_merge_request(
    store: Ports,
    space_id: str,
    pr: PullRequest,
    now: datetime,
    *,
    merged_at_exact: bool,
    default_branch: str | None = None,
) -> tuple[PullRequest, bool]:
    """Store a merged merge request as a pull request (``logic.code.record_pull_request``).

    ``merged_at_exact`` False: ``pr.merged_at`` is only an upper bound (the event's
    ``updated_at``), used when the merge request is not stored yet (its merge event was never
    delivered); a stored merge time is kept. Answers the stored pull request and whether it changed."""
    if not merged_at_exact:
        item = store.code(space_id).get_pull_request_item(pr.repository, pr.number)
        if item is not None and is_pull_request(item):
            known = pull_request_from_item(item).merged_at
            if known is not None:
                pr = pr.model_copy(update={"merged_at": known})
    return code.record_pull_request(store, space_id, pr, now, default_branch=default_branch)
