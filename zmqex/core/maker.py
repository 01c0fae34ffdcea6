"""The maker side of a replica: answering takes against its own orders.

A node is the single writer of its own orders, so it alone grants fills
against them (design notes, section 4).  A :class:`~zmqex.core.messages.Take`
from a peer asks for part of one of them; the answer is a
:class:`~zmqex.core.messages.TakeReply` that carries the fill event when
something was granted.

Invariants:

* Never more than ``open - reserved`` of an order is granted, where
  ``reserved`` is what this node's own taker side is asking for with it.
* One answer per ``(sender, request)``.  It is persisted (:class:`Outcome`)
  before it is sent, and a retried or duplicated request gets the stored
  answer again, never a second fill.
* A take is judged only once its taker's order is delivered here (the fill
  must come causally after it); until then it is parked, and the rest is
  fetched by a sync request.  ``Replica._deliver`` and ``Repair._after_restore``
  release parked takes.
* A take against an order whose open quantity is all reserved (its owner is
  taking with it right now) waits here, unanswered, until that reservation
  settles (``_release``) or ``Config.retry_ms`` passes (then: busy).  Waiting
  beats a busy answer: the taker would only ask again a tick later.  It cannot
  deadlock: an order only waits on a take by an order with a later priority
  key to one with an earlier key, and answers never wait on anything.

Costs: an answer is O(1) plus the fill's delivery; a duplicate is one dict
look-up.

:class:`Maker` is a mixin of :class:`~zmqex.core.replica.Replica`, which
says why and holds the state these methods use (``_outcomes``, ``_parked``,
``_held``, ``_waiters``, ``_takes``, ``ledger``, ``amnesia``).
"""

from __future__ import annotations

from zmqex.core.events import Event, Fill, NewOrder, owner_of
from zmqex.core.ledger import crosses
from zmqex.core.messages import Take, TakeReply
from zmqex.core.outputs import Outcome, Persist

# Reasons in a TakeReply.
GRANTED, CLOSED, BUSY, INVALID = "filled", "closed", "busy", "invalid"


class Maker:
    """Answer takes against this node's orders: the ``_on_take`` handler and what it needs."""

    def _on_take(self, sender: str, take: Take) -> None:
        stored = self._outcomes.get((sender, take.request))
        if stored is not None:
            self._send(sender, stored)  # a retry or a duplicate: same answer, never a new fill
            return
        if (take.taker.origin != sender or owner_of(take.maker) != self.id
                or not isinstance(take.taker.body, NewOrder) or not take.request.startswith(sender + ".")):
            self._answer(sender, take, 0, INVALID)  # request ids and taker orders are the sender's own
            return
        if not self.is_up(sender):
            self._answer(sender, take, 0, INVALID)  # removed, or caught signing two events with one id
            return
        self._offer(take.taker, sender)
        if take.taker.order_id not in self.ledger.orders:
            # We lack something the taker's order depends on: hold the request until it
            # comes (by gossip, nearly always; else by repair from the taker's node).
            parked = self._parked.setdefault(take.taker.order_id, [])
            if all(t.request != take.request for _, t in parked):
                parked.append((sender, take))
                self.counters["takes_parked"] += 1
            self._note_gap(sender, take.taker.vc)
            return
        self._grant(sender, take)

    def _grant(self, sender: str, take: Take) -> None:
        """Decide a take whose taker order is delivered here, and answer it."""
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
            self._held.setdefault(maker.id, {})[(sender, take.request)] = (take, self.now)
            self.counters["takes_held"] += 1
        else:
            granted = min(take.qty, available)
            fill = self._emit(Fill(maker.id, taker.id, maker.price, granted, take.request))  # type: ignore[arg-type]
            self._answer(sender, take, granted, GRANTED, fill)

    def _release(self, oid: str) -> None:
        """The reservation of own order ``oid`` changed: decide the takes waiting on it."""
        for (sender, _), (take, _) in self._held.pop(oid, {}).items():
            self._grant(sender, take)
        order = self.ledger.orders.get(oid)
        if order is not None and 0 < order.open <= self._takes.reserved(oid):
            # Still all reserved: our orders waiting to take from it wait on.  (Waking them
            # on every change of the reservation was a tenth of a node's work under load.)
            return
        for waiter in self._waiters.pop(oid, ()):
            self._busy_makers.get(waiter, set()).discard(oid)
            self._dirty.add(waiter)

    def _expire_held(self) -> None:
        """Takes held past ``retry_ms`` get a busy answer, so their takers move on."""
        for oid in list(self._held):
            held = self._held[oid]
            for key, (take, since) in list(held.items()):
                if self.now - since >= self.config.retry_ms:
                    del held[key]
                    self.counters["held_expired"] += 1
                    self._answer(key[0], take, 0, BUSY)
            if not held:
                del self._held[oid]

    def _answer(self, sender: str, take: Take, granted: int, reason: str, fill: Event | None = None) -> None:
        """Store the answer (to persist before it is sent) and send it."""
        reply = TakeReply(take.request, take.maker, granted, reason, fill)
        self._outcomes[(sender, take.request)] = reply
        self._out.append(Persist(Outcome(sender, reply)))
        self._send(sender, reply)
