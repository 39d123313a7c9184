"""Incident webhooks over HTTP against the local runtime: an admin maps a service, PagerDuty and Opsgenie
post their documented payloads (times moved to the last hours), and the incidents' time to restore is in
/summary after the scheduled recompute."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from dora_local.server import LocalRuntime
from tests.support.events import load_event

TIMEOUT = 30


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _summary(local: LocalRuntime, http: requests.Session, project: str, start: datetime) -> dict[str, Any]:
    assert requests.post(f"{local.url}/_local/schedule/run", timeout=TIMEOUT).status_code == 200
    query = {"project": project, "from": _iso(start - timedelta(hours=1)), "to": _iso(datetime.now(UTC))}
    response = http.get(f"{local.url}/api/Spaces-1/summary", params=query, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return dict(response.json()["time_to_restore"])


def test_pagerduty_incident_restores_in_the_summary(local: LocalRuntime, http: requests.Session) -> None:
    from dora_insights.dialects.incidents import pagerduty_signature

    run = uuid.uuid4().hex[:10]
    service, project, secret = f"Checkout {run}", f"e2e-pd-{run}", f"pd-e2e-secret-{run}-0123456789"
    config = {"secret": secret, "services": {service: {"project": project, "environment": "production"}}}
    configured = http.put(f"{local.url}/api/Spaces-1/webhooks/pagerduty", json=config, timeout=TIMEOUT)
    assert configured.status_code == 200, configured.text
    assert configured.json()["secret"] is None  # never echoed

    start = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    end = start + timedelta(minutes=42)

    def post(name: str, event_id: str, occurred: datetime, signing: str = secret) -> requests.Response:
        payload = load_event(name)
        payload["event"]["id"] = event_id
        payload["event"]["occurred_at"] = _iso(occurred)
        payload["event"]["data"]["id"] = f"Q{run.upper()}"
        payload["event"]["data"]["created_at"] = _iso(start)
        payload["event"]["data"]["service"]["summary"] = service
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": pagerduty_signature(signing, raw)}
        return requests.post(f"{local.url}/webhooks/pagerduty/Spaces-1", data=raw, headers=headers, timeout=TIMEOUT)

    assert (
        post("pagerduty_incident_triggered.json", f"t-{run}", start, signing="wrong-secret-0123456789").status_code
        == 401
    )
    assert post("pagerduty_incident_triggered.json", f"t-{run}", start).status_code == 201
    assert post("pagerduty_incident_acknowledged.json", f"a-{run}", start + timedelta(minutes=1)).status_code == 202
    resolved = post("pagerduty_incident_resolved.json", f"r-{run}", end)
    assert resolved.status_code == 200, resolved.text
    again = post("pagerduty_incident_resolved.json", f"r-{run}", end + timedelta(hours=1))
    assert again.json()["duplicate"] is True  # the redelivery changed nothing (not even the end)
    restore = _summary(local, http, project, start)
    assert (restore["count"], restore["median_seconds"]) == (1, 42 * 60)


def test_opsgenie_alert_restores_in_the_summary(local: LocalRuntime, http: requests.Session) -> None:
    run = uuid.uuid4().hex[:10]
    service, project = f"Payments {run}", f"e2e-og-{run}"
    configured = http.put(
        f"{local.url}/api/Spaces-1/webhooks/opsgenie",
        json={"services": {service: {"project": project}}},
        timeout=TIMEOUT,
    )
    assert configured.status_code == 200, configured.text
    secret = configured.json()["secret"]
    if secret is None:  # configured before in this runtime: set a known one
        secret = f"og-e2e-secret-{run}-0123456789"
        assert http.put(f"{local.url}/api/Spaces-1/webhooks/opsgenie", json={"secret": secret}, timeout=TIMEOUT).ok

    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)

    def post(name: str, updated: datetime, header: str = secret) -> requests.Response:
        payload = load_event(name)
        payload["alert"]["alertId"] = f"{run}-0000-4000-8000-000000000000"
        payload["alert"]["entity"] = service
        payload["alert"]["createdAt"] = int(start.timestamp() * 1000)
        payload["alert"]["updatedAt"] = int(updated.timestamp()) * 10**9
        headers = {"Content-Type": "application/json", "X-Opsgenie-Secret": header}
        return requests.post(f"{local.url}/webhooks/opsgenie/Spaces-1", json=payload, headers=headers, timeout=TIMEOUT)

    assert post("opsgenie_alert_create.json", start, header="not-the-secret").status_code == 401
    assert post("opsgenie_alert_create.json", start).status_code == 201
    assert post("opsgenie_alert_acknowledge.json", start + timedelta(minutes=3)).status_code == 202
    assert post("opsgenie_alert_close.json", start + timedelta(minutes=15)).status_code == 200
    restore = _summary(local, http, project, start)
    assert (restore["count"], restore["median_seconds"]) == (1, 15 * 60)
