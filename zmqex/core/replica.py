"""The replica: one node's sans-I/O state machine.

Inputs are method calls: a client's ``place`` / ``cancel``, a peer's message
(``receive``), and a timer ``tick``; the current time always comes in as an
argument, in integer milliseconds.  Outputs pile up until the host drains them
with :meth:`Replica.take_outputs` (see :mod:`zmqex.core.outputs` for the order
in which a host must carry them out).

What one node decides alone, it decides here:

* **Its own orders.**  It is their single writer: it places them, cancels
  them, and it alone grants fills against them, one take request at a time,
  never more than ``open - reserved``.  Each answer is stored by request id, so
  a retried or duplicated request gets the same answer and never a second fill.
* **Taking.**  For each of its own orders that crosses a resting order with an
  earlier priority key (and for every IOC or market order, which never rests),
  it asks that order's owner for a fill, best price first, one request at a
  time per order, reserving what it asks for until the answer and its fill are
  in.  Every replica computes the same keys, so of two crossing resting orders
  exactly one owner takes: the owner of the later one.
* **Replication.**  Events from peers go through the causal buffer into the
  ledger.  Heartbeats carry clocks; a node that sees a peer ahead asks it for
  what it lacks (:class:`~zmqex.core.messages.SyncRequest`), page by page.
* **Liveness.**  A peer not heard from for ``peer_timeout_ms`` is down: its
  orders are skipped by takers until it is heard from again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zmqex.core import money
from zmqex.core.clock import VectorClock
from zmqex.core.causal import CausalBuffer
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Side, Tif, owner_of, parse_order_id
from zmqex.core.ledger import Ledger, OrderState, crosses, export, merge, rebuild
from zmqex.core.log import EventLog
from zmqex.core.messages import (
    Gossip, Heartbeat, Message, SnapshotPage, SyncReply, SyncRequest, Take, TakeReply,
)
from zmqex.core.outputs import (
    Checkpoint, Delivered, EventRecord, Outcome, Output, PeerChanged, Persist, Publish, Record, Reply, Send,
    TakeSent, TakeSettled,
)
from zmqex.core.takes import PendingTake, Reservations
from zmqex.errors import InvalidRequest, NotOwner, OrderClosed, Rejected, UnknownOrder
from zmqex.core.wire import is_node_id

# Reasons in a TakeReply.
GRANTED, CLOSED, BUSY, INVALID = "filled", "closed", "busy", "invalid"


@dataclass(frozen=True, slots=True)
class Config:
    heartbeat_ms: int = 500
    peer_timeout_ms: int = 2000
    retry_ms: int = 1000  # resend an unanswered take, or a sync request, after this long
    sync_page: int = 500
    compact_after: int = 100_000  # stable events held before a checkpoint lets them go
    compact_every_ms: int = 5_000


@dataclass(slots=True)
class Peer:
    last_seen: int
    up: bool = True
    vc: VectorClock = VectorClock()
    state_hash: str = ""
    sync_sent_at: int | None = None  # a sync request to it is outstanding since


class Replica:
    def __init__(self, node_id: str, *, peers: Iterable[str] = (), now: int = 0, config: Config = Config()) -> None:
        if not is_node_id(node_id):
            raise InvalidRequest(f"node id {node_id!r} must be 1-32 characters of A-Z a-z 0-9 _ . -")
        self.id = node_id
        self.config = config
        self.now = now
        self.ledger = Ledger()
        self.clock = VectorClock()  # everything delivered here
        self.peers: dict[str, Peer] = {}
        self._buffer = CausalBuffer()
        self._log = EventLog()  # delivered events that peers may still ask for
        self._next_compact = now + config.compact_every_ms
        self._snapshot_pages: dict[str, tuple[VectorClock, dict[int, tuple]]] = {}  # sender -> pages so far
        self._out: list[Output] = []
        self._local: deque[tuple[str, Message]] = deque()  # messages to ourselves
        self._next_heartbeat = now
        self.repaired = 0  # events that came by repair (sync), not by gossip: a health figure
        self.amnesia: str | None = None  # why this node must not create events (it lost its own history)
        # Taker side.
        self._takes = Reservations()
        self._requests = 0
        self._flows: set[str] = set()  # own orders whose first taker pass has not finished
        self._waiting: dict[str, Any] = {}  # order id -> client token awaiting the result
        self._closed_makers: dict[str, set[str]] = {}  # order -> makers that answered closed
        self._busy_makers: dict[str, set[str]] = {}  # order -> makers that were busy (until next tick)
        # Maker side.
        self._outcomes: dict[tuple[str, str], TakeReply] = {}
        self._parked: dict[str, list[tuple[str, Take]]] = {}  # taker order id -> takes awaiting it
        for peer in peers:
            self.add_peer(peer)

    # --- host interface -----------------------------------------------------------

    def take_outputs(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def add_peer(self, peer: str) -> None:
        if peer != self.id and peer not in self.peers and is_node_id(peer):
            self.peers[peer] = Peer(last_seen=self.now)

    @property
    def in_flight(self) -> int:
        """Work not finished: takes awaiting answers or fills, unfinished flows, held events and requests."""
        return len(self._takes) + len(self._flows) + len(self._parked) + len(self._buffer) + len(self._local)

    @property
    def quiet(self) -> bool:
        return self.in_flight == 0

    def is_up(self, node: str) -> bool:
        peer = self.peers.get(node)
        return node == self.id or peer is None or peer.up

    # --- client commands --------------------------------------------------------------

    def place(self, side: Side, qty: int, price: int | None, tif: Tif = Tif.GTC, *, token: Any = None) -> str:
        """Place an order owned by this node; returns its id at once.

        The order is durable when the host has carried out the outputs.  When
        its taker pass is over, a :class:`Reply` with ``token`` carries the result.
        Raises InvalidAmount / InvalidRequest / Rejected, changing nothing.
        """
        side, tif = Side(side), Tif(tif)
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
        self._flows.add(oid)
        if token is not None:
            self._waiting[oid] = token
        self._pump()
        return oid

    def cancel(self, oid: str) -> dict[str, Any]:
        """Cancel the open part of an own order now; what is in flight settles later."""
        parse_order_id(oid)
        self._check_memory()
        state = self.ledger.orders.get(oid)
        if state is None:
            raise UnknownOrder(f"order {oid} is not known here")
        if state.owner != self.id:
            raise NotOwner(f"order {oid} belongs to {state.owner}; cancel it there")
        if state.open == 0:
            raise OrderClosed(f"order {oid} is already {state.status}")
        self._emit(Cancel(oid, CancelReason.USER))
        self._pump()
        return self.order_info(oid)

    def _check_memory(self) -> None:
        if self.amnesia:
            raise Rejected(self.amnesia)

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
            self._out.append(Publish(Heartbeat(self.id, self.clock, self.ledger.state_hash())))
        for name, peer in self.peers.items():
            up = now - peer.last_seen <= self.config.peer_timeout_ms
            if up != peer.up:
                peer.up = up
                self._out.append(PeerChanged(name, up))
            if peer.sync_sent_at is not None and now - peer.sync_sent_at >= self.config.retry_ms:
                peer.sync_sent_at = None
        for take in self._takes:
            if take.granted is None and now - take.sent_at >= self.config.retry_ms:
                take.sent_at = now
                self._send_take_message(take)
        self._busy_makers.clear()
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

    def _handle(self, sender: str, msg: Message) -> None:
        if isinstance(msg, Gossip):
            self._offer(msg.event)
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
        self._deliver(event)
        self._out.append(Publish(Gossip(event)))
        return event

    def _offer(self, event: Event) -> None:
        if event.origin == self.id and event.seq > self.clock.get(self.id):
            return  # nobody else may speak for us; an honest peer cannot be ahead of us
        if not self._buffer.add(event, self.clock):
            return
        while (ready := self._buffer.pop_ready(self.clock)) is not None:
            self._deliver(ready)

    def _deliver(self, event: Event) -> None:
        self.ledger.apply(event)  # raises (changing nothing) on an event no honest peer sends
        self._record_delivery(event)
        self._out.append(Persist(EventRecord(event)))
        self._out.append(Delivered(event))
        if event.origin != self.id:
            self.add_peer(event.origin)
        body = event.body
        if isinstance(body, Fill):
            take = self._takes.get(body.request)
            if take is not None and take.order == body.taker:
                self._takes.fill_applied(take, body.qty)
        elif isinstance(body, NewOrder):
            for sender, take in self._parked.pop(event.order_id, ()):
                self._grant(sender, take)

    def _record_delivery(self, event: Event) -> None:
        self.clock = self.clock.with_entry(event.origin, event.seq)
        self._log.append(event)

    # --- repair -------------------------------------------------------------------------

    def _on_heartbeat(self, sender: str, hb: Heartbeat) -> None:
        if hb.origin != sender:
            return
        peer = self.peers.get(sender)
        if peer is None:
            return
        peer.vc, peer.state_hash = hb.vc, hb.state_hash
        if hb.vc.get(self.id) > self.clock.get(self.id) and not self.amnesia:
            # A peer has seen more of our own events than we remember: we restarted without
            # our store.  New events would reuse their ids and we no longer know what we
            # promised, so this node must not place, cancel, grant or take any more.
            self.amnesia = (
                f"node {self.id} has lost its own history ({sender} knows {hb.vc.get(self.id)} of its events, "
                f"it has {self.clock.get(self.id)}): restart it with its data directory"
            )
        if not self.clock.dominates(hb.vc):
            self._request_sync(sender)

    def _request_sync(self, peer_id: str) -> None:
        peer = self.peers.get(peer_id)
        if peer is None or peer.sync_sent_at is not None:
            return
        peer.sync_sent_at = self.now
        self._send(peer_id, SyncRequest(self.clock, self.config.sync_page))

    def _on_sync_request(self, sender: str, req: SyncRequest) -> None:
        if not self._log.can_serve(req.vc):
            # It lacks events we have compacted away: send the state itself, then it asks again.
            items = export(self.ledger)
            pages = [items[i:i + req.limit] for i in range(0, len(items), req.limit)] or [[]]
            for index, page in enumerate(pages):
                self._send(sender, SnapshotPage(self.clock, index, len(pages), tuple(page)))
            return
        events, more = self._log.missing(req.vc, req.limit)
        self._send(sender, SyncReply(tuple(events), more))

    def _on_snapshot_page(self, sender: str, page: SnapshotPage) -> None:
        peer = self.peers.get(sender)
        if peer is not None:
            peer.sync_sent_at = None
        if self.clock.dominates(page.vc):
            return  # we already have all of it
        vc, pages = self._snapshot_pages.get(sender, (page.vc, {}))
        if vc != page.vc:
            pages = {}  # a newer snapshot from the same peer replaces a partial older one
        pages[page.index] = page.items
        self._snapshot_pages[sender] = (page.vc, pages)
        if len(pages) == page.total and set(pages) == set(range(page.total)):
            del self._snapshot_pages[sender]
            self._install([item for i in range(page.total) for item in pages[i]], page.vc)
            self._request_sync(sender)

    def _install(self, items: list, vc: VectorClock) -> None:
        """Unite our ledger with a peer's snapshot taken at ``vc``."""
        self.ledger = merge(self.ledger, items)  # raises on a malformed snapshot, changing nothing
        self.clock = self.clock.merge(vc)
        # What came by snapshot we cannot hand on as events: serve only from above it.
        self._log.prune(self._log.base.merge(vc))
        self._buffer.prune(self.clock)
        self._out.append(Persist(Checkpoint(self.clock, self._log.base, tuple(export(self.ledger)))))
        self._after_restore()
        while (ready := self._buffer.pop_ready(self.clock)) is not None:
            self._deliver(ready)

    def _after_restore(self) -> None:
        """Reconcile promises with a ledger that just changed under them (snapshot, restart)."""
        for take in self._takes:
            fill = self.ledger.fill_by_request.get(take.request)
            if fill is not None and not take.applied and fill.body.taker == take.order:  # type: ignore[union-attr]
                self._takes.fill_applied(take, fill.body.qty)  # type: ignore[union-attr]
        for oid in [o for o in self._parked if o in self.ledger.orders]:
            for sender, take in self._parked.pop(oid):
                self._grant(sender, take)

    def stable_clock(self) -> VectorClock:
        """What every member has delivered: the entry-wise minimum of all known clocks."""
        stable = dict(self.clock.items())
        for peer in self.peers.values():
            for origin in list(stable):
                stable[origin] = min(stable[origin], peer.vc.get(origin))
        return VectorClock(stable)

    def _maybe_compact(self) -> None:
        stable = self.stable_clock()
        base = self._log.base
        if sum(stable.get(o) - base.get(o) for o in stable) < self.config.compact_after:
            return
        self._log.prune(stable)
        self._out.append(Persist(Checkpoint(self.clock, self._log.base, tuple(export(self.ledger)))))

    def _on_sync_reply(self, sender: str, reply: SyncReply) -> None:
        peer = self.peers.get(sender)
        if peer is not None:
            peer.sync_sent_at = None
        for event in reply.events:
            if event.seq > self.clock.get(event.origin):
                self.repaired += 1
            self._offer(event)
        if reply.more or (peer is not None and not self.clock.dominates(peer.vc)):
            if reply.events:  # an empty page means the peer cannot help any further now
                self._request_sync(sender)

    # --- maker side: answering takes ------------------------------------------------------

    def _on_take(self, sender: str, take: Take) -> None:
        stored = self._outcomes.get((sender, take.request))
        if stored is not None:
            self._send(sender, stored)  # a retry or a duplicate: same answer, never a new fill
            return
        if (take.taker.origin != sender or owner_of(take.maker) != self.id
                or not isinstance(take.taker.body, NewOrder) or not take.request.startswith(sender + ".")):
            self._answer(sender, take, 0, INVALID)  # request ids and taker orders are the sender's own
            return
        self._offer(take.taker)
        if take.taker.order_id not in self.ledger.orders:
            # We lack something the taker's order depends on: hold the request, fetch the rest.
            parked = self._parked.setdefault(take.taker.order_id, [])
            if all(t.request != take.request for _, t in parked):
                parked.append((sender, take))
            self._request_sync(sender)
            return
        self._grant(sender, take)

    def _grant(self, sender: str, take: Take) -> None:
        if (sender, take.request) in self._outcomes:
            return
        maker = self.ledger.orders.get(take.maker)
        taker = self.ledger.orders[take.taker.order_id]
        if self.amnesia:
            self._answer(sender, take, 0, INVALID)
            return
        if (maker is None or not crosses(taker, maker) or (taker.rests and taker.key <= maker.key)
                or take.qty > taker.qty - taker.filled):
            self._answer(sender, take, 0, INVALID)
            return
        available = maker.open - self._takes.reserved(maker.id)
        if maker.open == 0:
            self._answer(sender, take, 0, CLOSED)
        elif available <= 0:
            self._answer(sender, take, 0, BUSY)
        else:
            granted = min(take.qty, available)
            fill = self._emit(Fill(maker.id, taker.id, maker.price, granted, take.request))  # type: ignore[arg-type]
            self._answer(sender, take, granted, GRANTED, fill)

    def _answer(self, sender: str, take: Take, granted: int, reason: str, fill: Event | None = None) -> None:
        reply = TakeReply(take.request, take.maker, granted, reason, fill)
        self._outcomes[(sender, take.request)] = reply
        self._out.append(Persist(Outcome(sender, reply)))
        self._send(sender, reply)

    # --- taker side: asking for fills -----------------------------------------------------

    def _on_take_reply(self, sender: str, reply: TakeReply) -> None:
        take = self._takes.get(reply.request)
        if take is None or take.granted is not None or take.maker != reply.maker or owner_of(take.maker) != sender:
            return  # a duplicate, or not ours to believe
        fill = reply.fill
        if reply.granted > take.qty or (reply.granted > 0) != (fill is not None):
            return
        if fill is not None:
            body = fill.body
            if not (isinstance(body, Fill) and fill.origin == sender and body.request == take.request
                    and body.qty == reply.granted and body.taker == take.order and body.maker == take.maker):
                return
            self._offer(fill)
        self._out.append(Persist(TakeSettled(take.request, reply.granted)))
        self._takes.answer(take, reply.granted)
        if reply.reason == BUSY:
            self._busy_makers.setdefault(take.order, set()).add(take.maker)
        elif reply.granted == 0:
            self._closed_makers.setdefault(take.order, set()).add(take.maker)

    def _drive(self) -> None:
        """Start the next take for every own order that has something to take."""
        if self.amnesia:
            return
        book = self.ledger.book
        candidates = set(self._flows)
        if book.crossed():
            candidates.update(r.order_id for r in book.crossed_orders() if owner_of(r.order_id) == self.id)
        for oid in sorted(candidates):
            self._step(self.ledger.orders[oid])

    def _step(self, order: OrderState) -> None:
        if self._takes.in_flight(order.id) is not None:
            return
        maker = self._next_maker(order)
        if maker is not None:
            if order.tif is Tif.POST_ONLY:
                self._emit(Cancel(order.id, CancelReason.WOULD_CROSS))
            else:
                self._start_take(order, maker)
                return
        if order.id in self._flows and self._takes.reserved(order.id) == 0:
            self._finish(order)

    def _next_maker(self, order: OrderState) -> OrderState | None:
        available = order.open - self._takes.reserved(order.id)
        if available <= 0:
            return None
        skip = self._closed_makers.get(order.id, set()) | self._busy_makers.get(order.id, set())
        for resting in self.ledger.book.crossing(order.side, order.price):
            if order.rests and resting.key >= order.key:
                continue  # that order's owner is the taker between us
            if resting.order_id in skip or not self.is_up(owner_of(resting.order_id)):
                continue
            return self.ledger.orders[resting.order_id]
        return None

    def _start_take(self, order: OrderState, maker: OrderState) -> None:
        self._requests += 1
        qty = min(order.open - self._takes.reserved(order.id), maker.open)
        take = PendingTake(f"{self.id}.{self._requests}", order.id, maker.id, qty, self.now)
        self._takes.open(take)
        self._out.append(Persist(TakeSent(take.request, take.order, take.maker, take.qty)))
        self._send_take_message(take)

    def _send_take_message(self, take: PendingTake) -> None:
        event = self.ledger.orders[take.order].event
        self._send(owner_of(take.maker), Take(take.request, take.maker, event, take.qty))

    def _finish(self, order: OrderState) -> None:
        self._flows.discard(order.id)
        self._closed_makers.pop(order.id, None)
        if not order.rests and order.open > 0:
            self._emit(Cancel(order.id, CancelReason.EXPIRED))
        token = self._waiting.pop(order.id, None)
        if token is not None:
            self._out.append(Reply(token, self.order_info(order.id)))

    # --- queries --------------------------------------------------------------------------

    def order_info(self, oid: str) -> dict[str, Any]:
        state = self.ledger.orders.get(oid)
        if state is None:
            raise UnknownOrder(f"order {oid} is not known here")
        fills = self.ledger.fills_of.get(oid, ())
        return {
            "order_id": oid,
            "owner": state.owner,
            "side": state.side.value,
            "price": state.price,
            "qty": state.qty,
            "tif": state.tif.value,
            "status": state.status,
            "filled": state.filled,
            "open": state.open,
            "pending": self._takes.reserved(oid),
            "available": self.is_up(state.owner),
            "fills": [fill_info(e) for e in fills],
        }

    # --- restart ----------------------------------------------------------------------------

    @classmethod
    def restore(cls, node_id: str, records: Iterable[Record], *, peers: Iterable[str] = (), now: int = 0,
                config: Config = Config()) -> Replica:
        """Rebuild a node from its durable records, in the order they were persisted."""
        replica = cls(node_id, peers=peers, now=now, config=config)
        takes: dict[str, PendingTake] = {}
        log = replica._log
        for record in records:
            if isinstance(record, EventRecord):
                event = record.event
                if event.seq > replica.clock.get(event.origin):
                    replica.ledger.apply(event)
                    replica._record_delivery(event)
                elif event.seq > log.base.get(event.origin):
                    log.append(event)  # already in the checkpoint's state, still servable to peers
            elif isinstance(record, Checkpoint):
                kept = [e for e in log if e.seq > record.base.get(e.origin)]
                replica.ledger = rebuild(list(record.items))
                replica.clock = record.vc
                log.reset(record.base)
                for event in kept:
                    log.append(event)
            elif isinstance(record, TakeSent):
                takes[record.request] = PendingTake(record.request, record.order, record.maker, record.qty, now)
                replica._requests = max(replica._requests, int(record.request.rpartition(".")[2]))
            elif isinstance(record, TakeSettled):
                takes[record.request].granted = record.granted
            elif isinstance(record, Outcome):
                replica._outcomes[(record.sender, record.reply.request)] = record.reply
        for take in takes.values():
            fill = replica.ledger.fill_by_request.get(take.request)
            granted, take.granted = take.granted, None
            replica._takes.open(take)
            if fill is not None:
                replica._takes.fill_applied(take, fill.body.qty)  # type: ignore[union-attr]
            if granted is not None:
                replica._takes.answer(take, granted)
            else:
                take.sent_at = now - config.retry_ms  # ask again on the first tick
        for state in replica.ledger.orders.values():
            if state.owner == node_id and not state.rests and state.open > 0:
                replica._flows.add(state.id)  # an IOC interrupted by the crash: finish it
        for peer in replica.clock:
            replica.add_peer(peer)
        replica._out = []
        return replica


def fill_info(event: Event) -> dict[str, Any]:
    fill = event.body
    assert isinstance(fill, Fill)
    return {
        "id": f"{event.origin}:{event.seq}",
        "maker": fill.maker,
        "taker": fill.taker,
        "price": fill.price,
        "qty": fill.qty,
        "request": fill.request,
    }
