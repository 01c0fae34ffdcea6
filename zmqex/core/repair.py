"""Repair: catching up with peers, and letting go of what everyone has.

Gossip may drop events, so it is only the fast path; repair is the safety
net (README, "The rules").  Heartbeats carry each member's clock; a node that
sees a peer ahead asks it for what it lacks with a
:class:`~zmqex.core.messages.SyncRequest`, one at a time per peer, page by
page, until its clock dominates the peer's.  Any node can serve any origin's
events: they are self-describing.

A gap is given ``Config.repair_after_ms`` to close by itself before it is
asked for: under load a peer's heartbeat (or a take naming an order we have
not seen) is nearly always ahead of us only by gossip still on its way, and
asking at once would fetch whole pages of events that arrive anyway.  So a
gap is noted (``_note_gap``) and asked for at the first tick after the grace
period if our clock still does not cover it; a lost event costs that much
more latency, never a loss.

Compaction lets the log forget the events every member has delivered (the
causally stable clock) once there are ``compact_after`` of them, after a
:class:`~zmqex.core.outputs.Checkpoint` of the state.  A peer that asks for
events from below the log's base is sent the state itself, as
:class:`~zmqex.core.messages.SnapshotPage` messages, and is then asked again
for the events above it.

Invariants:

* Nothing reaches the ledger out of causal order: synced events go through
  the causal buffer like gossip, and a snapshot is united with our ledger as a
  whole (:func:`~zmqex.core.ledger.merge`), its clock with ours.
* The log serves only from above its base.  The events a snapshot covered
  never came here as events, so installing it moves the base up past them.
* A heartbeat showing that a peer knows more of our own events than we do
  is only a gap to fetch: our own signed events, when they come, are what
  tells the replica it lost its history, and it then gets it back before it
  creates events again (:mod:`zmqex.core.recovery`).
* A heartbeat from a peer at our very clock carries its state hash (a node
  that is quiet sends it), and it must be ours: two replicas that delivered the
  same events hold the same state.  A difference is counted
  (``counters["state_mismatches"]``), never silently ignored, and repaired
  (:mod:`zmqex.core.audit`).

Costs: serving a sync page is O(k log o) for k events over o origins; a
snapshot, and a checkpoint, is O(n) in orders and fills; ``stable_clock`` is
O(peers * origins).

State, all of it the desk's own: the event ``log``, what it knows of each
peer's clock and sync traffic (:class:`PeerSync`), snapshots arriving and
awaiting a voucher.  Installing a snapshot changes the ledger and the clock,
which are the replica's: the desk hands a whole, checked one over
(``Context.install``) and the replica moves the log's base
(:meth:`Replication.installed`).
"""

from __future__ import annotations

from collections.abc import Callable

from typing import Any

from zmqex.core import wire
from zmqex.core.clock import VectorClock
from zmqex.core.context import Context
from zmqex.core.envelope import event_from_wire as from_wire
from zmqex.core.events import Event
from zmqex.core.ledger import ITEM_KINDS, export, rebuild
from zmqex.core.log import EventLog
from zmqex.core.messages import Heartbeat, SnapshotPage, SyncReply, SyncRequest
from zmqex.core.outputs import Checkpoint
from zmqex.errors import DecodeError, Forged

Verify = Callable[[Event], bool]

FULL_CREDIT = 2**62  # a new peer's sync credit: the first request caps it at one burst


class PeerSync:
    """What the desk knows of one peer: its clock, what we lack of it, and its sync traffic."""

    __slots__ = ("vc", "sync_sent_at", "gap", "gap_since", "announced", "asked_at", "served_at",
                 "sync_credit", "snapshot_served_at")

    def __init__(self) -> None:
        self.vc = VectorClock()  # its clock, from its last heartbeat
        self.sync_sent_at: int | None = None  # a sync request to it is outstanding since
        self.gap = VectorClock()  # what it has that we lacked when we noticed
        self.gap_since: int | None = None
        self.announced: tuple[VectorClock, str] | None = None  # its last heartbeat with a state hash
        self.asked_at = -(10**12)  # when we last sent it a sync request (a snapshot may answer it)
        self.served_at = 0  # when it last asked us for a sync page
        self.sync_credit = FULL_CREDIT  # ms of serving it may still use; capped at the first request
        self.snapshot_served_at = -(10**12)


class Pending:
    """A whole, checked snapshot awaiting a voucher."""

    __slots__ = ("sender", "vc", "digest", "items", "since")

    def __init__(self, sender: str, vc: VectorClock, digest: str, items: list[Any], since: int) -> None:
        self.sender, self.vc, self.digest, self.items, self.since = sender, vc, digest, items, since


class Replication:
    """Heartbeats, sync requests and replies, snapshots, and compaction."""

    def __init__(self, ctx: Context, verify: Verify) -> None:
        self._ctx = ctx
        self._verify = verify  # an event carries its origin's signature (or there are no keys)
        self.log = EventLog()  # delivered events that peers may still ask for
        self.peers: dict[str, PeerSync] = {}
        self._next_compact = ctx.now + ctx.config.compact_every_ms
        self._snapshot_pages: dict[str, tuple[VectorClock, str, dict[int, bytes], int]] = {}  # sender -> so far
        self._pending: Pending | None = None
        self.repaired = 0  # events that came by repair (sync), not by gossip: a health figure

    @property
    def partial_snapshots(self) -> dict[str, int]:
        """Snapshots arriving, by sender: pages so far."""
        return {sender: len(pages) for sender, (_, _, pages, _) in self._snapshot_pages.items()}

    @property
    def pending_snapshot(self) -> VectorClock | None:
        """The clock of a whole snapshot awaiting a voucher, if one is."""
        return None if self._pending is None else self._pending.vc

    def add_peer(self, peer: str) -> None:
        self.peers.setdefault(peer, PeerSync())

    def drop_peer(self, peer: str) -> None:
        self.peers.pop(peer, None)
        self._snapshot_pages.pop(peer, None)

    def on_heartbeat(self, sender: str, hb: Heartbeat) -> bool:
        """Learn a peer's clock; fetch what it has that we lack.  True if its state differs from ours
        at our very clock (the replica then has the records compared: zmqex.core.audit)."""
        ctx = self._ctx
        peer = self.peers.get(sender)
        if hb.origin != sender or peer is None:
            return False
        peer.vc = hb.vc
        if hb.state_hash:
            peer.announced = (hb.vc, hb.state_hash)
            self._check_pending()
        # A peer that claims to know more of our own events than we do is only heard as a
        # gap: it is asked for them, and only our own signed events, if they come, prove
        # that we lost our history (Replica._own_event_from_peer).  A claim alone changes nothing.
        mismatch = bool(hb.state_hash) and hb.vc == ctx.clock and hb.state_hash != ctx.ledger.state_hash()
        if mismatch:
            # The same events and a different state: a replica is wrong (a rewritten store, a
            # bug).  The counter shows it in every status, the node logs it, and the records
            # are compared and repaired from their origins (zmqex.core.audit).
            ctx.counters["state_mismatches"] += 1
        self.note_gap(sender, hb.vc)
        return mismatch

    def note_gap(self, peer_id: str, vc: VectorClock) -> None:
        """Peer ``peer_id`` has what ``vc`` covers: if we lack some of it, ask it later (see above)."""
        ctx = self._ctx
        peer = self.peers.get(peer_id)
        if peer is None or ctx.clock.dominates(vc):
            return
        if peer.gap_since is None:
            peer.gap, peer.gap_since = vc, ctx.now
        else:
            peer.gap = peer.gap.merge(vc)
        if ctx.config.repair_after_ms == 0:
            self._repair_gaps()

    def tick(self) -> None:
        ctx = self._ctx
        for peer in self.peers.values():
            if peer.sync_sent_at is not None and ctx.now - peer.sync_sent_at >= ctx.config.retry_ms:
                peer.sync_sent_at = None
        self._repair_gaps()
        self._expire_snapshots()
        if ctx.now >= self._next_compact:
            self._next_compact = ctx.now + ctx.config.compact_every_ms
            self._maybe_compact()

    def _repair_gaps(self) -> None:
        """Ask each peer for what we have lacked for ``repair_after_ms``."""
        ctx = self._ctx
        for name, peer in self.peers.items():
            if peer.gap_since is None:
                continue
            if ctx.clock.dominates(peer.gap):
                peer.gap_since = None  # it came by gossip after all
            elif ctx.now - peer.gap_since >= ctx.config.repair_after_ms:
                peer.gap_since = None
                self._request_sync(name)

    def _request_sync(self, peer_id: str) -> None:
        """Ask ``peer_id`` for what we lack, unless a request to it is outstanding (tick expires it)."""
        ctx = self._ctx
        peer = self.peers.get(peer_id)
        if peer is None or peer.sync_sent_at is not None:
            return
        peer.sync_sent_at = peer.asked_at = ctx.now
        ctx.counters["sync_requests"] += 1
        ctx.send(peer_id, SyncRequest(ctx.clock, ctx.config.sync_page))

    def on_sync_request(self, sender: str, req: SyncRequest) -> None:
        ctx = self._ctx
        peer = self.peers.get(sender)
        if peer is None:
            return
        # Serving is work and memory (the answer waits in the peer's queue until it reads):
        # a token bucket per peer (a page per sync_serve_ms, bursts of sync_burst), and a
        # snapshot at most every snapshot_every_ms.  A refused request is asked again later.
        cost, burst = ctx.config.sync_serve_ms, ctx.config.sync_serve_ms * ctx.config.sync_burst
        peer.sync_credit = min(burst, peer.sync_credit + ctx.now - peer.served_at)
        peer.served_at = ctx.now
        if peer.sync_credit < cost:
            ctx.counters["sync_requests_refused"] += 1
            return
        peer.sync_credit -= cost
        if not self.log.can_serve(req.vc):
            # It lacks events we have compacted away: send the state itself, then it asks again.
            if ctx.now - peer.snapshot_served_at < ctx.config.snapshot_every_ms:
                ctx.counters["sync_requests_refused"] += 1
                return
            peer.snapshot_served_at = ctx.now
            items = export(ctx.ledger)
            pages = [items[i:i + req.limit] for i in range(0, len(items), req.limit)] or [[]]
            digest = ctx.ledger.state_hash()
            for index, page in enumerate(pages):
                ctx.send(sender, SnapshotPage(ctx.clock, index, len(pages), tuple(page), digest))
            return
        events, more = self.log.missing(req.vc, req.limit)
        ctx.send(sender, SyncReply(tuple(events), more))

    def on_sync_reply(self, sender: str, reply: SyncReply) -> None:
        ctx = self._ctx
        peer = self.peers.get(sender)
        if peer is not None:
            peer.sync_sent_at = None
        for event in reply.events:
            if event.seq > ctx.clock.get(event.origin):
                self.repaired += 1
            ctx.offer(event, sender)
        if reply.more or (peer is not None and not ctx.clock.dominates(peer.vc)):
            if reply.events:  # an empty page means the peer cannot help any further now
                self._request_sync(sender)

    def on_snapshot_page(self, sender: str, page: SnapshotPage) -> None:
        """Collect a snapshot we asked ``sender`` for; install it once it is whole and vouched for.

        Pages are taken only from a member we sent a sync request to, at most
        ``max_snapshot_pages`` of them, each no longer than the page we asked for,
        and every item is checked as it arrives (its events decoded, their
        signatures verified): the first bad page drops the whole snapshot.
        Raises DecodeError or Forged.
        """
        ctx = self._ctx
        peer = self.peers.get(sender)
        if peer is None or ctx.now - peer.asked_at > ctx.config.snapshot_wait_ms:
            # Not asked for (or so long ago that it is a stray duplicate): counted, not kept.
            ctx.counters["snapshot_pages_unasked"] += 1
            return
        partial = self._snapshot_pages.get(sender)
        peer.sync_sent_at = None
        if ctx.clock.dominates(page.vc):
            self._snapshot_pages.pop(sender, None)
            return  # we already have all of it
        try:
            if page.total > ctx.config.max_snapshot_pages or len(page.items) > ctx.config.sync_page:
                raise DecodeError(f"snapshot of {page.total} pages of up to {len(page.items)} items is over "
                                  f"{ctx.config.max_snapshot_pages} pages of {ctx.config.sync_page}")
            self._check_items(page.items)
        except (DecodeError, Forged):
            self._snapshot_pages.pop(sender, None)
            ctx.counters["snapshot_pages_refused"] += 1
            raise
        if partial is None or partial[0] != page.vc or partial[1] != page.state_hash:
            partial = (page.vc, page.state_hash, {}, ctx.now)  # a newer snapshot replaces a partial older one
        pages = partial[2]
        pages[page.index] = wire.pack(list(page.items))  # packed, a fifth of the memory until it is whole
        self._snapshot_pages[sender] = (page.vc, page.state_hash, pages, ctx.now)
        if len(pages) == page.total and set(pages) == set(range(page.total)):
            del self._snapshot_pages[sender]
            items = [item for i in range(page.total) for item in wire.unpack(pages[i])]
            if rebuild(items).state_hash() != page.state_hash:
                ctx.counters["snapshot_pages_refused"] += 1
                raise Forged(f"the snapshot from {sender} does not hash to the state hash it announced")
            self._pending = Pending(sender, page.vc, page.state_hash, items, ctx.now)
            self._check_pending()

    def _check_items(self, items: tuple[Any, ...]) -> None:
        for item in items:
            if type(item) is not list or len(item) not in (2, 5) or item[0] not in ITEM_KINDS:
                raise DecodeError("malformed snapshot item")
            event = from_wire(item[1])
            if not self._verify(event):
                raise Forged(f"snapshot item {event.origin}:{event.seq} is not signed by {event.origin}")

    def _check_pending(self) -> None:
        """Install the snapshot we hold once another member vouches for it (or nobody else could).

        A member vouches by announcing, in a heartbeat, the same state hash at the
        same clock.  A node whose only other member up is the snapshot's sender has
        no one to ask: it installs what that member sent, and counts it
        (``snapshots_unvouched``).  An unvouched snapshot is dropped after
        ``snapshot_wait_ms``; repair then asks again.
        """
        pending = self._pending
        if pending is None:
            return
        ctx = self._ctx
        others = [p for name, p in self.peers.items() if name != pending.sender and ctx.is_up(name)]
        if any(p.announced == (pending.vc, pending.digest) for p in others):
            ctx.counters["snapshots_vouched"] += 1
        elif not others:
            ctx.counters["snapshots_unvouched"] += 1
        elif ctx.now - pending.since >= ctx.config.snapshot_wait_ms:
            self._pending = None
            ctx.counters["snapshots_dropped"] += 1
            return
        else:
            return
        self._pending = None
        if not ctx.clock.dominates(pending.vc):
            ctx.install(pending.sender, pending.vc, pending.items)
            self._request_sync(pending.sender)

    def _expire_snapshots(self) -> None:
        """Let go of snapshots that stopped arriving, or that nobody vouched for in time."""
        ctx = self._ctx
        for sender, (_, _, _, since) in list(self._snapshot_pages.items()):
            if ctx.now - since >= ctx.config.snapshot_wait_ms:
                del self._snapshot_pages[sender]
                ctx.counters["snapshots_dropped"] += 1
        self._check_pending()

    def installed(self, vc: VectorClock) -> None:
        """The replica installed a snapshot taken at ``vc``: its events never came here, so serve only from above it."""
        ctx = self._ctx
        self.log.prune(self.log.base.merge(vc))
        ctx.persist(Checkpoint(ctx.clock, self.log.base, tuple(export(ctx.ledger))), promise=False)

    def stable_clock(self) -> VectorClock:
        """What every member has delivered: the entry-wise minimum of all known clocks."""
        stable = dict(self._ctx.clock.items())
        for peer in self.peers.values():  # removed members are not peers: nobody waits for them
            for origin in list(stable):
                stable[origin] = min(stable[origin], peer.vc.get(origin))
        return VectorClock(stable)

    def _maybe_compact(self) -> None:
        """Checkpoint and forget the stable events, once there are ``compact_after`` of them."""
        ctx = self._ctx
        stable = self.stable_clock()
        base = self.log.base
        if sum(stable.get(o) - base.get(o) for o in stable) < ctx.config.compact_after:
            return
        self.log.prune(stable)
        ctx.persist(Checkpoint(ctx.clock, self.log.base, tuple(export(ctx.ledger))), promise=False)

    def _check(self) -> None:
        ctx = self._ctx
        self.log._check(ctx.clock)
        assert ctx.clock.dominates(self.log.base), "the log's base is above what was delivered"
        burst = ctx.config.sync_serve_ms * ctx.config.sync_burst
        for name, peer in self.peers.items():
            assert name != ctx.id
            assert peer.sync_credit <= burst or peer.sync_credit == FULL_CREDIT, f"{name}: more sync credit than a burst"
        for sender, (_, _, pages, _) in self._snapshot_pages.items():
            assert sender in self.peers and 0 < len(pages) <= ctx.config.max_snapshot_pages
