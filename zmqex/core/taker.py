"""The taker side of a replica: asking makers' owners for fills.

For each of its own orders that crosses a resting order with an earlier
priority key (and for every IOC or market order, which never rests), a node
asks that order's owner for a fill, best price first, one request at a time
per order (design notes, section 4).  Every replica computes the same keys,
so of two crossing resting orders exactly one owner takes: the owner of the
later one.

Invariants:

* What is asked for is reserved (:mod:`zmqex.core.takes`) until the answer
  *and* its fill are in, so ``filled + reserved <= qty`` for every own order.
* At most one take per own order is in flight; a request is persisted
  (:class:`TakeSent`) before it is sent, and its answer (:class:`TakeSettled`)
  when it comes, so a restart knows what is still reserved.
* A maker that granted nothing is not asked again for that order (the record
  goes when the order's first pass finishes); one that was busy is skipped
  only until the next tick.
* An order's first taker pass (``_flows``) ends, and the client hears the
  result, when nothing is left to ask and nothing is reserved; an IOC's
  remainder is then cancelled.

Costs: one ``_drive`` pass lists the own orders in flows and in the crossed
region and sorts them, O(r + c log c) for r orders in that region and c
candidates; each candidate then walks the orders it crosses, best first, until
one may be asked (O(1) each, lazily).

:class:`Taker` is a mixin of :class:`~zmqex.core.replica.Replica`, which
says why and holds the state these methods use (``_takes``, ``_flows``,
``_requests``, ``_waiting``, ``_closed_makers``, ``_busy_makers``).
"""

from __future__ import annotations

from zmqex.core.events import Cancel, CancelReason, Fill, Tif, owner_of
from zmqex.core.ledger import OrderState
from zmqex.core.maker import BUSY
from zmqex.core.messages import Take, TakeReply
from zmqex.core.outputs import Persist, Reply, TakeSent, TakeSettled
from zmqex.core.takes import PendingTake


class Taker:
    """Drive this node's crossing orders: start takes, believe answers, finish flows."""

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
