"""Subscriptions: the node's side of the ``trades``, ``orders`` and ``book`` streams, without sockets.

A subscription is named by its connection and the id of its ``subscribe``
request; every message of it carries that id, the stream's name, and ``seq``:
the number of data messages it has sent (1 for the first), so a client that
sees ``seq`` jump knows it missed one.  A heartbeat (sent to a subscription
that sent nothing for ``protocol.HEARTBEAT_MS``) and an end carry the last
``seq`` without counting.  docs/protocol.md ("Streams") is what a client sees.

* ``trades``: every fill this replica applies, in the order it applies them,
  and every report of a private trade.
* ``orders``: every change to the subscriber's own orders at this node
  (placed, each fill, the cancel or expiry), as the order after it; an
  operator gets every own order of the node.
* ``rfqs``: what this desk holds off the book (:mod:`zmqex.otcapi`): each
  request for quote and offer as it changes, and the subscriber's private
  trades (an operator's: every one of this desk).
* ``book``: the view ``book`` answers at the subscription's depth, first a
  snapshot, then after each loop iteration that changed it the levels that
  changed (a level of count 0 is gone).  A change is the level's new total,
  never a difference, so applying it twice does no harm; and a level that
  moves out of the top ``depth`` is sent as gone, one that moves in as new,
  so the client's book is always exactly the node's top ``depth``.  Levels of
  owners that are down are listed apart (``unavailable``), as in ``book``, so
  an owner going down or coming back moves its levels between the two.  A
  depth is one of ``protocol.STREAM_DEPTHS``: the book is cut and diffed once
  per depth subscribed, so a few depths bound what a change costs.

The node ends a subscription it can no longer serve with an ``end`` message
(:meth:`Streams.end`): a reader too slow to keep its queue from filling, the
node stopping, a trader whose key was removed.

Frames are built by concatenating msgpack pieces: the body of a message (a
fill, an order, a book's changes) is packed once, however many subscriptions
get it; only the few bytes of id and seq are packed per subscription.

Costs: a fill O(subscriptions to trades + the order's trader's subscriptions
to orders), about 0.5 us per subscription; a book flush O(the largest depth
subscribed), plus O(depth) per depth subscribed when the top of the book
changed, once per loop iteration that delivered anything; ``tick``
O(subscriptions).  ``now`` (monotonic ms) comes from the node.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from zmqex import protocol
from zmqex.core import wire
from zmqex import otcwire
from zmqex.core.events import Cancel, Event, Fill, NewOrder, Report, Side, owner_of
from zmqex.core.otc import Offer, Rfq, Trade
from zmqex.otcapi import sees_trade
from zmqex.core.credit import Rooms
from zmqex.core.queries import fill_info
from zmqex.core.replica import Replica
from zmqex.errors import InvalidRequest, LimitReached
from zmqex.limits import Limits

log = logging.getLogger(__name__)

Frames = list[tuple[bytes, bytes]]
Key = tuple[bytes, Any]  # (connection, subscribe request id)
#: A book as ints: bids, asks, unavailable bids, unavailable asks; each price -> (qty, orders), best first,
#: or (qty, orders, tradeable) in bids and asks while the node has credit limits set.
View = tuple[dict[int, tuple[int, ...]], ...]

_SEQ = wire.pack(protocol.SEQ)
_MAPS = [bytes([0x80 | (4 + entries)]) for entries in range(4)]  # msgpack fixmap headers: v, id, stream, seq + body


def _uint(n: int) -> bytes:
    """A seq as msgpack packs it (what wire.pack gives, without a call into the packer per message)."""
    if n < 0x80:
        return bytes((n,))
    for head, size in ((b"\xcc", 1), (b"\xcd", 2), (b"\xce", 4), (b"\xcf", 8)):
        if n < 1 << (8 * size):
            return head + n.to_bytes(size, "big")
    raise ValueError(f"seq {n} is beyond msgpack's integers")
_HEARTBEAT = wire.pack(protocol.HEARTBEAT) + wire.pack(True)
PLACED, FILLED, CANCELLED = protocol.ORDER_EVENTS
MAKER, TAKER = protocol.LIQUIDITY


class _Later:
    """What happened to each own order in one iteration's events, to show an order as of one of them."""

    def __init__(self, events: list[Event], me: str) -> None:
        self.fills: dict[str, list[tuple[int, int]]] = {}  # own order -> (index, qty) of its fills in the batch
        self.cancels: dict[str, int] = {}  # own order -> index of its cancel in the batch
        for i, event in enumerate(events):
            body = event.body
            if isinstance(body, Fill):
                for oid in (body.maker, body.taker):
                    if owner_of(oid) == me:
                        self.fills.setdefault(oid, []).append((i, body.qty))
            elif isinstance(body, Cancel):
                self.cancels[body.order_id] = i

    def as_of(self, replica: Replica, oid: str, index: int) -> dict[str, Any]:
        """The order as it stood right after the event at ``index``: fills and a cancel that came
        later in the iteration are taken out (the core's own OrderState says what that makes it)."""
        info = replica.order_info(oid)  # O(fills of the order)
        state = replica.ledger.orders[oid]
        undone = sum(qty for i, qty in self.fills.get(oid, ()) if i > index)
        uncancelled = self.cancels.get(oid, -1) > index
        if undone or uncancelled:
            then = dataclasses.replace(state, filled=state.filled - undone,
                                       cancelled=None if uncancelled else state.cancelled)
            info.update(status=then.status, filled=then.filled, open=then.open,
                        reason=None if then.cancelled is None else then.cancelled.value)
        return info


class Sub:
    """One subscription; ``prefix`` is its message's first three entries, packed once."""

    __slots__ = ("identity", "id", "stream", "trader", "operator", "depth", "seq", "last_ms", "prefix")

    def __init__(self, identity: bytes, sub_id: Any, stream: str, trader: str, operator: bool, depth: int,
                 now: int) -> None:
        self.identity, self.id, self.stream, self.depth = identity, sub_id, stream, depth
        self.trader, self.operator = trader, operator
        self.seq = 0
        self.last_ms = now
        head = protocol.stream_message(sub_id, stream, 0)  # v, id, stream (and seq, packed apart)
        self.prefix = b"".join(wire.pack(k) + wire.pack(v) for k, v in head.items() if k != protocol.SEQ)

    @property
    def key(self) -> Key:
        return self.identity, self.id

    def frame(self, body: bytes, entries: int, data: bool, now: int) -> tuple[bytes, bytes]:
        """The message with ``body`` (``entries`` packed key-value pairs); a data message counts in seq."""
        if data:
            self.seq += 1
        self.last_ms = now
        # a fixmap of v, id, stream, seq and the body's entries (at most 3: under 16, so one byte)
        return self.identity, b"".join((_MAPS[entries], self.prefix, _SEQ, _uint(self.seq), body))


class Streams:
    def __init__(self, replica: Replica, limits: Limits) -> None:
        self.replica = replica
        self.limits = limits
        self.now = 0
        self._of: dict[bytes, dict[Any, Sub]] = {}  # connection -> its subscriptions by id
        self._per_trader: dict[str, int] = {}  # trader -> subscriptions (no zeros)
        self._trades: dict[Key, Sub] = {}
        self._orders: dict[str, dict[Key, Sub]] = {}  # trader -> their orders subscriptions
        self._all_orders: dict[Key, Sub] = {}  # operators' orders subscriptions: every own order
        self._rfqs: dict[Key, Sub] = {}
        self._books: dict[int, dict[Key, Sub]] = {}  # depth -> book subscriptions that had their snapshot
        self._new_books: dict[Key, Sub] = {}  # book subscriptions awaiting their snapshot (next flush)
        self._views: dict[int, View] = {}  # depth -> the book as last sent at that depth
        self._full: View | None = None  # the book at the largest depth subscribed, as last computed
        self._book_changed = False
        self._recheck_at = 0  # when the book is looked at again even if nothing said it changed

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._of.values())

    # --- subscribing ----------------------------------------------------------------------

    def subscribe(self, identity: bytes, sub_id: Any, stream: str, depth: int, trader: str, operator: bool,
                  now: int) -> None:
        """Open a subscription (a book's snapshot goes out at the next ``flush``)."""
        limits, mine = self.limits, self._of.get(identity, {})
        if sub_id in mine:
            raise InvalidRequest(f"subscription {wire.brief(sub_id, 30)} is already open on this connection: "
                                 "subscribe under a new request id")
        if len(mine) >= limits.subs_per_connection:
            raise LimitReached(f"this connection has {len(mine)} subscriptions, the most a node allows; "
                               "unsubscribe one first")
        if self._per_trader.get(trader, 0) >= limits.subs_per_trader:
            raise LimitReached(f"{limits.subs_per_trader} subscriptions of this trader are open, the most a "
                               "node allows")
        if len(self) >= limits.subs_per_node:
            raise LimitReached(f"this node serves {limits.subs_per_node} subscriptions, the most it allows")
        sub = Sub(identity, sub_id, stream, trader, operator, depth, now)
        self._of.setdefault(identity, {})[sub_id] = sub
        self._per_trader[trader] = self._per_trader.get(trader, 0) + 1
        if stream == protocol.STREAM_TRADES:
            self._trades[sub.key] = sub
        elif stream == protocol.STREAM_ORDERS:
            (self._all_orders if operator else self._orders.setdefault(trader, {}))[sub.key] = sub
        elif stream == protocol.STREAM_RFQS:
            self._rfqs[sub.key] = sub
        else:
            self._new_books[sub.key] = sub

    def unsubscribe(self, identity: bytes, sub_id: Any) -> None:
        sub = self._of.get(identity, {}).get(sub_id)
        if sub is None:
            raise InvalidRequest(f"no subscription {wire.brief(sub_id, 30)} on this connection")
        self._remove(sub)

    def _remove(self, sub: Sub) -> None:
        key, subs = sub.key, self._of[sub.identity]
        del subs[sub.id]
        if not subs:
            del self._of[sub.identity]
        left = self._per_trader[sub.trader] - 1
        if left:
            self._per_trader[sub.trader] = left
        else:
            del self._per_trader[sub.trader]
        if sub.stream == protocol.STREAM_TRADES:
            del self._trades[key]
        elif sub.stream == protocol.STREAM_RFQS:
            del self._rfqs[key]
        elif sub.stream == protocol.STREAM_ORDERS:
            if sub.operator:
                del self._all_orders[key]
            else:
                theirs = self._orders[sub.trader]
                del theirs[key]
                if not theirs:
                    del self._orders[sub.trader]
        elif self._new_books.pop(key, None) is None:
            at = self._books[sub.depth]
            del at[key]
            if not at:
                del self._books[sub.depth]
                self._views.pop(sub.depth, None)

    # --- ending them ------------------------------------------------------------------------

    def end(self, identity: bytes, code: str, message: str) -> Frames:
        """End every subscription of a connection; the end messages to send it (if it can still be told)."""
        return self._end(list(self._of.get(identity, {}).values()), code, message)

    def end_where(self, ends: Callable[[Sub], bool], code: str, message: str) -> Frames:
        """End every subscription for which ``ends`` is true (a trader whose key was removed, say)."""
        return self._end([sub for subs in self._of.values() for sub in subs.values() if ends(sub)], code, message)

    def end_all(self, code: str, message: str) -> Frames:
        return self.end_where(lambda sub: True, code, message)

    def forget(self, identity: bytes) -> int:
        """Drop a connection's subscriptions without a word (it is gone); how many there were."""
        subs = list(self._of.get(identity, {}).values())
        for sub in subs:
            self._remove(sub)
        return len(subs)

    def _end(self, subs: Iterable[Sub], code: str, message: str) -> Frames:
        body = wire.pack(protocol.END) + wire.pack(protocol.end_body(code, message))
        frames = []
        for sub in list(subs):
            self._remove(sub)
            frames.append(sub.frame(body, 1, False, self.now))
            log.info("%s stream %s of %r ended: %s", sub.stream, wire.brief(sub.id, 30), sub.identity[:40], code)
        return frames

    # --- what happens -------------------------------------------------------------------------

    def on_delivered(self, events: list[Event]) -> Frames:
        """Messages about the events this replica applied in one loop iteration, in the order it
        applied them (their records committed).

        An ``orders`` message shows the order as it stood right after its event, not as it
        stands now: later events of the same iteration (a fill after the placing, a cancel
        after a fill) are taken back out of its figures.
        """
        self._book_changed = True
        if not (self._trades or self._orders or self._all_orders) or not events:
            return []
        frames: Frames = []
        later = _Later(events, self.replica.id) if self._orders or self._all_orders else None
        for i, event in enumerate(events):
            body = event.body
            if isinstance(body, (Fill, Report)):  # the tape: a report is a fill without order ids
                fill = protocol.fill_view(fill_info(event, self.replica.ledger))
                if self._trades:
                    packed = wire.pack(protocol.TRADE) + wire.pack(fill)
                    frames += [sub.frame(packed, 1, True, self.now) for sub in self._trades.values()]
                if later is not None and isinstance(body, Fill):
                    for oid, liquidity in ((body.maker, MAKER), (body.taker, TAKER)):
                        frames += self._order_changed(oid, FILLED, later, i, fill, liquidity)
            elif later is not None and event.origin == self.replica.id:  # only the owner places and cancels
                if isinstance(body, NewOrder):
                    frames += self._order_changed(event.order_id, PLACED, later, i)
                elif isinstance(body, Cancel):
                    frames += self._order_changed(body.order_id, CANCELLED, later, i)
        return frames

    def on_otc(self, item: Offer | Rfq | Trade) -> Frames:
        """The ``rfqs`` stream's message about an OTC item that changed here (zmqex.otcapi says who sees what)."""
        if not self._rfqs:
            return []
        me = self.replica.id
        if isinstance(item, Trade):
            desk = self.replica.otc
            subs = [sub for sub in self._rfqs.values() if sees_trade(desk, item.request, sub.trader, sub.operator)]
            body = wire.pack(otcwire.TRADE_ITEM) + wire.pack(otcwire.trade_view(item, me))
        else:
            subs = list(self._rfqs.values())
            body = (wire.pack(otcwire.RFQ_ITEM) + wire.pack(otcwire.rfq_view(item, me)) if isinstance(item, Rfq)
                    else wire.pack(otcwire.OFFER_ITEM) + wire.pack(otcwire.offer_view(item, me)))
        return [sub.frame(body, 1, True, self.now) for sub in subs]

    def _order_changed(self, oid: str, what: str, later: _Later, index: int, fill: protocol.FillView | None = None,
                       liquidity: str = "") -> Frames:
        if owner_of(oid) != self.replica.id:
            return []
        subs = list(self._all_orders.values())
        trader = self.replica.traders.of.get(oid)
        if trader and trader in self._orders:
            subs += self._orders[trader].values()
        if not subs:
            return []
        info = later.as_of(self.replica, oid, index)
        packed = (wire.pack(protocol.EVENT) + wire.pack(what) + wire.pack(protocol.ORDER)
                  + wire.pack(protocol.order_update(info)))
        if fill is not None:
            packed += wire.pack(protocol.FILL) + wire.pack(protocol.my_fill_view(fill, info, liquidity))
        entries = 3 if fill is not None else 2
        return [sub.frame(packed, entries, True, self.now) for sub in subs]

    def peers_changed(self) -> None:
        """An owner went down or came back: its levels move between ``bids``/``asks`` and ``unavailable``."""
        self._book_changed = True

    def flush(self, now: int) -> Frames:
        """The book's changes since the last flush, and snapshots to new book subscriptions."""
        self.now = now
        if not (self._books or self._new_books) or not (self._book_changed or self._new_books):
            return []
        self._book_changed = False
        depths = set(self._books) | {sub.depth for sub in self._new_books.values()}
        full = book_levels(self.replica, max(depths))
        if full == self._full and not self._new_books:
            return []  # nothing changed at any depth: the common case of an event away from the top
        self._full = full
        frames: Frames = []
        for depth in depths:
            view = _cut(full, depth)
            old = self._views.get(depth)
            if old is not None and depth in self._books:
                changes = _changes(old, view)
                if changes is not None:
                    packed = wire.pack(protocol.CHANGES) + wire.pack(changes)
                    frames += [sub.frame(packed, 1, True, now) for sub in self._books[depth].values()]
            self._views[depth] = view
        for sub in self._new_books.values():
            packed = wire.pack(protocol.SNAPSHOT) + wire.pack(_book(self._views[sub.depth]))
            frames.append(sub.frame(packed, 1, True, now))
            self._books.setdefault(sub.depth, {})[sub.key] = sub
        self._new_books.clear()
        return frames

    def tick(self, now: int) -> Frames:
        """Heartbeats to subscriptions that sent nothing for HEARTBEAT_MS; once a second the book is
        looked at again even if nothing said it changed (a member removed, or caught equivocating)."""
        self.now = now
        if now >= self._recheck_at:
            self._recheck_at = now + protocol.HEARTBEAT_MS
            self._book_changed = True
        due = now - protocol.HEARTBEAT_MS
        return [sub.frame(_HEARTBEAT, 1, False, now) for subs in self._of.values() for sub in subs.values()
                if sub.last_ms <= due]


# --- the book: integers inside, decimal strings outside ------------------------------------


def book_levels(replica: Replica, depth: int) -> View:
    """(bids, asks, unavailable bids, unavailable asks) to ``depth`` levels each, best first.

    An order whose owner is down (or removed, or caught equivocating) cannot be
    traded with, so its level is counted apart.  The first d levels of each are
    what ``depth=d`` gives: the streams cut one view for every depth.
    """
    everyone_up = (all(peer.up for peer in replica.peers.values())
                   and not replica.removed and not replica.equivocators)
    if replica.credit.active:
        bids_, bids_down_ = _credit_levels(replica, Side.BUY, depth)
        asks_, asks_down_ = _credit_levels(replica, Side.SELL, depth)
        return bids_, asks_, bids_down_, asks_down_
    bids, bids_down = _side_levels(replica, Side.BUY, depth, everyone_up)
    asks, asks_down = _side_levels(replica, Side.SELL, depth, everyone_up)
    return bids, asks, bids_down, asks_down


def book_view(replica: Replica, depth: int) -> protocol.BookView:
    return _book(book_levels(replica, depth))


def _side_levels(replica: Replica, side: Side, depth: int,
                 everyone_up: bool) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]]:
    """(levels of owners up, levels of owners down) of one side, ``depth`` of each at most."""
    book = replica.ledger.book
    if everyone_up:  # the common case costs O(depth)
        return {p: (q, n) for p, q, n in book.depth(side, depth)}, {}
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    for order in book.orders(side):  # best price first, so a level is complete before the next begins
        target = up if replica.is_up(owner_of(order.order_id)) else down
        if order.price not in target and len(target) >= depth:
            if len(up) >= depth and len(down) >= depth:
                break
            continue
        level = target.setdefault(order.price, [0, 0])
        level[0] += order.qty
        level[1] += 1
    return {p: (q, n) for p, (q, n) in up.items()}, {p: (q, n) for p, (q, n) in down.items()}


def _credit_levels(replica: Replica, side: Side,
                   depth: int) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]]:
    """As ``_side_levels``, each level of owners up with what of it this desk's credit lets it trade
    against: its orders, best first, each as far as its owner's room still goes (zmqex.core.credit).
    O(orders in the levels shown)."""
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    rooms, me = Rooms(replica.credit, replica.wall()), replica.id
    for order in replica.ledger.book.orders(side):  # best price first, as in _side_levels
        owner = owner_of(order.order_id)
        is_up = replica.is_up(owner)
        target = up if is_up else down
        if order.price not in target and len(target) >= depth:
            if len(up) >= depth and len(down) >= depth:
                break
            continue
        level = target.setdefault(order.price, [0, 0, 0])
        level[0] += order.qty
        level[1] += 1
        if is_up:
            level[2] += order.qty if owner == me else rooms.take(owner, order.price, order.qty)
    return ({p: (q, n, t) for p, (q, n, t) in up.items()}, {p: (q, n) for p, (q, n, _) in down.items()})


def _cut(view: View, depth: int) -> View:
    return tuple(dict(itertools.islice(levels.items(), depth)) if len(levels) > depth else levels
                 for levels in view)


def _levels(levels: dict[int, tuple[int, ...]]) -> list[protocol.Level]:
    return [protocol.level(p, *v) for p, v in levels.items()]  # dicts keep the best-first order


def _book(view: View) -> protocol.BookView:
    bids, asks, bids_down, asks_down = view
    return {"unavailable": {"bids": _levels(bids_down), "asks": _levels(asks_down)},
            "bids": _levels(bids), "asks": _levels(asks)}


def _changes(old: View, new: View) -> protocol.BookView | None:
    """The levels that differ between two views (gone ones with count 0), as a book; None if none do."""
    lists: list[list[protocol.Level]] = []
    for before, after in zip(old, new):
        changed = [protocol.level(p, *v) for p, v in after.items() if before.get(p) != v]
        changed += [protocol.level(p, 0, 0) for p in before if p not in after]
        lists.append(changed)
    if not any(lists):
        return None
    bids, asks, bids_down, asks_down = lists
    return {"unavailable": {"bids": bids_down, "asks": asks_down}, "bids": bids, "asks": asks}
