"""PostHog share links under attack: parallel password guessing, sessions outliving their password or
link, the KDF's cost, the number of passwords per link, and concurrent changes to a link's passwords."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Clock

SP = {"spaceId": "Spaces-1"}
ONE = "/api/projects/{spaceId}/insights/{insightId}"
LOGIN = "/shared/{accessToken}/login"
SHARED = "/shared/{accessToken}"
INSIGHT = {**SP, "insightId": "1"}


@pytest.fixture(autouse=True)
def clock(clock: Clock) -> Clock:
    """A fixed clock (the login window must not roll over mid-test)."""
    return clock


@pytest.fixture
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at N=2^14 for tests about sessions and limits (each hash stores its cost, so this is honest)."""
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


@pytest.fixture
def link(api: Api) -> dict[str, str]:
    """Insight 1 shared with a password required; the link's path parameters."""
    report = api.call(
        "POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "Delivery"}, key=ADMIN_KEY
    )
    query = {"kind": "DoraMetricsQuery", "reportId": report.body["Id"], "metric": "lead_time"}
    created = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body={"query": query}, key=ADMIN_KEY)
    assert created.status == 201, created.body
    sharing = api.call(
        "PATCH", ONE + "/sharing", path_params=INSIGHT, body={"enabled": True, "password_required": True}, key=ADMIN_KEY
    )
    assert sharing.status == 200, sharing.body
    return {"accessToken": sharing.body["access_token"]}


def add_password(api: Api, password: str | None = None) -> Any:
    body = {} if password is None else {"raw_password": password}
    return api.call("POST", ONE + "/sharing/passwords", path_params=INSIGHT, body=body, key=ADMIN_KEY)


def login(api: Api, link: dict[str, str], password: str) -> Any:
    return api.call("POST", LOGIN, path_params=link, body={"password": password})


def open_with(api: Api, link: dict[str, str], session: str) -> int:
    return api.call("GET", SHARED, path_params=link, headers={"Authorization": f"Bearer {session}"}).status


def serialise_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """One DynamoDB call at a time, as DynamoDB serialises writes to one item (moto in-process does
    not lock between a condition check and its write). The KDF still runs in parallel."""
    from dora_insights.dal.store import Store

    lock = threading.Lock()
    call = Store.call

    def serialised(self: Store, operation: str, **kwargs: Any) -> Any:
        with lock:
            return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", serialised)


def test_thirty_parallel_wrong_guesses_get_exactly_ten_401s_then_429s(
    api: Api, link: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a protected link (real KDF cost: its run time is the race window the limit must close)
    assert add_password(api, "correct horse battery").status == 201
    serialise_dynamodb(monkeypatch)
    start = threading.Barrier(30)

    def guess(n: int) -> Any:
        start.wait()
        return login(api, link, f"wrong guess {n}")

    # When 30 wrong guesses arrive at once
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(guess, range(30)))

    # Then 10 get to try the password, the other 20 are throttled in PostHog's shape
    assert sorted(a.status for a in answers) == [401] * 10 + [429] * 20
    throttled = next(a for a in answers if a.status == 429)
    assert throttled.body["type"] == "throttled_error"
    assert throttled.body["code"] == "throttled"
    assert "600 seconds" in throttled.body["detail"]
    # and the window is spent: even the right password waits for the next window
    assert login(api, link, "correct horse battery").status == 429


def test_successful_logins_do_not_use_up_the_window(
    api: Api, link: dict[str, str], clock: Clock, cheap_kdf: None
) -> None:
    from datetime import timedelta

    add_password(api, "correct horse battery")
    for _ in range(12):
        assert login(api, link, "correct horse battery").status == 200
    assert [login(api, link, "wrong").status for _ in range(11)] == [401] * 10 + [429]
    clock.advance(timedelta(minutes=10))
    assert login(api, link, "correct horse battery").status == 200


def test_a_session_ends_when_its_password_is_deleted(api: Api, link: dict[str, str], cheap_kdf: None) -> None:
    ops = add_password(api, "ops password 1").body
    add_password(api, "dev password 2")
    by_ops = login(api, link, "ops password 1").body["token"]
    by_dev = login(api, link, "dev password 2").body["token"]
    assert open_with(api, link, by_ops) == open_with(api, link, by_dev) == 200

    deleted = api.call(
        "DELETE",
        ONE + "/sharing/passwords/{passwordId}",
        path_params={**INSIGHT, "passwordId": ops["id"]},
        key=ADMIN_KEY,
    )

    assert deleted.status == 204
    assert open_with(api, link, by_ops) == 401
    assert open_with(api, link, by_dev) == 200  # the other password's sessions live on
    assert login(api, link, "ops password 1").status == 401


def test_a_session_ends_when_the_link_is_refreshed(api: Api, link: dict[str, str], cheap_kdf: None) -> None:
    add_password(api, "ops password 1")
    session = login(api, link, "ops password 1").body["token"]
    assert open_with(api, link, session) == 200

    refreshed = api.call("POST", ONE + "/sharing/refresh", path_params=INSIGHT, key=ADMIN_KEY).body
    new_link = {"accessToken": refreshed["access_token"]}

    assert open_with(api, link, session) == 404  # the old link is gone
    assert open_with(api, new_link, session) == 401  # and its session does not open the new one
    fresh = login(api, new_link, "ops password 1").body["token"]
    assert open_with(api, new_link, fresh) == 200


def test_new_hashes_use_owasp_scrypt_cost_and_old_hashes_still_verify(
    api: Api, link: dict[str, str], store: Any
) -> None:
    from dora_insights.domain.insights import SharePassword
    from dora_insights.logic import insights

    # A hash stored before the parameters were stored (N=2^14, its own salt, no "kdf")
    repository = store.insights()
    sharing = repository.get_sharing("Spaces-1", 1)
    assert sharing is not None
    salt = secrets.token_bytes(16)
    legacy = {
        "id": "LEGACY1",
        "note": "from before",
        "created_at": "2024-01-01T00:00:00.000000Z",
        "created_by": {"first_name": "x", "email": None},
        "salt": salt.hex(),
        "hash": hashlib.scrypt(b"old password 1", salt=salt, n=2**14, r=8, p=1).hex(),
    }
    with_legacy = sharing.model_copy(update={"share_passwords": (SharePassword.model_validate(legacy),)})
    repository.put_sharing("Spaces-1", 1, with_legacy, expected_version=sharing.version)

    started = time.perf_counter()
    assert add_password(api, "new password 2").status == 201
    add_seconds = time.perf_counter() - started

    stored = repository.get_sharing("Spaces-1", 1)
    assert stored is not None
    new = stored.share_passwords[1]
    assert new.kdf is not None
    assert {k: int(v) for k, v in new.kdf.model_dump().items() if k != "name"} == {"n": 2**17, "r": 8, "p": 1}
    assert new.kdf.name == "scrypt"
    assert new.salt == stored.password_salt
    assert insights.SCRYPT_COST.maxmem >= 128 * 8 * 2**17  # 128 MiB of the function's 512 MB
    assert login(api, link, "old password 1").status == 200
    assert login(api, link, "new password 2").status == 200
    assert login(api, link, "new password 3").status == 401
    assert add_seconds > 0.05  # a real KDF ran (N=2^17 takes ~0.7 s on one core here)


def test_a_link_holds_at_most_ten_passwords(api: Api, link: dict[str, str], cheap_kdf: None) -> None:
    created = [add_password(api) for _ in range(10)]
    assert [c.status for c in created] == [201] * 10

    refused = add_password(api)

    assert refused.status == 400
    assert refused.body["type"] == "validation_error"
    assert refused.body["code"] == "max_share_passwords"
    listed = api.call("GET", ONE + "/sharing", path_params=INSIGHT, key=ADMIN_KEY).body
    assert len(listed["share_passwords"]) == 10
    api.call(
        "DELETE",
        ONE + "/sharing/passwords/{passwordId}",
        path_params={**INSIGHT, "passwordId": created[0].body["id"]},
        key=ADMIN_KEY,
    )
    assert add_password(api).status == 201


def test_a_password_deleted_while_another_is_added_stays_deleted(
    api: Api, link: dict[str, str], monkeypatch: pytest.MonkeyPatch, cheap_kdf: None, store: Any
) -> None:
    from dora_insights.logic import insights

    doomed = add_password(api, "doomed password").body
    session = login(api, link, "doomed password").body["token"]
    hash_password = insights._hash_password
    raced: list[bool] = []

    def hash_then_race(password: str, salt: bytes, cost: Any) -> str:
        # While the add holds its copy of the password list, another request deletes a password.
        if not raced:
            raced.append(True)
            insights.delete_share_password(store, "Spaces-1", 1, doomed["id"], NOW)
        return hash_password(password, salt, cost)

    monkeypatch.setattr(insights, "_hash_password", hash_then_race)
    added = add_password(api, "second password")

    assert added.status == 201
    listed = api.call("GET", ONE + "/sharing", path_params=INSIGHT, key=ADMIN_KEY).body
    assert [p["id"] for p in listed["share_passwords"]] == [added.body["id"]]
    assert login(api, link, "doomed password").status == 401
    assert open_with(api, link, session) == 401
    assert login(api, link, "second password").status == 200
