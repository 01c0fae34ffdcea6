"""What a node's loop records for its metrics, and the snapshot it publishes of them.

A :class:`Probe` belongs to the node's loop thread.  The node calls it at two
places (only when it runs with ``--metrics``; otherwise ``Node.probe`` is None
and costs one test per loop iteration):

* :meth:`Probe.committed`, around each store commit: the commit's duration, and
  one pass over its records, counting the events delivered by kind and timing
  each take request from its ``TakeSent`` to its ``TakeSettled``;
* :meth:`Probe.iteration`, at the end of each loop iteration: its busy time
  (from the poll's return to the end of carrying out), and, at most every
  ``PUBLISH_MS``, a new :class:`Snapshot`.

The metrics thread (:mod:`zmqex.metrics`) reads only ``Probe.snapshot``: a
whole, immutable value the loop replaces in one assignment (atomic in CPython),
never the loop's live dicts.  So a scrape sees figures at most ``PUBLISH_MS``
old, all from one moment.

Durations are counted in integer nanoseconds into fixed buckets
(:class:`Histogram`), the way Prometheus histograms count them: no lock, no
float per observation.  Counts here start at 0 with the process, as Prometheus
counters do; figures restored from the store (orders known, events delivered)
are gauges.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from zmqex import health
from zmqex.core.events import Body, Cancel, Fill, NewOrder, Reduce, owner_of
from zmqex.core.outputs import EventRecord, Record, TakeSent, TakeSettled
from zmqex.api import ClientApi
from zmqex.core.replica import Replica
from zmqex.store import MemoryStore, SqliteStore


class Node(Protocol):
    """What the probe reads of the node that runs it (zmqex.node.Node; named here, not imported,
    since the node imports the probe)."""

    id: str
    replica: Replica
    api: ClientApi
    store: SqliteStore | MemoryStore

    @property
    def slow_readers(self) -> int:
        """Clients owed notices of messages they were too slow to get."""

PUBLISH_MS = 200  # how often the loop publishes a snapshot (at most; on an idle node, every tick)
MAX_TAKES_TIMED = 100_000  # take requests awaiting an answer that we remember the start of

_MS = 1_000_000  # ns
#: Bucket bounds, in ns: a take waits on a peer's loop and commits (1-10 ms is normal under load).
TAKE_BUCKETS = tuple(int(ms * _MS) for ms in (0.25, 0.5, 1, 2, 3, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000))
#: A commit with fsync takes a few tenths of a ms on an SSD; a loop iteration as long as its batch.
COMMIT_BUCKETS = tuple(int(ms * _MS) for ms in (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000))
LOOP_BUCKETS = COMMIT_BUCKETS

#: Fills by this node's part in them: it owns the maker order, the taker order, both, or neither.
ROLES = {(True, False): "maker", (False, True): "taker", (True, True): "both", (False, False): "none"}


@dataclass(frozen=True, slots=True)
class HistogramData:
    """A histogram at one moment: ``counts[i]`` observations <= ``bounds[i]`` ns (not cumulative),
    the last one above every bound; ``sum_ns`` their total."""

    bounds: tuple[int, ...]
    counts: tuple[int, ...]
    sum_ns: int


class Histogram:
    """Durations in ns into fixed buckets; O(log buckets) per observation."""

    __slots__ = ("bounds", "counts", "sum_ns")

    def __init__(self, bounds: tuple[int, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum_ns = 0

    def observe(self, ns: int) -> None:
        self.counts[bisect_left(self.bounds, ns)] += 1  # bounds are "less or equal", as Prometheus's le
        self.sum_ns += ns

    def data(self) -> HistogramData:
        return HistogramData(self.bounds, tuple(self.counts), self.sum_ns)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every figure the metrics show, from one moment of the loop; never changed once published."""

    node: str
    at: float  # time.monotonic() when it was taken
    ready: bool
    events: int  # delivered here: the sum of the node's vector clock
    orders_known: int
    open_orders: int
    fills_known: int
    compacted: int
    repaired: int
    in_flight: int
    counters: dict[str, int]  # the replica's health counters (Replica.counters)
    peers: dict[str, health.PeerHealth]
    queues: dict[str, int]
    requests: dict[tuple[str, str], int]  # (op, "ok" or error code) -> answered so
    orders: dict[tuple[str, str], int]  # (tif, origin) -> delivered
    cancels: dict[str, int]  # reason -> delivered
    reduces: int
    fills: dict[str, int]  # role -> delivered
    take: HistogramData
    commit: dict[bool, HistogramData]  # by whether the commit backed a promise
    loop: HistogramData


class Probe:
    """The loop's side of the metrics: see the module docstring."""

    def __init__(self, node: Node) -> None:
        self.node_id = node.id
        self.take = Histogram(TAKE_BUCKETS)
        self.commit = {True: Histogram(COMMIT_BUCKETS), False: Histogram(COMMIT_BUCKETS)}
        self.loop = Histogram(LOOP_BUCKETS)
        self.orders: Counter[tuple[str, str]] = Counter()
        self.cancels: Counter[str] = Counter()
        self.fills: Counter[str] = Counter()
        self.reduces = 0
        self._takes: dict[str, int] = {}  # take request -> when it was committed (ns)
        self._next_publish = 0
        self.snapshot = self._take_snapshot(node)

    # --- called by the loop -------------------------------------------------------------

    def committed(self, records: Iterable[Record], promise: bool, started_ns: int) -> None:
        """A commit of ``records`` that began at ``started_ns`` (perf_counter_ns) has returned."""
        now = time.perf_counter_ns()
        self.commit[promise].observe(now - started_ns)
        me = self.node_id
        for record in records:
            if type(record) is EventRecord:  # exact types, as zmqex.core.schedule: cheaper, and mypy narrows
                self._count(record.event.origin == me, record.event.body)
            elif type(record) is TakeSent:
                if len(self._takes) < MAX_TAKES_TIMED:
                    self._takes.setdefault(record.request, now)
            elif type(record) is TakeSettled:
                sent = self._takes.pop(record.request, None)
                if sent is not None:  # else sent before a restart, or past MAX_TAKES_TIMED
                    self.take.observe(now - sent)

    def iteration(self, node: Node, started_ns: int) -> None:
        """A loop iteration whose busy part began at ``started_ns`` (perf_counter_ns) has ended."""
        now = time.perf_counter_ns()
        self.loop.observe(now - started_ns)
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_MS * _MS
            self.snapshot = self._take_snapshot(node)  # one assignment: the metrics thread sees old or new

    # --- inside -------------------------------------------------------------------------

    def _count(self, own: bool, body: Body) -> None:
        if type(body) is Fill:
            me = self.node_id
            self.fills[ROLES[owner_of(body.maker) == me, owner_of(body.taker) == me]] += 1
        elif type(body) is NewOrder:
            # (a market order is an ioc at its price band's edge by the time it is an event)
            self.orders[body.tif.value, "local" if own else "peer"] += 1
        elif type(body) is Cancel:
            self.cancels[body.reason.value] += 1
        elif type(body) is Reduce:
            self.reduces += 1

    def _take_snapshot(self, node: Node) -> Snapshot:
        replica, api = node.replica, node.api
        taker, maker = replica.taker.unfinished, replica.maker.unfinished
        holds, deciding, otc = replica.holds.unfinished, replica.coordinator.unfinished, replica.otc.unfinished
        queues = {
            "pending_places": api.pending,  # place requests whose matching is not done
            "taker_work": taker,  # own orders taking: takes in flight, passes to run
            "maker_waiting": maker,  # peers' takes parked or queued here
            "holds": holds,  # parts of own orders held for fill-or-kill coordinators
            "fok_working": deciding,  # own fill-or-kill orders being decided or settled
            "otc_waiting": otc,  # accepts awaiting their answer, offers and requests not yet acknowledged
            # awaiting causal delivery, or local messages
            "held_events": replica.in_flight - taker - maker - holds - deciding - otc,
            "slow_readers": node.slow_readers,  # clients owed dropped-message notices
        }
        store = node.store
        if isinstance(store, SqliteStore) and store.checkpointer is not None:
            queues["wal_frames"] = store.checkpointer.pending  # not yet copied back to the database file
        return Snapshot(
            node=replica.id,
            at=time.monotonic(),
            ready=api.ready,
            events=replica.clock.total,
            orders_known=len(replica.ledger.orders),
            open_orders=len(replica.ledger.book),
            fills_known=len(replica.ledger.fills),
            compacted=replica.compacted,
            repaired=replica.repaired,
            in_flight=replica.in_flight,
            counters=dict(replica.counters),
            peers=health.peers(replica),
            queues=queues,
            requests=dict(api.requests),
            orders=dict(self.orders),
            cancels=dict(self.cancels),
            reduces=self.reduces,
            fills=dict(self.fills),
            take=self.take.data(),
            commit={promise: h.data() for promise, h in self.commit.items()},
            loop=self.loop.data(),
        )
