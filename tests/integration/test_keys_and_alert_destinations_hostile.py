"""API keys under hostile credentials, and alert destinations under races, hostile URLs and odd values.

Keys: credentials that are not text a key could be (HTTP Basic credentials that are not base64 at all, lone
surrogates a Lambda event can carry, repeated or huge headers) are the route's 401 in its dialect, never a 5xx
nor another key's access; key lists never show a key or its hash and revocation acts at once; the admin command
stores no GitHub webhook secret the API refuses; an Orlo token lasts its hour to the second; the spaceless
dialects act in the key's space.

Alert destinations: concurrent PATCHes lose no change (a write holds only over the version it read); URLs naming
any address IANA's special-purpose registries say is not globally reachable are refused at create, at PATCH and
by the sender, whatever Python's ``is_global`` says; a Slack URL PATCHed back as it was shown (masked) keeps the
real one; Slack messages show values and bounds in full; many thresholds and destinations get each crossing
exactly once. ``DORA_PROPERTY_SEEDS=a:b`` widens the random histories."""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import socket
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.integration.test_alert_destinations import (  # noqa: F401  (the pipeline fixture is used by name)
    NOW,
    Pipeline,
    pipeline,
)
from tests.support.fixtures import OTHER_KEY
from tests.support.insights import weekly_deploys_insight
from tests.support.receiver import Receiver
from tests.support.receiver import signed_with as verified
from tests.support.seeds import seeds

SP1 = "Spaces-1"
SP = {"spaceId": SP1}
KEYS = "/api/{spaceId}/apikeys"
KEY = "/api/{spaceId}/apikeys/{keyId}"
DEST = "/api/{spaceId}/alert-destinations"
ONE = DEST + "/{destinationId}"
THRESHOLDS = "/api/projects/{spaceId}/insights/{insightId}/thresholds"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _shape_ok(dialect: str, body: Any, status: int) -> bool:
    if not isinstance(body, dict):
        return False
    if dialect in ("native", "orlo"):
        return isinstance(body.get("message"), str) and isinstance(body.get("errors"), list)
    if dialect == "datadog":
        return isinstance(body.get("errors"), list) and body["errors"][0].get("status") == str(status)
    if dialect == "dx":
        return body.get("ok") is False and isinstance(body.get("error"), str)
    if dialect == "octopus":
        return isinstance(body.get("ErrorMessage"), str) and isinstance(body.get("Errors"), list)
    if dialect == "posthog":
        return {"type", "code", "detail", "attr"} <= set(body)
    if dialect == "gitlab":
        return set(body) == {"message"}
    return False


ROUTES = [
    ("GET", "/api/{spaceId}/deployments", "native"),
    ("GET", "/api/{spaceId}/projects", "octopus"),
    ("GET", "/api/projects/{spaceId}/insights", "posthog"),
    ("POST", "/api/deployments.create", "dx"),
    ("POST", "/api/v2/dora/deployments", "datadog"),
    ("GET", "/orlo/releases", "orlo"),
    ("GET", "/orlo/token", "orlo"),
    ("GET", "/api/{spaceId}/dora/metrics", "gitlab"),
    ("GET", KEYS, "native"),
    ("GET", DEST, "native"),
]


def _call_safely(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult | str:
    """The answer, or what Lambda reports when the handler raised (API Gateway answers 500 for it)."""
    try:
        return api.call(method, route, **kwargs)
    except Exception as error:
        return f"500 ({type(error).__name__}: {str(error)[:80]})"


def _hostile_problems(api: Api, hostile: list[dict[str, str]], expected: int = 401) -> list[Any]:
    problems: list[Any] = []
    for headers in hostile:
        for method, route, dialect in ROUTES:
            params = {"spaceId": SP1} if "{spaceId}" in route else None
            result = _call_safely(api, method, route, path_params=params, body={}, headers=headers)
            if isinstance(result, str):
                problems.append((repr(next(iter(headers.values())))[:40], route, result))
            elif result.status != expected or not _shape_ok(dialect, result.body, expected):
                problems.append((repr(next(iter(headers.values())))[:40], route, result.status, result.body))
    return problems


def _key(api: Api, space: str, scopes: list[str], key: str = ADMIN_KEY) -> dict[str, Any]:
    made = api.call("POST", KEYS, path_params={"spaceId": space}, body={"name": "k", "scopes": scopes}, key=key)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


# ====== keys: hostile credentials
def test_basic_credentials_with_non_ascii_text_are_401_never_5xx(api: Api) -> None:
    """API.md "Errors": anything a client sent is a 4xx in the route's shape, never a 5xx. An HTTP Basic
    header whose credentials are not base64 text at all (non-ASCII characters, as a client that forgot to
    encode the user:password pair sends) must be the missing/invalid key's 401."""
    hostile = [
        {"Authorization": "Basic \u00e9t\u00e9"},
        {"Authorization": "Basic orlo:cl\u00e9"},
        {"Authorization": "Basic " + "\u043a\u043b\u044e\u0447"},
    ]
    assert _hostile_problems(api, hostile) == []


def test_credentials_holding_lone_surrogates_are_401_never_5xx(api: Api) -> None:
    """A header value the Lambda event carries as a lone surrogate escape (``"\\udcff"``, how a byte that is
    not UTF-8 can reach a JSON event) must be refused as an invalid key, not crash hashing it."""
    hostile = [
        {"X-Api-Key": "dora_\udcff"},
        {"Authorization": "Bearer dora_\udcff"},
        {"DD-API-KEY": "\ud800"},
        {"X-Auth-Token": "Spaces-1.\udcff"},
    ]
    assert _hostile_problems(api, hostile) == []


def test_repeated_or_huge_credential_headers_are_401_never_another_keys_access(api: Api) -> None:
    """API Gateway joins a header sent twice with a comma: two keys (even one valid) in one header are no key.
    A very long header is an invalid key, not an error."""
    reader = _key(api, SP1, ["deployments:read", "alert:read"])["key"]
    hostile = [
        {"Authorization": f"Bearer {reader},Bearer {reader}"},
        {"Authorization": f"Bearer {reader}, {ADMIN_KEY}"},
        {"X-Api-Key": f"{reader},{ADMIN_KEY}"},
        {"DD-API-KEY": f"{ADMIN_KEY},{reader}"},
        {"Authorization": "Bearer " + "x" * 200_000},
        {"Authorization": "Basic " + base64.b64encode(b"u:" + b"p" * 150_000).decode()},
    ]
    assert _hostile_problems(api, hostile) == []


# ====== keys: listing, revocation, spaces
@pytest.mark.parametrize("seed", seeds([1, 2]))
def test_key_lists_never_hold_a_key_nor_its_hash_and_revocation_is_immediate_everywhere(
    api: Api, other_space: str, seed: int
) -> None:
    """Random creates and revocations over two spaces: a list never shows a key or its SHA-256 (API.md: stored only
    as a hash, shown once), lists exactly the keys alive in that space, and a revoked key is 401 at once in every
    header form while the others keep working."""
    import hashlib

    rng = random.Random(seed)
    spaces = {SP1: ADMIN_KEY, other_space: OTHER_KEY}
    alive: dict[str, dict[str, Any]] = {}  # key id@space -> created
    revoked: list[dict[str, Any]] = []
    for _ in range(14):
        space = rng.choice(sorted(spaces))
        if alive and rng.random() < 0.4:
            victim_id = rng.choice(sorted(alive))
            victim = alive.pop(victim_id)
            gone = api.call(
                "DELETE", KEY, path_params={"spaceId": victim["space"], "keyId": victim["id"]}, key=spaces[space]
            )
            assert gone.status == 204, gone.body
            revoked.append(victim)
        else:
            made = _key(api, space, rng.sample(["deployments:read", "alert:read", "insight:read"], 2), spaces[space])
            alive[f"{made['id']}@{space}"] = {**made, "space": space}
        for listed_space, admin_key in spaces.items():
            listing = api.call("GET", KEYS, path_params={"spaceId": listed_space}, key=admin_key)
            assert listing.status == 200
            text = json.dumps(listing.body)
            for made in list(alive.values()) + revoked:
                assert made["key"] not in text
                assert hashlib.sha256(made["key"].encode()).hexdigest() not in text
            listed = {k["id"] for k in listing.body["items"]}
            expected = {v["id"] for v in alive.values() if v["space"] == listed_space}
            assert expected <= listed
            assert (
                not (
                    {v["id"] for v in revoked if v["space"] == listed_space}
                    - {v["id"] for v in alive.values() if v["space"] == listed_space}
                )
                & listed
            )
            assert all(set(k) <= {"id", "name", "scopes", "user", "created_at", "key"} for k in listing.body["items"])
            assert all(k.get("key") is None for k in listing.body["items"])
    for victim in revoked:
        for headers in ({"X-Api-Key": victim["key"]}, {"DD-API-KEY": victim["key"]}):
            assert api.call("GET", DEST, path_params={"spaceId": victim["space"]}, headers=headers).status == 401
    for live in alive.values():
        assert api.call("GET", DEST, path_params={"spaceId": live["space"]}, key=live["key"]).status in (200, 403)


def test_revoking_a_key_through_another_spaces_path_is_404_and_the_key_keeps_working(
    api: Api, other_space: str
) -> None:
    """``DELETE /api/{spaceId}/apikeys/{keyId}`` names the key in that space: the same id in another space's path
    is that space's key (404 when there is none there), and never revokes this one."""
    mine = _key(api, SP1, ["alert:read"])
    assert (
        api.call("DELETE", KEY, path_params={"spaceId": other_space, "keyId": mine["id"]}, key=ADMIN_KEY).status == 404
    )
    theirs = _key(api, other_space, ["alert:read"], key=OTHER_KEY)
    assert theirs["id"] == mine["id"]  # numbered per space
    gone = api.call("DELETE", KEY, path_params={"spaceId": other_space, "keyId": theirs["id"]}, key=ADMIN_KEY)
    assert gone.status == 204
    assert api.call("GET", DEST, path_params=SP, key=mine["key"]).status == 200
    assert api.call("GET", DEST, path_params={"spaceId": other_space}, key=theirs["key"]).status == 401
    assert mine["id"] in [k["id"] for k in api.call("GET", KEYS, path_params=SP, key=ADMIN_KEY).body["items"]]


def test_a_key_for_a_space_that_does_not_exist_is_404_and_usable_nowhere(api: Api) -> None:
    """An admin creating a key in a space that was never created: 404; nothing is stored that would act later."""
    made = api.call(
        "POST", KEYS, path_params={"spaceId": "Spaces-77"}, body={"name": "x", "scopes": ["admin"]}, key=ADMIN_KEY
    )
    assert made.status == 404 and _shape_ok("native", made.body, 404), made.body
    listed = api.call("GET", KEYS, path_params={"spaceId": "Spaces-77"}, key=ADMIN_KEY)
    assert listed.status == 404


# ====== alerts: destinations under races
def test_concurrent_patches_of_one_destination_lose_neither_change(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """API.md: a PATCH changes ``name``, ``url``, ``enabled`` (only those given). Two PATCHes at once, one disabling
    the destination (to stop alerts) and one renaming it, must both hold: the rename must not write back the
    ``enabled: true`` it read before the disable landed (a lost update silently turns alerts back on).

    Deterministic: the disable lands right after the rename's read."""
    from dora_insights.dal.destinations import DestinationStore

    made = api.call(
        "POST",
        DEST,
        path_params=SP,
        body={"name": "ops", "kind": "slack", "url": "https://hooks.slack.com/services/T1/B1/abc"},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    ident = made.body["id"]
    original_get = DestinationStore.get
    landed: list[bool] = []

    def get_then_disable_lands(self: DestinationStore, space_id: str, destination_id: str) -> Any:
        found = original_get(self, space_id, destination_id)
        assert found is not None
        if not landed:
            landed.append(True)
            self.replace(found.model_copy(update={"enabled": False}))  # the other PATCH, applied meanwhile
        return found

    monkeypatch.setattr(DestinationStore, "get", get_then_disable_lands)
    renamed = api.call("PATCH", ONE, path_params={**SP, "destinationId": ident}, body={"name": "ops-2"}, key=ADMIN_KEY)
    monkeypatch.setattr(DestinationStore, "get", original_get)

    now = api.call("GET", ONE, path_params={**SP, "destinationId": ident}, key=ADMIN_KEY).body
    assert landed == [True]
    assert renamed.status == 200, renamed.body
    assert now["enabled"] is False, ("the concurrent disable was undone by a rename", now)
    assert now["name"] == "ops-2"
    assert renamed.body == now  # the answer is the destination as stored


def _slack(api: Api, url: str = "https://hooks.slack.com/services/T1/B1/abc") -> str:
    made = api.call("POST", DEST, path_params=SP, body={"name": "ops", "kind": "slack", "url": url}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["id"])


def test_a_patch_that_keeps_losing_its_race_is_a_503_to_retry_and_writes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another write lands after every read of the PATCH: it is tried again from fresh reads, then answered as
    contention (503 ``write_contended`` with ``Retry-After``, native shape: API.md Errors); the other writes
    stand and the PATCH's change is not written over them."""
    from dora_insights.dal.destinations import DestinationStore

    ident = _slack(api)
    original_get = DestinationStore.get
    renames: list[str] = []

    def get_then_another_write_lands(self: DestinationStore, space_id: str, destination_id: str) -> Any:
        found = original_get(self, space_id, destination_id)
        assert found is not None
        renames.append(f"other-{len(renames)}")
        assert self.replace(found.model_copy(update={"name": renames[-1]}))
        return found

    monkeypatch.setattr(DestinationStore, "get", get_then_another_write_lands)
    patched = api.call("PATCH", ONE, path_params={**SP, "destinationId": ident}, body={"enabled": False}, key=ADMIN_KEY)
    monkeypatch.setattr(DestinationStore, "get", original_get)

    assert patched.status == 503 and _shape_ok("native", patched.body, 503), patched.body
    assert patched.header("Retry-After") == "1", patched.headers
    now = api.call("GET", ONE, path_params={**SP, "destinationId": ident}, key=ADMIN_KEY).body
    assert len(renames) >= 2
    assert (now["name"], now["enabled"]) == (renames[-1], True)


def test_a_patch_racing_a_delete_is_404_and_never_brings_the_destination_back(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.destinations import DestinationStore

    ident = _slack(api)
    original_get = DestinationStore.get

    def get_then_delete_lands(self: DestinationStore, space_id: str, destination_id: str) -> Any:
        found = original_get(self, space_id, destination_id)
        self.delete(space_id, destination_id)
        return found

    monkeypatch.setattr(DestinationStore, "get", get_then_delete_lands)
    patched = api.call("PATCH", ONE, path_params={**SP, "destinationId": ident}, body={"name": "x"}, key=ADMIN_KEY)
    monkeypatch.setattr(DestinationStore, "get", original_get)

    assert patched.status == 404 and _shape_ok("native", patched.body, 404), patched.body
    assert api.call("GET", ONE, path_params={**SP, "destinationId": ident}, key=ADMIN_KEY).status == 404
    assert api.call("GET", DEST, path_params=SP, key=ADMIN_KEY).body["items"] == []


def test_patches_one_after_another_each_build_on_the_last(api: Api) -> None:
    """Versions count the writes: successive PATCHes (and one that changes nothing) all go through."""
    ident = _slack(api)
    path = {**SP, "destinationId": ident}
    for body in (
        {"name": "a"},
        {"enabled": False},
        {"name": "a"},
        {},
        {"url": "https://hooks.slack.com/services/T2/B/c"},
    ):
        patched = api.call("PATCH", ONE, path_params=path, body=body, key=ADMIN_KEY)
        assert patched.status == 200, (body, patched.body)
    now = api.call("GET", ONE, path_params=path, key=ADMIN_KEY).body
    assert (now["name"], now["enabled"], now["url"]) == ("a", False, "https://hooks.slack.com/services/T2/****")


# ====== alerts: many thresholds, many destinations
def _threshold(api: Api, insight_id: int, name: str, bounds: dict[str, float]) -> str:
    made = api.call(
        "POST",
        THRESHOLDS,
        path_params={**SP, "insightId": str(insight_id)},
        body={"name": name, "condition": {"bounds": bounds}, "calculation_interval": "hourly"},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    return str(made.body["id"])


def _run(store: Any, values: dict[int, float], now: Any) -> Any:
    """One threshold pass of Spaces-1 with each insight's value from ``values``, as the recompute runs it."""
    from dora_insights.config import get_settings
    from dora_insights.dal.events import EventBus
    from dora_insights.logic import alerts

    return alerts.evaluate_thresholds(
        store.insights(), lambda insight: values[insight.id], EventBus(str(get_settings().event_bus_name)), SP1, now
    )


def _state(value: float, bounds: dict[str, float]) -> str:
    lower, upper = bounds.get("lower"), bounds.get("upper")
    return "Firing" if (lower is not None and value < lower) or (upper is not None and value > upper) else "NotFiring"


@pytest.mark.parametrize("seed", seeds([3, 7]))
def test_many_thresholds_and_destinations_get_each_crossing_exactly_once(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
    seed: int,
) -> None:
    """Several thresholds on each of two insights, four destinations (two of them flaky: 500s, a redirect), random
    values hour after hour: every destination gets exactly one signed event per crossing of each threshold (a
    breach on entering Firing, a clearing on leaving it), none while the state holds, none twice through the
    retries, and in order per threshold."""
    rng = random.Random(seed)
    insights = [weekly_deploys_insight(api, SP1, ADMIN_KEY, f"Deploys {n}") for n in range(2)]
    bounds_of: dict[str, dict[str, float]] = {}
    insight_of: dict[str, int] = {}
    for insight_id in insights:
        for n in range(3):
            choices: list[dict[str, float]] = [{"upper": 2}, {"lower": 1}, {"lower": 1, "upper": 3}, {"upper": 0}]
            bounds = rng.choice(choices)
            tid = _threshold(api, insight_id, f"t{insight_id}-{n}", bounds)
            bounds_of[tid], insight_of[tid] = bounds, insight_id
    paths = ["/a", "/b", "/flaky", "/redirect"]
    secrets = {}
    for path in paths:
        made = api.call(
            "POST",
            DEST,
            path_params=SP,
            body={"name": path, "kind": "webhook", "url": receiver.url + path},
            key=ADMIN_KEY,
        )
        assert made.status == 201, made.body
        secrets[path] = made.body["secret"]

    expected: dict[str, list[tuple[str, str]]] = {tid: [] for tid in bounds_of}
    state: dict[str, str] = {}
    for _hour in range(8):
        values = {i: float(rng.choice([0, 1, 2, 3, 4])) for i in insights}
        receiver.by_path["/flaky"] = [rng.choice([500, 502, 200]), 200]
        receiver.by_path["/redirect"] = [rng.choice([302, 200]), 200]
        counts = _run(store, values, clock.now)
        assert (counts.failed, counts.undelivered) == (0, 0)
        for tid, bounds in bounds_of.items():
            new = _state(values[insight_of[tid]], bounds)
            if new != state.get(tid, "NotFiring"):
                expected[tid].append(
                    (
                        "InsightThresholdBreached" if new == "Firing" else "InsightThresholdCleared",
                        str(values[insight_of[tid]]),
                    )
                )
            state[tid] = new
        pipeline.run_queue(lambda_context, clock)
        clock.advance(timedelta(hours=1))
    pipeline.run_queue(lambda_context, clock)

    assert pipeline.dead_letters() == []
    for path in paths:
        requests = list(receiver.at(path))
        bodies = [json.loads(r.body) for r in requests]
        delivered_ok = [(r, b) for r, b in zip(requests, bodies, strict=True)]
        assert all(verified(secrets[path], r) for r in requests)
        # what each threshold got at this destination, in the order of the checks, without the failed attempts'
        got: dict[str, list[tuple[str, str]]] = {tid: [] for tid in bounds_of}
        seen: dict[str, int] = {}
        for _request, body in delivered_ok:
            seen[body["notification_id"]] = seen.get(body["notification_id"], 0) + 1
        unique: dict[str, Any] = {}
        for _request, body in delivered_ok:
            unique.setdefault(body["notification_id"], body)
        for body in sorted(unique.values(), key=lambda b: b["checked_at"]):
            got[body["threshold_id"]].append((body["type"], str(float(body["value"]))))
        assert got == expected, path
        if path in ("/a", "/b"):
            assert set(seen.values()) <= {1}, (path, seen)  # steady receivers: never twice


def test_a_threshold_deleted_while_its_breach_is_queued_sends_the_breach_then_the_clearing_once(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """Delete while the delivery is in flight: the breach already on the queue still arrives once, the clearing the
    delete owes (reason ``threshold_deleted``) arrives once, and nothing more follows."""
    made = api.call(
        "POST", DEST, path_params=SP, body={"name": "h", "kind": "webhook", "url": receiver.url + "/h"}, key=ADMIN_KEY
    )
    assert made.status == 201
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    tid = _threshold(api, insight_id, "t", {"upper": 1})
    _run(store, {insight_id: 5.0}, clock.now)  # breach on the queue, not delivered yet
    clock.advance(timedelta(minutes=1))
    gone = api.call(
        "DELETE",
        THRESHOLDS + "/{thresholdId}",
        path_params={**SP, "insightId": str(insight_id), "thresholdId": tid},
        key=ADMIN_KEY,
    )
    assert gone.status == 204, gone.body
    pipeline.run_queue(lambda_context, clock)
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        _run(store, {insight_id: 5.0}, clock.now)
        pipeline.run_queue(lambda_context, clock)

    bodies = [json.loads(r.body) for r in receiver.at("/h")]
    assert sorted((b["type"], b["reason"]) for b in bodies) == [
        ("InsightThresholdBreached", "check"),
        ("InsightThresholdCleared", "threshold_deleted"),
    ]
    assert len({b["notification_id"] for b in bodies}) == 2


def test_a_destination_disabled_before_a_retry_is_not_sent_the_event_and_nothing_dead_letters(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    made = api.call(
        "POST", DEST, path_params=SP, body={"name": "h", "kind": "webhook", "url": receiver.url + "/h"}, key=ADMIN_KEY
    )
    receiver.by_path["/h"] = [500]
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    _threshold(api, insight_id, "t", {"upper": 1})
    _run(store, {insight_id: 5.0}, clock.now)
    _hand_one(pipeline, lambda_context)  # the first attempt: a 500, the message stays for its retry
    assert len(receiver.at("/h")) == 1
    receiver.requests.clear()
    patched = api.call(
        "PATCH", ONE, path_params={**SP, "destinationId": made.body["id"]}, body={"enabled": False}, key=ADMIN_KEY
    )
    assert patched.status == 200
    pipeline.run_queue(lambda_context, clock)
    assert receiver.at("/h") == []
    assert pipeline.dead_letters() == []


def _hand_one(pipeline: Pipeline, context: Any) -> bool:  # noqa: F811
    """Hand one visible message to AlertDeliveryFunction once; delete it unless reported failed."""
    from dora_local.events import failed_message_ids, sqs_record
    from tests.support import lambdas

    messages = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return False
    records = [sqs_record(m, pipeline.queue_arn) for m in messages]
    response = lambdas.invoke("AlertDeliveryFunction", {"Records": records}, context)
    failed = failed_message_ids(response, records)
    for record in records:
        if record["messageId"] not in failed:
            pipeline.sqs.delete_message(QueueUrl=pipeline.queue_url, ReceiptHandle=record["receiptHandle"])
    return True


# ====== alerts: hostile URLs
@pytest.mark.parametrize(
    "url",
    [
        "https://0.0.0.0/hook",
        "https://0/hook",
        "https://[::]/hook",
        "https://[fe80::1%25eth0]/hook",
        "https://[fe80::a9fe:a9fe%251]/hook",
        "https://100.64.0.1/hook",
        "https://198.18.0.1/hook",
        "https://192.0.0.8/hook",
        "https://240.0.0.1/hook",
        "https://255.255.255.255/hook",
        "https://[fc00::1]/hook",
        "https://[fec0::1]/hook",
        "https://[fed0::1]/hook",
        "https://192.0.0.9/hook",
        "https://192.0.0.255/hook",
        "https://[100:0:0:1::1]/hook",
        "https://[3fff::1]/hook",
        "https://[5f00::1]/hook",
        "https://[2001:2::1]/hook",
        "https://[::ffff:192.0.0.8]/hook",
        "https://[64:ff9b::c000:8]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://[0:0:0:0:0:ffff:7f00:1]/hook",
        "https://[2002:a9fe:a9fe::1]/hook",
        "https://[64:ff9b::10.0.0.1]/hook",
        "https://169.254.169.254./latest/meta-data",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://instance-data/latest",
        "https://LOCALHOST/hook",
        "https://a.b.localhost/hook",
        "https://printer.local/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "https://example.com@169.254.169.254/hook",
        "https://example.com\\@169.254.169.254/hook",
        "https://169.254.169.254\\@example.com/hook",
        "https://%31%36%39.254.169.254/hook",
        "https:///169.254.169.254/hook",
        "https:169.254.169.254/hook",
        "//169.254.169.254/hook",
        "https://example.com:0/hook",
        "https://example.com:99999/hook",
        "https://example.com/hook#frag",
    ],
)
def test_hostile_destination_urls_are_400_naming_url_at_create_and_patch(api: Api, url: str) -> None:
    """API.md URL rules: https only, no user info or fragment, never an address outside the public internet in any
    spelling, no local names; a 400 naming ``url`` (never a 5xx), at creation and at PATCH alike."""
    made = _call_safely(
        api, "POST", DEST, path_params=SP, body={"name": "x", "kind": "webhook", "url": url}, key=ADMIN_KEY
    )
    assert not isinstance(made, str), made
    assert made.status == 400, (url, made.status, made.body)
    assert made.body["errors"][0].startswith("url"), made.body
    good = api.call(
        "POST",
        DEST,
        path_params=SP,
        body={"name": "ok", "kind": "webhook", "url": "https://example.com/h"},
        key=ADMIN_KEY,
    )
    assert good.status == 201
    patched = _call_safely(
        api, "PATCH", ONE, path_params={**SP, "destinationId": good.body["id"]}, body={"url": url}, key=ADMIN_KEY
    )
    assert not isinstance(patched, str), patched
    assert patched.status == 400, (url, patched.status, patched.body)
    assert patched.body["errors"][0].startswith("url"), patched.body
    after = api.call("GET", ONE, path_params={**SP, "destinationId": good.body["id"]}, key=ADMIN_KEY)
    assert after.body["url"] == "https://example.com/h"


@pytest.mark.parametrize(
    "address", ["192.0.0.8", "192.0.0.170", "100.64.0.1", "fec0::1", "fed0::8", "3fff::1", "5f00::1", "100:0:0:1::1"]
)
def test_the_sender_never_calls_a_name_resolving_to_an_address_outside_the_public_internet(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    """The sender's check of each address a name resolves to is the create route's rule (``public_address``):
    the IANA blocks Python 3.11's ``is_global`` lets through are refused there too, and nothing is connected to."""
    from dora_insights.dal.destinations import HttpSender
    from dora_insights.domain.alert_destinations import public_address

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, 443, 0, 0) if family == socket.AF_INET6 else (address, 443)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_a, **_k: [(family, socket.SOCK_STREAM, 6, "", sockaddr)])
    connected: list[Any] = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, where: connected.append(where))

    result = HttpSender(2.0).post("https://hooks.example.com/h", b"{}", {})

    assert not public_address(ipaddress.ip_address(address))
    assert result.status_code is None and (result.error or "").startswith("not called"), result
    assert connected == []


def test_public_addresses_next_to_the_refused_blocks_are_still_accepted(api: Api) -> None:
    """The deny list is the registries' blocks, no wider: neighbours on the public internet are taken."""
    for url in (
        "https://192.0.1.1/hook",
        "https://8.8.8.8/hook",
        "https://[2606:4700::1111]/hook",
        "https://[::ffff:8.8.8.8]/hook",
        "https://[64:ff9b::808:808]/hook",
        "https://[2002:808:808::1]/hook",
    ):
        made = api.call("POST", DEST, path_params=SP, body={"name": "x", "kind": "webhook", "url": url}, key=ADMIN_KEY)
        assert made.status == 201, (url, made.body)
        gone = api.call("DELETE", ONE, path_params={**SP, "destinationId": made.body["id"]}, key=ADMIN_KEY)
        assert gone.status == 204


# ====== keys: expiry of what a key was exchanged for
def test_an_orlo_token_lasts_one_hour_to_the_second_and_ends_with_its_key(api: Api, clock: Clock) -> None:
    """API.md: ``GET /orlo/token`` -> a token accepted as X-Auth-Token for 1 hour. Just before the hour it acts (with
    the key's scopes only), at the hour it is Orlo's 401; a token of a key revoked meanwhile is 401 at once."""
    reader = _key(api, SP1, ["deployments:read"])
    issued = api.call("GET", "/orlo/token", key=reader["key"])
    assert issued.status == 200, issued.body
    auth = {"X-Auth-Token": issued.body["token"]}
    clock.advance(timedelta(minutes=59, seconds=59))
    assert api.call("GET", "/orlo/releases", headers=auth).status in (200, 404)  # Orlo: no releases is a 404
    denied = api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]}, headers=auth)
    assert denied.status == 403 and _shape_ok("orlo", denied.body, 403), denied.body
    clock.advance(timedelta(seconds=1))
    late = api.call("GET", "/orlo/releases", headers=auth)
    assert late.status == 401 and _shape_ok("orlo", late.body, 401), late.body
    fresh = api.call("GET", "/orlo/token", key=reader["key"]).body["token"]
    assert api.call("DELETE", KEY, path_params={"spaceId": SP1, "keyId": reader["id"]}, key=ADMIN_KEY).status == 204
    assert api.call("GET", "/orlo/releases", headers={"X-Auth-Token": fresh}).status == 401


# ====== keys: spaceless dialects act in the key's space
@pytest.mark.parametrize("seed", seeds([5, 6]))
def test_the_same_client_ids_in_two_spaces_stay_apart_in_every_spaceless_dialect(
    api: Api, other_space: str, seed: int
) -> None:
    """DX ``reference_id``s, Datadog reads by id and Orlo releases act in the key's space: two spaces sending the same
    reference ids with different services each read back their own, and neither key reads or changes the other's."""
    rng = random.Random(seed)
    keys = {SP1: ADMIN_KEY, other_space: OTHER_KEY}
    refs = [f"ref-{rng.randrange(10**6)}-{n}" for n in range(3)]
    made: dict[tuple[str, str], str] = {}
    for ref in refs:
        for space, key in sorted(keys.items(), key=lambda _: rng.random()):
            body = {"reference_id": ref, "deployed_at": 1709200000 + rng.randrange(1000), "service": f"svc-{space}"}
            result = api.call("POST", "/api/deployments.create", body=body, key=key)
            assert result.status == 200 and result.body["ok"] is True, result.body
            assert result.body["deployment"]["service"] == f"svc-{space}"
            made[(space, ref)] = str(result.body["deployment"]["id"])
    assert len(set(made.values())) == len(made)
    for (space, ref), ident in made.items():
        for reader_space, key in keys.items():
            read = api.call(
                "GET",
                "/api/v2/dora/deployments/{deployment_id}",
                path_params={"deployment_id": ident},
                headers={"DD-API-KEY": key},
            )
            if reader_space == space:
                assert read.status == 200, read.body
                assert read.body["data"]["attributes"]["service"] == f"svc-{space}"
            else:
                assert read.status == 404 and _shape_ok("datadog", read.body, 404), (ref, read.status, read.body)
                gone = api.call(
                    "DELETE",
                    "/api/v2/dora/deployment/{deployment_id}",
                    path_params={"deployment_id": ident},
                    headers={"DD-API-KEY": key},
                )
                assert gone.status == 404, (gone.status, gone.body)
    for (space, _ref), ident in made.items():
        read = api.call(
            "GET",
            "/api/v2/dora/deployments/{deployment_id}",
            path_params={"deployment_id": ident},
            headers={"DD-API-KEY": keys[space]},
        )
        assert read.status == 200


# ====== keys: the admin command stores only what the API takes
def _stored_secret(aws: Any, space: str) -> Any:
    import boto3

    item = boto3.client("dynamodb").get_item(
        TableName=aws.table_name, Key={"PK": {"S": f"S#{space}#SPACE"}, "SK": {"S": "SPACE"}}, ConsistentRead=True
    )["Item"]
    return item.get("webhook_secret_encrypted")


@pytest.mark.parametrize("secret", ["short", "x", "", "s" * 257, "\u00e9" * 257])
def test_the_admin_command_refuses_a_webhook_secret_the_api_refuses(
    aws: Any, space: str, secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """API.md: ``PUT /api/{spaceId}/webhooks/github`` takes a secret of 8-256 characters. The admin command uses the
    API's own request model: a secret the route refuses is the command's error (exit 1, naming ``--secret``) and
    nothing is stored."""
    from dora_insights.admin import main

    route = Api().call("PUT", "/api/{spaceId}/webhooks/github", path_params=SP, body={"secret": secret}, key=ADMIN_KEY)
    assert route.status == 400, route.body
    assert _stored_secret(aws, space) is None

    code = main(["set-webhook-secret", "--space", space, "--secret", secret])

    assert code == 1
    assert "--secret" in capsys.readouterr().err
    assert _stored_secret(aws, space) is None


@pytest.mark.parametrize("secret", ["s" * 8, "s" * 256, "a secret with spaces"])
def test_the_admin_command_stores_a_webhook_secret_the_api_takes(
    aws: Any, space: str, secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dora_insights.admin import main

    assert main(["set-webhook-secret", "--space", space, "--secret", secret]) == 0
    assert json.loads(capsys.readouterr().out) == {"space_id": space, "configured": True}
    assert _stored_secret(aws, space) is not None
    route = Api().call("PUT", "/api/{spaceId}/webhooks/github", path_params=SP, body={"secret": secret}, key=ADMIN_KEY)
    assert route.status == 200, route.body


# ====== alerts: a Slack URL round-tripped as shown
def test_a_slack_destination_patched_back_with_the_masked_url_it_was_shown_keeps_its_real_url(
    api: Api, loopback: None, receiver: Receiver
) -> None:
    """API.md: a Slack URL is the credential, shown masked after creation (``.../services/T0001/****``). A client that
    PATCHes back what it read (renaming, toggling ``enabled``) sends that masked URL: it must not replace the real
    webhook URL (alerts would go to ``/services/T0001/****`` from then on, silently). Either the masked form is taken as
    "unchanged" or it is refused; a test-send afterwards still reaches the real URL."""
    made = api.call(
        "POST",
        DEST,
        path_params=SP,
        body={"name": "s", "kind": "slack", "url": f"{receiver.url}/services/T1/B2/secret"},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    ident = made.body["id"]
    shown = api.call("GET", ONE, path_params={**SP, "destinationId": ident}, key=ADMIN_KEY).body
    assert "secret" not in shown["url"] and shown["url"].endswith("/****")

    patched = api.call(
        "PATCH",
        ONE,
        path_params={**SP, "destinationId": ident},
        body={"name": "renamed", "url": shown["url"], "enabled": shown["enabled"]},
        key=ADMIN_KEY,
    )
    assert patched.status in (200, 400), patched.body
    sent = api.call("POST", ONE + "/test", path_params={**SP, "destinationId": ident}, key=ADMIN_KEY)
    assert sent.status == 200, sent.body
    assert [r.path for r in receiver.requests] == ["/services/T1/B2/secret"], (
        "the masked URL replaced the real one",
        [r.path for r in receiver.requests],
    )
    assert patched.status == 200 and patched.body["name"] == "renamed", patched.body
    assert patched.body["url"] == shown["url"]


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T1/****",  # another destination's mask
        "https://hooks.slack.com/services/T9/****",
        "https://hooks.slack.com/services/T1/B2/****",
        "https://hooks.slack.com/services/****/B2/x",
    ],
)
def test_a_slack_url_holding_the_mask_that_is_not_this_destinations_is_a_400_naming_url(api: Api, url: str) -> None:
    """Only the masked form of the destination's own URL means "unchanged"; any other URL with the mask in it was
    never issued by Slack: a 400 naming ``url``, at PATCH and at creation, and nothing changes."""
    ident = _slack(api, "https://hooks.slack.com/services/T7/B7/real")
    path = {**SP, "destinationId": ident}
    patched = api.call("PATCH", ONE, path_params=path, body={"url": url, "name": "n"}, key=ADMIN_KEY)
    assert patched.status == 400 and _shape_ok("native", patched.body, 400), patched.body
    assert patched.body["errors"][0].startswith("url"), patched.body
    now = api.call("GET", ONE, path_params=path, key=ADMIN_KEY).body
    assert (now["name"], now["url"]) == ("ops", "https://hooks.slack.com/services/T7/****")
    made = api.call("POST", DEST, path_params=SP, body={"name": "m", "kind": "slack", "url": url}, key=ADMIN_KEY)
    assert made.status == 400 and made.body["errors"][0].startswith("url"), made.body


def test_a_webhook_url_is_shown_as_given_so_its_patch_takes_any_url(api: Api) -> None:
    """The mask is a Slack URL's: a webhook URL is shown in full, and a PATCH sets what it sends."""
    made = api.call(
        "POST",
        DEST,
        path_params=SP,
        body={"name": "w", "kind": "webhook", "url": "https://alerts.example.com/a"},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    patched = api.call(
        "PATCH",
        ONE,
        path_params={**SP, "destinationId": made.body["id"]},
        body={"url": "https://alerts.example.com/services/T1/****"},
        key=ADMIN_KEY,
    )
    assert patched.status == 200 and patched.body["url"] == "https://alerts.example.com/services/T1/****"


def test_a_slack_alert_shows_a_large_value_and_bound_in_full(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """API.md: the Slack message names the value and the bounds ("Value *3*; expected at most 1"). Durations are in
    seconds, so a lead time of 1,234,567 s against a bound of 1,000,000 s is an ordinary alert: the message must show
    those numbers, not ``1.23457e+06`` (six significant digits: the value as sent is lost)."""
    made = api.call(
        "POST",
        DEST,
        path_params=SP,
        body={"name": "s", "kind": "slack", "url": f"{receiver.url}/services/T1/B2/x"},
        key=ADMIN_KEY,
    )
    assert made.status == 201
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Lead time")
    _threshold(api, insight_id, "Slow", {"upper": 1000000})
    _run(store, {insight_id: 1234567.0}, clock.now)
    pipeline.run_queue(lambda_context, clock)
    (posted,) = receiver.at("/services/T1/B2/x")
    text = json.loads(posted.body)["text"]
    assert "e+0" not in text, text
    assert "1234567" in text.replace(",", ""), text
    assert "1000000" in text.replace(",", ""), text


@pytest.mark.parametrize(
    ("value", "bounds", "shown"),
    [
        (1234567.0, {"upper": 1000000}, "Value *1234567*; expected at most 1000000"),
        (1234567, {"upper": 1000000.0}, "Value *1234567*; expected at most 1000000"),
        (86400.5, {"lower": 90000.25}, "Value *86400.5*; expected at least 90000.25"),
        (0.1 + 0.2, {"lower": 0.5, "upper": 123456789.125}, "Value *0.3*; expected between 0.5 and 123456789.125"),
        (123456789012.75, {"upper": 3}, "Value *123456789012.75*; expected at most 3"),
        (1 / 3, {"upper": 0.25}, "Value *0.333333333333333*; expected at most 0.25"),
        (-2.0, {"lower": 0}, "Value *-2*; expected at least 0"),
        (None, {"upper": 1}, "Value *no value*; expected at most 1"),
    ],
)
def test_slack_messages_show_values_and_bounds_without_exponents(
    value: float | None, bounds: dict[str, float], shown: str
) -> None:
    """Integers in full, other numbers with up to 15 significant digits and no exponent, the value and the bounds
    alike (what ``slack_body`` puts in the message)."""
    from dora_insights.domain.alert_destinations import BREACHED, AlertDetail, slack_body

    detail = AlertDetail(notification_id="n", space_id=SP1, insight_id=1, value=value, bounds=bounds)
    text = json.loads(slack_body(BREACHED, detail, "https://x.example/i"))["text"]
    assert shown in text, text
    assert "e+" not in text and "e-" not in text, text
