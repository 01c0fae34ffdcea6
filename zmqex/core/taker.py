"""The taker side of a replica: asking makers' owners for fills.

For each of its own orders that crosses a resting order with an earlier
priority key (and for every IOC or market order, which never rests), a node
asks that order's owner for a fill, best price first, one request at a time
per order (README, "The rules").  Every replica computes the same keys,
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
  only until the next tick; one whose owner answered ``closed`` is asked by
  none of our orders again.
* Our takes never ask one maker, in total, for more than it shows open here
  (``Reservations.asked``): concurrent orders of one node do not all ask the
  same best maker for the same quantity.
* An order's first taker pass (``_flows``) ends, and the client hears the
  result, when nothing is left to ask and nothing is reserved; an IOC's
  remainder is then cancelled.

Work list: only own orders that may have something to do are stepped
(``_dirty``): a new order, one whose take was answered or whose fill came in,
one a peer's new order crosses with an earlier key, one a busy maker put off,
one that passed a maker our own asks covered when one of them got less; and
with every heartbeat, as a safety net, every own order still in the crossed
region.  Stepping an order walks the orders it crosses, best first, until one
may be asked (O(1) each, lazily), so a message costs O(its own consequences),
not O(book).  A take from an own resting order is granted at once, without a
request (nothing can race it inside one replica).

:class:`Taker` is a mixin of :class:`~zmqex.core.replica.Replica`, which
says why and holds the state these methods use (``_takes``, ``_flows``,
``_requests``, ``_waiting``, ``_closed_makers``, ``_busy_makers``, ``_spent``,
``_behind``).
"""

from __future__ import annotations

from zmqex.core.events import Cancel, CancelReason, Fill, Tif, owner_of
from zmqex.core.ledger import OrderState
from zmqex.core.maker import BUSY, CLOSED, GRANTED, INVALID
from zmqex.core.messages import Take, TakeReply
from zmqex.core.outputs import Persist, Reply, TakeSent, TakeSettled
from zmqex.core.takes import PendingTake


_POST_ONLY = Tif.POST_ONLY  # read once: attribute lookups on enum classes are slow
_NONE: frozenset[str] = frozenset()
_ANSWERED = {reason: f"takes_answered_{reason}" for reason in (GRANTED, CLOSED, BUSY, INVALID)}  # counter names


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
            self._offer(fill, sender)
        self._out.append(Persist(TakeSettled(take.request, reply.granted), promise=False))  # retry recovers it
        self.counters[_ANSWERED.get(reply.reason, "takes_answered_other")] += 1
        self._takes.answer(take, reply.granted)
        self._dirty.add(take.order)
        if reply.granted < take.qty:  # some of the maker is no longer asked for by us
            self._dirty.update(self._behind.pop(take.maker, ()))
        self._release(take.order)
        if reply.reason == BUSY:
            self._busy_makers.setdefault(take.order, set()).add(take.maker)
        elif reply.reason == CLOSED:
            self._spent.add(take.maker)  # its owner says so: true for good, and for all our orders
        elif reply.granted == 0:
            self._closed_makers.setdefault(take.order, set()).add(take.maker)  # invalid: not for this order

    def _drive(self) -> None:
        """Step every own order on the work list until the list is empty."""
        if self.amnesia:
            return
        while self._dirty:
            work = sorted(self._dirty)  # a fixed order, so every run of the same inputs is the same
            self._dirty.clear()
            for oid in work:
                order = self.ledger.orders.get(oid)
                if order is not None:
                    self._step(order)

    def _mark_crossed_by(self, oid: str) -> None:
        """A peer's order now rests: own orders it crosses with a later key must take from it."""
        order = self.ledger.orders[oid]
        for resting in self.ledger.book.crossing(order.side, order.price):
            if resting.key > order.key and owner_of(resting.order_id) == self.id:
                self._dirty.add(resting.order_id)

    def _mark_crossed(self) -> None:
        """Put every own order still in the crossed region, and every unfinished flow, on the work list."""
        self._dirty.update(self._flows)
        orders = self.ledger.orders
        self._spent = {m for m in self._spent if m in orders and orders[m].open > 0}  # closed here by now
        self._behind = {m: w for m, w in self._behind.items() if self._takes.asked(m)}  # nothing to wait for
        book = self.ledger.book
        if book.crossed():
            self._dirty.update(r.order_id for r in book.crossed_orders() if owner_of(r.order_id) == self.id)

    def _step(self, order: OrderState) -> None:
        """Take for ``order`` until it has a take in flight or nothing left to take."""
        while self._takes.in_flight(order.id) is None:
            maker = self._next_maker(order)
            if maker is None:
                break
            if order.tif is _POST_ONLY:
                self._emit(Cancel(order.id, CancelReason.WOULD_CROSS))
                break
            if maker.owner == self.id:
                self._fill_locally(order, maker)
            else:
                self._start_take(order, maker)
        if (order.id in self._flows and self._takes.in_flight(order.id) is None
                and self._takes.reserved(order.id) == 0):
            self._finish(order)
        elif order.open == 0 and order.id not in self._flows:
            self._closed_makers.pop(order.id, None)  # a closed order asks nobody again

    def _fill_locally(self, order: OrderState, maker: OrderState) -> None:
        """Both orders are ours: grant at once, no request, nothing to reserve or retry."""
        available = maker.open - self._takes.reserved(maker.id)
        if available <= 0:  # it is taking itself: skip it, and step again when it is done
            self._busy_makers.setdefault(order.id, set()).add(maker.id)
            self._waiters.setdefault(maker.id, set()).add(order.id)
            return
        qty = min(order.open - self._takes.reserved(order.id), available)
        request = f"{self.id}/{self.clock.get(self.id) + 1}"  # the fill's own event id: unique
        self._emit(Fill(maker.id, order.id, maker.price, qty, request))  # type: ignore[arg-type]

    def _next_maker(self, order: OrderState) -> OrderState | None:
        available = order.open - self._takes.reserved(order.id)
        if available <= 0:
            return None
        closed = self._closed_makers.get(order.id, _NONE)
        busy = self._busy_makers.get(order.id, _NONE)
        spent, asked, orders, me = self._spent, self._takes.asked, self.ledger.orders, self.id
        for resting in self.ledger.book.crossing(order.side, order.price):
            if order.rests and resting.key >= order.key:
                continue  # that order's owner is the taker between us
            oid = resting.order_id
            if oid in spent or oid in closed or oid in busy:
                continue
            maker = orders[oid]
            if maker.owner != me:
                if maker.open <= asked(oid):  # our other orders' takes already ask for all of it
                    self._behind.setdefault(oid, set()).add(order.id)  # step again if they get less
                    continue
                if not self.is_up(maker.owner):
                    continue
            return maker
        return None

    def _start_take(self, order: OrderState, maker: OrderState) -> None:
        self._requests += 1
        qty = min(order.open - self._takes.reserved(order.id), maker.open - self._takes.asked(maker.id))
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
