"""The local runtime's data directory (``dora_local.persistence``): what is written is there after a
restart, whatever point a crash stopped it at. Against the session's in-process moto."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dora_local import motofix
from dora_local.persistence import SNAPSHOT, DataDirectory, DataDirectoryError, _canonical

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def ddb(_moto: None) -> Any:
    motofix.install()
    return boto3.client("dynamodb", region_name=REGION)


class Served:
    """A table served from a data directory, restarted as the runtime restarts: a new empty table, the
    directory read into it."""

    def __init__(self, ddb: Any, path: Path) -> None:
        self.ddb, self.path = ddb, path
        self.name = f"persist-{uuid.uuid4().hex[:12]}"
        self.data: DataDirectory | None = None

    def start(self, *, fresh: bool = False) -> DataDirectory:
        from moto.dynamodb.models import dynamodb_backends

        self.ddb.create_table(
            TableName=self.name,
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI1PK")],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GSI1",
                    "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        self.data = DataDirectory.open(self.path, fresh=fresh)
        self.data.attach(dynamodb_backends[ACCOUNT][REGION], [self.name])
        return self.data

    def stop(self) -> None:
        if self.data is not None:
            self.data.close()
            self.data = None
        self.ddb.delete_table(TableName=self.name)

    def restart(self, *, fresh: bool = False) -> DataDirectory:
        self.stop()
        return self.start(fresh=fresh)

    def items(self) -> list[dict[str, Any]]:
        found = self.ddb.scan(TableName=self.name, ConsistentRead=True)["Items"]
        return sorted(found, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))

    def put(self, pk: str, sk: str, **attrs: str) -> None:
        item = {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}
        self.ddb.put_item(TableName=self.name, Item=item)


@pytest.fixture
def served(ddb: Any, tmp_path: Path) -> Iterator[Served]:
    table = Served(ddb, tmp_path / "data")
    table.start()
    try:
        yield table
    finally:
        table.stop()


def write_a_little_of_everything(served: Served) -> None:
    ddb, name = served.ddb, served.name
    for n in range(5):
        served.put("p", f"{n}", GSI1PK="g", note=f"n{n}")
    ddb.update_item(
        TableName=name,
        Key={"PK": {"S": "p"}, "SK": {"S": "1"}},
        UpdateExpression="SET note = :x REMOVE GSI1PK",
        ExpressionAttributeValues={":x": {"S": "updated"}},
    )
    ddb.delete_item(TableName=name, Key={"PK": {"S": "p"}, "SK": {"S": "2"}})
    ddb.batch_write_item(
        RequestItems={
            name: [
                {"PutRequest": {"Item": {"PK": {"S": "q"}, "SK": {"S": "b"}}}},
                {"DeleteRequest": {"Key": {"PK": {"S": "p"}, "SK": {"S": "3"}}}},
            ]
        }
    )
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {"PK": {"S": "t"}, "SK": {"S": "1"}, "GSI1PK": {"S": "g"}}}},
            {"Delete": {"TableName": name, "Key": {"PK": {"S": "p"}, "SK": {"S": "4"}}}},
        ]
    )
    with pytest.raises(ClientError):  # fails and rolls back: the journal must hold the state before it
        ddb.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": name, "Key": {"PK": {"S": "p"}, "SK": {"S": "0"}}}},
                {
                    "Put": {
                        "TableName": name,
                        "Item": {"PK": {"S": "t"}, "SK": {"S": "1"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )


def test_what_was_written_is_there_after_a_restart(served: Served) -> None:
    write_a_little_of_everything(served)
    before = served.items()
    data = served.restart()
    assert served.items() == before
    assert data.loaded_items == len(before) and data.replayed_units > 0
    by_index = served.ddb.query(
        TableName=served.name,
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :g",
        ExpressionAttributeValues={":g": {"S": "g"}},
    )
    assert sorted((i["PK"]["S"], i["SK"]["S"]) for i in by_index["Items"]) == [("p", "0"), ("t", "1")]


def test_writes_after_a_snapshot_are_replayed_over_it(served: Served) -> None:
    write_a_little_of_everything(served)
    assert served.data is not None
    served.data.snapshot()
    served.put("after", "1")
    served.ddb.delete_item(TableName=served.name, Key={"PK": {"S": "q"}, "SK": {"S": "b"}})
    before = served.items()
    data = served.restart()
    assert served.items() == before
    assert data.generation == 1
    assert sorted(p.name for p in served.path.glob("dynamodb.*")) == ["dynamodb.1.log", SNAPSHOT]


def test_a_write_cut_short_by_a_crash_is_dropped_and_the_journal_goes_on_after_the_last_whole_one(
    served: Served,
) -> None:
    write_a_little_of_everything(served)
    before = served.items()
    journal = served.path / "dynamodb.0.log"
    served.stop()
    whole = journal.stat().st_size
    with journal.open("ab") as out:
        out.write(b'{"w":[{"t":"' + served.name.encode() + b'","k":{"PK":{"S":"lost"')  # the crash
    served.start()
    assert served.items() == before
    assert journal.stat().st_size == whole
    served.put("later", "1")
    served.restart()
    assert [i["PK"]["S"] for i in served.items()].count("later") == 1


def test_a_crash_while_writing_a_snapshot_leaves_the_previous_one(served: Served) -> None:
    write_a_little_of_everything(served)
    before = served.items()
    served.stop()
    (served.path / f"{SNAPSHOT}.tmp").write_bytes(b'{"format":"dora-local-dynamodb","version":1,"gener')
    served.start()
    assert served.items() == before
    assert not (served.path / f"{SNAPSHOT}.tmp").exists()


def test_a_crash_after_a_snapshot_before_its_old_journal_was_removed_replays_only_the_new_one(
    served: Served,
) -> None:
    write_a_little_of_everything(served)
    old_journal = (served.path / "dynamodb.0.log").read_bytes()
    assert served.data is not None
    served.data.snapshot()
    served.put("p", "0", note="changed after the snapshot")
    before = served.items()
    served.stop()
    (served.path / "dynamodb.0.log").write_bytes(old_journal)  # the crash left it
    served.start()
    assert served.items() == before
    assert not (served.path / "dynamodb.0.log").exists()


@pytest.mark.parametrize("snapshot", ["removed", "older"])
def test_a_journal_later_than_its_snapshot_stops_the_start_and_is_kept(served: Served, snapshot: str) -> None:
    """A later generation's journal holds only the writes after its snapshot: without that snapshot it is
    not the data, and deleting it as stale (as a generation a later snapshot holds) would lose them."""
    assert served.data is not None
    write_a_little_of_everything(served)
    served.data.snapshot()  # generation 1
    older = (served.path / SNAPSHOT).read_bytes()
    served.put("p", "0", note="after the first snapshot")
    served.data.snapshot()  # generation 2
    served.put("p", "1", note="after the second snapshot")
    served.stop()
    journal = served.path / "dynamodb.2.log"
    kept = journal.read_bytes()
    if snapshot == "removed":
        (served.path / SNAPSHOT).unlink()
    else:
        (served.path / SNAPSHOT).write_bytes(older)
    with pytest.raises(DataDirectoryError, match=r"dynamodb\.2\.log: a journal of generation 2"):
        served.start()
    assert journal.read_bytes() == kept


def test_a_directory_in_use_is_refused(served: Served) -> None:
    with pytest.raises(DataDirectoryError, match="in use by another local runtime"):
        DataDirectory.open(served.path)


def test_fresh_starts_empty(served: Served) -> None:
    write_a_little_of_everything(served)
    served.restart(fresh=True)
    assert served.items() == []
    served.put("new", "1")
    served.restart()
    assert [i["PK"]["S"] for i in served.items()] == ["new"]


def test_the_directory_keeps_itself_out_of_git(served: Served) -> None:
    assert "*" in (served.path / ".gitignore").read_text().splitlines()


def test_a_directory_of_another_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / SNAPSHOT).write_text(json.dumps({"format": "something else"}) + "\n")
    with pytest.raises(DataDirectoryError, match="not a dora_local data file"):
        DataDirectory.open(tmp_path)


def test_a_number_key_is_one_key_however_it_is_spelled() -> None:
    assert _canonical({"PK": {"N": "1"}, "SK": {"S": "a"}}) == _canonical({"SK": {"S": "a"}, "PK": {"N": "1.0"}})
    assert _canonical({"PK": {"N": "10"}}) != _canonical({"PK": {"N": "1"}})
