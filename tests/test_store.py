"""The SQLite store: what goes in comes back, in an order restore accepts; bad files are refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from zmqex.core.events import Side, Tif
from zmqex.core.ledger import Ledger
from zmqex.core.outputs import Decision, EventRecord, HoldSettled, HoldTaken, OrderTrader
from zmqex.core.replica import Config, Replica
from tests.checked import Network
from zmqex.local import wait_for
from zmqex.errors import StoreError, StoreLocked, StoreUnavailable
from zmqex.store import FILENAME, MemoryStore, SqliteStore, _Lock


def traded_network():
    """Three replicas after some trading, one take still in flight from c."""
    net = Network(["a", "b", "c"])
    net.place("a", Side.SELL, 10, 100)
    net.drain()
    net.place("b", Side.BUY, 4, 100)
    net.place("b", Side.BUY, 3, 101, Tif.IOC)
    net.drain()
    net.cancel("a", "a:1")
    net.place("a", Side.SELL, 5, 102)
    net.drain()
    net.place("c", Side.BUY, 2, 102)  # its take to a is on the link, unanswered
    return net


@pytest.mark.parametrize("node", ["a", "b", "c"])
def test_sqlite_store_restores_the_same_replica(tmp_path, node):
    net = traded_network()
    store = SqliteStore(tmp_path, node)
    store.commit(net.nodes[node].store)
    store.close()
    records = list(SqliteStore(tmp_path, node).records())
    restored = Replica.restore(node, records)
    original = net.replica(node)
    assert restored.ledger.state_hash() == original.ledger.state_hash()
    assert restored.clock == original.clock
    assert restored.maker.answers == original.maker.answers
    assert {t.request: t.reserved for t in restored.taker.reservations} == {t.request: t.reserved for t in original.taker.reservations}
    restored.ledger._check()


def test_commits_accumulate_across_opens(tmp_path):
    net = traded_network()
    records = net.nodes["a"].store
    half = len(records) // 2
    first = SqliteStore(tmp_path, "a")
    first.commit(records[:half])
    first.close()
    second = SqliteStore(tmp_path, "a")
    second.commit(records[half:])
    assert Replica.restore("a", second.records()).ledger.state_hash() == net.replica("a").ledger.state_hash()


def test_commits_leave_the_wal_to_the_checkpointer_thread(tmp_path):
    store = SqliteStore(tmp_path, "a", checkpoint_every_s=0.02)
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)  # no commit ever stalls on it
    net = Network(["a"])
    for i in range(300):
        net.place("a", Side.SELL, 1 + i, 1000 + i)
    assert store.checkpointer is None  # a store that is only read starts no thread
    store.commit(net.nodes["a"].store)
    before = store.checkpointer.checkpoints
    wait_for(lambda: store.checkpointer.checkpoints > before + 1 and store.checkpointer.pending == 0, 10,
             "the checkpointer thread to copy the WAL into the database")
    store.close()
    assert not store.checkpointer._thread.is_alive()
    reopened = SqliteStore(tmp_path, "a")
    assert Replica.restore("a", reopened.records()).ledger.state_hash() == net.replica("a").ledger.state_hash()
    reopened.close()


def test_only_commits_that_back_a_promise_are_fsynced_and_off_the_callers_thread(tmp_path):
    net = traded_network()
    records = net.nodes["a"].store
    store = SqliteStore(tmp_path, "a")  # synchronous=FULL
    sync = store.walsync
    synchronous = lambda: store.db.execute("PRAGMA synchronous").fetchone()[0]  # noqa: E731
    assert sync is not None
    assert store.commit(records[:3], promise=False) == 0 and synchronous() == 1  # NORMAL: written, not synced
    first = store.commit(records[3:6], wait=False)  # the sync thread's
    assert first == 1 and synchronous() == 1
    wait_for(lambda: store.durable(first), 10, "the WAL's fsync")  # it covers the earlier commit too
    assert sync.fsyncs == 1
    second = store.commit(records[6:7], wait=False)
    assert second == 2
    assert store.commit(records[7:8]) == 0 and synchronous() == 2  # FULL: synced in the commit ...
    assert store.durable(second) and sync.durable == 2  # ... and so was everything before it
    store.commit(records[8:], promise=False)
    assert store.durable(0)
    store.close()
    restored = Replica.restore("a", SqliteStore(tmp_path, "a").records())
    assert restored.ledger.state_hash() == net.replica("a").ledger.state_hash()
    assert restored.maker.answers == net.replica("a").maker.answers
    normal = SqliteStore(tmp_path / "n", "a", synchronous="NORMAL")
    normal.commit(records[:3])
    assert normal.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # never raised to FULL
    normal.close()


def test_members_are_kept(tmp_path):
    store = SqliteStore(tmp_path, "a")
    store.save_member("b", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2")
    store.save_member("b", "tcp://127.0.0.1:1", "tcp://127.0.0.1:3")
    store.close()
    assert SqliteStore(tmp_path, "a").members() == [("b", "tcp://127.0.0.1:1", "tcp://127.0.0.1:3")]


def test_memory_store_has_the_same_interface():
    net = traded_network()
    store = MemoryStore()
    store.commit(net.nodes["b"].store)
    assert Replica.restore("b", store.records()).ledger.state_hash() == net.replica("b").ledger.state_hash()


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / FILENAME).write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        SqliteStore(tmp_path, "a")


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    SqliteStore(tmp_path, "a").close()
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(tmp_path, "a")


def test_another_nodes_store_is_refused(tmp_path):
    SqliteStore(tmp_path, "a").close()
    with pytest.raises(StoreError, match="belongs to node 'a'"):
        SqliteStore(tmp_path, "b")


def test_a_store_another_process_holds_is_refused_until_it_lets_go(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from zmqex.store import SqliteStore; "
                               f"s = SqliteStore({str(tmp_path)!r}, 'a'); print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(StoreLocked, match=rf"in use by another running node \(pid {holder.pid}\)"):
            SqliteStore(tmp_path, "a")
    finally:
        holder.communicate("", timeout=30)  # it exits: the kernel drops its lock
    SqliteStore(tmp_path, "a").close()


def test_one_process_may_open_a_store_twice_and_holds_it_until_the_last_closes(tmp_path):
    first, second = SqliteStore(tmp_path, "a"), SqliteStore(tmp_path, "a")
    first.close()
    assert tmp_path.resolve() in _Lock.held  # still held for the second
    second.close()
    assert tmp_path.resolve() not in _Lock.held


class FailingCommit:
    """A connection whose COMMIT fails as SQLite's does on a full disk (it rolled back itself)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT":
            self.db.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_failed_commit_says_why_keeps_nothing_and_can_be_made_again(tmp_path):
    records = traded_network().nodes["a"].store
    store = SqliteStore(tmp_path, "a")
    store.commit(records[:2])
    real = store.db
    store.db = FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(StoreUnavailable, match="cannot be written: database or disk is full .*bytes free"):
        store.commit(records[2:])  # not "cannot rollback - no transaction is active"
    store.db = real
    store.commit(records[2:])  # the same records again: same positions, nothing twice
    store.close()
    restored = Replica.restore("a", SqliteStore(tmp_path, "a").records())
    assert restored.ledger.state_hash() == traded_network().replica("a").ledger.state_hash()


def test_a_commit_that_breaks_a_constraint_is_a_bug_not_a_full_disk(tmp_path):
    records = traded_network().nodes["a"].store
    store = SqliteStore(tmp_path, "a")
    store.commit(records)
    with pytest.raises(sqlite3.IntegrityError):  # an event committed twice: the node stops on it
        store.commit([next(r for r in records if isinstance(r, EventRecord))])
    store.close()


def test_a_corrupt_row_is_a_store_error(tmp_path):
    store = SqliteStore(tmp_path, "a")
    store.commit(traded_network().nodes["a"].store)
    store.db.execute("UPDATE events SET data = x'c1c1' WHERE pos = 1")
    with pytest.raises(StoreError, match="unreadable"):
        list(store.records())


def compacted_network():
    net = Network(["a", "b", "c"], Config(compact_after=1, compact_every_ms=0))
    net.place("a", Side.SELL, 10, 100)
    net.drain()
    net.place("b", Side.BUY, 4, 100)
    net.place("c", Side.SELL, 3, 105)
    net.settle()
    for _ in range(2):  # heartbeats spread everyone's clock; the next tick compacts
        net.tick(500)
        net.drain()
    return net


def test_snapshot_and_tail_give_the_hash_of_the_full_log(tmp_path):
    net = compacted_network()
    net.place("a", Side.BUY, 2, 105)  # the tail, after the checkpoint
    net.settle()
    store = SqliteStore(tmp_path, "a")
    store.commit(net.nodes["a"].store)
    (events_left,) = store.db.execute("SELECT count(*) FROM events").fetchone()
    (checkpoints,) = store.db.execute("SELECT count(*) FROM checkpoint").fetchone()
    assert checkpoints == 1 and events_left < len(net.replica("a").ledger.orders) + len(net.replica("a").ledger.fills)
    restored = Replica.restore("a", SqliteStore(tmp_path, "a").records())
    full_log = Ledger()  # the simulator's store keeps every event: replay them all
    for record in net.nodes["a"].store:
        if isinstance(record, EventRecord):
            full_log.apply(record.event)
    assert restored.ledger.state_hash() == full_log.state_hash() == net.replica("a").ledger.state_hash()
    assert restored.clock == net.replica("a").clock
    restored.ledger._check()


def test_a_joiner_catches_up_from_a_snapshot_and_the_tail():
    net = compacted_network()
    assert all(len(r.replication.log.base) for r in net.live())  # everyone compacted
    net.add_node("d")
    net.place("b", Side.SELL, 1, 110)  # an event after the snapshots
    net.settle()
    d = net.replica("d")
    assert d.ledger.state_hash() == net.replica("a").ledger.state_hash()
    assert d.clock == net.replica("a").clock
    assert d.replication.log.base  # it never saw the early events, only their state
    d.ledger._check()


def test_the_trader_of_each_own_order_survives_reopen(tmp_path):
    net = Network(["a", "b"])
    alice = net.place("a", Side.SELL, 5, 100, trader="alice")
    bob = net.place("a", Side.SELL, 5, 101, trader="bob")
    net.place("a", Side.SELL, 5, 102)
    net.drain()
    store = SqliteStore(tmp_path, "a")
    store.commit(net.nodes["a"].store)
    store.close()
    records = list(SqliteStore(tmp_path, "a").records())
    assert OrderTrader(alice, "alice") in records and OrderTrader(bob, "bob") in records
    restored = Replica.restore("a", records)
    assert restored.traders.of == net.replica("a").traders.of == {alice: "alice", bob: "bob"}
    assert (restored.open_orders("alice"), restored.open_orders()) == (1, 3)
    memory = MemoryStore()
    memory.commit(net.nodes["a"].store)
    assert Replica.restore("a", memory.records()).traders.of == {alice: "alice", bob: "bob"}


def test_a_store_written_before_traders_were_kept_still_opens(tmp_path):
    net = traded_network()
    store = SqliteStore(tmp_path, "a")
    store.commit(net.nodes["a"].store)
    store.db.execute("DROP TABLE traders")  # as an older zmqex left it
    store.close()
    reopened = SqliteStore(tmp_path, "a")
    restored = Replica.restore("a", reopened.records())
    assert restored.traders.of == {} and restored.ledger.state_hash() == net.replica("a").ledger.state_hash()
    reopened.commit([OrderTrader("a:9", "alice")])
    assert OrderTrader("a:9", "alice") in list(reopened.records())
    reopened.close()


def test_holds_and_decisions_survive_reopen(tmp_path):
    """A holder's holds (and how each was settled) and a coordinator's decisions come back whole."""
    net = Network(["a", "b", "c"])
    net.place("b", Side.SELL, 3, 100)
    net.place("c", Side.SELL, 3, 100)
    net.settle()
    fok = net.place("a", Side.BUY, 6, 100, Tif.FOK)
    for holder in ("b", "c"):
        while net.deliver("a", holder):
            pass
    assert net.deliver("b", "a")
    net.drain()  # a committed; b and c confirmed
    net.place("a", Side.BUY, 1, 100, Tif.FOK)  # killed at once: a decision with nothing held
    net.place("c", Side.SELL, 2, 100)
    net.drain()
    fok2 = net.place("a", Side.BUY, 2, 100, Tif.FOK)
    while net.deliver("a", "c"):
        pass  # c holds 2, unsettled
    for node in ("a", "c"):
        store = SqliteStore(tmp_path / node, node)
        store.commit(net.nodes[node].store)
        store.close()
        records = list(SqliteStore(tmp_path / node, node).records())
        kinds = (HoldTaken, HoldSettled, Decision)
        assert {r for r in records if isinstance(r, kinds)} == {r for r in net.nodes[node].store if isinstance(r, kinds)}
        restored = Replica.restore(node, records)
        restored._check()
        original = net.replica(node)
        assert restored.taker.reservations.held_totals() == original.taker.reservations.held_totals()
        assert restored.ledger.state_hash() == original.ledger.state_hash()
    a = Replica.restore("a", SqliteStore(tmp_path / "a", "a").records())
    decision = a.coordinator.decision(fok)
    assert decision is not None and decision.commit and sum(q for _, _, q in decision.parts) == 6
    assert a.coordinator.decision(fok2) is None and a.coordinator.unfinished == 1  # undecided: aborted first
