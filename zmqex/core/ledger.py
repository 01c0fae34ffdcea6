"""The replicated state: every order, every fill, and the book they leave.

A :class:`Ledger` is what all replicas must agree on.  It changes only by
``apply(event)`` with events in causal order, and every change commutes where
causality does not fix an order: an order's open quantity is ``0`` if it is
cancelled, else ``qty - filled``, so fills and a cancel of one order give the
same state whichever arrives first.

``apply`` checks an event completely before it changes anything; an event no
correct peer could produce (an over-fill, a fill or cancel not from the owner)
raises :class:`~zmqex.errors.BadEvent` and leaves the ledger as it was.

Private trades (:mod:`zmqex.core.otc`) are here only as their public
:class:`~zmqex.core.events.Report`: price, quantity, time, never order ids.

``state_hash`` is a digest of all orders, fills and reports that is the same on every
replica holding the same state.  It is kept incrementally (a sum of per-item
digests modulo 2**128): reading it costs only what changed since the last read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from zmqex.core.book import Book, Key
from zmqex.core.envelope import event_from_wire as from_wire
from zmqex.core.envelope import event_to_wire as to_wire
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Reduce, Report, Side, fill_of
from zmqex.core.tif import RESTS, Tif
from zmqex.core.wire import brief, need_int, need_str
from zmqex.errors import DecodeError, BadEvent

_MOD: Final = 2**128
_BUY: Final = Side.BUY  # read once: attribute lookups on enum classes are slow (Final: see core/tif.py)


@dataclass(slots=True, eq=False, init=False)  # a written __init__: ~5x faster compiled (see zmqex.core.events)
class OrderState:
    """One order as every replica sees it."""

    event: Event  # the NewOrder event that created it
    id: str
    owner: str
    side: Side
    price: int | None
    qty: int
    tif: Tif
    key: Key
    filled: int
    cancelled: CancelReason | None
    hashed: int  # this order's digest as last counted in the ledger's state hash

    def __init__(self, event: Event, id: str, owner: str, side: Side, price: int | None, qty: int, tif: Tif,
                 key: Key, filled: int = 0, cancelled: CancelReason | None = None, hashed: int = 0) -> None:
        self.event = event
        self.id = id
        self.owner = owner
        self.side = side
        self.price = price
        self.qty = qty
        self.tif = tif
        self.key = key
        self.filled = filled
        self.cancelled = cancelled
        self.hashed = hashed

    @property
    def open(self) -> int:
        return 0 if self.cancelled is not None else self.qty - self.filled

    @property
    def rests(self) -> bool:
        """Whether the order can stand in the book (zmqex.core.tif)."""
        return RESTS[self.tif]

    @property
    def status(self) -> str:
        if self.filled == self.qty:
            return "filled"
        if self.cancelled is CancelReason.EXPIRED:
            return "expired"
        if self.cancelled is not None:
            return "cancelled"
        return "partial" if self.filled else "open"

    def digest(self) -> int:
        text = (
            f"{self.id}|{self.side.value}|{self.price}|{self.qty}|{self.tif.value}"
            f"|{self.filled}|{self.cancelled.value if self.cancelled else ''}"
        )
        return _digest(text.encode())


def crosses(taker: OrderState, maker: OrderState) -> bool:
    """True if ``taker`` may trade with the resting ``maker`` at the maker's price."""
    if taker.side is maker.side or not maker.rests:
        return False  # only a resting order can be a maker
    price = maker.price
    if taker.price is None or price is None:  # a resting order has a price: None only for a market taker
        return price is not None
    return price <= taker.price if taker.side is _BUY else price >= taker.price


@dataclass(slots=True)
class Ledger:
    orders: dict[str, OrderState] = field(default_factory=dict)
    fills: dict[tuple[str, int], Event] = field(default_factory=dict)  # by fill event id
    fill_by_request: dict[str, Event] = field(default_factory=dict)
    fills_of: dict[str, list[Event]] = field(default_factory=dict)  # order id -> its fills
    reports: dict[tuple[str, int], Event] = field(default_factory=dict)  # private trades, by report event id
    report_by_ref: dict[str, Event] = field(default_factory=dict)
    book: Book = field(default_factory=Book)
    _acc: int = 0  # sum of the digests counted so far
    _stale: set[str] = field(default_factory=set)  # orders changed since the hash was last read
    _new_fills: list[Event] = field(default_factory=list)  # fills not yet counted in the hash

    # --- applying events ----------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply one causally-ready event. Raises BadEvent, changing nothing."""
        body = event.body
        if isinstance(body, NewOrder):  # the commonest first
            self._apply_order(event, body)
        elif isinstance(body, Fill):
            self._apply_fill(event, body)
        elif isinstance(body, Cancel):
            self._apply_cancel(event, body)
        elif isinstance(body, Reduce):
            self._apply_reduce(event, body)
        else:
            self._apply_report(event, body)

    def _apply_order(self, event: Event, body: NewOrder) -> None:
        oid = event.order_id
        if oid in self.orders:
            raise BadEvent(f"order {oid} applied twice")
        state = OrderState(event, oid, event.origin, body.side, body.price, body.qty, body.tif, event.key)
        self.orders[oid] = state
        if RESTS[body.tif] and body.price is not None:  # a resting order has a price (NewOrder checks)
            self.book.add(oid, body.side, body.price, state.key, body.qty)
        self._stale.add(oid)

    def _apply_cancel(self, event: Event, body: Cancel) -> None:
        state = self._order(body.order_id, "cancel")
        if state.owner != event.origin:
            raise BadEvent(f"{event.origin} may not cancel {state.id}, owned by {state.owner}")
        if state.cancelled is not None:
            return  # a second close of the same order changes nothing
        state.cancelled = body.reason
        self.book.remove(state.id)
        self._stale.add(state.id)

    def _apply_reduce(self, event: Event, body: Reduce) -> None:
        state = self._order(body.order_id, "reduce")
        if state.owner != event.origin:
            raise BadEvent(f"{event.origin} may not reduce {state.id}, owned by {state.owner}")
        if not state.filled <= body.qty < state.qty:
            raise BadEvent(f"reduce {event.origin}:{event.seq}: {state.id} cannot go from {state.qty} "
                           f"to {body.qty} with {state.filled} filled")
        before = state.open
        state.qty = body.qty
        if state.id in self.book and before > state.open:
            self.book.reduce(state.id, before - state.open)
        self._stale.add(state.id)

    def _apply_fill(self, event: Event, body: Fill) -> None:
        maker = self._order(body.maker, "fill maker")
        taker = self._order(body.taker, "fill taker")
        if maker.owner != event.origin:
            raise BadEvent(f"{event.origin} may not grant fills on {maker.id}, owned by {maker.owner}")
        if not crosses(taker, maker) or body.price != maker.price:
            raise BadEvent(f"fill {event.id}: {taker.id} cannot trade with {maker.id} at {body.price}")
        qty = body.qty
        for state in (maker, taker):
            if state.filled + qty > state.qty:
                raise BadEvent(
                    f"fill {event.id} would over-fill {state.id}: {state.filled} + {qty} > {state.qty}"
                )
        if body.request in self.fill_by_request:
            raise BadEvent(f"request {body.request} was granted twice")
        book, stale, fills_of = self.book, self._stale, self.fills_of
        for state in (maker, taker):
            book.fill(state.id, qty)
            state.filled += qty
            stale.add(state.id)
            listed = fills_of.get(state.id)
            if listed is None:
                fills_of[state.id] = [event]
            else:
                listed.append(event)
        self.fills[(event.origin, event.seq)] = event  # by its id (Event.id, without a call)
        self.fill_by_request[body.request] = event
        self._new_fills.append(event)

    def _apply_report(self, event: Event, body: Report) -> None:
        if body.ref in self.report_by_ref:
            raise BadEvent(f"report {event.origin}:{event.seq}: its private trade is on the tape already")
        if body.maker_desk and body.maker_desk != event.origin:
            raise BadEvent(f"report {event.origin}:{event.seq} names {body.maker_desk} as the maker's desk")
        self.reports[event.id] = event
        self.report_by_ref[body.ref] = event
        self._new_fills.append(event)

    def _order(self, oid: str, what: str) -> OrderState:
        state = self.orders.get(oid)
        if state is None:
            # Causal delivery puts an order before anything that refers to it.
            raise BadEvent(f"{what} refers to unknown order {oid}")
        return state

    # --- reading ------------------------------------------------------------------

    def state_hash(self) -> str:
        """Digest of every order's state, every fill and every report.

        Kept as a sum of per-item digests: reading it counts only what changed
        since the last read, O(changes), so frequent changes cost nothing here.
        """
        acc = self._acc
        for oid in self._stale:
            state = self.orders[oid]
            digest = state.digest()
            acc += digest - state.hashed
            state.hashed = digest
        for event in self._new_fills:
            acc += _tape_digest(event)
        self._stale.clear()
        self._new_fills.clear()
        self._acc = acc % _MOD
        return f"{self._acc:032x}"

    def _check(self) -> None:
        """Assert every invariant; O(n). Used by the tests after every step."""
        self.book._check()
        self.state_hash()
        acc = 0
        filled: dict[str, int] = {}
        for event in self.fills.values():
            fill = event.body
            assert isinstance(fill, Fill)
            maker, taker = self.orders[fill.maker], self.orders[fill.taker]
            assert maker.side is not taker.side and fill.price == maker.price, event
            filled[fill.maker] = filled.get(fill.maker, 0) + fill.qty
            filled[fill.taker] = filled.get(fill.taker, 0) + fill.qty
            acc += _tape_digest(event)
        for state in self.orders.values():
            assert 0 <= state.filled <= state.qty, f"{state.id} over-filled: {state.filled} > {state.qty}"
            assert filled.get(state.id, 0) == state.filled, f"{state.id} filled disagrees with its fills"
            resting = self.book.get(state.id)
            if state.rests and state.open > 0:
                assert resting is not None and resting.qty == state.open, f"{state.id} missing from book"
            else:
                assert resting is None, f"{state.id} rests but is closed"
            acc += state.digest()
        assert len(self.fill_by_request) == len(self.fills)
        for event in self.reports.values():
            assert isinstance(event.body, Report) and self.report_by_ref[event.body.ref] is event
            acc += _tape_digest(event)
        assert len(self.report_by_ref) == len(self.reports)
        assert acc % _MOD == self._acc, "incremental state hash drifted"
        bought = sum(s.filled for s in self.orders.values() if s.side is Side.BUY)
        sold = sum(s.filled for s in self.orders.values() if s.side is Side.SELL)
        assert bought == sold, f"bought {bought} != sold {sold}"


def _tape_digest(event: Event) -> int:
    """A fill's or a report's digest."""
    body = event.body
    if isinstance(body, Report):
        return _digest(f"{event.origin}:{event.seq}|report|{body.price}|{body.qty}|{body.side._value_}|{body.ref}|"
                       f"{body.maker_desk}|{body.taker_desk}|{event.ts}".encode())
    fill = fill_of(event)
    return _digest(
        f"{event.origin}:{event.seq}|{fill.maker}|{fill.taker}|{fill.price}|{fill.qty}|{fill.request}".encode()
    )


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")


# --- snapshots ----------------------------------------------------------------------------
#
# A snapshot is the ledger as plain msgpack-ready items, in an order that rebuilds it:
# ``[0, order event, filled, cancel reason or None, qty]`` for every order (qty: lowered by
# any Reduce since the order event), then
# ``[1, fill event]`` for every fill, in the order this ledger learned them, then
# ``[2, report event]`` for every report.  A ledger
# rebuilt from its snapshot has the same state hash, book and fills.

ORDER_ITEM, FILL_ITEM, REPORT_ITEM = 0, 1, 2
ITEM_KINDS = (ORDER_ITEM, FILL_ITEM, REPORT_ITEM)


def export(ledger: Ledger) -> list[list[Any]]:
    items: list[list[Any]] = [
        [ORDER_ITEM, to_wire(s.event), s.filled, None if s.cancelled is None else s.cancelled.value, s.qty]
        for s in ledger.orders.values()
    ]
    items.extend([FILL_ITEM, to_wire(e)] for e in ledger.fills.values())
    items.extend([REPORT_ITEM, to_wire(e)] for e in ledger.reports.values())
    return items


def rebuild(items: list[Any]) -> Ledger:
    """Inverse of :func:`export`; raises DecodeError on malformed items, BadEvent on inconsistent ones."""
    ledger = Ledger()
    for item in items:
        kind = item[0] if type(item) is list and item else None
        if kind == ORDER_ITEM and len(item) == 5:
            event = from_wire(item[1])
            if not isinstance(event.body, NewOrder):
                raise DecodeError("snapshot order item does not hold an order event")
            ledger._apply_order(event, event.body)
            state = ledger.orders[event.order_id]
            state.qty = need_int(item[4], "snapshot qty", 1, state.qty)
            state.filled = need_int(item[2], "snapshot filled", 0, state.qty)
            try:
                state.cancelled = None if item[3] is None else CancelReason(need_str(item[3], "cancel reason", 32))
            except ValueError:
                raise DecodeError(f"unknown cancel reason {brief(item[3], 20)} in snapshot") from None
            if state.id in ledger.book:
                ledger.book.remove(state.id)
                if state.open > 0 and state.price is not None:
                    ledger.book.add(state.id, state.side, state.price, state.key, state.open)
        elif kind == FILL_ITEM and len(item) == 2:
            event = from_wire(item[1])
            fill = event.body
            if not isinstance(fill, Fill) or fill.maker not in ledger.orders or fill.taker not in ledger.orders:
                raise BadEvent("snapshot fill item does not fit the snapshot's orders")
            ledger.fills[event.id] = event
            ledger.fill_by_request[fill.request] = event
            ledger.fills_of.setdefault(fill.maker, []).append(event)
            ledger.fills_of.setdefault(fill.taker, []).append(event)
            ledger._new_fills.append(event)
        elif kind == REPORT_ITEM and len(item) == 2:
            event = from_wire(item[1])
            if not isinstance(event.body, Report):
                raise DecodeError("snapshot report item does not hold a report event")
            ledger._apply_report(event, event.body)
        else:
            raise DecodeError("malformed snapshot item")
    for state in ledger.orders.values():
        if state.filled != sum(fill_of(e).qty for e in ledger.fills_of.get(state.id, ())):
            raise BadEvent(f"snapshot: {state.id} filled disagrees with its fills")
    return ledger


def merge(ours: Ledger, items: list[Any]) -> Ledger:
    """The ledger of the union of two causally closed event sets: ours, and a snapshot's.

    A ledger is a function of the set of events it has applied, and both sets
    are causally closed, so the union is too: orders are united by id, fills by
    event id, each order's filled is the sum of its united fills, and a cancel
    on either side stands (an owner closes an order at most once).
    """
    theirs = rebuild(items)
    orders = dict(theirs.orders)
    orders.update(ours.orders)
    fills = dict(ours.fills)
    for fill_id, event in theirs.fills.items():
        fills.setdefault(fill_id, event)
    filled: dict[str, int] = {}
    for event in fills.values():
        fill = fill_of(event)
        for oid in (fill.maker, fill.taker):
            filled[oid] = filled.get(oid, 0) + fill.qty
    united: list[list[Any]] = []
    for oid, state in orders.items():
        other = theirs.orders.get(oid)
        cancelled = state.cancelled or (other.cancelled if other is not None else None)
        qty = state.qty if other is None else min(state.qty, other.qty)  # a reduce on either side stands
        united.append([ORDER_ITEM, to_wire(state.event), filled.get(oid, 0),
                       None if cancelled is None else cancelled.value, qty])
    united.extend([FILL_ITEM, to_wire(event)] for event in fills.values())
    reports = dict(ours.reports)
    for report_id, event in theirs.reports.items():
        reports.setdefault(report_id, event)
    united.extend([REPORT_ITEM, to_wire(event)] for event in reports.values())
    return rebuild(united)
