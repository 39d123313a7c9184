"""A native batch over HTTP against the local runtime: sent twice (a client's retry after a timeout),
stored once, items without an id included; the attributions it owes run afterwards, from the retry
queue, in the runtime's own worker (issue 17)."""

from __future__ import annotations

import time
import uuid

import requests

from dora_local.server import LocalRuntime

TIMEOUT = 60


def test_a_batch_sent_twice_is_stored_once_and_attributed_by_the_worker(
    local: LocalRuntime, http: requests.Session
) -> None:
    project = f"bulk-{uuid.uuid4().hex[:8]}"
    items = [
        {
            "project": project,
            "environment": "production",
            "finished_at": 1709294400 + 60 * n,
            "repository": "acme/bulk",
            "commit_sha": f"{n + 1:040x}",
        }
        | ({"id": f"{project}-{n}"} if n % 2 else {})
        for n in range(6)
    ]
    url = f"{local.url}/api/Spaces-1/deployments/batch"
    first = http.post(url, json={"deployments": items}, timeout=TIMEOUT)
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["results"]] == [201] * 6
    again = http.post(url, json={"deployments": items}, timeout=TIMEOUT)
    assert [r["status"] for r in again.json()["results"]] == [200] * 6
    ids = [r["deployment"]["id"] for r in first.json()["results"]]
    assert [r["deployment"]["id"] for r in again.json()["results"]] == ids
    listed = http.get(f"{local.url}/api/Spaces-1/deployments", params={"project": project}, timeout=TIMEOUT)
    assert sorted(d["id"] for d in listed.json()["items"]) == sorted(ids)
    # The runtime's poller hands the retry messages to the attribution worker: each deployment gets
    # its first attempt (its commits are unknown here: Pending, waiting for them).
    deadline = time.monotonic() + TIMEOUT
    while True:
        states = [
            (http.get(f"{local.url}/api/Spaces-1/deployments/{d}", timeout=TIMEOUT).json().get("attribution") or {})
            for d in ids
        ]
        if all(s.get("state") for s in states) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(s.get("state") == "Pending" for s in states), states
