"""Sharing: an OTC desk's own items, each version sent to the desks it names until they acknowledge it.

An item's owner is its single writer and makes a new version on every change
(:mod:`zmqex.core.otc`).  :class:`Sharing` sends each new version to every
desk the item names, and sends the latest again every ``retry_ms`` to a desk
that is up and has not acknowledged it; a holder keeps the highest version it
was sent and acknowledges that.  So lost, repeated and reordered messages do
no harm, and a desk that was down gets the latest version once it is back.

Only what is not yet acknowledged is kept as work (``_unacked``), so the
timer and the count of unfinished work cost what is owed, not what was ever
shared.  Costs: ``put`` O(desks named); ``tick`` and ``unfinished``
O(unacknowledged).
"""

from __future__ import annotations

from zmqex.core.context import Context
from zmqex.core.messages import Share, ShareAck
from zmqex.core.otc import Offer, Rfq


class Sharing:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._latest: dict[str, Offer | Rfq] = {}  # own item -> its latest version
        self._unacked: set[tuple[str, str]] = set()  # (own item, desk) that has not acknowledged the latest
        self._retry_at = 0

    def put(self, item: Offer | Rfq) -> None:
        """Send the new version ``item`` of an own item to every desk it names."""
        self._latest[item.id] = item
        for desk in _named(item):
            self._unacked.add((item.id, desk))
            self._ctx.send(desk, Share(item))

    def restore(self, item: Offer | Rfq) -> None:
        """An own item after a restart: sent again at the next tick (versions make a repeat harmless)."""
        self._latest[item.id] = item
        self._unacked.update((item.id, desk) for desk in _named(item))

    def acked(self, sender: str, msg: ShareAck) -> None:
        key = (msg.id, sender)
        if key not in self._unacked:
            return
        latest = self._latest[msg.id].version
        if msg.version > latest:
            # It holds a later version than we ever made: an item of ours from before we lost
            # our store, under the same id.  Nothing we send can replace it; stop sending.
            self._ctx.counters["otc_id_clashes"] += 1
        if msg.version >= latest:
            self._unacked.discard(key)

    def tick(self) -> None:
        ctx = self._ctx
        if ctx.now < self._retry_at:
            return
        self._retry_at = ctx.now + ctx.config.retry_ms
        for item_id, desk in self._unacked:
            if ctx.is_up(desk):
                ctx.send(desk, Share(self._latest[item_id]))

    @property
    def unfinished(self) -> int:
        """Versions not yet acknowledged by a desk that is up."""
        return sum(1 for _, desk in self._unacked if self._ctx.is_up(desk))

    def _check(self) -> None:
        for item_id, desk in self._unacked:
            item = self._latest[item_id]
            assert item.owner == self._ctx.id and desk in _named(item), f"{item_id} shared with {desk}"


def _named(item: Offer | Rfq) -> tuple[str, ...]:
    return item.only if isinstance(item, Offer) else item.desks
