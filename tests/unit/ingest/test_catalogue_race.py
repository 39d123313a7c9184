"""Two requests introducing the same new catalogue name at once (issue 17), under what moto never does
and DynamoDB does: an eventually consistent read that misses the winner's registration just committed.

The loser's registration is cancelled; it reads again, strongly consistently (after a short jittered
pause), and answers the winner's entity; a name of its own it did not get to register keeps the number
drawn for it. The path where nothing races reads as before: one eventually consistent BatchGetItem.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from dora_insights.dal import keys
from dora_insights.dal.store import Store
from dora_insights.domain.model import CatalogueEntry, CatalogueKind
from dora_insights.errors import WriteContendedError
from dora_insights.logic import catalogue
from tests.unit.logic.fakes import FakePorts

SPACE = "Spaces-1"
WANTED = [(CatalogueKind.PROJECT, "NewProj"), (CatalogueKind.ENVIRONMENT, "prod")]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterable[None]:
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses taken, in seconds (none is waited)."""
    taken: list[float] = []
    monkeypatch.setattr(time, "sleep", taken.append)
    return taken


class _Replica:
    """``Store.call`` with a replica that has not seen the names registered since it was made: an
    eventually consistent BatchGetItem misses them, a strongly consistent one sees them. Records the
    ``ConsistentRead`` of every BatchGetItem and counts the calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.unseen: set[str] = set()
        self.consistent: list[bool] = []
        self.calls: list[str] = []
        call = Store.call

        def lagging(store: Store, operation: str, **kwargs: Any) -> Any:
            response = call(store, operation, **kwargs)
            self.calls.append(operation)
            if operation == "batch_get_item":
                ((table, wanted),) = kwargs["RequestItems"].items()
                self.consistent.append(bool(wanted.get("ConsistentRead")))
                if not wanted.get("ConsistentRead"):
                    items = response["Responses"][table]
                    response["Responses"][table] = [i for i in items if i[keys.PK]["S"] not in self.unseen]
            return response

        monkeypatch.setattr(Store, "call", lagging)


@pytest.fixture
def replica(monkeypatch: pytest.MonkeyPatch) -> _Replica:
    return _Replica(monkeypatch)


def _register_elsewhere(store: Any, kind: CatalogueKind, name: str) -> CatalogueEntry:
    """What a concurrent request did first: register ``name`` under the next number."""
    number = store.next_numbers(SPACE, {kind.value: 1})[kind.value][0]
    entry = CatalogueEntry(kind=kind, id=f"{kind.value}-{number}", name=name)
    assert store.register_catalogue(SPACE, [entry], {entry.id: number})
    return entry


def test_a_lost_registration_race_answers_the_winners_entity(
    store: Any, replica: _Replica, pauses: list[float]
) -> None:
    winner = _register_elsewhere(store, CatalogueKind.PROJECT, "NewProj")
    replica.unseen = {keys.catalogue_pk(SPACE, CatalogueKind.PROJECT.value)}

    found = catalogue.resolve(store, SPACE, [(CatalogueKind.PROJECT, "newproj"), (CatalogueKind.ENVIRONMENT, "prod")])

    assert found[(CatalogueKind.PROJECT, "newproj")] == winner
    # The environment lost its registration with the project (one transaction): registered again under
    # the number drawn for it the first time.
    assert found[(CatalogueKind.ENVIRONMENT, "prod")].id == "Environments-1"
    assert replica.consistent == [False, True]
    assert len(pauses) == 1 and 0.01 <= pauses[0] <= 0.02
    # One number of each kind drawn by this request (the project's wasted: the winner has the name).
    assert store.next_numbers(SPACE, {"Projects": 1, "Environments": 1}) == {"Projects": [3], "Environments": [2]}


def test_the_path_where_nothing_races_reads_once_eventually_consistently(store: Any, replica: _Replica) -> None:
    found = catalogue.resolve(store, SPACE, WANTED)

    assert [e.id for e in found.values()] == ["Projects-1", "Environments-1"]
    assert replica.consistent == [False]
    assert replica.calls == ["batch_get_item", "update_item", "transact_write_items"]


def test_known_names_are_read_once_eventually_consistently(store: Any, replica: _Replica) -> None:
    _register_elsewhere(store, CatalogueKind.PROJECT, "NewProj")
    _register_elsewhere(store, CatalogueKind.ENVIRONMENT, "prod")
    replica.calls.clear()

    found = catalogue.resolve(store, SPACE, WANTED)

    assert [e.id for e in found.values()] == ["Projects-1", "Environments-1"]
    assert replica.consistent == [False] and replica.calls == ["batch_get_item"]


class _Storm(FakePorts):
    """Every registration loses a race whose winner is never seen: the worst case."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bool] = []
        self.draws: list[dict[str, int]] = []
        self.registered: list[list[str]] = []

    def find_catalogue_names(
        self, space_id: str, wanted: Iterable[tuple[CatalogueKind, str]], *, consistent: bool = False
    ) -> dict[tuple[CatalogueKind, str], CatalogueEntry]:
        self.reads.append(consistent)
        return {}

    def next_numbers(self, space_id: str, counts: Any) -> dict[str, list[int]]:
        self.draws.append(dict(counts))
        return super().next_numbers(space_id, counts)

    def register_catalogue(self, space_id: str, entries: Sequence[CatalogueEntry], number_of: dict[str, int]) -> bool:
        self.registered.append([e.id for e in entries])
        return False


def test_registration_that_never_settles_gives_up_after_five_rounds_with_growing_pauses(pauses: list[float]) -> None:
    storm = _Storm()

    with pytest.raises(WriteContendedError, match="did not settle"):
        catalogue.resolve(storm, SPACE, WANTED)

    assert storm.reads == [False, True, True, True, True]
    assert all(0.01 * 2**n <= p <= 0.02 * 2**n for n, p in enumerate(pauses)) and len(pauses) == 4
    # Numbers are drawn once; every round registers the same ids again (no gaps burnt per round).
    assert storm.draws == [{"Projects": 1, "Environments": 1}]
    assert storm.registered == [["Projects-1", "Environments-1"]] * 5
