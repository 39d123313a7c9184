"""Every write path but the creates under contention (issue 17): failure events, corrections and removals,
the DX replacement, settings changes and dirty marks; and the 503 answers the client can act on.

Each of these transactions updates a stream's dirty mark, which every ingest and the recompute update too,
so DynamoDB cancels it for contention alone under load (``tests.support.contention`` makes moto do so).
Such a transaction is sent again after short pauses; one still contended changed nothing and is a 503
``write_contended`` with ``Retry-After``: never a 409 "changed by another request", a 412 for a revision
that is current, or a 404 for an event that is there.
"""

from __future__ import annotations

from typing import Any

import pytest

from dora_insights.dal.metrics import MetricsStore
from dora_insights.dal.store import Store
from dora_insights.domain.records import NewDeployment
from dora_insights.errors import ResourceConflictError, ServiceUnavailableError, WriteContendedError
from dora_insights.observability import logger
from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.contention import Contention, a_deployment, record_pauses
from tests.support.native import create_deployment

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
FAILURES = "/api/{spaceId}/failures"
FAILURE = "/api/{spaceId}/failures/{failureId}"
SETTINGS = "/api/{spaceId}/settings"
STAMP = "2024-03-01T12:00:00.000Z"
STREAMS = [f"Projects-{n}/Channels-1/Environments-1/-" for n in range(3)]


@pytest.fixture
def contention(monkeypatch: pytest.MonkeyPatch) -> Contention:
    record_pauses(monkeypatch)  # the retries' pauses are not waited
    return Contention(monkeypatch)


def _contended(result: HttpResult) -> None:
    """A native 503 ``write_contended`` answer, with ``Retry-After``."""
    assert result.status == 503, result.body
    assert set(result.body) == {"message", "errors"} and "retry" in result.body["message"], result.body
    assert result.header("retry-after") == "1"


def _deploy(api: Api) -> dict[str, Any]:
    return create_deployment(api, version="1")


def _fail(api: Api, cause: str) -> HttpResult:
    body = {"id": "f-1", "project": "shop", "environment": "production", "deployment_id": cause}
    return api.call(
        "POST", FAILURES, path_params=SP, body={**body, "started_at": "2024-03-01T12:30:00Z"}, key=ADMIN_KEY
    )


def _one(api: Api, method: str, deployment_id: str, body: Any = None) -> HttpResult:
    path = {**SP, "deploymentId": deployment_id}
    return api.call(method, ONE, path_params=path, body=body, key=ADMIN_KEY)


def _failure(api: Api, method: str) -> HttpResult:
    return api.call(method, FAILURE, path_params={**SP, "failureId": "f-1"}, key=ADMIN_KEY)


# --- failure events ------------------------------------------------------------------------------------
def test_a_failure_event_cancelled_for_contention_is_retried(api: Api, contention: Contention) -> None:
    cause = _deploy(api)["id"]
    contention.left, contention.attempts = 3, 0
    assert _fail(api, cause).status == 201
    assert contention.attempts == 4
    assert _failure(api, "GET").status == 200


def test_a_failure_event_still_contended_is_a_503_not_a_409_and_nothing_is_stored(
    api: Api, contention: Contention
) -> None:
    cause = _deploy(api)["id"]
    contention.left = None
    _contended(_fail(api, cause))
    assert _failure(api, "GET").status == 404
    contention.left = 0
    assert _fail(api, cause).status == 201


def test_a_failure_event_removal_still_contended_is_a_503_not_a_404(api: Api, contention: Contention) -> None:
    assert _fail(api, _deploy(api)["id"]).status == 201
    contention.left = None
    _contended(_failure(api, "DELETE"))
    assert _failure(api, "GET").status == 200
    contention.left = 0
    assert _failure(api, "DELETE").status == 204
    assert _failure(api, "GET").status == 404


# --- corrections and removals of deployments -------------------------------------------------------------
def test_a_correction_still_contended_is_a_503_not_a_409_and_changes_nothing(api: Api, contention: Contention) -> None:
    created = _deploy(api)
    contention.left, contention.attempts = None, 0
    _contended(_one(api, "PATCH", created["id"], {"version": "1.0.1", "revision": 1}))
    assert contention.attempts == 4  # one transaction, sent 1 + 3 times, not read and applied again
    stored = _one(api, "GET", created["id"]).body
    assert (stored["version"], stored["revision"]) == ("1", 1)
    contention.left = 2  # a brief contention is ridden out
    patched = _one(api, "PATCH", created["id"], {"version": "1.0.1", "revision": 1})
    assert patched.status == 200, patched.body
    assert (patched.body["version"], patched.body["revision"]) == ("1.0.1", 2)


def test_a_removal_still_contended_is_a_503_and_the_deployment_stays(api: Api, contention: Contention) -> None:
    created = _deploy(api)
    contention.left = None
    _contended(_one(api, "DELETE", created["id"]))
    assert _one(api, "GET", created["id"]).status == 200
    contention.left = 0
    assert _one(api, "DELETE", created["id"]).status == 204


# --- the DX replacement --------------------------------------------------------------------------------
def test_a_replacement_still_contended_is_write_contended_and_a_stale_one_a_conflict(
    store: Any, contention: Contention
) -> None:
    first = a_deployment(1)
    store.deployments().write(NewDeployment(first, ("dx", "ref-1")), now=STAMP)
    old = store.get_deployment("Spaces-1", first.id, consistent=True)
    new = old.model_copy(update={"version": "2", "body_hash": "hash-2"})
    contention.left = None
    with pytest.raises(WriteContendedError):
        store.deployments().replace(old, new, idempotency=("dx", "ref-1"), now=STAMP)
    assert store.get_deployment("Spaces-1", first.id, consistent=True) == old
    contention.left = 0
    store.deployments().replace(old, new, idempotency=("dx", "ref-1"), now=STAMP)
    with pytest.raises(ResourceConflictError):  # read before the replacement above: its condition fails
        store.deployments().replace(old, new, idempotency=("dx", "ref-1"), now=STAMP)


# --- settings and dirty marks ----------------------------------------------------------------------------
@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The streams the recompute knows (a change of the failure window marks every one)."""
    monkeypatch.setattr(MetricsStore, "streams", lambda self, space_id, **_: {s: {"stream": s} for s in STREAMS})
    return STREAMS


def test_a_settings_change_still_contended_is_a_503_not_a_412_for_a_current_revision(
    api: Api, contention: Contention, streams: list[str]
) -> None:
    contention.left = None
    patch = {"failure_window_hours": 12, "revision": 0}
    _contended(api.call("PATCH", SETTINGS, path_params=SP, body=patch, key=ADMIN_KEY))
    _contended(api.call("PATCH", SETTINGS, path_params=SP, body={"failure_window_hours": 12}, key=ADMIN_KEY))
    assert api.call("GET", SETTINGS, path_params=SP, key=ADMIN_KEY).body["revision"] == 0
    contention.left = 0
    changed = api.call("PATCH", SETTINGS, path_params=SP, body=patch, key=ADMIN_KEY)
    assert (changed.status, changed.body["revision"]) == (200, 1)


def test_dirty_marks_still_contended_are_write_contended(store: Any, contention: Contention) -> None:
    contention.left = None
    with pytest.raises(WriteContendedError):
        store.mark_streams_dirty("Spaces-1", STREAMS, STAMP)
    assert store.list_dirty_streams("Spaces-1") == []
    contention.left = 3
    store.mark_streams_dirty("Spaces-1", STREAMS, STAMP)
    assert {m["stream"] for m in store.list_dirty_streams("Spaces-1")} == set(STREAMS)


# --- 503 answers: Retry-After, and logged as what they are ---------------------------------------------
@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
    """What the HTTP wiring logs at warning and error: (level, message, with a trace)."""
    found: list[tuple[str, str, bool]] = []
    for level in ("warning", "error"):

        def record(message: str, *_: Any, level: str = level, **kwargs: Any) -> None:
            found.append((level, message, kwargs.get("exc_info") is not None))

        monkeypatch.setattr(logger, level, record)
    return found


def test_a_contended_write_is_logged_as_a_warning_without_a_trace(
    api: Api, contention: Contention, logged: list[tuple[str, str, bool]]
) -> None:
    contention.left = None
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    _contended(api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY))
    assert [(level, trace) for level, _, trace in logged] == [("warning", False)]


def test_another_503_is_an_error_with_its_trace_and_says_when_to_retry(
    api: Api, monkeypatch: pytest.MonkeyPatch, logged: list[tuple[str, str, bool]]
) -> None:
    from dora_insights.logic import settings

    def refused(*_: Any, **__: Any) -> Any:
        raise ServiceUnavailableError("the secrets key refuses to decrypt")

    monkeypatch.setattr(settings, "get_settings", refused)
    result = api.call("GET", SETTINGS, path_params=SP, key=ADMIN_KEY)
    assert (result.status, result.headers.get("Retry-After")) == (503, "1")
    assert logged == [("error", "server error", True)]


def test_a_503_before_the_route_runs_says_when_to_retry(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: Any, **__: Any) -> Any:
        raise ServiceUnavailableError("the key store refuses now")

    monkeypatch.setattr(Store, "find_api_key", refused)
    result = api.call("GET", SETTINGS, path_params=SP, key=ADMIN_KEY)
    assert (result.status, result.headers.get("Retry-After")) == (503, "1")
    assert set(result.body) == {"message", "errors"}


def test_answers_other_than_503_carry_no_retry_after(api: Api) -> None:
    found = api.call("GET", ONE, path_params={**SP, "deploymentId": "missing"}, key=ADMIN_KEY)
    assert found.status == 404 and "retry-after" not in {k.lower() for k in found.headers}
