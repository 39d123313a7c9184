"""The attribution-retry queue's messages (handlers/attribution_retry.py, logic/attribution_retry.py), as SQS
delivers them: at least once, late, shuffled, beside wakes from code events and the sweep's re-drives.

A waiting deployment has one chain of retry messages: a duplicated delivery, a wake that does not resolve it
or a sweep's re-drive next to a slow original neither starts a second chain nor counts a second attempt; a
lost message is carried on by the sweep; a wake that resolves it resolves it at once. The chain's delays grow
to SQS's 15 minutes and end after three days; a stale message after a replacement or a correction changes
nothing; malformed messages and messages naming another space fail alone or touch nothing; a failing member
of a group does not stop the others; late code through shuffled, duplicated and failing deliveries ends in
the attributions that the code sent first gives."""

from __future__ import annotations

import itertools
import json
import random
import time
from datetime import timedelta
from typing import Any

import boto3
import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.code import commit, send_changes, sha
from tests.support.events import load_event
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE, other_space  # noqa: F401
from tests.support.lambdas import invoke
from tests.support.native import attribution_of, create_deployment, read_deployment
from tests.support.seeds import seeds

SP = "Spaces-1"
UNKNOWN = "2222222222222222222222222222222222222222"


def _record(body: Any, *, message_id: str = "m-1", receive: str = "1") -> dict[str, Any]:
    template = load_event("AttributionRetryFunction.json")["Records"][0]
    return {
        **template,
        "messageId": message_id,
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {**template["attributes"], "ApproximateReceiveCount": receive},
    }


def _deliver(records: list[dict[str, Any]], ctx: Any) -> dict[str, Any]:
    return invoke("AttributionRetryFunction", {"Records": records}, ctx)  # type: ignore[no-any-return]


def _sqs_queue(aws: Aws) -> Any:
    from moto.sqs.models import sqs_backends

    name = aws.queue_url.rsplit("/", 1)[-1]
    for backend in sqs_backends.values():
        for region in backend.values():
            queue = region.queues.get(name)
            if queue is not None:
                return queue
    raise AssertionError("queue not found")


def _queued(aws: Aws) -> list[dict[str, Any]]:
    """Every message on the retry queue, delayed ones included (read through moto's backend)."""
    return [json.loads(m.body) for m in _sqs_queue(aws)._messages]


def _purge(aws: Aws) -> None:
    _sqs_queue(aws)._messages.clear()


def _read(api: Api, deployment_id: str) -> dict[str, Any]:
    body = dict(read_deployment(api, deployment_id))
    body.pop("as_of", None)
    return body


def _for(messages: list[dict[str, Any]], deployment_id: str) -> list[dict[str, Any]]:
    return [m for m in messages if deployment_id in (m.get("deployment_ids") or [m.get("deployment_id")])]


def _wake(deployment_id: str) -> dict[str, Any]:
    """The message a code event sends a deployment waiting for it (``attribution.wake``)."""
    return {"space_id": SP, "deployment_id": deployment_id, "attempt": 0}


# --------------------------------------------------------------------------------- one chain per deployment


def test_a_duplicated_delivery_does_not_fork_the_retry_chain(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """The pending deployment's one retry message delivered twice leaves one message: the next of its chain."""
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    assert attribution_of(api, pending["id"])["state"] == "Pending"
    (message,) = _for(_queued(aws), pending["id"])
    _purge(aws)

    clock.advance(timedelta(minutes=1))
    assert _deliver([_record(message, message_id="a")], lambda_context) == {"batchItemFailures": []}
    clock.advance(timedelta(seconds=5))
    assert _deliver([_record(message, message_id="a")], lambda_context) == {"batchItemFailures": []}

    assert attribution_of(api, pending["id"])["state"] == "Pending"
    assert _for(_queued(aws), pending["id"]) == [{**message, "attempt": message["attempt"] + 1}]


def test_a_duplicated_delivery_does_not_count_two_attempts(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    (message,) = _for(_queued(aws), pending["id"])
    _purge(aws)
    before = attribution_of(api, pending["id"])["attempts"]
    clock.advance(timedelta(minutes=1))
    _deliver([_record(message, message_id="a")], lambda_context)
    _deliver([_record(message, message_id="a")], lambda_context)
    assert attribution_of(api, pending["id"])["attempts"] == before + 1


def test_wakes_that_do_not_resolve_do_not_multiply_the_retry_messages(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A deployment waiting (its one retry chain in flight) is woken by messages that do not resolve it:
    its chain's message stays the only one, and no attempt is counted."""
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    first = attribution_of(api, pending["id"])
    assert first["state"] == "Pending", first
    (chain,) = _for(_queued(aws), pending["id"])
    for n in range(4):
        send_changes(api, commits=[commit(n, 2 + n)])
        clock.advance(timedelta(seconds=5))
        assert _deliver([_record(_wake(pending["id"]), message_id=f"w{n}")], lambda_context) == {
            "batchItemFailures": []
        }
    assert attribution_of(api, pending["id"]) == first
    assert _for(_queued(aws), pending["id"]) == [chain]


def test_repository_waiting_deployment_woken_by_pushes_keeps_one_chain(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A deployment naming only a repository (rule 4) whose default branch is unknown waits for the
    repository; every push to it wakes it. Wakes that do not resolve it do not each start a chain."""
    pending = create_deployment(api, repository="acme/other")
    assert attribution_of(api, pending["id"])["state"] == "Pending"
    for n in range(4):
        send_changes(api, commits=[{**commit(n, 2 + n), "repository": "acme/other"}])
        clock.advance(timedelta(seconds=10))
    wakes = [m for m in _queued(aws) if m.get("attempt") == 0]
    chains = [m for m in _queued(aws) if m.get("attempt") != 0]
    assert wakes and len(chains) == 1, _queued(aws)
    _purge(aws)
    for m in chains:
        boto3.client("sqs").send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(m))
    for m in wakes:
        assert _deliver([_record(m)], lambda_context) == {"batchItemFailures": []}
    assert attribution_of(api, pending["id"])["state"] == "Pending"
    assert _for(_queued(aws), pending["id"]) == chains


def test_a_sweep_during_a_slow_retry_does_not_leave_two_chains(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """The retry message fails a few receives (each back after the 6-minute visibility timeout), past its
    outbox lease: the sweep re-drives the deployment. When the original message then succeeds too, the
    deployment still has one retry chain, in either order."""
    from tests.support.recompute import scheduled_run

    for order in ("swept first", "original first"):
        pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN, project=order.split()[0])
        (original,) = _for(_queued(aws), pending["id"])
        _purge(aws)
        clock.advance(timedelta(minutes=19))  # three failed receives of 6 minutes
        scheduled_run(lambda_context)
        swept = _for(_queued(aws), pending["id"])
        assert swept == [_wake(pending["id"])]  # the sweep re-drove it
        _purge(aws)
        bodies = (swept[0], original) if order == "swept first" else (original, swept[0])
        for body in bodies:  # both handled (the original on its fourth receive)
            assert _deliver([_record(body, receive="4")], lambda_context) == {"batchItemFailures": []}
        attribution = attribution_of(api, pending["id"])
        assert (attribution["state"], attribution["attempts"]) == ("Pending", original["attempt"] + 1)
        assert _for(_queued(aws), pending["id"]) == [{**original, "attempt": original["attempt"] + 1}], order
        _purge(aws)


def test_a_lost_chain_message_is_carried_on_by_the_sweep_while_wakes_only_refresh(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """The chain's message is lost; wakes meanwhile do not restart the chain (it is alive as far as they
    know) and send nothing; once its lease is over the sweep re-drives the deployment, whose message starts
    the chain again."""
    from tests.support.recompute import scheduled_run

    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    (lost,) = _for(_queued(aws), pending["id"])
    _purge(aws)
    for n in range(3):
        clock.advance(timedelta(minutes=2))
        assert _deliver([_record(_wake(pending["id"]), message_id=f"w{n}")], lambda_context) == {
            "batchItemFailures": []
        }
    assert _queued(aws) == []
    assert attribution_of(api, pending["id"])["attempts"] == lost["attempt"]
    clock.advance(timedelta(minutes=16))
    scheduled_run(lambda_context)
    (swept,) = _for(_queued(aws), pending["id"])
    _purge(aws)
    assert _deliver([_record(swept)], lambda_context) == {"batchItemFailures": []}
    assert attribution_of(api, pending["id"])["attempts"] == lost["attempt"] + 1
    assert _for(_queued(aws), pending["id"]) == [{**lost, "attempt": lost["attempt"] + 1}]
    assert _deliver([_record(lost)], lambda_context) == {"batchItemFailures": []}  # found after all: a duplicate
    assert attribution_of(api, pending["id"])["attempts"] == lost["attempt"] + 1
    assert _for(_queued(aws), pending["id"]) == [{**lost, "attempt": lost["attempt"] + 1}]


def test_a_wake_that_resolves_the_deployment_resolves_it_at_once(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """The code a pending deployment waits for arrives: its wake resolves it, its chain's message in flight
    included, and the chain's message then ends the chain."""
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    (chain,) = _for(_queued(aws), pending["id"])
    _purge(aws)
    send_changes(api, commits=[{**commit(0, 10), "sha": UNKNOWN}])
    wakes = _for(_queued(aws), pending["id"])
    assert wakes == [_wake(pending["id"])]
    _purge(aws)
    assert _deliver([_record(wakes[0])], lambda_context) == {"batchItemFailures": []}
    resolved = _read(api, pending["id"])
    assert resolved["attribution"]["state"] == "Resolved"
    assert resolved["attribution"]["commits"] == [UNKNOWN]
    clock.advance(timedelta(minutes=1))
    assert _deliver([_record(chain)], lambda_context) == {"batchItemFailures": []}
    assert _read(api, pending["id"]) == resolved
    assert _queued(aws) == []


def test_a_wake_records_what_the_deployment_waits_for_now(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """Two deployments of a stream wait for their commits; the push of both wakes both. The second's wake,
    handled first, leaves it waiting for the first (not counted as an attempt, no message sent) and records
    that it waits for it, so that the first one's resolution wakes it at once, not its chain's next retry."""
    first_sha, second_sha = "2" * 40, "3" * 40
    first = create_deployment(api, repository="acme/shop", commit_sha=first_sha, finished_at="2024-03-01T20:00:00Z")
    second = create_deployment(api, repository="acme/shop", commit_sha=second_sha, finished_at="2024-03-02T20:00:00Z")
    assert [attribution_of(api, d["id"])["state"] for d in (first, second)] == ["Pending", "Pending"]
    chains = _queued(aws)
    _purge(aws)
    send_changes(
        api,
        commits=[
            {**commit(0, 10), "sha": first_sha},
            {**commit(1, 11), "sha": second_sha},
        ],
    )
    assert sorted(m["deployment_id"] for m in _queued(aws)) == sorted([first["id"], second["id"]])
    _purge(aws)
    assert _deliver([_record(_wake(second["id"]))], lambda_context) == {"batchItemFailures": []}
    waiting = attribution_of(api, second["id"])
    assert (waiting["state"], waiting["attempts"]) == ("Pending", 1)
    assert _queued(aws) == []
    assert _deliver([_record(_wake(first["id"]))], lambda_context) == {"batchItemFailures": []}
    assert attribution_of(api, first["id"])["state"] == "Resolved"
    assert _queued(aws) == [_wake(second["id"])]  # woken by the first one's resolution
    _purge(aws)
    assert _deliver([_record(_wake(second["id"]))], lambda_context) == {"batchItemFailures": []}
    resolved = attribution_of(api, second["id"])
    assert (resolved["state"], resolved["commits"]) == ("Resolved", [second_sha])
    for chain in chains:  # the chains' messages in flight then end
        assert _deliver([_record(chain)], lambda_context) == {"batchItemFailures": []}
    assert _queued(aws) == []


# --------------------------------------------------------------------------------- the chain's course


def test_retry_delays_grow_and_cap_at_15_minutes(api: Api, aws: Aws, clock: Clock, lambda_context: Any) -> None:
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    delays = []
    for _ in range(8):
        (m,) = _sqs_queue(aws)._messages
        until = float(m.delayed_until or 0)
        until = until / 1000 if until > 1e11 else until
        delays.append(max(0, round(until - time.time())))
        body = json.loads(m.body)
        _purge(aws)
        clock.advance(timedelta(seconds=delays[-1] + 1))
        assert _deliver([_record(body)], lambda_context) == {"batchItemFailures": []}
    assert delays == sorted(delays) and max(delays) == 900 and delays[0] >= 30, delays
    assert attribution_of(api, pending["id"])["state"] == "Pending"


def test_the_retries_end_after_three_days(api: Api, aws: Aws, clock: Clock, lambda_context: Any) -> None:
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    (message,) = _for(_queued(aws), pending["id"])
    _purge(aws)
    clock.advance(timedelta(days=3, minutes=1))
    assert _deliver([_record(message)], lambda_context) == {"batchItemFailures": []}
    assert attribution_of(api, pending["id"])["state"] == "GaveUp"
    assert _for(_queued(aws), pending["id"]) == []
    # a late duplicate changes nothing and sends nothing
    assert _deliver([_record(message)], lambda_context) == {"batchItemFailures": []}
    assert attribution_of(api, pending["id"])["state"] == "GaveUp"
    assert _for(_queued(aws), pending["id"]) == []


def test_a_stale_message_for_a_replaced_deployment_keeps_the_new_versions_attribution(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """Deleted and sent again (the documented way to change its commit) while its old retry message
    waited: the old message is a no-op on the new version."""
    send_changes(api, commits=[commit(0, 10)])
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN, id="d-x")
    (message,) = _for(_queued(aws), "d-x")
    path = {"spaceId": SP, "deploymentId": "d-x"}
    deleted = api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)
    assert deleted.status == 204, deleted.body
    create_deployment(api, repository="acme/shop", commit_sha=sha(0), id="d-x")
    _purge(aws)
    fresh = _read(api, pending["id"])
    assert fresh["attribution"]["state"] == "Resolved", fresh
    clock.advance(timedelta(minutes=1))
    assert _deliver([_record(message)], lambda_context) == {"batchItemFailures": []}
    assert _read(api, pending["id"]) == fresh
    assert _queued(aws) == []


def test_a_message_for_a_deployment_corrected_to_failed_while_pending(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN, id="d-y")
    (message,) = _for(_queued(aws), "d-y")
    _purge(aws)
    path = {"spaceId": SP, "deploymentId": "d-y"}
    patched = api.call(
        "PATCH", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, body={"state": "Failed"}, key=ADMIN_KEY
    )
    assert patched.status < 300, patched.body
    send_changes(api, commits=[{**commit(0, 10), "sha": UNKNOWN}])
    clock.advance(timedelta(minutes=1))
    for _ in range(3):
        messages = _queued(aws) or [message]
        _purge(aws)
        result = _deliver([_record(m, message_id=f"m{n}") for n, m in enumerate(messages)], lambda_context)
        assert result == {"batchItemFailures": []}
    assert _queued(aws) == []
    assert attribution_of(api, pending["id"])["state"] != "Pending"


# --------------------------------------------------------------------------------- malformed messages, tenancy

POISON = [
    "not json",
    "",
    "null",
    "[]",
    '{"space_id": "Spaces-1"}',
    '{"space_id": "", "deployment_id": "x"}',
    '{"space_id": "Spaces-1", "deployment_id": "x", "deployment_ids": ["y"]}',
    '{"space_id": "Spaces-1", "deployment_ids": []}',
    '{"space_id": "Spaces-1", "deployment_id": "x", "attempt": -1}',
    '{"space_id": "Spaces-1", "deployment_id": "' + "x" * 300 + '"}',
    '{"space_id": "Spaces-1", "deployment_ids": ' + json.dumps([f"d{i}" for i in range(500)]) + "}",
    '{"space_id": 12, "deployment_id": 7}',
]


@pytest.mark.parametrize("body", POISON, ids=range(len(POISON)))
def test_a_malformed_message_is_reported_failed_next_to_a_good_one(
    api: Api, aws: Aws, lambda_context: Any, body: str
) -> None:
    """One malformed message next to a good one: the good is acknowledged, the malformed reported failed."""
    ok = {"space_id": SP, "deployment_id": "nope", "attempt": 1}
    result = _deliver([_record(body, message_id="bad"), _record(ok, message_id="good")], lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_a_message_naming_another_space_never_touches_the_deployment(
    api: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    other_space: str,  # noqa: F811
) -> None:
    pending = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN)
    _purge(aws)
    before = _read(api, pending["id"])
    clock.advance(timedelta(minutes=1))
    for space in (OTHER_SPACE, "Spaces-404"):
        body = {"space_id": space, "deployment_id": pending["id"], "attempt": 1}
        assert _deliver([_record(body)], lambda_context) == {"batchItemFailures": []}
    for space in ("Spaces-1#DEP", "S#Spaces-1"):  # key-shaped space ids: refused (reported), nothing touched
        body = {"space_id": space, "deployment_id": pending["id"], "attempt": 1}
        good = _record({"space_id": SP, "deployment_id": "absent"}, message_id="good")
        assert _deliver([_record(body), good], lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert _read(api, pending["id"]) == before
    assert _queued(aws) == []
    # nothing was written under the space that does not exist
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    assert not [i for i in items if "Spaces-404" in json.dumps(i, default=str)]


def test_a_message_naming_a_deployment_of_another_space_in_its_own_space_is_a_noop(
    api: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    other_space: str,  # noqa: F811
) -> None:
    send_changes(api, commits=[commit(0, 10)], space=OTHER_SPACE, key=OTHER_KEY)
    theirs = create_deployment(api, space=OTHER_SPACE, key=OTHER_KEY, repository="acme/shop", commit_sha=UNKNOWN)
    mine = create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN, id=theirs["id"])
    assert mine["id"] == theirs["id"]
    _purge(aws)
    send_changes(api, commits=[commit(1, 11)])  # unrelated
    body = {"space_id": OTHER_SPACE, "deployment_id": theirs["id"], "attempt": 1}
    clock.advance(timedelta(minutes=1))
    assert _deliver([_record(body)], lambda_context) == {"batchItemFailures": []}
    assert attribution_of(api, mine["id"])["state"] == "Pending"


def test_a_failing_deployment_in_a_group_does_not_stop_the_others(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import attribution_retry

    send_changes(api, commits=[commit(0, 10)])
    ids = [create_deployment(api, repository="acme/shop", commit_sha=UNKNOWN, project=f"p{n}")["id"] for n in range(3)]
    _purge(aws)
    send_changes(api, commits=[{**commit(1, 11), "sha": UNKNOWN}])
    _purge(aws)
    real = attribution_retry.retry

    def flaky(store: Any, space_id: str, deployment_id: str, *args: Any, **kwargs: Any) -> Any:
        if deployment_id == ids[1]:
            raise RuntimeError("boom")
        return real(store, space_id, deployment_id, *args, **kwargs)

    monkeypatch.setattr(attribution_retry, "retry", flaky)
    ok = {"space_id": SP, "deployment_id": ids[0]}
    group = {"space_id": SP, "deployment_ids": ids}
    result = _deliver([_record(ok, message_id="ok"), _record(group, message_id="group")], lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "group"}]}
    assert [attribution_of(api, i)["state"] for i in ids] == ["Resolved", "Pending", "Resolved"]


# --------------------------------------------------------------------------------- property: order of deliveries


def _history(rng: random.Random) -> list[tuple[int, int]]:
    """(commit number, finish hour) of 4-6 deployments of one stream, in finish order, commits in order."""
    count = rng.randint(4, 6)
    commits = sorted(rng.sample(range(8), count))
    return [(c, 12 + n) for n, c in enumerate(commits)]


def _summary(api: Api, ids: list[str], space: str, key: str, ctx: Any) -> list[tuple[Any, ...]]:
    from tests.support.recompute import scheduled_run

    scheduled_run(ctx)
    out = []
    for deployment_id in ids:
        body = read_deployment(api, deployment_id, space=space, key=key)
        a = body.get("attribution") or {}
        f = body.get("figures") or {}
        out.append(
            (
                a.get("state"),
                a.get("mode"),
                tuple(a.get("commits") or ()),
                json.dumps(a.get("pull_requests"), sort_keys=True),
                a.get("change_started_at"),
                f.get("lead_time_seconds"),
            )
        )
    return out


@pytest.mark.parametrize("seed", seeds(list(range(1, 11))))
def test_late_code_through_shuffled_duplicated_deliveries_equals_code_first(
    api: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    other_space: str,  # noqa: F811
    seed: int,
) -> None:
    """The code arriving late (in random chunks, between rounds of the queue) and the retry messages
    delivered shuffled, duplicated and partly failing: the same attributions and lead times as with the
    code there first."""
    from dora_insights.logic import attribution_retry

    rng = random.Random(seed)
    history = _history(rng)
    commits = [commit(n, 2 + n) for n in range(8)]
    pulls = [
        {**pull, "number": 100 + c}
        for c, _ in history
        if rng.random() < 0.5
        for pull in [
            {
                "repository": "acme/shop",
                "base_ref": "main",
                "merge_commit_sha": sha(c),
                "created_at": "2024-03-01T00:30:00Z",
                "merged_at": f"2024-03-01T{2 + c:02d}:00:00Z",
            }
        ]
    ]
    send_changes(api, commits=commits, pulls=pulls, space=OTHER_SPACE, key=OTHER_KEY)
    ref_ids = [
        create_deployment(
            api,
            space=OTHER_SPACE,
            key=OTHER_KEY,
            repository="acme/shop",
            commit_sha=sha(c),
            finished_at=f"2024-03-01T{h:02d}:00:00Z",
            id=f"d-{h}",
        )["id"]
        for c, h in history
    ]
    _purge(aws)
    ids = [
        create_deployment(
            api, repository="acme/shop", commit_sha=sha(c), finished_at=f"2024-03-01T{h:02d}:00:00Z", id=f"d-{h}"
        )["id"]
        for c, h in history
    ]
    # the code in random chunks (commits in push order; a pull request no earlier than its merge commit)
    chunks: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
    cut = sorted(rng.sample(range(1, 8), rng.randint(0, 3)))
    bounds = [0, *cut, 8]
    for lo, hi in itertools.pairwise(bounds):
        chunk_commits = commits[lo:hi]
        shas = {c["sha"] for c in chunk_commits}
        chunks.append((chunk_commits, [p for p in pulls if p["merge_commit_sha"] in shas]))
    real = attribution_retry.retry
    sqs = boto3.client("sqs")
    for rounds in range(40):
        if chunks and (rounds == 0 or rng.random() < 0.5):
            chunk_commits, chunk_pulls = chunks.pop(0)
            send_changes(api, commits=chunk_commits, pulls=chunk_pulls)
        messages = _queued(aws)
        if not messages and not chunks:
            break
        _purge(aws)
        deliveries = messages + rng.sample(messages, k=min(len(messages), rng.randint(0, 3)))
        rng.shuffle(deliveries)
        clock.advance(timedelta(minutes=16))
        flaky_ids = {i for i in ids if rng.random() < 0.15}

        def flaky(store: Any, space_id: str, deployment_id: str, *a: Any, _f: set[str] = flaky_ids, **k: Any) -> Any:
            if deployment_id in _f:
                raise RuntimeError("transient")
            return real(store, space_id, deployment_id, *a, **k)

        attribution_retry.retry = flaky  # type: ignore[assignment]
        try:
            for start in range(0, len(deliveries), 10):
                chunk = deliveries[start : start + 10]
                records = [_record(b, message_id=f"m{start + n}") for n, b in enumerate(chunk)]
                try:
                    result = _deliver(records, lambda_context)
                    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
                except Exception:
                    failed = {r["messageId"] for r in records}
                for n, body in enumerate(chunk):  # SQS returns a failed record
                    if f"m{start + n}" in failed:
                        sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(body))
        finally:
            attribution_retry.retry = real  # type: ignore[assignment]
    assert not chunks
    mine = _summary(api, ids, SP, ADMIN_KEY, lambda_context)
    assert mine == _summary(api, ref_ids, OTHER_SPACE, OTHER_KEY, lambda_context)
