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
  means we restarted without our store: the replica sets ``amnesia`` and
  stops creating events for good.
* A heartbeat from a peer at our very clock carries its state hash (a node
  that is quiet sends it), and it must be ours: two replicas that delivered the
  same events hold the same state.  A difference is counted
  (``counters["state_mismatches"]``), never silently ignored.

Costs: serving a sync page is O(k log o) for k events over o origins; a
snapshot, and a checkpoint, is O(n) in orders and fills; ``stable_clock`` is
O(peers * origins).

:class:`Repair` is a mixin of :class:`~zmqex.core.replica.Replica`, which
says why and holds the state these methods use (``peers``, ``clock``,
``ledger``, ``_log``, ``_buffer``, ``_snapshot_pages``).
"""

from __future__ import annotations

from zmqex.core import wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import from_wire
from zmqex.core.ledger import FILL_ITEM, ORDER_ITEM, export, merge, rebuild
from zmqex.core.messages import Heartbeat, SnapshotPage, SyncReply, SyncRequest
from zmqex.core.outputs import Checkpoint, Persist
from zmqex.errors import DecodeError, Forged


class Repair:
    """Heartbeats, sync requests and replies, snapshots, and compaction."""

    def _on_heartbeat(self, sender: str, hb: Heartbeat) -> None:
        if hb.origin != sender:
            return
        peer = self.peers.get(sender)
        if peer is None:
            return
        peer.vc = hb.vc
        if hb.state_hash:
            peer.announced = (hb.vc, hb.state_hash)
            self._check_pending_snapshot()
        if hb.vc.get(self.id) <= self.clock.get(self.id):
            self.awaiting_peers = False  # a peer has told us it knows nothing of ours we lack: we may speak
        # A peer that claims to know more of our own events than we do is only heard as a
        # gap: it is asked for them, and only our own signed events, if they come, prove
        # that we lost our history (Replica._own_event_from_peer).  A claim alone changes nothing.
        if hb.state_hash and hb.vc == self.clock and hb.state_hash != self.ledger.state_hash():
            # The same events and a different state: a replica is wrong (a bug, or an id
            # reused by a node that lost its store).  Nothing here can say which one;
            # the counter shows it in every status, and the node logs it.
            self.counters["state_mismatches"] += 1
        self._note_gap(sender, hb.vc)

    def _note_gap(self, peer_id: str, vc: VectorClock) -> None:
        """Peer ``peer_id`` has what ``vc`` covers: if we lack some of it, ask it later (see above)."""
        peer = self.peers.get(peer_id)
        if peer is None or self.clock.dominates(vc):
            return
        if peer.gap_since is None:
            peer.gap, peer.gap_since = vc, self.now
        else:
            peer.gap = peer.gap.merge(vc)
        if self.config.repair_after_ms == 0:
            self._repair_gaps()

    def _repair_gaps(self) -> None:
        """Ask each peer for what we have lacked for ``repair_after_ms`` (tick runs this)."""
        for name, peer in self.peers.items():
            if peer.gap_since is None:
                continue
            if self.clock.dominates(peer.gap):
                peer.gap_since = None  # it came by gossip after all
            elif self.now - peer.gap_since >= self.config.repair_after_ms:
                peer.gap_since = None
                self._request_sync(name)

    def _request_sync(self, peer_id: str) -> None:
        """Ask ``peer_id`` for what we lack, unless a request to it is outstanding (tick expires it)."""
        peer = self.peers.get(peer_id)
        if peer is None or peer.sync_sent_at is not None:
            return
        peer.sync_sent_at = peer.asked_at = self.now
        self.counters["sync_requests"] += 1
        self._send(peer_id, SyncRequest(self.clock, self.config.sync_page))

    def _on_sync_request(self, sender: str, req: SyncRequest) -> None:
        peer = self.peers.get(sender)
        if peer is None:
            return
        # Serving is work and memory (the answer waits in the peer's queue until it reads):
        # a token bucket per peer (a page per sync_serve_ms, bursts of sync_burst), and a
        # snapshot at most every snapshot_every_ms.  A refused request is asked again later.
        cost, burst = self.config.sync_serve_ms, self.config.sync_serve_ms * self.config.sync_burst
        peer.sync_credit = min(burst, peer.sync_credit + self.now - peer.served_at)
        peer.served_at = self.now
        if peer.sync_credit < cost:
            self.counters["sync_requests_refused"] += 1
            return
        peer.sync_credit -= cost
        if not self._log.can_serve(req.vc):
            # It lacks events we have compacted away: send the state itself, then it asks again.
            if self.now - peer.snapshot_served_at < self.config.snapshot_every_ms:
                self.counters["sync_requests_refused"] += 1
                return
            peer.snapshot_served_at = self.now
            items = export(self.ledger)
            pages = [items[i:i + req.limit] for i in range(0, len(items), req.limit)] or [[]]
            digest = self.ledger.state_hash()
            for index, page in enumerate(pages):
                self._send(sender, SnapshotPage(self.clock, index, len(pages), tuple(page), digest))
            return
        events, more = self._log.missing(req.vc, req.limit)
        self._send(sender, SyncReply(tuple(events), more))

    def _on_sync_reply(self, sender: str, reply: SyncReply) -> None:
        peer = self.peers.get(sender)
        if peer is not None:
            peer.sync_sent_at = None
        for event in reply.events:
            if event.seq > self.clock.get(event.origin):
                self.repaired += 1
            self._offer(event, sender)
        if reply.more or (peer is not None and not self.clock.dominates(peer.vc)):
            if reply.events:  # an empty page means the peer cannot help any further now
                self._request_sync(sender)

    def _on_snapshot_page(self, sender: str, page: SnapshotPage) -> None:
        """Collect a snapshot we asked ``sender`` for; install it once it is whole and vouched for.

        Pages are taken only from a member we sent a sync request to, at most
        ``max_snapshot_pages`` of them, each no longer than the page we asked for,
        and every item is checked as it arrives (its events decoded, their
        signatures verified): the first bad page drops the whole snapshot.
        """
        peer = self.peers.get(sender)
        if peer is None or self.now - peer.asked_at > self.config.snapshot_wait_ms:
            # Not asked for (or so long ago that it is a stray duplicate): counted, not kept.
            self.counters["snapshot_pages_unasked"] += 1
            return
        partial = self._snapshot_pages.get(sender)
        peer.sync_sent_at = None
        if self.clock.dominates(page.vc):
            self._snapshot_pages.pop(sender, None)
            return  # we already have all of it
        try:
            if page.total > self.config.max_snapshot_pages or len(page.items) > self.config.sync_page:
                raise DecodeError(f"snapshot of {page.total} pages of up to {len(page.items)} items is over "
                                  f"{self.config.max_snapshot_pages} pages of {self.config.sync_page}")
            self._check_snapshot_items(page.items)
        except (DecodeError, Forged):
            self._snapshot_pages.pop(sender, None)
            self.counters["snapshot_pages_refused"] += 1
            raise
        if partial is None or partial[0] != page.vc or partial[1] != page.state_hash:
            partial = (page.vc, page.state_hash, {}, self.now)  # a newer snapshot replaces a partial older one
        pages = partial[2]
        pages[page.index] = wire.pack(list(page.items))  # packed, a fifth of the memory until it is whole
        self._snapshot_pages[sender] = (page.vc, page.state_hash, pages, self.now)
        if len(pages) == page.total and set(pages) == set(range(page.total)):
            del self._snapshot_pages[sender]
            items = [item for i in range(page.total) for item in wire.unpack(pages[i])]
            if rebuild(items).state_hash() != page.state_hash:
                self.counters["snapshot_pages_refused"] += 1
                raise Forged(f"the snapshot from {sender} does not hash to the state hash it announced")
            self._pending_snapshot = (sender, page.vc, page.state_hash, items, self.now)
            self._check_pending_snapshot()

    def _check_snapshot_items(self, items: tuple) -> None:
        for item in items:
            if type(item) is not list or len(item) not in (2, 4) or item[0] not in (ORDER_ITEM, FILL_ITEM):
                raise DecodeError("malformed snapshot item")
            event = from_wire(item[1])
            if not self._verified(event):
                raise Forged(f"snapshot item {event.origin}:{event.seq} is not signed by {event.origin}")

    def _check_pending_snapshot(self) -> None:
        """Install the snapshot we hold once another member vouches for it (or nobody else could).

        A member vouches by announcing, in a heartbeat, the same state hash at the
        same clock.  A node whose only other member up is the snapshot's sender has
        no one to ask: it installs what that member sent, and counts it
        (``snapshots_unvouched``).  An unvouched snapshot is dropped after
        ``snapshot_wait_ms``; repair then asks again.
        """
        pending = self._pending_snapshot
        if pending is None:
            return
        sender, vc, digest, items, since = pending
        others = [p for name, p in self.peers.items() if name != sender and p.up]  # a member down cannot vouch
        if any(p.announced == (vc, digest) for p in others):
            self.counters["snapshots_vouched"] += 1
        elif not others:
            self.counters["snapshots_unvouched"] += 1
        elif self.now - since >= self.config.snapshot_wait_ms:
            self._pending_snapshot = None
            self.counters["snapshots_dropped"] += 1
            return
        else:
            return
        self._pending_snapshot = None
        if vc.get(self.id) > self.clock.get(self.id) and not self.amnesia:
            # It holds events of ours that we do not (signed by us, with keys: its items were
            # verified): we lost our history, as when such events come by sync.
            self.amnesia = (f"node {self.id} has lost its own history ({sender}'s snapshot holds "
                            f"{vc.get(self.id)} of its events, it has {self.clock.get(self.id)}): "
                            "restart it with its data directory")
        if not self.clock.dominates(vc):
            self._install(items, vc)
            self._request_sync(sender)

    def _expire_snapshots(self) -> None:
        """Let go of snapshots that stopped arriving, or that nobody vouched for in time."""
        for sender, (_, _, _, since) in list(self._snapshot_pages.items()):
            if self.now - since >= self.config.snapshot_wait_ms:
                del self._snapshot_pages[sender]
                self.counters["snapshots_dropped"] += 1
        self._check_pending_snapshot()

    def _install(self, items: list, vc: VectorClock) -> None:
        """Unite our ledger with a peer's snapshot taken at ``vc``."""
        self.ledger = merge(self.ledger, items)  # raises on a malformed snapshot, changing nothing
        self.clock = self.clock.merge(vc)
        # What came by snapshot we cannot hand on as events: serve only from above it.
        self._log.prune(self._log.base.merge(vc))
        self._buffer.prune(self.clock)
        self._out.append(Persist(Checkpoint(self.clock, self._log.base, tuple(export(self.ledger))), promise=False))
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
            for sender, take in self._unpark(oid):
                self._grant(sender, take)
        self._mark_crossed()  # the snapshot may have brought orders that cross ours

    def stable_clock(self) -> VectorClock:
        """What every member has delivered: the entry-wise minimum of all known clocks."""
        stable = dict(self.clock.items())
        for peer in self.peers.values():  # removed members are not peers: nobody waits for them
            for origin in list(stable):
                stable[origin] = min(stable[origin], peer.vc.get(origin))
        return VectorClock(stable)

    def _maybe_compact(self) -> None:
        """Checkpoint and forget the stable events, once there are ``compact_after`` of them."""
        stable = self.stable_clock()
        base = self._log.base
        if sum(stable.get(o) - base.get(o) for o in stable) < self.config.compact_after:
            return
        self._log.prune(stable)
        self._out.append(Persist(Checkpoint(self.clock, self._log.base, tuple(export(self.ledger))), promise=False))
