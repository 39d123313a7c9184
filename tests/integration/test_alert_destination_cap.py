"""The cap of 10 alert destinations a space holds under what moto never shows (issue 17): reads that lag the
writes, creates that race, and transactions cancelled for contention.

The cap was a count read before the write, eventually consistently: ten creates in a row each saw fewer
destinations than there were, and two creates racing past the ninth both got in. The space's count
(``dal.keys`` pattern 65) now moves in the create's and the delete's transactions, conditional on the cap;
a space whose destinations were created before the count has none until a create or delete counts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dora_insights.dal import keys
from dora_insights.dal.store import Store
from dora_insights.domain.alert_destinations import Destination, DestinationKind
from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.contention import record_pauses
from tests.support.replica_lag import ReplicaLag

BASE = "/api/{spaceId}/alert-destinations"
ONE = BASE + "/{destinationId}"
SP = {"spaceId": "Spaces-1"}
SLACK = "https://hooks.slack.com/services/T0001/B0001/"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)


def _post(api: Api, n: int) -> HttpResult:
    body = {"name": f"d{n}", "kind": "slack", "url": f"{SLACK}{n}"}
    return api.call("POST", BASE, path_params=SP, body=body, key=ADMIN_KEY)


def _create(api: Api, n: int) -> str:
    made = _post(api, n)
    assert made.status == 201, made.body
    return str(made.body["id"])


def _full(result: HttpResult) -> None:
    assert result.status == 409, result.body
    assert "at most 10" in result.body["message"]


def _listed(api: Api) -> list[str]:
    found = api.call("GET", BASE, path_params=SP, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return [d["id"] for d in found.body["items"]]


def _count(store: Any) -> int | None:
    item = store.get(keys.alert_destination_count("Spaces-1"), consistent=True)
    return int(item["destinations"]) if item else None


def _created_before_the_count(store: Any, number: int) -> None:
    """``number`` destinations stored as the service stored them before the count existed (no count item)."""
    made = [
        Destination(
            id=f"legacy{n:02d}",
            space_id="Spaces-1",
            name=f"legacy {n}",
            kind=DestinationKind.SLACK,
            url=f"{SLACK}legacy{n}",
            created_at="2024-01-01T00:00:00.000Z",
        )
        for n in range(number)
    ]
    store.batch_put(
        {**keys.alert_destination("Spaces-1", d.id), keys.TYPE: keys.T_ALERT_DESTINATION, **d.model_dump(mode="json")}
        for d in made
    )


def _writes_a_destination(operation: str, kwargs: Mapping[str, Any]) -> bool:
    partition = keys.alert_destinations_pk("Spaces-1")
    if operation == "put_item":
        return bool(kwargs["Item"][keys.PK]["S"] == partition)
    if operation == "transact_write_items":
        return any(
            op.get("Put", {}).get("Item", {}).get(keys.PK, {}).get("S") == partition for op in kwargs["TransactItems"]
        )
    return False


class _NoSecrets:
    """A Slack destination seals nothing."""

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        raise AssertionError("a Slack destination has no secret")

    def open(self, stored: str, context: Mapping[str, str]) -> str | None:
        raise AssertionError("a Slack destination has no secret")


class Race:
    """Another request's create, run from its read to its write just before the ``before``-th write of a
    destination item from now (each DynamoDB call of the request under test is the next one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Any) -> None:
        self.before = 0
        self.ran: list[str] = []
        call = Store.call

        def racing(adapter: Store, operation: str, **kwargs: Any) -> Any:
            if self.before and _writes_a_destination(operation, kwargs):
                self.before -= 1
                if self.before == 0:
                    self.ran.append(self._other_create(store))
            return call(adapter, operation, **kwargs)

        monkeypatch.setattr(Store, "call", racing)

    @staticmethod
    def _other_create(store: Any) -> str:
        from dora_insights.logic import destinations

        made, _ = destinations.create_destination(
            store.destinations(),
            _NoSecrets(),
            "Spaces-1",
            name="other",
            kind=DestinationKind.SLACK,
            url=f"{SLACK}other",
            enabled=True,
            link_base="",
            by="other",
            now=NOW,
            allow_loopback_http=False,
        )
        return made.id


@pytest.fixture
def race(monkeypatch: pytest.MonkeyPatch, store: Any) -> Race:
    return Race(monkeypatch, store)


class CountContention:
    """``Store.transact`` as DynamoDB answers it while another create or delete of the space holds its count:
    a transaction touching the count is cancelled the next ``left`` times (None: every time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.left: int | None = 0
        transact = Store.transact
        counted = keys.alert_destination_count("Spaces-1")

        def contended_transact(store: Store, operations: Sequence[Mapping[str, Any]]) -> None:
            held = [i for i, op in enumerate(operations) if _key(op) == (counted[keys.PK], counted[keys.SK])]
            if held and self.left != 0:
                self.left = None if self.left is None else self.left - 1
                reasons = [{"Code": "TransactionConflict" if i in held else "None"} for i in range(len(operations))]
                error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
                raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
            transact(store, operations)

        monkeypatch.setattr(Store, "transact", contended_transact)


def _key(operation: Mapping[str, Any]) -> tuple[str, str]:
    (body,) = operation.values()
    key = body["Item"] if "Item" in body else body["Key"]
    return (key[keys.PK]["S"], key[keys.SK]["S"])


@pytest.fixture
def contention(monkeypatch: pytest.MonkeyPatch) -> CountContention:
    record_pauses(monkeypatch)  # the retries' pauses are not waited
    return CountContention(monkeypatch)


# --- reads that lag ----------------------------------------------------------------------------------------
def test_ten_creates_in_a_row_fill_the_space_however_the_reads_lag(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    made = [_create(api, n) for n in range(10)]

    _full(_post(api, 10))

    assert _listed(api) == sorted(made), replica_lag.hidden


# --- races -------------------------------------------------------------------------------------------------
def test_two_creates_racing_past_the_ninth_destination_leave_ten(api: Api, store: Any, race: Race) -> None:
    for n in range(9):
        _create(api, n)
    race.before = 1

    _full(_post(api, 9))

    assert len(race.ran) == 1 and race.ran[0] in _listed(api)
    assert len(_listed(api)) == 10


@pytest.mark.parametrize("before", [1, 2], ids=["at-the-counted-write", "at-the-first-count"])
def test_destinations_created_before_the_count_still_count_in_a_race(
    api: Api, store: Any, race: Race, before: int
) -> None:
    _created_before_the_count(store, 9)
    race.before = before  # the other create puts the first count, or goes through the one this create put

    _full(_post(api, 9))

    assert len(race.ran) == 1
    assert (len(_listed(api)), _count(store)) == (10, 10)


def test_destinations_created_before_the_count_are_counted_by_the_next_create(api: Api, store: Any) -> None:
    _created_before_the_count(store, 9)

    _create(api, 9)

    assert _count(store) == 10
    _full(_post(api, 10))


def test_a_delete_gives_its_place_back_whether_the_count_was_there_or_not(api: Api, store: Any, race: Race) -> None:
    _created_before_the_count(store, 10)
    removed = api.call("DELETE", ONE, path_params={**SP, "destinationId": "legacy03"}, key=ADMIN_KEY)
    assert removed.status == 204, removed.body
    assert _count(store) == 9  # counted by the delete, which took its own out
    made = _create(api, 10)
    assert _count(store) == 10
    assert api.call("DELETE", ONE, path_params={**SP, "destinationId": made}, key=ADMIN_KEY).status == 204
    assert api.call("DELETE", ONE, path_params={**SP, "destinationId": made}, key=ADMIN_KEY).status == 404
    assert _count(store) == 9
    race.before = 1

    _full(_post(api, 11))

    assert (len(_listed(api)), _count(store)) == (10, 10)


# --- contention on the count -------------------------------------------------------------------------------
def test_a_create_cancelled_for_contention_on_the_count_is_retried_and_one_still_contended_is_a_503(
    api: Api, store: Any, contention: CountContention
) -> None:
    _create(api, 0)
    contention.left = 2
    _create(api, 1)
    contention.left = None

    refused = _post(api, 2)

    assert refused.status == 503, refused.body
    assert (len(_listed(api)), _count(store)) == (2, 2)
