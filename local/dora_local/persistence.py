"""The local runtime's data directory: its DynamoDB tables survive a restart, and a crash.

Design: a snapshot plus a redo journal, both of items in DynamoDB JSON.

- ``dynamodb.json``: the snapshot. Line 1 a header (format, version, generation ``G``), then one line
  per item: ``{"t": table, "k": key, "i": item}``.
- ``dynamodb.<G>.log``: the journal since snapshot ``G``. One line per write unit (a ``PutItem``, an
  ``UpdateItem``, a whole ``TransactWriteItems``, ...: :mod:`dora_local.motofix`), written (unbuffered)
  before moto answers the call: ``{"w": [{"t": table, "k": key, "i": item or null}, ...]}``, the state
  each key it wrote is in once it is done (null: deleted).
- ``lock``: held (``flock``) while a runtime uses the directory; a second runtime refuses it.
- ``.gitignore``: ``*``, so a data directory inside the repository is never committed.

Start: the snapshot is read, the journal replayed over it (a line is the whole unit or nothing: a last
line cut short by a crash is dropped, and cut off the file; a damaged line with lines after it is no
crash's, and stops the start naming its line, the file left as it is), the items stored straight into
the tables the template created (an item that is not one stops the start too, naming its file and line).
Every write unit then appends its line. The journal is folded into a new snapshot when it passes
:data:`COMPACT_BYTES` (and at a stop, past :data:`COMPACT_AT_STOP_BYTES`): the snapshot is written to a
temporary file, synced and renamed over the old one (atomic), then the next generation's journal starts
and the old one is removed. A crash at any point leaves either the old snapshot with its journal or the
new one (with an empty journal): never half of either.

Why items and not requests: replaying the journal sets items, it never re-runs conditions, update
expressions or moto's code, so a replay cannot diverge from what moto did (failed transactions
included: their units log the state they left, which is the state before them); and the files are
DynamoDB JSON a later moto reads as well as this one (a pickle of moto's objects would tie the
directory to moto's internals). Why not only snapshots: a snapshot of a large table takes seconds,
far too long for every write, and a periodic one loses the writes since the last.

A write that cannot be kept (disk full, directory gone): the torn line is cut back off the journal and
a full snapshot is tried instead (it holds the write). If that fails too, the directory is *broken*:
the write's backend call fails (moto answers 500: :class:`motofix.WriteNotKeptError`), every later write
is refused before it is made, the HTTP front answers 503 to every write request, and stderr says why
and what to do (free space, restart). Nothing answered as a success is ever missing after a restart.

Only DynamoDB is kept: queues and event buses start empty (the attribution retry queue's messages
are re-driven from the outbox by the scheduled recompute; README, local settings).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn

from dora_local import motofix, motoindex

__all__ = ["COMPACT_AT_STOP_BYTES", "COMPACT_BYTES", "DataDirectory", "DataDirectoryError"]

FORMAT = "dora-local-dynamodb"
VERSION = 1
SNAPSHOT = "dynamodb.json"
COMPACT_BYTES = 64 * 1024 * 1024  # fold the journal into a new snapshot past this size
COMPACT_AT_STOP_BYTES = 4 * 1024 * 1024  # ... and at a stop, past this one
_JSON = {"separators": (",", ":"), "ensure_ascii": False}


class DataDirectoryError(Exception):
    """The data directory cannot be used (another runtime holds it, it cannot be read, or it is not this
    format): the message names the file (and line)."""


@dataclass
class _Table:
    """One table's items as read: canonical key -> (key, item; None: deleted by the journal, line: where
    it was read, > 0 the journal's line, < 0 the snapshot's, negated)."""

    items: dict[str, tuple[dict[str, Any], dict[str, Any] | None, int]] = field(default_factory=dict)
    largest: int = 0  # bytes of the longest line holding one of its items (a bound of its items' sizes)

    def stored(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(key, item) for key, item, _ in self.items.values() if item is not None]

    def lines(self) -> Iterator[tuple[dict[str, Any], int]]:
        """Each stored item with its line (as in ``items``)."""
        return ((item, line) for _, item, line in self.items.values() if item is not None)


class DataDirectory:
    """A data directory in use: :meth:`open` it, :meth:`attach` it to moto, :meth:`close` it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.generation = 0
        self.tables: dict[str, _Table] = {}
        self.loaded_items = 0
        self.replayed_units = 0
        self._lock: IO[str] | None = None
        self._journal: IO[bytes] | None = None  # unbuffered: a write is in the OS or it failed
        self._journal_bytes = 0  # the journal's good length: every line in it is whole
        self.broken: str | None = None  # why writes can no longer be kept (then every write is refused)
        self._attached: dict[tuple[str, str, str], Any] = {}  # (account, region, name) -> moto backend
        self._unplaced: dict[str, _Table] = {}  # tables of the directory the template no longer has

    # --- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, fresh: bool = False) -> DataDirectory:
        """Lock the directory (created if missing) and read what it holds; ``fresh``: delete that first."""
        data = cls(path)
        try:
            if path.exists() and not path.is_dir():
                raise DataDirectoryError(f"{path} is not a directory")
            path.mkdir(parents=True, exist_ok=True)
            ignore = path / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# the local runtime's data (make serve): never committed\n*\n")
            data._take_lock()
            try:
                for stale in path.glob(f"{SNAPSHOT}.tmp*"):
                    stale.unlink()
                if fresh:
                    for old in (path / SNAPSHOT, *path.glob("dynamodb.*.log")):
                        old.unlink(missing_ok=True)
                with _bulk():
                    data._read()
            except BaseException:
                data._release_lock()
                raise
        except OSError as error:
            raise DataDirectoryError(_os_error(error, path)) from error
        return data

    def attach(self, backend: Any, table_names: Iterable[str]) -> None:
        """Store what was read into the backend's tables (created empty from the template) and journal
        every write to them from now on."""
        names = set(table_names)
        with _bulk():
            for name in names:
                table = backend.get_table(name)
                self._attached[(table.account_id, table.region_name, name)] = backend
                stored = self.tables.pop(name, _Table())
                self.loaded_items += self._load(table, stored)
                with motofix.LOCK:
                    motoindex.prepare(table)  # now, rather than in the first requests
        self._unplaced = {name: table for name, table in self.tables.items() if table.stored()}
        for name in self._unplaced:
            print(
                f"dora_local: {self.path} holds items of table {name}, which template.yaml no longer has: "
                "kept in the directory, not served",
                file=sys.stderr,
            )
        self.tables = {}
        try:
            self._open_journal()
        except OSError as error:
            raise DataDirectoryError(_os_error(error, self._journal_path())) from error
        motofix.add_guard(self._check_writable)
        motofix.add_listener(self._record)

    def _load(self, table: Any, stored: _Table) -> int:
        """Store a table's items into moto's table; :class:`DataDirectoryError` naming the file and line of
        an item that is not one of this table (without its key, or a value of no DynamoDB type)."""
        current = [0]  # the line of the item being loaded

        def items() -> Iterator[dict[str, Any]]:
            for item, line in stored.lines():
                current[0] = line
                yield item

        try:
            return motofix.bulk_load(table, items(), size_bound=stored.largest)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            self._attached.clear()  # half loaded: nothing of it may be snapshot at the stop
            where = self._where(current[0])
            raise DataDirectoryError(f"{where} is not an item of table {table.name} ({error})") from None

    def _where(self, line: int) -> str:
        """``<file>: line N`` for a line as :class:`_Table` keeps it."""
        return f"{self._journal_path()}: line {line}" if line > 0 else f"{self.path / SNAPSHOT}: line {-line}"

    def close(self) -> None:
        """Stop journaling (folding the journal into the snapshot if it has grown) and unlock."""
        motofix.remove_listener(self._record)
        motofix.remove_guard(self._check_writable)
        try:
            if self._attached and self.broken is None and self._journal_bytes > COMPACT_AT_STOP_BYTES:
                self.snapshot()
        except OSError as error:  # the journal still holds every write: only the compaction is lost
            print(
                f"dora_local: {self.path}: no snapshot at the stop ({error}); the journal keeps it all", file=sys.stderr
            )
        finally:
            self._close_journal()
            self._attached.clear()
            self._release_lock()

    # --- writing ---------------------------------------------------------------------------------
    def snapshot(self) -> None:
        """Write every attached table to a new snapshot and start the next generation's journal.

        Raises ``OSError`` if it cannot; the state stays consistent either way: a failure before the new
        snapshot is in place leaves the old snapshot and its journal in use (the temporary file removed);
        after it, the new generation is in use (its journal opened at the next write if opening it failed)."""
        with motofix.LOCK:
            generation = self.generation + 1
            temporary = self.path / f"{SNAPSHOT}.tmp"
            try:
                with temporary.open("wb") as out:
                    header = {"format": FORMAT, "version": VERSION, "generation": generation}
                    out.write(_line(header))
                    for name, records in self._all_records():
                        for key, item in records:
                            out.write(_line({"t": name, "k": key, "i": item}))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path / SNAPSHOT)
            except BaseException:
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)
                raise
            _sync_directory(self.path)
            old = self._journal_path()
            self._close_journal()
            self.generation = generation
            self._journal_bytes = 0
            with contextlib.suppress(OSError):  # a later start removes it anyway (another generation's)
                old.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the snapshot holds everything: the next write opens it
                self._open_journal()

    def _record(self, changes: list[motofix.Change]) -> None:
        """A write unit's line in the journal (a listener of motofix, called under its lock)."""
        records: list[dict[str, Any]] = []
        whole = False
        for change in changes:
            backend = self._attached.get((change.account_id, change.region, change.table))
            if backend is None:
                continue
            if change.keys is None:
                whole = True
                continue
            table = backend.get_table(change.table)
            names = self._key_names(change.table)
            for key in change.keys:
                item = motofix.stored_item(table, key)
                if item is None:
                    key_json = {n: motofix.value_json(v) for n, v in zip(names, key, strict=False) if v is not None}
                    records.append({"t": change.table, "k": key_json, "i": None})
                else:
                    found = motofix.item_json(item)
                    records.append({"t": change.table, "k": _key(found, names), "i": found})
        self._check_writable()
        if whole:
            try:
                self.snapshot()
            except OSError as error:
                self._break(error)
            return
        if not records:
            return
        try:
            self._append(_line({"w": records}))
        except OSError as error:
            print(
                f"dora_local: cannot write to the journal of {self.path} ({error}): trying a full snapshot instead",
                file=sys.stderr,
            )
            try:
                self.snapshot()  # it holds this write too
            except OSError as again:
                self._break(again)
            print(f"dora_local: {self.path}: the write is kept in a new snapshot", file=sys.stderr)
            return
        if self._journal_bytes > COMPACT_BYTES:
            try:
                self.snapshot()
            except OSError as error:  # the write is in the journal: only the compaction failed
                print(
                    f"dora_local: {self.path}: cannot compact the journal ({error}); it keeps growing", file=sys.stderr
                )

    def _check_writable(self) -> None:
        """A guard of motofix: once the directory is broken, no write is made (none could be kept)."""
        if self.broken is not None:
            raise motofix.WriteNotKeptError(self.broken)

    def _break(self, error: OSError) -> NoReturn:
        """Writes can no longer be kept: refuse this one and every later one, and say so."""
        self.broken = f"cannot write to the data directory {self.path}: {error}"
        print(
            f"dora_local: {self.broken}. This write failed (HTTP 5xx) and every later write is refused (HTTP 503); "
            "everything answered before it is kept. Free space (or fix the directory) and restart make serve.",
            file=sys.stderr,
        )
        traceback.print_exc()
        raise motofix.WriteNotKeptError(self.broken) from error

    def _append(self, line: bytes) -> None:
        """Append one whole line, or none: a line cut short (disk full) is cut back off the journal, so a
        later line never follows a torn one (the replay stops at a torn line)."""
        journal = self._journal or self._open_journal()
        written = 0
        try:
            while written < len(line):  # unbuffered: in the OS before moto answers, or an error now
                count = journal.write(line[written:])
                if not count:
                    raise OSError(f"cannot write to {self._journal_path()}")
                written += count
        except OSError:
            if written:
                try:
                    os.ftruncate(journal.fileno(), self._journal_bytes)
                except OSError:  # the torn line stays: no line may follow it in this journal
                    self._close_journal()
                    raise
            raise
        self._journal_bytes += len(line)

    def _open_journal(self) -> IO[bytes]:
        path = self._journal_path()
        journal = path.open("ab", buffering=0)
        try:
            self._journal_bytes = os.fstat(journal.fileno()).st_size
        except OSError:
            journal.close()
            raise
        self._journal = journal
        return journal

    def _close_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            with contextlib.suppress(OSError):  # unbuffered: nothing is left to write
                journal.close()

    def _journal_path(self) -> Path:
        return self.path / f"dynamodb.{self.generation}.log"

    def _all_records(self) -> Iterator[tuple[str, Iterable[tuple[dict[str, Any], dict[str, Any]]]]]:
        """Every item to snapshot, with its key: the attached tables' and those of tables not served."""
        for (_, _, name), backend in self._attached.items():
            names = self._key_names(name)
            items = (motofix.item_json(item) for item in motoindex.all_items(backend.get_table(name)))
            yield name, ((_key(item, names), item) for item in items)
        for name, unplaced in self._unplaced.items():
            yield name, unplaced.stored()

    def _key_names(self, name: str) -> list[str]:
        for (_, _, attached), backend in self._attached.items():
            if attached == name:
                table = backend.get_table(name)
                return [n for n in (table.hash_key_attr, table.range_key_attr) if n]
        return []

    # --- reading ---------------------------------------------------------------------------------
    def _read(self) -> None:
        snapshot = self.path / SNAPSHOT
        if snapshot.exists():
            with snapshot.open("rb") as lines:
                header = _header(lines.readline(), snapshot)
                try:
                    self.generation = int(header["generation"])
                except (KeyError, TypeError, ValueError):
                    raise DataDirectoryError(f"{snapshot}: line 1 has no generation") from None
                for number, line in enumerate(lines, start=2):
                    if not line.endswith(b"\n"):
                        raise DataDirectoryError(f"{snapshot}: line {number} is cut short")
                    try:
                        self._apply(json.loads(line), len(line), -number)
                    except (ValueError, KeyError, TypeError, AttributeError) as error:
                        raise DataDirectoryError(f"{snapshot}: line {number} is not an item ({error})") from None
        for journal in sorted(self.path.glob("dynamodb.*.log")):
            generation = journal.name.split(".")[1]
            if generation.isdigit() and int(generation) > self.generation:
                # Only a snapshot's rename starts a later generation: its snapshot is gone (removed by
                # hand, or restored from an older copy), and that journal alone is not the data.
                raise DataDirectoryError(
                    f"{journal}: a journal of generation {generation} but "
                    + (f"{snapshot} is of generation {self.generation}" if snapshot.exists() else f"no {snapshot}")
                    + " (restore the snapshot it goes with, or start with --fresh)"
                )
        for journal in self.path.glob("dynamodb.*.log"):
            if journal != self._journal_path():
                journal.unlink()  # a generation a later snapshot holds (a crash before it was removed)
        self._replay(self._journal_path())

    def _replay(self, journal: Path) -> None:
        """Replay the journal's write units. Only its last line may be torn (a crash while it was written:
        a line is written whole or cut back off, and none follows a torn one): it is dropped and cut off
        the file. Any other line that is not a write unit stops the start, the file left as it is."""
        if not journal.exists():
            return
        good = 0
        torn: int | None = None  # the number of an unreadable line: torn if it is the last
        with journal.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if torn is not None:  # a line follows the unreadable one: that one is no crash's
                    raise DataDirectoryError(f"{journal}: line {torn} is not a write (and lines follow it)")
                try:
                    unit = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    unit = None
                if not isinstance(unit, dict) or not isinstance(unit.get("w"), list):
                    torn = number
                    continue
                try:
                    for record in unit["w"]:
                        self._apply(record, len(line), number)
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    raise DataDirectoryError(f"{journal}: line {number} is not a write ({error})") from None
                good += len(line)
                self.replayed_units += 1
        if torn is not None:
            print(f"dora_local: {journal}: dropped line {torn}, a write cut short by a crash", file=sys.stderr)
            with journal.open("r+b") as cut:
                cut.truncate(good)

    def _apply(self, record: dict[str, Any], line_bytes: int, line: int) -> None:
        """One item's state (``line``: where it was read, as :class:`_Table` keeps it); ``ValueError`` (or
        ``KeyError``, ``TypeError``) when the record is not one: a key of typed values, and an item (or
        null) holding that key."""
        key, item = record["k"], record["i"]
        if not isinstance(key, dict) or not key or not all(isinstance(v, dict) and len(v) == 1 for v in key.values()):
            raise ValueError(f"its key {_shown(key)} is not a key")
        if item is not None:
            if not isinstance(item, dict):
                raise ValueError(f"its item {_shown(item)} is not an item")
            missing = [name for name, value in key.items() if item.get(name) != value]
            if missing:
                raise ValueError(f"its item does not hold its key's {', '.join(missing)}")
        table = self.tables.setdefault(str(record["t"]), _Table())
        table.items[_canonical(key)] = (key, item, line)
        if item is not None:
            table.largest = max(table.largest, line_bytes)

    # --- the lock --------------------------------------------------------------------------------
    def _take_lock(self) -> None:
        lock = (self.path / "lock").open("a+")
        try:
            import fcntl

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not a POSIX system: no lock, as documented
            pass
        except OSError:
            lock.close()
            raise DataDirectoryError(
                f"{self.path} is in use by another local runtime (stop it, or choose another DORA_LOCAL_DATA)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
    """Millions of small objects at once: no cyclic garbage collection while they are made (each pass
    would walk them all again), and once made they are left out of every later one (``gc.freeze``: a
    table of 50,000 items is ~1.5 million objects, and a full collection would walk them all)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


def _line(value: Any) -> bytes:
    return (json.dumps(value, **_JSON) + "\n").encode()  # type: ignore[arg-type]


def _canonical(key: dict[str, Any]) -> str:
    """One string per key, as moto tells keys apart (numbers by value: ``1`` and ``1.0`` are one key)."""
    if any("N" in typed for typed in key.values()):
        key = {
            name: {"N": str(Decimal(typed["N"]).normalize())} if "N" in typed else typed for name, typed in key.items()
        }
    return json.dumps(key, sort_keys=True, **_JSON)  # type: ignore[arg-type]


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _key(item: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {n: item[n] for n in names if n in item}


def _header(line: bytes, path: Path) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataDirectoryError(f"{path} is not a dora_local data file")
    if header.get("version") != VERSION:
        raise DataDirectoryError(f"{path} is version {header.get('version')}; this runtime reads {VERSION}")
    return header


def _os_error(error: OSError, path: Path) -> str:
    """An ``OSError`` of the data directory as one line naming its file."""
    return f"{error.filename or path}: {error.strerror or error}"


def _sync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (where the platform allows it)."""
    with contextlib.suppress(OSError):
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
