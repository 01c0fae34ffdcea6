"""Repair: catching up with peers, and letting go of what everyone has.

Gossip may drop events, so it is only the fast path (design notes, section 5).
Heartbeats carry each member's clock; a node that sees a peer ahead asks it
for what it lacks with a :class:`~zmqex.core.messages.SyncRequest`, one at a
time per peer, page by page, until its clock dominates the peer's.  Any node
can serve any origin's events: they are self-describing.

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

from zmqex.core.clock import VectorClock
from zmqex.core.ledger import export, merge
from zmqex.core.messages import Heartbeat, SnapshotPage, SyncReply, SyncRequest
from zmqex.core.outputs import Checkpoint, Persist


class Repair:
    """Heartbeats, sync requests and replies, snapshots, and compaction."""

    def _on_heartbeat(self, sender: str, hb: Heartbeat) -> None:
        if hb.origin != sender:
            return
        peer = self.peers.get(sender)
        if peer is None:
            return
        peer.vc = hb.vc
        if hb.vc.get(self.id) > self.clock.get(self.id) and not self.amnesia:
            # A peer has seen more of our own events than we remember: we restarted without
            # our store.  New events would reuse their ids and we no longer know what we
            # promised, so this node must not place, cancel, grant or take any more.
            self.amnesia = (
                f"node {self.id} has lost its own history ({sender} knows {hb.vc.get(self.id)} of its events, "
                f"it has {self.clock.get(self.id)}): restart it with its data directory"
            )
        self.awaiting_peers = False  # a peer has told us what it knows of us: we may speak
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
        peer.sync_sent_at = self.now
        self.counters["sync_requests"] += 1
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
            for sender, take in self._parked.pop(oid):
                self._grant(sender, take)
        self._mark_crossed()  # the snapshot may have brought orders that cross ours

    def stable_clock(self) -> VectorClock:
        """What every member has delivered: the entry-wise minimum of all known clocks."""
        stable = dict(self.clock.items())
        for peer in self.peers.values():
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
