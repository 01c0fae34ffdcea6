"""Repairing divergence: when two replicas at one clock differ, each origin's own view wins.

Replicas that delivered the same events hold the same state, and a quiet
node's heartbeat carries its state hash so its peers can check (a mismatch is
counted in ``state_mismatches``).  If they still differ, one of them is wrong:
a store row rewritten on disk, or a bug.  Counting is not enough; this desk
finds what differs and repairs it:

1. On a mismatch with peer ``P`` (at most once per ``Config.audit_every_ms``
   per peer) it sends :class:`~zmqex.core.messages.Audit` with its clock.
2. ``P``, if still at that clock, answers with its record digests, per
   origin and bucket (:mod:`zmqex.core.digests`).
3. For each other origin ``X`` with differing buckets, it asks ``X`` itself
   (:class:`~zmqex.core.messages.RecordsRequest`): the records of an origin
   are what its own events made them, so ``X``'s own view is the truth, and
   only ``X`` is asked (a third party could lie about ``X``).  Its own records
   it never replaces: if they differ, the peer is the one to repair.
4. ``X`` answers with those records (:class:`~zmqex.core.messages.Records`);
   if ``X`` is at the same point of its own history as we are (its clock's
   entry for itself equals ours) and, with keys, every event in them carries
   ``X``'s signature, our records of ``X`` in those buckets are replaced by
   them (``Context.repair``), each order's filled is counted again from the
   fills, and what changed is logged.

Each request is answered at most once per ``audit_every_ms`` per peer, so a
member cannot make us export our state in a loop.

State: when we last audited each peer, what we asked each origin for, and
when each peer last had our digests or records.

Costs: an audit and its answers are O(orders + fills) once per
``audit_every_ms`` at most, per peer.
"""

from __future__ import annotations

from collections.abc import Callable

from zmqex.core.context import Context
from zmqex.core.digests import differing, digests, records, replace
from zmqex.core.envelope import event_from_wire as from_wire
from zmqex.core.events import Event
from zmqex.core.messages import MAX_BUCKETS, Audit, AuditReply, Records, RecordsRequest
from zmqex.errors import BadEvent, DecodeError, Forged

Verify = Callable[[Event], bool]


class Auditor:
    """Compare record digests with a peer whose state differs at our clock; repair from each origin."""

    def __init__(self, ctx: Context, verify: Verify) -> None:
        self._ctx = ctx
        self._verify = verify  # an event carries its origin's signature (or there are no keys)
        self._audited: dict[str, int] = {}  # peer -> when we last asked it for digests
        self._served: dict[tuple[str, str], int] = {}  # (peer, what) -> when we last answered it
        self._asked: dict[str, tuple[tuple[int, ...], int]] = {}  # origin -> buckets asked of it, when

    def mismatch(self, peer: str) -> None:
        """``peer`` announced another state at our very clock: compare (now and then)."""
        ctx = self._ctx
        if ctx.now - self._audited.get(peer, -(10**12)) >= ctx.config.audit_every_ms:
            self._audited[peer] = ctx.now
            ctx.counters["audits"] += 1
            ctx.send(peer, Audit(ctx.clock))

    def on_audit(self, sender: str, msg: Audit) -> None:
        ctx = self._ctx
        if msg.vc == ctx.clock and self._may_serve(sender, "digests"):
            ctx.send(sender, AuditReply(ctx.clock, digests(ctx.ledger)))

    def on_audit_reply(self, sender: str, msg: AuditReply) -> None:
        ctx = self._ctx
        if msg.vc != ctx.clock or sender not in self._audited:
            return  # we moved on (or never asked): the next mismatch asks again
        for origin, buckets in differing(digests(ctx.ledger), msg.digests, skip=ctx.id).items():
            if not ctx.is_up(origin):
                continue  # only the origin's own view is the truth: wait until it can be asked
            asked = tuple(buckets[:MAX_BUCKETS])
            self._asked[origin] = (asked, ctx.now)
            ctx.counters["audit_differences"] += 1
            ctx.send(origin, RecordsRequest(origin, asked))

    def on_records_request(self, sender: str, msg: RecordsRequest) -> None:
        ctx = self._ctx
        if msg.origin == ctx.id and self._may_serve(sender, "records"):  # our own records only
            ctx.send(sender, Records(ctx.clock, ctx.id, msg.buckets, tuple(records(ctx.ledger, ctx.id, msg.buckets))))

    def on_records(self, sender: str, msg: Records) -> None:
        """``sender``'s own records: replace ours with them.  Raises DecodeError or Forged for bad ones."""
        ctx = self._ctx
        asked = self._asked.get(sender)
        if msg.origin != sender or asked is None or asked[0] != msg.buckets:
            return  # not asked for, or not its own
        del self._asked[sender]
        if msg.vc.get(sender) != ctx.clock.get(sender):
            return  # it has moved on, or we are behind: not comparable now
        for item in msg.items:
            if type(item) is list and len(item) > 1 and not self._verify(from_wire(item[1])):
                raise Forged(f"a record {sender} sent as its own does not carry its signature")
        try:
            ledger, changed = replace(ctx.ledger, sender, msg.buckets, list(msg.items))
        except (DecodeError, BadEvent) as exc:
            ctx.counters["repairs_refused"] += 1
            raise DecodeError(f"records from {sender} cannot replace ours: {exc}") from None
        if changed:
            ctx.repair(sender, ledger, changed)

    def _may_serve(self, peer: str, what: str) -> bool:
        ctx = self._ctx
        key = (peer, what)
        if ctx.now - self._served.get(key, -(10**12)) < ctx.config.audit_every_ms:
            ctx.counters["audits_refused"] += 1
            return False
        self._served[key] = ctx.now
        return True

    def _check(self) -> None:
        for origin, (buckets, _) in self._asked.items():
            assert origin != self._ctx.id and 0 < len(buckets) <= MAX_BUCKETS, f"records asked of {origin}"
