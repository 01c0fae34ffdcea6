"""The taker desk: asking makers' owners for fills for this node's own orders.

For each of its own orders that crosses a resting order with an earlier
priority key (and for every order that does not rest, see
:mod:`zmqex.core.tif`), a node asks that order's owner for a fill, best price
first, one request at a time per order (README, "The rules").  Every replica
computes the same keys, so of two crossing resting orders exactly one owner
takes: the owner of the later one.

State, all of it the desk's own:

* ``reservations`` (:mod:`zmqex.core.takes`): what each take asked for, until
  its answer and its fill are in.  The maker desk reads it (never writes).
* ``_working``: one :class:`Working` record per own order with taker work
  to remember: its first pass, the client waiting for it, makers that refused
  it, makers that were busy.
* ``_todo``: own orders that may have something to do (the work list).
* ``_spent``, ``_behind``, ``_waiting_on``: what we learnt about makers
  (closed by their owners; covered by our own asks; our own, all reserved).

Invariants (``_check``):

* ``filled + reserved <= qty`` for every own order, and at most one take per
  own order is in flight; a request is persisted (:class:`TakeSent`) before it
  is sent, and its answer (:class:`TakeSettled`) when it comes.
* A maker that refused an order (``invalid``) is not asked again for it
  until its first pass ends; one that was busy is skipped until the next tick;
  one whose owner answered ``closed`` is asked by none of our orders again.
* Our takes never ask one maker, in total, for more than it shows open here
  (``Reservations.asked``); nor a maker's desk for more than our credit for it
  leaves (:mod:`zmqex.core.credit`: what a take reserves is in flight there).
  A desk whose owner answered ``credit`` is asked by none of our orders for
  ``Config.credit_retry_ms``.
* An order's first pass ends, and its client hears the result, when nothing
  is left to ask and nothing is reserved; an order that does not rest then has
  its remainder cancelled (``expired``; ``credit`` if credit kept it from a maker).

Work list: only own orders that may have something to do are stepped: a new
order that crosses something (one that rests and crosses nothing, most
orders, ends its first pass as it is placed), one whose take was answered or
whose fill came in, one a peer's new order crosses with an earlier key, one a
busy maker put off, one that passed a maker our own asks covered when one of
them got less; and with every heartbeat, as a safety net, every own order
still in the crossed region.
Stepping an order walks the orders it crosses, best first, until one may be
asked (O(1) each, lazily), so a message costs O(its own consequences), not
O(book).  A take from an own resting order is granted at once, without a
request (nothing can race it inside one replica).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any, Final

from zmqex.core.context import Context
from zmqex.core.credit import CREDIT, TAKE, Pending
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Side, owner_of
from zmqex.core.ledger import OrderState
from zmqex.core.messages import Take, TakeReply
from zmqex.core.outputs import TakeSent, TakeSettled
from zmqex.core.takes import Reservation, Reservations
from zmqex.core.tif import ATOMIC, RULES, TAKES
from zmqex.core.traders import Stp, Traders

# Reasons in a TakeReply (the maker desk gives them).
GRANTED, CLOSED, BUSY, INVALID = "filled", "closed", "busy", "invalid"

_NONE: Final[frozenset[str]] = frozenset()  # Final: see core/tif.py
_ANSWERED: Final = {reason: f"takes_answered_{reason}"  # counter names
                    for reason in (GRANTED, CLOSED, BUSY, INVALID, CREDIT)}


class Working:
    """What the taker desk remembers of one own order beyond the ledger and the reservations."""

    __slots__ = ("first_pass", "token", "protected", "refused", "busy", "credit")

    def __init__(self) -> None:
        self.first_pass = False  # its first taker pass has not finished
        self.token: Any = None  # the client waiting for that pass to finish, if one is
        self.protected = False  # its price is the edge of its price band, not the trader's
        self.refused: set[str] = set()  # makers whose owners answered invalid (until the pass ends)
        self.busy: set[str] = set()  # makers skipped until the next tick
        self.credit = False  # credit (ours, or a maker owner's) kept it from a crossing maker in its first pass

    @property
    def idle(self) -> bool:
        return not (self.first_pass or self.refused or self.busy)


class TakerDesk:
    """Drive this node's crossing orders: start takes, believe answers, finish first passes."""

    def __init__(self, ctx: Context, traders: Traders) -> None:
        self._ctx = ctx
        self._traders = traders  # read only: who placed our orders, for self-trade prevention
        self.reservations = Reservations()
        self._expiries: list[tuple[int, str]] = []  # heap of (expire_at, own order with an expiry)
        self._requests = 0  # take requests numbered so far: ids are "NODE.N"
        self._working: dict[str, Working] = {}
        self._todo: set[str] = set()
        self._spent: set[str] = set()  # makers their owners said are closed, not yet closed here
        self._behind: dict[str, set[str]] = {}  # maker -> own orders that skipped it: our asks covered it
        self._waiting_on: dict[str, set[str]] = {}  # own maker order, all reserved -> own orders to step after

    @property
    def unfinished(self) -> int:
        """Work not finished: takes in flight, first passes, orders to step or put off."""
        return len(self.reservations) + len(self._todo) + sum(not w.idle for w in self._working.values())

    @property
    def requests(self) -> int:
        """Take requests numbered so far."""
        return self._requests

    # --- what the replica tells the desk ------------------------------------------------

    def placed(self, oid: str, token: Any, *, protected: bool = False) -> None:
        ctx = self._ctx
        order = ctx.ledger.orders[oid]
        if order.rests and not ctx.amnesia and not ctx.ledger.book.meets(order.side, order.price):
            # Most orders (passive ones): nothing crosses it, so its first pass is over before
            # it began, as _step would find: no record, no work list, the client hears at once.
            self._expire_later(oid)
            if token is not None:
                ctx.reply(token, oid)
            return
        work = self._work(oid)
        work.first_pass = True
        work.token = token
        work.protected = protected
        work.credit = False
        self._todo.add(oid)
        self._expire_later(oid)

    def _expire_later(self, oid: str) -> None:
        order = self._ctx.ledger.orders[oid]
        expire_at = order.event.body.expire_at if isinstance(order.event.body, NewOrder) else None
        if expire_at is not None:
            heapq.heappush(self._expiries, (expire_at, oid))

    def cancelled(self, oid: str) -> None:
        """Own order ``oid`` was cancelled or reduced: its first pass may be over now."""
        if oid in self._working or self._ctx.ledger.orders[oid].open > 0:
            self._todo.add(oid)  # (a closed order without a record has nothing to step: most cancels)

    def on_fill(self, body: Fill) -> str | None:
        """A fill was delivered: if it answers a take of ours, it counts as filled; returns our order."""
        take = self.reservations.get(body.request)
        if take is None or take.order != body.taker:
            return None
        self.reservations.fill_applied(take, body.qty)
        self._credit_sync(take)
        self._todo.add(take.order)
        return take.order

    def on_reply(self, sender: str, reply: TakeReply) -> str | None:
        """A maker's owner answered: believe it if it is ours and whole; returns our order it settled."""
        take = self.reservations.get(reply.request)
        if take is None or take.granted is not None or owner_of(take.maker) != sender:
            return None  # a duplicate, or not ours to believe
        fill = reply.fill
        body = None if fill is None else fill.body
        if take.maker != reply.maker or (isinstance(body, Fill) and body.taker != take.order):
            # The owner's stored answer to another take under this id: one from our past, lost
            # with a store (zmqex.core.recovery).  This id is spent; the order asks again under a new one.
            ctx = self._ctx
            ctx.counters["take_id_clashes"] += 1
            ctx.persist(TakeSettled(take.request, 0), promise=False)
            self.reservations.answer(take, 0)
            self._credit_sync(take)
            self._todo.add(take.order)
            return take.order
        if reply.granted > take.qty or (reply.granted > 0) != (fill is not None):
            return None
        ctx = self._ctx
        if fill is not None:
            if not (isinstance(body, Fill) and fill.origin == sender and body.request == take.request
                    and body.qty == reply.granted and body.taker == take.order and body.maker == take.maker):
                return None
            ctx.offer(fill, sender)
        ctx.persist(TakeSettled(take.request, reply.granted), promise=False)  # a retry recovers it
        ctx.counters[_ANSWERED.get(reply.reason, "takes_answered_other")] += 1
        self.reservations.answer(take, reply.granted)
        self._credit_sync(take)
        self._todo.add(take.order)
        if reply.granted < take.qty:  # some of the maker is no longer asked for by us
            self._todo.update(self._behind.pop(take.maker, ()))
        if reply.reason == BUSY:
            self._work(take.order).busy.add(take.maker)
        elif reply.reason == CLOSED:
            self._spent.add(take.maker)  # its owner says so: true for good, and for all our orders
        elif reply.reason == CREDIT:
            # Its owner gives our desk no more credit: none of our orders asks that desk for a while.
            ctx.credit.refused_by(sender, ctx.now + ctx.config.credit_retry_ms)
            work = self._working.get(take.order)
            if work is not None and work.first_pass:
                work.credit = True
        elif reply.granted == 0:
            self._work(take.order).refused.add(take.maker)  # invalid: not for this order
        return take.order

    def reservation_changed(self, oid: str) -> None:
        """Own order ``oid``'s reservation went down: own orders that skipped it may take from it."""
        order = self._ctx.ledger.orders.get(oid)
        if order is not None and 0 < order.open <= self.reservations.reserved(oid):
            # Still all reserved: they wait on.  (Waking them on every change of the
            # reservation was a tenth of a node's work under load.)
            return
        for waiter in self._waiting_on.pop(oid, ()):
            work = self._working.get(waiter)
            if work is not None:
                work.busy.discard(oid)
                if work.idle:
                    del self._working[waiter]
            self._todo.add(waiter)

    def peer_order_rests(self, order: OrderState) -> None:
        """A peer's order now rests: own orders it crosses with a later key must take from it."""
        me = self._ctx.id
        assert order.price is not None  # it rests
        # Only the later ones: under load a peer's crossing order may face hundreds of orders
        # ahead of it, and walking them all here was a sixth of a loaded node's time.
        for resting in self._ctx.ledger.book.crossing_after(order.side, order.price, order.key):
            if owner_of(resting.order_id) == me:
                self._todo.add(resting.order_id)

    def sweep(self) -> None:
        """The safety net: every own order still in the crossed region, and every first pass, to the work list."""
        self._todo.update(oid for oid, work in self._working.items() if work.first_pass)
        orders = self._ctx.ledger.orders
        self._spent = {m for m in self._spent if m in orders and orders[m].open > 0}  # closed here by now
        self._behind = {m: w for m, w in self._behind.items() if self.reservations.asked(m)}
        book, me = self._ctx.ledger.book, self._ctx.id
        if book.crossed():
            self._todo.update(r.order_id for r in book.crossed_orders() if owner_of(r.order_id) == me)

    def tick(self) -> None:
        """Expire what is due; retry unanswered takes; busy makers may have room now."""
        ctx = self._ctx
        wall = ctx.wall()
        while self._expiries and self._expiries[0][0] <= wall:
            _, oid = heapq.heappop(self._expiries)
            if ctx.ledger.orders[oid].open > 0 and not ctx.amnesia:
                ctx.emit(Cancel(oid, CancelReason.EXPIRED))
                self._todo.add(oid)
        for take in self.reservations:
            if take.granted is None and ctx.now - take.sent_at >= ctx.config.retry_ms:
                take.sent_at = ctx.now
                ctx.counters["take_retries"] += 1
                self._send(take)
        for oid, work in list(self._working.items()):
            if work.busy:
                work.busy.clear()
                self._todo.add(oid)
                if work.idle:
                    del self._working[oid]

    def drive(self) -> None:
        """Step every own order on the work list until the list is empty."""
        if self._ctx.amnesia:
            return
        while self._todo:
            work = sorted(self._todo)  # a fixed order, so every run of the same inputs is the same
            self._todo.clear()
            orders = self._ctx.ledger.orders
            for oid in work:
                order = orders.get(oid)
                if order is not None:
                    self._step(order)

    # --- restart --------------------------------------------------------------------------

    def restore(self, takes: Iterable[tuple[Reservation, int | None]], unfinished: Iterable[str]) -> None:
        """Take back persisted takes (each with its answer, or None: asked again on the first tick),
        and the own orders whose first pass a crash cut off."""
        ctx = self._ctx
        for take, granted in takes:
            self.reservations.open(take)
            self._requests = max(self._requests, int(take.request.rpartition(".")[2]))
            if granted is not None:
                self.reservations.answer(take, granted)
            else:
                take.sent_at = ctx.now - ctx.config.retry_ms
        for oid in unfinished:
            self.placed(oid, None)  # an order cut off in its first pass does not rest: it has no expiry
        for state in ctx.ledger.orders.values():
            if state.owner == ctx.id and state.open > 0 and RULES[state.tif].rests:
                self._expire_later(state.id)

    def reconcile(self) -> None:
        """The ledger changed under the reservations (restart, snapshot): count fills now in it."""
        fills = self._ctx.ledger.fill_by_request
        # Number new takes past every one of ours the ledger shows granted: after a lost store
        # (zmqex.core.recovery) our counter starts over, and a reused id would clash.  O(fills).
        prefix = self._ctx.id + "."
        for request in fills:
            if request.startswith(prefix) and request[len(prefix):].isdigit():
                self._requests = max(self._requests, int(request[len(prefix):]))
        for take in self.reservations:
            fill = fills.get(take.request)
            if fill is not None and not take.applied and isinstance(fill.body, Fill) and fill.body.taker == take.order:
                self.reservations.fill_applied(take, fill.body.qty)
                self._credit_sync(take)
        self.sweep()

    # --- stepping an order ------------------------------------------------------------------

    def _step(self, order: OrderState) -> None:
        """Take for ``order`` until it has a take in flight or nothing left to take."""
        if ATOMIC[order.tif]:
            return  # the coordinator's (zmqex.core.coordinator), never taken for by plain takes
        ctx = self._ctx
        reservations = self.reservations
        if reservations.in_flight(order.id) is None:
            while (maker := self._next_maker(order)) is not None:
                if not TAKES[order.tif]:
                    ctx.emit(Cancel(order.id, CancelReason.WOULD_CROSS))
                    break
                if maker.owner == ctx.id:
                    if self._traders.same_trader(order.id, maker.id):
                        if self._prevent_self_trade(order, maker):
                            break
                        continue
                    self._fill_locally(order, maker)
                else:
                    self._start_take(order, maker)
                    break  # it has a take in flight now (only _start_take opens one): one at a time
        work = self._working.get(order.id)
        if work is None:
            return
        if work.first_pass and reservations.in_flight(order.id) is None and reservations.reserved(order.id) == 0:
            self._finish(order, work)
        elif order.open == 0 and not work.first_pass:
            work.refused.clear()  # a closed order asks nobody again
            if work.idle:
                del self._working[order.id]

    def _next_maker(self, order: OrderState) -> OrderState | None:
        book = self._ctx.ledger.book
        if not book.meets(order.side, order.price):
            return None  # most orders: nothing crosses them (O(1), before anything else is read)
        available = order.open - self.reservations.reserved(order.id)
        if available <= 0:
            return None
        work = self._working.get(order.id)
        refused = work.refused if work is not None else _NONE
        busy = work.busy if work is not None else _NONE
        ctx = self._ctx
        spent, asked, orders, me = self._spent, self.reservations.asked, ctx.ledger.orders, ctx.id
        rests = order.rests
        for resting in book.crossing(order.side, order.price):
            if rests and resting.key >= order.key:
                continue  # that order's owner is the taker between us
            oid = resting.order_id
            if oid in spent or oid in refused or oid in busy:
                continue
            maker = orders[oid]
            if maker.owner != me:
                if maker.open <= asked(oid):  # our other orders' takes already ask for all of it
                    self._behind.setdefault(oid, set()).add(order.id)  # step again if they get less
                    continue
                if not ctx.is_up(maker.owner):
                    continue
                if ctx.credit.engaged and not self._credit_allows(maker, work):
                    continue
            return maker
        return None

    def _credit_allows(self, maker: OrderState, work: Working | None) -> bool:
        """Whether our credit for the maker's desk has room for some of it, and that desk has not
        refused us for credit lately (zmqex.core.credit).  O(1)."""
        ctx = self._ctx
        credit = ctx.credit
        assert maker.price is not None  # a maker rests, so it has a price
        if not credit.cooling(maker.owner, ctx.now) and credit.fit(maker.owner, maker.price, 1, ctx.wall()) > 0:
            return True
        if work is not None and work.first_pass:
            work.credit = True
        return False

    def _prevent_self_trade(self, order: OrderState, maker: OrderState) -> bool:
        """Two orders of one trader would trade: cancel one or both as ``order`` says; True if it is closed."""
        mode = self._traders.stp(order.id)
        if mode is not Stp.CANCEL_NEWEST:
            self._ctx.emit(Cancel(maker.id, CancelReason.SELF_TRADE))
            self._todo.add(maker.id)  # its own first pass may be over now
        if mode is not Stp.CANCEL_OLDEST:
            self._ctx.emit(Cancel(order.id, CancelReason.SELF_TRADE))
            return True
        return False

    def _fill_locally(self, order: OrderState, maker: OrderState) -> None:
        """Both orders are ours: grant at once, no request, nothing to reserve or retry."""
        ctx = self._ctx
        available = maker.open - self.reservations.reserved(maker.id)
        if available <= 0:  # it is taking itself: skip it, and step again when it is done
            self._work(order.id).busy.add(maker.id)
            self._waiting_on.setdefault(maker.id, set()).add(order.id)
            return
        qty = min(order.open - self.reservations.reserved(order.id), available)
        request = f"{ctx.id}/{ctx.clock.get(ctx.id) + 1}"  # the fill's own event id: unique
        assert maker.price is not None  # a maker rests, and a resting order has a price
        ctx.emit(Fill(maker.id, order.id, maker.price, qty, request))

    def _start_take(self, order: OrderState, maker: OrderState) -> None:
        ctx = self._ctx
        self._requests += 1
        qty = min(order.open - self.reservations.reserved(order.id), maker.open - self.reservations.asked(maker.id))
        if ctx.credit.engaged:
            assert maker.price is not None  # a maker rests, so it has a price
            qty = ctx.credit.fit(maker.owner, maker.price, qty, ctx.wall())  # >= 1: _next_maker checked
        take = Reservation(f"{ctx.id}.{self._requests}", order.id, maker.id, qty, ctx.now)
        self.reservations.open(take)
        self._credit_sync(take)
        ctx.persist(TakeSent(take.request, take.order, take.maker, take.qty))
        self._send(take)

    def _send(self, take: Reservation) -> None:
        event: Event = self._ctx.ledger.orders[take.order].event
        self._ctx.send(owner_of(take.maker), Take(take.request, take.maker, event, take.qty))

    def _finish(self, order: OrderState, work: Working) -> None:
        work.first_pass = False
        work.refused.clear()
        token, work.token = work.token, None
        if work.idle:
            del self._working[order.id]
        if RULES[order.tif].expires and order.open > 0:
            self._ctx.emit(Cancel(order.id, self._why_left(order, work)))
        if token is not None:
            self._ctx.reply(token, order.id)

    def _why_left(self, order: OrderState, work: Working) -> CancelReason:
        """Why an order that does not rest ends with some left: its band, if there was more beyond it."""
        if work.protected:
            best = self._ctx.ledger.book.best(order.side.opposite)
            if best is not None and order.price is not None and (
                    best > order.price if order.side is Side.BUY else best < order.price):
                return CancelReason.PRICE_PROTECTION
        if work.credit:
            return CancelReason.CREDIT  # a maker it crossed was beyond credit, ours or its owner's
        return CancelReason.EXPIRED

    # --- credit (zmqex.core.credit) -------------------------------------------------------

    def _credit_sync(self, take: Reservation) -> None:
        """Tell credit what ``take`` has in flight now: what it still reserves, at the maker's price."""
        maker = self._ctx.ledger.orders.get(take.maker)
        if maker is not None and maker.price is not None:
            self._ctx.credit.reserve(TAKE + take.request, maker.owner, maker.price, take.reserved)

    def credit_pending(self) -> Iterator[Pending]:
        """What our takes have in flight, from scratch (for Credit.rebuild and its check). O(takes)."""
        orders = self._ctx.ledger.orders
        for take in self.reservations:
            maker = orders.get(take.maker)
            if maker is not None and maker.price is not None and take.reserved > 0:
                yield TAKE + take.request, maker.owner, maker.price, take.reserved

    def _work(self, oid: str) -> Working:
        work = self._working.get(oid)
        if work is None:
            work = self._working[oid] = Working()
        return work

    # --- invariants -----------------------------------------------------------------------

    def _check(self) -> None:
        """The desk's invariants against the ledger (see the module docstring). O(own orders + takes)."""
        self.reservations._check()
        ctx = self._ctx
        orders = ctx.ledger.orders
        for oid, work in self._working.items():
            assert owner_of(oid) == ctx.id, f"{oid} is worked here but not ours"
            assert not work.idle, f"{oid} has an idle record"
            assert work.token is None or work.first_pass, f"{oid} has a client waiting but no first pass"
        for take in self.reservations:
            assert owner_of(take.order) == ctx.id and take.order in orders, f"{take} is not for an own order"
            assert owner_of(take.maker) != ctx.id, f"{take} asks ourselves: own makers fill at once"
        for oid, state in orders.items():
            if state.owner == ctx.id:
                reserved = self.reservations.reserved(oid)
                assert state.filled + reserved <= state.qty, (
                    f"{oid}: filled {state.filled} + reserved {reserved} > qty {state.qty}")
        for maker, waiters in self._waiting_on.items():
            assert owner_of(maker) == ctx.id and all(owner_of(w) == ctx.id for w in waiters)
        due = {oid for _, oid in self._expiries}
        # A node getting its history back acts on none of it yet: its expiries are put back when it
        # has all of it (Replica._maybe_recovered).
        for state in [] if ctx.recovering else orders.values():
            if state.owner == ctx.id and state.open > 0 and isinstance(state.event.body, NewOrder):
                assert state.event.body.expire_at is None or state.id in due, f"{state.id} will never expire"
        # Work may wait on the list after a restore (the first input call steps it), never a peer's order.
        assert all(owner_of(oid) == ctx.id for oid in self._todo), "a peer's order on the work list"
