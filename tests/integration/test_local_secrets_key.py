"""``make serve`` creates the template's secrets key in moto at start, and with a data directory it is the same
key after a restart: the encrypted secrets the kept table holds still decrypt (``dora_local.kms``)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import requests

from dora_insights.dialects.incidents import pagerduty_signature
from dora_local.kms import KEYS_FILE
from tests.support.events import load_event
from tests.support.server import serve

KEY = "local-secrets-key-test"
HEADERS = {"Authorization": f"Bearer {KEY}"}
SECRET = "pd-signing-secret-0123456789abcdef"
TIMEOUT = 30


def _webhook(url: str, event: str) -> requests.Response:
    raw = json.dumps(load_event(event))
    headers = {"X-PagerDuty-Signature": pagerduty_signature(SECRET, raw.encode()), "Content-Type": "application/json"}
    return requests.post(f"{url}/webhooks/pagerduty/Spaces-1", data=raw, headers=headers, timeout=TIMEOUT)


def _configure(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.put(f"{url}/api/Spaces-1/webhooks/pagerduty", json=body, headers=HEADERS, timeout=TIMEOUT)


def test_a_secret_encrypted_before_a_restart_still_decrypts_after_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(tmp_path / "first.log", "--data", str(data), DORA_LOCAL_API_KEY=KEY) as first:
        configured = _configure(first.url, {"secret": SECRET, "services": {"Checkout API": {"project": "co"}}})
        opened = _webhook(first.url, "pagerduty_incident_triggered.json")
        assert (configured.status_code, opened.status_code) == (200, 201), first.tail()
    kept = data / KEYS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # key material: its owner's only
    first_key = json.loads(kept.read_text())["SecretsKey"]["id"]

    with serve(tmp_path / "second.log", "--data", str(data), DORA_LOCAL_API_KEY=KEY) as second:
        resolved = _webhook(second.url, "pagerduty_incident_resolved.json")
        wrong = requests.post(
            f"{second.url}/webhooks/pagerduty/Spaces-1",
            data=json.dumps(load_event("pagerduty_incident_resolved.json")),
            headers={"X-PagerDuty-Signature": pagerduty_signature("another-secret-0123456789", b"{}")},
            timeout=TIMEOUT,
        )
        assert (resolved.status_code, wrong.status_code) == (200, 401), second.tail()
        assert resolved.json()["status"] == "resolved"
    assert json.loads(kept.read_text())["SecretsKey"]["id"] == first_key
