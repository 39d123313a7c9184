"""Items an earlier commit wrote, read by the code of main after an in-place upgrade (part 2).

Each test builds an item as an earlier version stored it (stored by the current code, then altered to the
earlier shape with tests/support/table.py) and exercises the routes or the recompute that read it.
Expectation: read correctly (or refused with a clear 4xx), never a 500, never silently other numbers.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.dal import keys
from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support import table
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP1 = "Spaces-1"
SP = {"spaceId": SP1}
DEPLOYMENTS = "/api/{spaceId}/deployments"
FAILURES = "/api/{spaceId}/failures"


def _capture(monkeypatch: pytest.MonkeyPatch, cls: Any) -> list[Any]:
    """The drafts ``cls.fingerprint`` is called on from now on (what the dialect handed the core)."""
    seen: list[Any] = []
    original = cls.fingerprint

    def fingerprint(self: Any, *args: Any, **kwargs: Any) -> str:
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fingerprint", fingerprint)
    return seen


# ------------------------------------------------------------------------------------ idempotency
def test_a_deployment_stored_with_a_blank_version_before_dc204e7_takes_its_byte_identical_retry(
    api: Api, aws: Aws, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before dc204e7 a native create with ``"version": ""`` stored version "" and a ``body_hash`` of a draft
    whose version was "" (now the draft's version is None): its byte-identical retry after the upgrade is
    still the same deployment again (200), not a 409 for an id reused (``Draft.stored_fingerprints``)."""
    from dora_insights.domain.model import DeploymentDraft

    seen = _capture(monkeypatch, DeploymentDraft)
    body = {
        "id": "ci-run-1",
        "project": "shop",
        "environment": "production",
        "finished_at": "2024-03-01T10:00:00Z",
        "version": "",
    }
    first = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert first.status == 201, first.body
    draft = seen[0]
    old_hash = draft.model_copy(update={"version": ""}).fingerprint()  # as the code before 1dd4dc8/dc204e7
    stored = table.item(aws, keys.deployment(SP1, "ci-run-1"))
    stored["body_hash"] = old_hash
    stored["version"] = ""
    table.put(aws, stored)

    clock.advance(timedelta(seconds=5))
    again = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert again.status == 200, (again.status, again.body)
    assert again.body["id"] == "ci-run-1"


def test_a_deployment_stored_before_1dd4dc8_takes_its_byte_identical_retry(
    api: Api, aws: Aws, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control of the test above: a deployment whose ``body_hash`` is the request as sent (before 1dd4dc8
    hashed the defaults spelled out) is answered 200 on a byte-identical retry, as 1dd4dc8 says."""
    from dora_insights.domain.model import DeploymentDraft

    seen = _capture(monkeypatch, DeploymentDraft)
    body = {
        "id": "ci-run-2",
        "project": "shop",
        "environment": "production",
        "finished_at": "2024-03-01T10:00:00Z",
        "version": "1.0.0",
    }
    first = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert first.status == 201, first.body
    stored = table.item(aws, keys.deployment(SP1, "ci-run-2"))
    stored["body_hash"] = seen[0].fingerprint()
    table.put(aws, stored)
    clock.advance(timedelta(seconds=5))
    again = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert again.status == 200, (again.status, again.body)

    from dora_insights.domain.failures import FailureDraft

    seen = _capture(monkeypatch, FailureDraft)
    failure = {
        "id": "inc-2",
        "project": "shop",
        "environment": "production",
        "started_at": "2024-03-01T10:00:00Z",
        "version": "1.0.0",
    }
    assert api.call("POST", FAILURES, path_params=SP, body=failure, key=ADMIN_KEY).status == 201
    stored = table.item(aws, keys.failure(SP1, "inc-2"))
    stored["body_hash"] = seen[0].fingerprint()
    table.put(aws, stored)
    repeat = api.call("POST", FAILURES, path_params=SP, body=failure, key=ADMIN_KEY)
    assert repeat.status == 200, (repeat.status, repeat.body)


def test_a_failure_stored_with_a_blank_version_before_dc204e7_takes_its_byte_identical_retry(
    api: Api, aws: Aws, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for deployments: a native failure sent with ``"version": ""`` before dc204e7 has a ``body_hash``
    over version "": its byte-identical retry after the upgrade is the same failure again (200), so the
    CLI's resend of an open incident completes."""
    from dora_insights.domain.failures import FailureDraft

    seen = _capture(monkeypatch, FailureDraft)
    body = {
        "id": "inc-1",
        "project": "shop",
        "environment": "production",
        "started_at": "2024-03-01T10:00:00Z",
        "version": "",
    }
    first = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert first.status == 201, first.body
    stored = table.item(aws, keys.failure(SP1, "inc-1"))
    stored["body_hash"] = seen[0].model_copy(update={"version": ""}).fingerprint()
    stored["version"] = ""
    table.put(aws, stored)
    clock.advance(timedelta(seconds=5))
    again = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert again.status == 200, (again.status, again.body)


# ------------------------------------------------------------------------------- stored figures
_LATER = "2024-03-10T12:00:00Z"


def _history(api: Api, clock: Clock, lambda_context: Any) -> None:
    """shop in staging then production (release lead time across environments), a failure, a rollback and a
    fix, and an incident naming a deployment: every kind of stored figure and reason; computed."""
    from datetime import datetime

    clock.now = datetime(2024, 3, 10, 12, 0, tzinfo=clock.now.tzinfo)
    create_deployment(api, project="shop", environment="staging", finished_at="2024-03-01T08:00:00Z", version="1.0")
    create_deployment(
        api,
        project="shop",
        finished_at="2024-03-01T10:00:00Z",
        version="1.0",
        started_at="2024-03-01T09:50:00Z",
        id="d1",
    )
    create_deployment(api, project="shop", finished_at="2024-03-02T10:00:00Z", version="1.1", state="Failed")
    create_deployment(api, project="shop", finished_at="2024-03-02T11:00:00Z", version="1.0", id="d3")
    create_deployment(
        api,
        project="shop",
        finished_at="2024-03-03T10:00:00Z",
        version="1.2",
        started_at="2024-03-03T09:00:00Z",
        id="d4",
    )
    failure = {
        "project": "shop",
        "environment": "production",
        "started_at": "2024-03-03T11:00:00Z",
        "finished_at": "2024-03-03T13:00:00Z",
        "deployment_id": "d4",
    }
    assert api.call("POST", FAILURES, path_params=SP, body=failure, key=ADMIN_KEY).status == 201
    create_deployment(api, project="web", finished_at="2024-03-04T10:00:00Z", version="2.0")
    clock.advance(timedelta(seconds=10))
    run = scheduled_run(lambda_context)
    assert run["items_failed"] == 0, run


def _readings(api: Api, report_id: str) -> dict[str, Any]:
    """What the read surfaces answer about the history (statuses asserted 200)."""
    got: dict[str, Any] = {}
    summary = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SP,
        query={"from": "2024-02-20T00:00:00Z", "to": "2024-03-09T00:00:00Z"},
        key=ADMIN_KEY,
    )
    assert summary.status == 200, (summary.status, summary.body)
    got["summary"] = {k: v for k, v in summary.body.items() if k not in ("as_of", "computed_at")}
    for metric in ("deployment_frequency", "lead_time_for_changes", "change_failure_rate", "time_to_restore_service"):
        found = api.call(
            "GET",
            "/api/{spaceId}/dora/metrics",
            path_params=SP,
            query={"metric": metric, "start_date": "2024-02-28", "end_date": "2024-03-05"},
            key=ADMIN_KEY,
        )
        assert found.status == 200, (metric, found.status, found.body)
        got[metric] = found.body
    report = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": report_id},
        query={"timeRange": "LastMonth", "granularity": "Daily"},
        key=ADMIN_KEY,
    )
    assert report.status == 200, (report.status, report.body)
    got["report"] = _without_stamps(report.body)
    one = api.call("GET", DEPLOYMENTS + "/{deploymentId}", path_params={**SP, "deploymentId": "d4"}, key=ADMIN_KEY)
    assert one.status == 200, (one.status, one.body)
    got["d4"] = one.body.get("figures")
    return got


def _without_stamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_stamps(v)
            for k, v in value.items()
            if "computed" not in k.lower() and "asof" not in k.lower().replace("_", "")
        }
    if isinstance(value, list):
        return [_without_stamps(v) for v in value]
    return value


def _report(api: Api) -> str:
    made = api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "All"}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["Id"])


def test_registrations_from_before_digests_rollup_years_and_previews_read_and_recompute_alike(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """Stream registrations as written before 0caa713 (no ``release_horizon``/``release_digest``), 5bf4cb6
    (no ``rollup_years``) and faae652 (no ``project_deployments``): every read surface answers as before,
    one tick computes them again at most once, and the next tick computes nothing."""
    _history(api, clock, lambda_context)
    report_id = _report(api)
    right = _readings(api, report_id)
    for stored in table.scan(aws):
        if stored.get(keys.TYPE) == keys.T_STREAM:
            for name in ("release_horizon", "release_digest", "rollup_years", "project_deployments"):
                stored.pop(name, None)
            table.put(aws, stored)
    assert _readings(api, report_id) == right
    clock.advance(timedelta(minutes=5))
    assert scheduled_run(lambda_context)["items_failed"] == 0
    assert _readings(api, report_id) == right
    clock.advance(timedelta(minutes=5))
    scheduled_run(lambda_context)
    clock.advance(timedelta(minutes=5))
    assert scheduled_run(lambda_context)["streams_processed"] == 0


def test_figures_records_from_before_reasons_durations_and_negative_leads_are_read_then_computed_again(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """StreamFigures ``records`` from before da04c6f (no ``change_failure_reasons``/``rework_reasons``), 79b65d8
    (no ``change_failure_computed``) and before ``duration_seconds``/``lead_time_negative``, in a space from
    before f197bfd (no ``figures_format``): every read surface answers (no 500) before the recompute visits the
    space, and after one tick the answers are this version's."""
    _history(api, clock, lambda_context)
    report_id = _report(api)
    right = _readings(api, report_id)
    old = (
        "change_failure_reasons",
        "rework_reasons",
        "change_failure_computed",
        "change_failure_override",
        "duration_seconds",
        "lead_time_negative",
    )
    for stored in table.scan(aws):
        if stored.get(keys.TYPE) == keys.T_FIGURES:
            records = json.loads(stored["records"])
            stored["records"] = json.dumps([{k: v for k, v in r.items() if k not in old} for r in records])
            table.put(aws, stored)
    space = table.item(aws, keys.space(SP1))
    space.pop("figures_format", None)
    table.put(aws, space)
    _readings(api, report_id)  # served as stored until the recompute visits the space, but served
    clock.advance(timedelta(minutes=5))
    assert scheduled_run(lambda_context)["items_failed"] == 0
    assert _readings(api, report_id) == right
