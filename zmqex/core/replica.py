"""The replica: one node's sans-I/O state machine.

Inputs are method calls: a client's ``place`` / ``cancel``, a peer's message
(``receive``), and a timer ``tick``; the current time always comes in as an
argument, in integer milliseconds.  Outputs pile up until the host drains them
with :meth:`Replica.take_outputs` (see :mod:`zmqex.core.outputs` for the order
in which a host must carry them out).

What one node decides alone, it decides here:

* **Its own orders** (:mod:`zmqex.core.maker`).  It is their single writer: it
  places them, cancels them, and it alone grants fills against them, one take
  request at a time, never more than ``open - reserved``.  Each answer is
  stored by request id, so a retried or duplicated request gets the same
  answer and never a second fill.
* **Taking** (:mod:`zmqex.core.taker`).  For each of its own orders that
  crosses a resting order with an earlier priority key (and for every IOC or
  market order, which never rests), it asks that order's owner for a fill,
  best price first, one request at a time per order, reserving what it asks
  for until the answer and its fill are in.  Every replica computes the same
  keys, so of two crossing resting orders exactly one owner takes: the owner
  of the later one.
* **Replication** (:mod:`zmqex.core.repair`).  Events from peers go through the
  causal buffer into the ledger.  Heartbeats carry clocks; a node that sees a
  peer ahead asks it for what it lacks
  (:class:`~zmqex.core.messages.SyncRequest`), page by page.
* **Liveness.**  A peer not heard from for ``peer_timeout_ms`` is down: its
  orders are skipped by takers until it is heard from again.
* **Traders** (node-local, :mod:`zmqex.core.traders`).  Each own order
  remembers the trader who placed it (persisted with the order as
  :class:`~zmqex.core.outputs.OrderTrader`, never in an event): only they, or
  an operator, may cancel it; hosts bound open orders per trader with it.

Layout.  :class:`Replica` is the one object a host calls.  This module holds
all of its state (set up in ``__init__``, so it reads in one place), the host
and client interface, message dispatch, and event delivery.  The rest of its
methods live in mixins named after their job: :class:`~zmqex.core.maker.Maker`,
:class:`~zmqex.core.taker.Taker` and :class:`~zmqex.core.repair.Repair`.  Two
free functions read or fill in a replica from outside its message handling:
:func:`zmqex.core.queries.order_info` (what a client sees) and
:func:`zmqex.core.restore.replay` (``Replica.restore``).

Why mixins: the parts share one state (ledger, clock, reservations) and call
each other both ways (a grant emits a fill that is delivered here; a delivered
order releases takes parked on the maker side; installing a snapshot settles
the taker side's reservations), so they are methods of one object rather than
objects handing each other references.  As mixins, every handler is still a
method looked up on the ``Replica`` class, so hosts and tests see (and may
patch) one object, and nothing is added to a call.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from zmqex.core import money, queries
from zmqex.core.clock import VectorClock
from zmqex.core.causal import CausalBuffer
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Side, Tif, parse_order_id, signed_bytes
from zmqex.core.ledger import Ledger
from zmqex.core.log import EventLog
from zmqex.core.maker import BUSY, CLOSED, GRANTED, INVALID, Maker  # noqa: F401  (the reasons: re-exported)
from zmqex.core.messages import (
    Gossip, Heartbeat, Message, SnapshotPage, SyncReply, SyncRequest, Take, TakeReply,
)
from zmqex.core.outputs import (
    Delivered, EventRecord, Evidence, OrderTrader, Output, PeerChanged, Persist, Publish, Record, Send,
)
from zmqex.core.queries import fill_info  # noqa: F401  (re-exported: hosts import it from here)
from zmqex.core.repair import Repair
from zmqex.core.restore import replay
from zmqex.core.takes import Reservations
from zmqex.core.traders import Traders
from zmqex.core.taker import Taker
from zmqex.errors import Busy, Forged, InvalidRequest, NotOwner, OrderClosed, Rejected, UnknownOrder
from zmqex.core.wire import is_node_id


#: Signs our events' signed bytes (deterministic: Ed25519); and checks ``(origin, data, signature)``.
Signer = Callable[[bytes], bytes]
Verifier = Callable[[str, bytes, bytes], bool]

_IOC = Tif.IOC  # read once: attribute lookups on enum classes are slow


@dataclass(frozen=True, slots=True)
class Config:
    heartbeat_ms: int = 500
    peer_timeout_ms: int = 2000
    retry_ms: int = 1000  # resend an unanswered take, or a sync request, after this long
    sync_page: int = 500
    repair_after_ms: int = 200  # a gap may close by gossip this long before we ask a peer for it
    compact_after: int = 100_000  # stable events held before a checkpoint lets them go
    compact_every_ms: int = 5_000
    sync_serve_ms: int = 20  # sync pages served to one peer: one per this long on average ...
    sync_burst: int = 50  # ... and at most this many at once
    snapshot_every_ms: int = 10_000  # at most one snapshot served to a peer per this long
    max_snapshot_pages: int = 2_000  # a bigger snapshot is refused (1M items at the default page)
    snapshot_wait_ms: int = 10_000  # a snapshot nobody vouches for is dropped after this long
    park_ms: int = 10_000  # a take waits this long for its taker order, then its taker must ask again


@dataclass(slots=True)
class Peer:
    last_seen: int
    up: bool = True
    vc: VectorClock = VectorClock()
    sync_sent_at: int | None = None  # a sync request to it is outstanding since
    gap: VectorClock = VectorClock()  # what it has that we lacked when we noticed (repair.py)
    gap_since: int | None = None
    announced: tuple[VectorClock, str] | None = None  # its last heartbeat with a state hash: (clock, hash)
    asked_at: int = -(10**12)  # when we last sent it a sync request (a snapshot may answer it)
    served_at: int = 0  # when it last asked us for a sync page
    sync_credit: int = 2**62  # ms of sync serving it may still use (a page costs Config.sync_serve_ms);
    # starts full: the first request caps it at the burst (repair.py)
    snapshot_served_at: int = -(10**12)


class Replica(Maker, Taker, Repair):
    """One node's replica of the exchange: see the module docstring."""

    def __init__(self, node_id: str, *, peers: Iterable[str] = (), now: int = 0, config: Config = Config(),
                 signer: Signer | None = None, verifier: Verifier | None = None,
                 members: Iterable[str] | None = None) -> None:
        if not is_node_id(node_id):
            raise InvalidRequest(f"node id {node_id!r} must be 1-32 characters of A-Z a-z 0-9 _ . -")
        self.id = node_id
        self.config = config
        self.now = now
        self.ledger = Ledger()
        self.clock = VectorClock()  # everything delivered here
        self.peers: dict[str, Peer] = {}
        # Keys (see set_keys): how we sign our events, how we check others', who may originate events.
        self._signer = signer
        self._verifier = verifier
        # None: a mesh without keys, where anyone may join.
        self.members: frozenset[str] | None = None if members is None else frozenset(members) | {node_id}
        self.removed: set[str] = set()  # members taken off the allow-list: untradeable, not waited for
        self.equivocators: dict[str, tuple[Event, Event]] = {}  # origin -> two events it signed with one id
        self._buffer = CausalBuffer()
        self._out: list[Output] = []
        self._local: deque[tuple[str, Message]] = deque()  # messages to ourselves
        self._next_heartbeat = now
        self._heartbeat_clock: VectorClock | None = None  # our clock at the last heartbeat
        self.amnesia: str | None = None  # why this node must not create events (it lost its own history)
        # Set by a host that starts a node with an empty store among peers: until one of
        # them has told us (by heartbeat) how much of our own history it knows, creating
        # an event could reuse an id that our lost past already used.
        self.awaiting_peers = False
        # Repair (repair.py).
        self._log = EventLog()  # delivered events that peers may still ask for
        self._next_compact = now + config.compact_every_ms
        self._snapshot_pages: dict[str, tuple[VectorClock, str, dict[int, bytes], int]] = {}  # sender -> pages so far
        self._pending_snapshot: tuple[str, VectorClock, str, list, int] | None = None  # whole, awaiting a voucher
        self.repaired = 0  # events that came by repair (sync), not by gossip: a health figure
        self.counters: Counter[str] = Counter()  # health figures for operators and the benchmark
        # Taker side (taker.py).
        self._takes = Reservations()
        self._requests = 0
        self._flows: set[str] = set()  # own orders whose first taker pass has not finished
        self._waiting: dict[str, Any] = {}  # order id -> client token awaiting the result
        self._closed_makers: dict[str, set[str]] = {}  # order -> makers that refused it (invalid)
        self._busy_makers: dict[str, set[str]] = {}  # order -> makers that were busy (until next tick)
        self._spent: set[str] = set()  # makers their owners said are closed, not yet closed here
        self._behind: dict[str, set[str]] = {}  # maker -> own orders that skipped it: our asks covered it
        self._dirty: set[str] = set()  # own orders that may have something to do: the driver's work list
        # Maker side (maker.py).
        self._outcomes: dict[tuple[str, str], TakeReply] = {}
        self._parked: dict[str, list[tuple[str, Take, int]]] = {}  # taker order id -> takes awaiting it, since
        self._parked_by: Counter[str] = Counter()  # sender -> its takes in _parked
        self._held: dict[str, dict[tuple[str, str], tuple[Take, int]]] = {}  # reserved own order -> takes, since
        self._waiters: dict[str, set[str]] = {}  # reserved own order -> own orders waiting to take from it
        # Who placed each own order (node-local: never in an event): zmqex.core.traders.
        self.traders = Traders()
        for peer in peers:
            self.add_peer(peer)

    # --- host interface -----------------------------------------------------------

    def take_outputs(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def add_peer(self, peer: str) -> None:
        if (peer != self.id and peer not in self.peers and is_node_id(peer)
                and (self.members is None or peer in self.members)):
            self.peers[peer] = Peer(last_seen=self.now)

    def set_keys(self, verifier: Verifier | None, members: Iterable[str] | None) -> None:
        """Who may originate events (None: anyone, a mesh without keys) and how to check their signatures.

        A member no longer listed is removed: its orders become untradeable here, it
        is no longer a peer, and compaction stops waiting for it.
        """
        self._verifier = verifier
        if members is None:
            self.members = None
            return
        self.members = frozenset(members) | {self.id}
        known = set(self.peers) | set(self.clock) | self.removed
        self.removed = {node for node in known if node not in self.members}
        for gone in [p for p in self.peers if p in self.removed]:
            del self.peers[gone]
            self._out.append(PeerChanged(gone, False))
        self._mark_crossed()  # orders of members back on the list may trade again

    @property
    def in_flight(self) -> int:
        """Work not finished: takes awaiting answers or fills, unfinished flows, held events and requests."""
        return (len(self._takes) + len(self._flows) + len(self._parked) + len(self._buffer) + len(self._local)
                + len(self._busy_makers) + len(self._dirty) + len(self._held))

    @property
    def compacted(self) -> int:
        """How many events this replica holds only as state (checkpointed or from a snapshot)."""
        return sum(self._log.base.values())

    @property
    def quiet(self) -> bool:
        return self.in_flight == 0

    def is_up(self, node: str) -> bool:
        """Whether ``node``'s orders can be traded now: it is up, not removed, and never equivocated."""
        if node == self.id:
            return True
        if node in self.removed or node in self.equivocators:
            return False
        peer = self.peers.get(node)
        return peer is None or peer.up

    @classmethod
    def restore(cls, node_id: str, records: Iterable[Record], *, peers: Iterable[str] = (), now: int = 0,
                config: Config = Config(), signer: Signer | None = None, verifier: Verifier | None = None,
                members: Iterable[str] | None = None) -> Replica:
        """Rebuild a node from its durable records, in the order they were persisted (:mod:`zmqex.core.restore`)."""
        replica = cls(node_id, peers=peers, now=now, config=config, signer=signer, verifier=verifier,
                      members=members)
        replay(replica, records)
        return replica

    # --- client commands --------------------------------------------------------------

    def place(self, side: Side, qty: int, price: int | None, tif: Tif = Tif.GTC, *, token: Any = None,
              trader: str = "") -> str:
        """Place an order owned by this node; returns its id at once.

        The order is durable when the host has carried out the outputs.  When
        its taker pass is over, a :class:`Reply` with ``token`` carries the result.
        ``trader`` (node-local, not replicated) is who placed it: only they, or an
        operator, may cancel it; it is persisted with the order (:class:`OrderTrader`).
        Raises InvalidAmount / InvalidRequest / Rejected, changing nothing.
        """
        side = side if type(side) is Side else Side(side)  # an enum call costs more than the check
        tif = tif if type(tif) is Tif else Tif(tif)
        self._check_memory()
        money.check_qty(qty)
        if price is None:
            if tif is Tif.POST_ONLY:
                raise InvalidRequest("a post-only order needs a price")
            tif = Tif.IOC  # a market order takes what it can and never rests
        else:
            money.check_price(price)
            if tif is Tif.POST_ONLY:
                best = self.ledger.book.best(side.opposite)
                if best is not None and (best <= price if side is Side.BUY else best >= price):
                    raise Rejected(
                        f"post-only {side.value} at {money.format_price(price)} would cross "
                        f"the best {'ask' if side is Side.BUY else 'bid'} at {money.format_price(best)}"
                    )
        event = self._emit(NewOrder(side, price, qty, tif))
        oid = event.order_id
        if trader:
            self._out.append(Persist(OrderTrader(oid, trader)))  # a promise: committed with the event
        self.traders.placed(oid, trader, self.ledger)
        self._flows.add(oid)
        self._dirty.add(oid)
        if token is not None:
            self._waiting[oid] = token
        self._pump()
        return oid

    def cancel(self, oid: str, *, trader: str = "", operator: bool = False) -> dict[str, Any]:
        """Cancel the open part of an own order now; what is in flight settles later.

        Only the trader who placed it may, or an ``operator``; an order placed
        without a trader's name may be cancelled by any trader of this node.
        """
        parse_order_id(oid)
        self._check_memory()
        state = self.ledger.orders.get(oid)
        if state is None:
            raise UnknownOrder(f"order {oid} is not known here")
        if state.owner != self.id:
            raise NotOwner(f"order {oid} belongs to {state.owner}; cancel it there")
        if not self.traders.may_cancel(oid, trader, operator):
            raise NotOwner(f"order {oid} belongs to another trader")  # never say whom: names stay private
        if state.open == 0:
            raise OrderClosed(f"order {oid} is already {state.status}")
        self._emit(Cancel(oid, CancelReason.USER))
        self._dirty.add(oid)  # its first pass may be over now
        self._pump()
        return self.order_info(oid)

    def order_info(self, oid: str) -> dict[str, Any]:
        """The order as a client sees it (:func:`zmqex.core.queries.order_info`)."""
        return queries.order_info(self, oid)

    def is_mine(self, oid: str, trader: str, operator: bool = False) -> bool:
        """Whether ``oid`` is an own order placed by ``trader`` (an operator: any own order)."""
        state = self.ledger.orders.get(oid)
        return state is not None and state.owner == self.id and self.traders.is_mine(oid, trader, operator)

    def open_orders(self, trader: str | None = None) -> int:
        """Own orders still open: placed by ``trader``, or by anyone (None); see :mod:`zmqex.core.traders`."""
        return self.traders.open_orders(self.ledger, trader)

    def _check_memory(self) -> None:
        if self.amnesia:
            raise Rejected(self.amnesia)
        if self.awaiting_peers:
            raise Busy(f"node {self.id} starts with an empty store and has not heard from a peer yet; "
                       "it may have a history they know of: try again in a moment")

    # --- peer input ---------------------------------------------------------------

    def receive(self, sender: str, message: Message, now: int) -> None:
        """Handle one message from peer ``sender`` (as the transport saw it)."""
        self.now = max(self.now, now)
        if sender != self.id:
            self._seen(sender)
        self._handle(sender, message)
        self._pump()

    def tick(self, now: int) -> None:
        """Timers: heartbeats, peer liveness, retries of unanswered requests."""
        self.now = now = max(self.now, now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_ms
            # The state hash only when nothing was delivered since the last heartbeat: under
            # load nobody can compare it (peers compare at equal clocks) and it cost ~5% of a node.
            quiet = self.clock == self._heartbeat_clock
            self._heartbeat_clock = self.clock
            self._out.append(Publish(Heartbeat(self.id, self.clock, self.ledger.state_hash() if quiet else "")))
            # The safety net, as often as heartbeats: whatever still crosses, the later owner
            # acts.  Every change that can make an own order take puts it on the work list
            # itself; a sweep on every tick cost a quarter of a loaded node's time.
            self._mark_crossed()
        for name, peer in self.peers.items():
            up = now - peer.last_seen <= self.config.peer_timeout_ms
            if up != peer.up:
                peer.up = up
                self._out.append(PeerChanged(name, up))
            if peer.sync_sent_at is not None and now - peer.sync_sent_at >= self.config.retry_ms:
                peer.sync_sent_at = None
        self._repair_gaps()
        for take in self._takes:
            if take.granted is None and now - take.sent_at >= self.config.retry_ms:
                take.sent_at = now
                self.counters["take_retries"] += 1
                self._send_take_message(take)
        self._dirty.update(self._busy_makers)  # busy makers may have room now
        self._busy_makers.clear()
        self._expire_held()
        self._expire_parked()
        self._expire_snapshots()
        if now >= self._next_compact:
            self._next_compact = now + self.config.compact_every_ms
            self._maybe_compact()
        self._pump()

    def _seen(self, sender: str) -> None:
        self.add_peer(sender)
        peer = self.peers.get(sender)
        if peer is None:
            return
        peer.last_seen = self.now
        if not peer.up:
            peer.up = True
            self._out.append(PeerChanged(sender, True))
            self._mark_crossed()  # its orders are tradeable again

    def _handle(self, sender: str, msg: Message) -> None:
        if isinstance(msg, Gossip):
            if msg.event.origin != sender:  # a node publishes only its own events; relays go by sync
                self.counters["events_refused"] += 1
                raise Forged(f"gossip from {sender} carries an event of {msg.event.origin}")
            self._offer(msg.event, sender)
        elif isinstance(msg, Heartbeat):
            self._on_heartbeat(sender, msg)
        elif isinstance(msg, Take):
            self._on_take(sender, msg)
        elif isinstance(msg, TakeReply):
            self._on_take_reply(sender, msg)
        elif isinstance(msg, SyncRequest):
            self._on_sync_request(sender, msg)
        elif isinstance(msg, SyncReply):
            self._on_sync_reply(sender, msg)
        elif isinstance(msg, SnapshotPage):
            self._on_snapshot_page(sender, msg)

    def _send(self, to: str, msg: Message) -> None:
        if to == self.id:
            self._local.append((to, msg))
        else:
            self._out.append(Send(to, msg))

    def _pump(self) -> None:
        """Run local messages and the taker driver until nothing changes."""
        while True:
            while self._local:
                self._handle(*self._local.popleft())
            self._drive()
            if not self._local:
                return

    # --- events -----------------------------------------------------------------------

    def _emit(self, body: NewOrder | Cancel | Fill) -> Event:
        seq = self.clock.get(self.id) + 1
        event = Event(self.id, seq, self.clock.with_entry(self.id, seq), body)
        if self._signer is not None:
            event = Event(self.id, seq, event.vc, body, self._signer(signed_bytes(event)))
        self._deliver(event, event.vc)  # its clock is ours after it
        self._out.append(Publish(Gossip(event)))
        return event

    def _offer(self, event: Event, sender: str) -> None:
        """An event from peer ``sender``: deliver it when causally ready, after checking who made it.

        With keys, an event from a non-member is refused, and one that did not come
        straight from its origin (a relay, a sync page) must carry its origin's
        signature.  One straight from its origin is not verified: the connection is
        authenticated with the origin's own key, and verifying costs ~55 us, about
        half a node's whole work per order (a member that signs badly only keeps its
        own events from travelling further).  Raises Forged (changing nothing).
        """
        origin = event.origin
        if origin == self.id:
            if event.seq > self.clock.get(origin):
                self._own_event_from_peer(event, sender)
            else:
                self._check_same(event, sender)
            return
        if self.members is not None and origin not in self.members:
            self.counters["events_refused"] += 1
            raise Forged(f"event {origin}:{event.seq}: {origin} is not a member")
        if event.seq <= self.clock.get(origin):
            self._check_same(event, sender)
            return
        if self._verifier is not None and sender != origin and not self._verified(event):
            raise Forged(f"event {origin}:{event.seq} relayed by {sender} does not carry {origin}'s signature")
        if not self._buffer and self._buffer.ready(event, self.clock):
            self._deliver(event)  # the common case: in causal order, nothing waiting
            return
        if not self._buffer.add(event, self.clock):
            return
        while (ready := self._buffer.pop_ready(self.clock)) is not None:
            self._deliver(ready)

    def _verified(self, event: Event) -> bool:
        ok = self._verifier is None or self._verifier(event.origin, signed_bytes(event), event.sig)
        if not ok:
            self.counters["bad_signatures"] += 1
        return ok

    def _own_event_from_peer(self, event: Event, sender: str) -> None:
        """A peer holds an event of ours that we do not: we lost our history (restarted without our store).

        Only our own signed event proves it (with keys): a peer's claim about our clock,
        or a forged event, changes nothing.  New events would reuse ids and we no
        longer know what we promised, so this node must not place, cancel, grant or take.
        """
        if self._verifier is not None and not self._verified(event):
            raise Forged(f"{sender} sent an event {event.origin}:{event.seq} in our name that we never signed")
        if not self.amnesia:
            self.amnesia = (f"node {self.id} has lost its own history ({sender} holds its event {event.seq}, "
                            f"it has {self.clock.get(self.id)}): restart it with its data directory")

    def _check_same(self, event: Event, sender: str) -> None:
        """A second copy of an event we have must be the same event: ids are never reused.

        A different one, signed by its origin, is proof that the origin reused an id:
        it restarted without its store, or two processes run with its key.  If that
        is us, we stop creating events.  If it is a peer (with keys), we keep both
        events as evidence and trade with none of its orders again; without keys we
        send it our copy, so that it finds out the same way.
        """
        ours = self._log.get(event.origin, event.seq)
        if ours is None or ours == event:
            return
        if self._verifier is not None and not self._verified(event):
            raise Forged(f"a copy of event {event.origin}:{event.seq} from {sender} is not signed by {event.origin}")
        self.counters["reused_event_ids"] += 1
        if event.origin == self.id:
            if not self.amnesia:
                self.amnesia = (f"node {self.id} has lost its own history (a peer holds a different "
                                f"event {event.origin}:{event.seq}): restart it with its data directory")
        elif self._verifier is not None:
            if not self._verified(ours):
                return  # our copy came unverified from its origin and is not signed: no proof against it
            if event.origin not in self.equivocators:
                self.counters["equivocations"] += 1
                self.equivocators[event.origin] = (ours, event)
                self._out.append(Persist(Evidence(ours, event), promise=False))
                self._out.append(PeerChanged(event.origin, False))
        else:
            self._send(event.origin, SyncReply((ours,), False))  # a relay of its own event: proof it lost it

    def _deliver(self, event: Event, clock: VectorClock | None = None) -> None:
        """Apply a causally ready event; ``clock``, if given, is our clock after it (saves a copy)."""
        self.ledger.apply(event)  # raises (changing nothing) on an event no honest peer sends
        self._record_delivery(event, clock)
        self._out.append(Persist(EventRecord(event), promise=event.origin == self.id))
        self._out.append(Delivered(event))
        if event.origin != self.id:
            self.add_peer(event.origin)
        body = event.body
        if isinstance(body, Fill):
            if self.traders.any_open:
                self.traders.maybe_closed(body.maker, self.ledger)
                self.traders.maybe_closed(body.taker, self.ledger)
            take = self._takes.get(body.request)
            if take is not None and take.order == body.taker:
                self._takes.fill_applied(take, body.qty)
                self._dirty.add(take.order)
                self._release(take.order)
        elif isinstance(body, NewOrder):
            if event.order_id in self._parked:
                for sender, take in self._unpark(event.order_id):
                    self._grant(sender, take)
            if event.origin != self.id and body.tif is not _IOC:
                self._mark_crossed_by(event.order_id)
        elif event.origin == self.id:  # a cancel: only the owner closes an order
            self.traders.maybe_closed(body.order_id, self.ledger)

    def _record_delivery(self, event: Event, clock: VectorClock | None = None) -> None:
        self.clock = clock if clock is not None else self.clock.with_entry(event.origin, event.seq)
        self._log.append(event)
