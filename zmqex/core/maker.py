"""The maker side of a replica: answering takes against its own orders.

A node is the single writer of its own orders, so it alone grants fills
against them (README, "The rules").  A :class:`~zmqex.core.messages.Take`
from a peer asks for part of one of them; the answer is a
:class:`~zmqex.core.messages.TakeReply` that carries the fill event when
something was granted.

Invariants:

* Never more than ``open - reserved`` of an order is granted, where
  ``reserved`` is what this node's own taker side is asking for with it.
* One answer per ``(sender, request)``.  A grant or a busy answer is
  persisted (:class:`Outcome`) before it is sent, and a retried or duplicated
  request gets the stored answer again, never a second fill; ``closed`` and
  ``invalid`` answers are the same whenever a take is judged, so they are
  given again rather than kept (see ``_answer``).
* A take waits parked for its taker order at most ``Config.park_ms``, and one
  peer has at most :data:`MAX_PARKED` parked: a dropped one was never answered.
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

#: Most takes one peer may have parked here, waiting for their taker orders (see _park).
MAX_PARKED = 1_000


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
            self._park(sender, take)
            self._note_gap(sender, take.taker.vc)
            return
        self._grant(sender, take)

    def _park(self, sender: str, take: Take) -> None:
        """Hold a take until its taker order is delivered; at most MAX_PARKED per sender.

        A parked take has no answer yet, so dropping one (over the cap, or after
        ``Config.park_ms``) breaks no promise: its taker asks again.
        """
        parked = self._parked.setdefault(take.taker.order_id, [])
        if any(t.request == take.request for _, t, _ in parked):
            return
        if self._parked_by[sender] >= MAX_PARKED:
            self.counters["takes_unparked"] += 1
        else:
            parked.append((sender, take, self.now))
            self._parked_by[sender] += 1
            self.counters["takes_parked"] += 1
        if not parked:
            del self._parked[take.taker.order_id]

    def _unpark(self, oid: str) -> list[tuple[str, Take]]:
        """The takes that waited for taker order ``oid``, now delivered."""
        takes = [(sender, take) for sender, take, _ in self._parked.pop(oid, ())]
        for sender, _ in takes:
            self._parked_by[sender] -= 1
        return takes

    def _expire_parked(self) -> None:
        """Drop parked takes whose taker order did not come within ``park_ms`` (O(parked))."""
        for oid in list(self._parked):
            waiting = self._parked[oid]
            kept = [p for p in waiting if self.now - p[2] < self.config.park_ms]
            for sender, _, _ in waiting:
                self._parked_by[sender] -= 1
            for sender, _, _ in kept:
                self._parked_by[sender] += 1
            if kept:
                self._parked[oid] = kept
            else:
                del self._parked[oid]
            self.counters["takes_unparked"] += len(waiting) - len(kept)

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
        """Send the answer; a grant or a busy answer is stored first (persisted before it is sent).

        Those two are promises: asked again, the same take must get the same answer
        (a second judgement could grant what the taker already let go).  ``closed`` and
        ``invalid`` are not: a closed order never reopens, and an invalid take (one no
        honest taker sends: another's order, a maker we never had, more than the taker
        has left, a non-crossing price, or from a member caught equivocating) is invalid
        whenever it is judged.  Keeping them would let any member grow our memory and
        store one request id at a time.
        """
        reply = TakeReply(take.request, take.maker, granted, reason, fill)
        if reason is GRANTED or reason is BUSY:
            self._outcomes[(sender, take.request)] = reply
            self._out.append(Persist(Outcome(sender, reply)))
        self._send(sender, reply)
