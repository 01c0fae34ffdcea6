"""The durable store: an embedded SQLite file per node, written ahead of every promise.

What the core asks to persist (:mod:`zmqex.core.outputs` records) lands here,
one transaction per loop iteration (group commit): every event this node
delivered, in delivery order; the take requests it sent and their answers
(its reservations); the answer it gave to every take it received, by request
id; which trader placed each own order, and what the operator funded each
trader's account with (node-local, never replicated).
Together they rebuild the replica and its promises after a crash
(``records()`` in an order :meth:`Replica.restore` accepts).  The member list
is kept too, so a restarted node finds its peers without being told, and
whether this store ever belonged to a mesh (:meth:`SqliteStore.has_history`),
so a node that lost its store cannot mistake itself for a brand-new one.

One process at a time: the store takes an exclusive ``flock`` on
``zmqex.lock`` in its directory for as long as it is open, so a second node
started on the same data directory is refused (:class:`StoreLocked`) before it
reads anything; the kernel drops the lock when the holder dies, ``kill -9``
included.

A commit that fails (a full disk, an I/O error) is rolled back whole and
raises :class:`~zmqex.errors.StoreUnavailable` with SQLite's own reason; the
store is then as it was before the commit, so the same records may be
committed again later (what the node does until the disk takes them).

SQLite runs in WAL mode.  ``synchronous=FULL`` (the default) fsyncs every
commit that backs a promise, so an acknowledged order survives a power cut as
well as ``kill -9``; ``NORMAL`` survives ``kill -9`` (the WAL is in the OS page
cache) for less I/O.  Commits that back no promise are never fsynced (see
:meth:`SqliteStore.commit`).

Commits never copy the WAL back into the database file (SQLite's automatic
checkpoint does that inside whichever commit crosses 1000 pages: a 12 ms stall
of the node's loop every ~100 ms under a stream of takes, which made the take
p99 ten times its p50).  A :class:`_Checkpointer` thread with its own
connection does it instead, a few times a second; SQLite lets a checkpoint run
beside a writer, and the thread holds no GIL while SQLite works.

:class:`MemoryStore` has the same interface and keeps nothing past the
process: ``--ephemeral`` nodes and the simulator use it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zmqex.core import messages, wire
from zmqex.walsync import WalSync
from zmqex.core.envelope import Envelope, bundle_from_wire, decode_event, encode_event, envelope_to_wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import clock_from_wire, clock_to_wire
from zmqex.core.outputs import (
    Checkpoint, Decision, EventRecord, Evidence, HoldSettled, HoldTaken, OrderTrader, OtcRecord, Outcome, Record,
    RecoveryMark, TakeSent, TakeSettled,
)
from zmqex.core.outputs import Funding
from zmqex.core.outputs import CreditLimit, Settlement
from zmqex.errors import DecodeError, StoreError, StoreLocked, StoreUnavailable

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5  # 5: a row per envelope (events.last); 4: OTC, balances (fundings), credit (wire version 4)
# (3: fill-or-kill (holds and decisions); 2: timestamps, client order ids)
#: Older versions a store is upgraded from in place, when it opens: their events are in this event encoding,
#: each alone (an envelope of one); the upgrade adds tables (_SCHEMA creates them) and the column events.last.
UPGRADES_FROM = (3, 4)
FILENAME = "zmqex.db"
LOCKNAME = "zmqex.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (     -- a row per envelope: its events seq..last were delivered here
    pos INTEGER PRIMARY KEY,            -- delivery order
    origin TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, last INTEGER NOT NULL,
    UNIQUE (origin, seq));
CREATE TABLE IF NOT EXISTS takes (      -- takes we sent: our reservations
    request TEXT PRIMARY KEY, pos INTEGER NOT NULL, taker TEXT NOT NULL, maker TEXT NOT NULL,
    qty INTEGER NOT NULL, granted INTEGER);
CREATE TABLE IF NOT EXISTS outcomes (   -- answers we gave, by (sender, request)
    sender TEXT NOT NULL, request TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (sender, request));
CREATE TABLE IF NOT EXISTS traders (   -- who placed each own order, under which client order id
    order_id TEXT PRIMARY KEY, trader TEXT NOT NULL, client_order_id TEXT NOT NULL, stp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (  -- two events one origin signed with one id: it is never trusted again
    origin TEXT NOT NULL, seq INTEGER NOT NULL, ours BLOB NOT NULL, theirs BLOB NOT NULL,
    PRIMARY KEY (origin, seq));
CREATE TABLE IF NOT EXISTS holds (     -- parts of our orders held for coordinators, then how each was settled
    sender TEXT NOT NULL, request TEXT NOT NULL, held BLOB NOT NULL, settled BLOB,
    PRIMARY KEY (sender, request));
CREATE TABLE IF NOT EXISTS decisions ( -- what we decided for our own all-or-nothing orders
    order_id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS funding ( -- what the operator moved into (or out of) traders' accounts, in order
    pos INTEGER PRIMARY KEY, trader TEXT NOT NULL, usd INTEGER NOT NULL, btc INTEGER NOT NULL,
    opened INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credit_limits ( -- this node's credit limits per counterparty desk (or '*'), cents
    desk TEXT PRIMARY KEY, lim INTEGER, daily INTEGER);
CREATE TABLE IF NOT EXISTS settlements ( -- exposure to a desk the operator marked settled, cents, in order
    pos INTEGER PRIMARY KEY AUTOINCREMENT, desk TEXT NOT NULL, cents INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cod (       -- traders with cancel on disconnect armed, to keep it over a restart
    trader TEXT PRIMARY KEY, timeout_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS otc (       -- the OTC desk's items: offers, requests for quote, trades, answers
    key TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, router TEXT NOT NULL, pub TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint ( -- the latest snapshot: events at or below its base are gone
    id INTEGER PRIMARY KEY CHECK (id = 1), vc BLOB NOT NULL, base BLOB NOT NULL, items BLOB NOT NULL);
"""


def default_data_dir(node_id: str) -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "zmqex" / node_id


class SqliteStore:
    def __init__(self, directory: str | os.PathLike[str], node_id: str, *, synchronous: str = "FULL",
                 checkpoint_every_s: float = 0.2) -> None:
        self.path = Path(directory) / FILENAME
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store directory {self.path.parent} is not usable: {exc.strerror}") from None
        self._lock = _Lock.take(self.path.parent)
        try:
            self._open(node_id, synchronous, checkpoint_every_s)
        except BaseException:
            self._lock.close()
            raise

    def _open(self, node_id: str, synchronous: str, checkpoint_every_s: float) -> None:
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
            self._fsync = synchronous == "FULL"  # whether commits sync now (see commit)
            self.walsync: WalSync | None = None  # started last, once the store opened
            self._ticket = 0  # the latest commit that backs a promise (see commit)
            self.db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it (see above)
            version = self._meta("schema_version")
            upgrade = version is not None and int(version) in UPGRADES_FROM
            if version is not None and int(version) != SCHEMA_VERSION and not upgrade:
                # No migration: the events in it are in another wire version, which this zmqex
                # cannot decode nor its peers accept.
                raise StoreError(f"store {self.path} has schema version {version}; this zmqex reads "
                                 f"version {SCHEMA_VERSION} only: "
                                 f"{'upgrade zmqex' if int(version) > SCHEMA_VERSION else 'start from an empty data directory'}")
            owner = self._meta("node_id")
            if owner is not None and owner != node_id:
                raise StoreError(f"store {self.path} belongs to node {owner!r}, not {node_id!r}")
            if upgrade and version is not None and int(version) < 5:  # before _SCHEMA: it would create nothing over the old table
                self.db.execute("ALTER TABLE events ADD COLUMN last INTEGER")
                self.db.execute("UPDATE events SET last = seq")
            self.db.executescript(_SCHEMA)
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('node_id', ?)", (node_id,))
            if upgrade:
                log.info("store %s upgraded from schema version %s to %d", self.path, version, SCHEMA_VERSION)
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            self.db.execute("COMMIT")
            self._next_pos = (self.db.execute("SELECT max(pos) FROM events").fetchone()[0] or 0) + 1
            self._checkpoint_every_s = checkpoint_every_s
            self.checkpointer: _Checkpointer | None = None  # started by the first commit
            if synchronous == "FULL":
                self.walsync = WalSync(self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path} cannot be opened: {exc}{_space(self.path.parent)}") from None
        except OSError as exc:
            raise StoreError(f"store directory {self.path.parent} is not usable: {exc.strerror}") from None

    def _meta(self, key: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return None if row is None else row[0]

    def commit(self, records: Iterable[Record], *, promise: bool = True, wait: bool = True) -> int:
        """Write ``records`` in one transaction; return the ticket to wait for (0: none).

        With ``promise`` (something leaving the node depends on them) they are
        as durable as ``synchronous`` says when it returns; or, with ``wait=False``
        and ``synchronous`` FULL, once the WAL's fsync on the sync thread is done
        (zmqex.walsync): :meth:`durable` says when of the ticket returned, and
        :meth:`wait` blocks for it.  Without ``promise`` they are written but not
        fsynced: a power cut may lose them, and only them, since the WAL is a
        sequential log and the next promise's fsync covers all that came before
        it.  What they hold is recovered by repair and retries.

        If the disk refuses it (full, an I/O error) it raises StoreUnavailable and
        keeps nothing of it, so the same records may be committed again; anything
        else SQLite raises (a constraint broken) is a bug, and raised as it is.
        """
        try:
            if self.checkpointer is None:
                self.checkpointer = _Checkpointer(self.path, self._synchronous, self._checkpoint_every_s)
            fsync = self._synchronous == "FULL" and promise and (wait or self.walsync is None)
            if self._fsync != fsync:  # SQLite syncs inside this commit, or leaves it to the sync thread
                self.db.execute("PRAGMA synchronous=FULL" if fsync else "PRAGMA synchronous=NORMAL")
                self._fsync = fsync
        except sqlite3.Error as exc:
            if not _disk_refused(exc):
                raise
            raise self._unwritable(exc) from None
        first_pos = self._next_pos
        new_events, sent, settled, outcomes, traders, evidence = [], [], [], [], [], []
        holds, settled_holds, decisions = [], [], []
        otc: list[tuple[str, bytes | None]] = []
        fundings = []
        limits: list[tuple[str, int | None, int | None]] = []
        settlements: list[tuple[str, int]] = []
        recovering: RecoveryMark | None = None
        checkpoint: Checkpoint | None = None
        row: list[Any] | None = None  # the envelope row being filled: [pos, origin, seq, data, last]
        row_seal: object = None
        for record in records:
            if isinstance(record, EventRecord):
                e = record.event
                seal = e.seal
                if row is not None and isinstance(seal, Envelope) and seal is row_seal and e.seq == row[4] + 1:
                    row[4] = e.seq  # the next event of the same envelope: the same row
                    continue
                blob = wire.pack(envelope_to_wire(seal)) if isinstance(seal, Envelope) else encode_event(e)
                row, row_seal = [self._next_pos, e.origin, e.seq, blob, e.seq], seal
                new_events.append(row)
                self._next_pos += 1
            elif isinstance(record, TakeSent):
                sent.append((record.request, self._next_pos, record.order, record.maker, record.qty))
            elif isinstance(record, TakeSettled):
                settled.append((record.granted, record.request))
            elif isinstance(record, Outcome):
                outcomes.append((record.sender, record.reply.request, messages.encode(record.reply)))
            elif isinstance(record, OrderTrader):
                traders.append((record.order, record.trader, record.client_order_id, record.stp))
            elif isinstance(record, Evidence):
                evidence.append((record.ours.origin, record.ours.seq, encode_event(record.ours),
                                 encode_event(record.theirs)))
            elif isinstance(record, HoldTaken):
                holds.append((record.sender, record.request,
                              wire.pack([record.maker, record.taker, record.qty])))
            elif isinstance(record, HoldSettled):
                settled_holds.append((messages.encode(record.reply), record.sender, record.reply.request))
            elif isinstance(record, Decision):
                decisions.append((record.order, wire.pack([record.commit, [list(p) for p in record.parts]])))
            elif isinstance(record, OtcRecord):
                otc.append((record.key, None if record.data is None else wire.pack(record.data)))
            elif isinstance(record, RecoveryMark):
                recovering = record  # the latest counts
            elif isinstance(record, Checkpoint):
                checkpoint = record  # a later one in the batch supersedes an earlier one
            elif isinstance(record, Funding):
                fundings.append((record.trader, record.usd_cents, record.btc_sats, record.opened))
            elif isinstance(record, CreditLimit):
                limits.append((record.desk, record.limit, record.daily))  # in order: the latest counts
            elif isinstance(record, Settlement):
                settlements.append((record.desk, record.cents))
        db = self.db
        try:
            db.execute("BEGIN")
            db.executemany("INSERT INTO events (pos, origin, seq, data, last) VALUES (?, ?, ?, ?, ?)", new_events)
            db.executemany("INSERT INTO takes VALUES (?, ?, ?, ?, ?, NULL)", sent)
            db.executemany("UPDATE takes SET granted = ? WHERE request = ?", settled)
            db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?)", outcomes)
            db.executemany("INSERT OR REPLACE INTO traders VALUES (?, ?, ?, ?)", traders)
            db.executemany("INSERT OR IGNORE INTO evidence VALUES (?, ?, ?, ?)", evidence)
            db.executemany("INSERT OR IGNORE INTO holds VALUES (?, ?, ?, NULL)", holds)
            db.executemany("UPDATE holds SET settled = ? WHERE sender = ? AND request = ?", settled_holds)
            db.executemany("INSERT OR IGNORE INTO decisions VALUES (?, ?)", decisions)
            for key, data in otc:  # in order: the last record of a key wins
                if data is None:
                    db.execute("DELETE FROM otc WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO otc VALUES (?, ?)", (key, data))
            db.executemany("INSERT INTO funding (trader, usd, btc, opened) VALUES (?, ?, ?, ?)", fundings)
            db.executemany("INSERT OR REPLACE INTO credit_limits VALUES (?, ?, ?)", limits)
            db.executemany("INSERT INTO settlements (desk, cents) VALUES (?, ?)", settlements)
            if recovering is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('recovering', ?)", (recovering.reason or "",))
            if checkpoint is not None:
                db.execute("INSERT OR REPLACE INTO checkpoint VALUES (1, ?, ?, ?)", (
                    _pack_clock(checkpoint.vc), _pack_clock(checkpoint.base), wire.pack(list(checkpoint.items))))
                db.executemany("DELETE FROM events WHERE origin = ? AND last <= ?", dict(checkpoint.base).items())
            db.execute("COMMIT")
        except BaseException as exc:
            self._next_pos = first_pos  # nothing of this commit was kept: the same records may come again
            if db.in_transaction:  # SQLite may have rolled back itself (a full disk): then ROLLBACK would fail
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(exc, sqlite3.Error) and _disk_refused(exc):
                raise self._unwritable(exc) from None
            raise  # a constraint broken, a misuse: a bug, which stops the node (node.run)
        if self.walsync is None or not promise:
            return 0
        if self._fsync:
            self.walsync.covered(self._ticket)  # this commit's sync covered every one before it
            return 0
        self._ticket += 1
        self.walsync.ask(self._ticket)
        return self._ticket

    def durable(self, ticket: int) -> bool:
        """Whether the commit of ``ticket`` is on disk; raises StoreError if syncing failed."""
        sync = self.walsync
        if sync is None or sync.durable >= ticket:
            return True
        if sync.failed is not None:
            raise StoreError(f"store {self.path} cannot sync its log to disk: {sync.failed}")
        return False

    def wait(self, ticket: int) -> None:
        """Block until the commit of ``ticket`` is on disk (rare paths: a stall's retry, stopping)."""
        if self.walsync is not None and not self.walsync.wait(ticket):
            raise StoreError(f"store {self.path} cannot sync its log to disk: {self.walsync.failed}")

    def records(self) -> Iterator[Record]:
        """Everything needed to restore: events in delivery order, then takes, outcomes, traders, evidence,
        holds, decisions, credit limits and settlements."""
        try:
            for vc, base, items in self.db.execute("SELECT vc, base, items FROM checkpoint"):
                yield Checkpoint(_unpack_clock(vc), _unpack_clock(base), tuple(_unpack(items)))
            for data, first, last in self.db.execute("SELECT data, seq, last FROM events ORDER BY pos"):
                for event in bundle_from_wire([_unpack(data)]):
                    if first <= event.seq <= last:
                        yield EventRecord(event)
            for request, taker, maker, qty, granted in self.db.execute(
                    "SELECT request, taker, maker, qty, granted FROM takes ORDER BY pos, rowid"):
                yield TakeSent(request, taker, maker, qty)
                if granted is not None:
                    yield TakeSettled(request, granted)
            for sender, data in self.db.execute("SELECT sender, data FROM outcomes"):
                yield Outcome(sender, _unpack_reply(data))
            for order, trader, client_order_id, stp in self.db.execute(
                    "SELECT order_id, trader, client_order_id, stp FROM traders"):
                yield OrderTrader(order, trader, client_order_id, stp)
            for ours, theirs in self.db.execute("SELECT ours, theirs FROM evidence"):
                yield Evidence(decode_event(ours), decode_event(theirs))
            for sender, request, held, settled_reply in self.db.execute(
                    "SELECT sender, request, held, settled FROM holds"):
                maker, taker, qty = _unpack(held)
                yield HoldTaken(sender, request, maker, taker, qty)
                if settled_reply is not None:
                    yield HoldSettled(sender, _unpack_confirm(settled_reply))
            recovering = self._meta("recovering")
            if recovering:
                yield RecoveryMark(recovering)
            for order, data in self.db.execute("SELECT order_id, data FROM decisions"):
                commit, parts = _unpack(data)
                yield Decision(order, commit, tuple((r, m, q) for r, m, q in parts))
            for key, data in self.db.execute("SELECT key, data FROM otc"):
                yield OtcRecord(key, _unpack(data))
            for trader, usd, btc, opened in self.db.execute(
                    "SELECT trader, usd, btc, opened FROM funding ORDER BY pos"):
                yield Funding(trader, usd, btc, opened)
            for desk, limit, daily in self.db.execute("SELECT desk, lim, daily FROM credit_limits"):
                yield CreditLimit(desk, limit, daily)
            for desk, cents in self.db.execute("SELECT desk, cents FROM settlements ORDER BY pos"):
                yield Settlement(desk, cents)
        except (sqlite3.Error, DecodeError, StoreError, ValueError) as exc:
            raise StoreError(f"store {self.path} is unreadable: {exc}") from None

    def _unwritable(self, exc: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(f"store {self.path} cannot be written: {exc}{_space(self.path.parent)}")

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        """One statement in a transaction of its own; StoreUnavailable if the disk refuses it."""
        try:
            self.db.execute(sql, args)
        except sqlite3.Error as exc:
            if not _disk_refused(exc):
                raise
            raise self._unwritable(exc) from None

    def has_history(self) -> bool:
        """Whether this store ever belonged to a mesh: it was marked so (:meth:`mark_in_mesh`), or holds
        events, a checkpoint or members.  A node whose store has none is brand-new, or lost its store."""
        try:
            if self._meta("in_mesh") is not None:
                return True
            return any(self.db.execute("SELECT 1 FROM events UNION ALL SELECT 1 FROM checkpoint "
                                       "UNION ALL SELECT 1 FROM members LIMIT 1"))
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path} is unreadable: {exc}") from None

    def mark_in_mesh(self, how: str) -> None:
        """Remember for good that this store belongs to a mesh (``how``: founded or joined it)."""
        self._write("INSERT OR IGNORE INTO meta VALUES ('in_mesh', ?)", (how,))

    def members(self) -> list[tuple[str, str, str]]:
        return list(self.db.execute("SELECT id, router, pub FROM members ORDER BY id"))

    def save_member(self, node_id: str, router: str, pub: str) -> None:
        self._write("INSERT OR REPLACE INTO members VALUES (?, ?, ?)", (node_id, router, pub))

    def cod_armed(self) -> list[tuple[str, int]]:
        """(trader, timeout ms) of every cancel on disconnect armed when the node last ran."""
        return list(self.db.execute("SELECT trader, timeout_ms FROM cod ORDER BY trader"))

    def arm_cod(self, trader: str, timeout_ms: int) -> None:
        self._write("INSERT OR REPLACE INTO cod VALUES (?, ?)", (trader, timeout_ms))

    def disarm_cod(self, trader: str) -> None:
        self._write("DELETE FROM cod WHERE trader = ?", (trader,))

    def close(self) -> None:
        if self.walsync is not None:
            self.walsync.stop()  # syncs what was asked first
        if self.checkpointer is not None:
            self.checkpointer.stop()
        try:
            self.db.close()  # the last connection to close checkpoints what is left
        except sqlite3.Error as exc:  # a full disk: the WAL keeps it, and the next open reads it
            log.warning("store %s closed without its last checkpoint: %s", self.path, exc)
        self._lock.close()  # last: no other node may open the store while this one still writes to it


class _Lock:
    """This process's exclusive ``flock`` on a store directory (see the module docstring).

    Shared by the stores one process opens on one directory (a test, a tool reading a
    node's store back), and released when the last of them closes (or is collected).
    """

    held: weakref.WeakValueDictionary[Path, _Lock] = weakref.WeakValueDictionary()

    def __init__(self, directory: Path, file: Any) -> None:
        self.directory, self.file, self.users = directory, file, 1

    @classmethod
    def take(cls, directory: Path) -> _Lock:
        key = directory.resolve()
        lock = cls.held.get(key)
        if lock is not None:
            lock.users += 1
            return lock
        try:
            file = open(key / LOCKNAME, "a+")
        except OSError as exc:
            raise StoreError(f"store directory {directory} is not usable: {exc.strerror}") from None
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read(20).strip()
            file.close()
            raise StoreLocked(f"store {directory} is in use by another running node"
                              f"{f' (pid {holder})' if holder.isdigit() else ''}: "
                              "two processes must never share a data directory") from None
        try:  # who holds it, for the message above; a full disk may refuse even these few bytes
            file.truncate(0)
            file.write(str(os.getpid()))
            file.flush()
        except OSError:
            pass
        lock = cls.held[key] = _Lock(key, file)
        return lock

    def close(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.held.pop(self.directory, None)
            self.file.close()  # the kernel drops the flock with the last descriptor


def _disk_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the disk refusing a write (full, an I/O error, a damaged file: SQLite's
    OperationalError or a bare DatabaseError), rather than our misuse (a constraint, a bad statement)."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def _space(directory: Path) -> str:
    """`` (N bytes free on its file system)``, to tell a full disk from another I/O error; "" if unknown."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return ""
    return f" ({stat.f_bavail * stat.f_frsize} bytes free on its file system)"


class _Checkpointer:
    """Copies the WAL back into the database file, on its own thread and connection.

    ``checkpoints`` counts the passive checkpoints run and ``pending`` is the
    number of WAL frames the last one could not copy yet (0 when it caught up).
    """

    def __init__(self, path: Path, synchronous: str, every_s: float) -> None:
        self.checkpoints = 0
        self.pending = 0
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA synchronous={synchronous}")  # how the checkpoint syncs the file
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zmqex-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing = False
        try:
            while not self._stop.wait(self._every_s):
                try:
                    _, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # a full disk: commits go on into the WAL; try again later
                    if not failing:
                        log.warning("store checkpoints fail, the WAL grows until they work again: %s", exc)
                    failing = True
                    continue
                if failing:
                    log.info("store checkpoints work again")
                failing = False
                self.checkpoints += 1
                self.pending = max(0, frames - copied)
        finally:
            self._db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class MemoryStore:
    """The store interface, kept in memory only (``--ephemeral``, simulator)."""

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._members: dict[str, tuple[str, str, str]] = {}
        self._cod: dict[str, int] = {}

    def commit(self, records: Iterable[Record], *, promise: bool = True, wait: bool = True) -> int:
        for record in records:
            if isinstance(record, Checkpoint):  # drop what it supersedes, as the SQLite store does
                self._records = [r for r in self._records if not _superseded(r, record)]
            self._records.append(record)
        return 0  # nothing to wait for

    def durable(self, ticket: int) -> bool:
        return True

    def wait(self, ticket: int) -> None:
        pass

    def records(self) -> Iterator[Record]:
        return iter(list(self._records))

    def has_history(self) -> bool:
        return bool(self._records or self._members)

    def mark_in_mesh(self, how: str) -> None:
        pass  # nothing outlives the process: a restarted ephemeral node is always brand-new

    def members(self) -> list[tuple[str, str, str]]:
        return sorted(self._members.values())

    def save_member(self, node_id: str, router: str, pub: str) -> None:
        self._members[node_id] = (node_id, router, pub)

    def cod_armed(self) -> list[tuple[str, int]]:
        return sorted(self._cod.items())

    def arm_cod(self, trader: str, timeout_ms: int) -> None:
        self._cod[trader] = timeout_ms

    def disarm_cod(self, trader: str) -> None:
        self._cod.pop(trader, None)

    def close(self) -> None:
        pass


def _superseded(record: Record, checkpoint: Checkpoint) -> bool:
    if isinstance(record, Checkpoint):
        return True
    return isinstance(record, EventRecord) and record.event.seq <= checkpoint.base.get(record.event.origin)


def _pack_clock(vc: VectorClock) -> bytes:
    return wire.pack(clock_to_wire(vc))


def _unpack_clock(data: bytes) -> VectorClock:
    return clock_from_wire(_unpack(data))


def _unpack(data: bytes) -> Any:
    """What ``wire.pack`` stored; of any size (our own file, not a peer's frame)."""
    return wire.unpack(data, max_size=len(data))


def _unpack_reply(data: bytes) -> messages.TakeReply:
    reply = messages.decode(data)
    if not isinstance(reply, messages.TakeReply):
        raise StoreError("an outcome row does not hold a take reply")
    return reply


def _unpack_confirm(data: bytes) -> messages.ConfirmReply:
    reply = messages.decode(data)
    if not isinstance(reply, messages.ConfirmReply):
        raise StoreError("a settled hold row does not hold a confirm reply")
    return reply
