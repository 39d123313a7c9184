"""GitLab's DORA metrics API over HTTP against the local runtime (issue 19): deployments and a failure
posted, the schedule run, then ``GET /api/{spaceId}/dora/metrics`` as a GitLab client would call it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import requests

from dora_local.server import LocalRuntime

TIMEOUT = 60


def test_a_gitlab_style_client_reads_daily_counts_and_rates(local: LocalRuntime, http: requests.Session) -> None:
    project = f"gitlab-e2e-{uuid.uuid4().hex[:8]}"  # other e2e modules share Spaces-1
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    for n, (environment, hour) in enumerate([("production", 1), ("production", 2), ("staging", 3)]):
        body = {
            "project": project,
            "environment": environment,
            "version": f"1.{n}",
            "finished_at": (yesterday + timedelta(hours=hour)).isoformat(),
        }
        created = http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT)
        assert created.status_code == 201, created.text
    failure = {
        "project": project,
        "environment": "production",
        "started_at": (yesterday + timedelta(hours=4)).isoformat(),
        "finished_at": (yesterday + timedelta(hours=5)).isoformat(),
    }
    assert http.post(f"{local.url}/api/Spaces-1/failures", json=failure, timeout=TIMEOUT).status_code == 201
    assert requests.post(f"{local.url}/_local/schedule/run", timeout=TIMEOUT).status_code == 200
    url = f"{local.url}/api/Spaces-1/dora/metrics"
    window = {"start_date": str(yesterday.date()), "end_date": str(today.date()), "project": project}

    frequency = http.get(url, params={"metric": "deployment_frequency", **window}, timeout=TIMEOUT)
    assert frequency.status_code == 200, frequency.text
    assert frequency.json() == [
        {"date": str(yesterday.date()), "value": 2},
        {"date": str(today.date()), "value": 0},
    ]
    assert frequency.headers["X-Dora-Pending"] == "0"

    both = http.get(
        url,
        params=[
            ("metric", "deployment_frequency"),
            ("environment_tiers[]", "production"),
            ("environment_tiers[]", "staging"),
            *window.items(),
        ],
        timeout=TIMEOUT,
    )
    assert [row["value"] for row in both.json()] == [3, 0]

    rate = http.get(url, params={"metric": "change_failure_rate", "interval": "all", **window}, timeout=TIMEOUT)
    assert rate.json() == [{"date": None, "value": 0.5}]
    restore = http.get(url, params={"metric": "time_to_restore_service", **window}, timeout=TIMEOUT)
    assert [row["value"] for row in restore.json()] == [3600.0, None]

    bad = http.get(url, params={"metric": "deployment_frequency", "interval": "weekly"}, timeout=TIMEOUT)
    assert (bad.status_code, bad.json()) == (400, {"message": "The interval must be one of all,monthly,daily."})
