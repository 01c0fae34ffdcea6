"""The resting order book: price levels on sortedcontainers.

Bids and asks are each a ``SortedDict`` from price to :class:`Level`, iterated
best price first.  Within a level, orders stand in priority-key order: the key
``(sum(vc), origin, seq)`` every replica computes alike, so all replicas agree
on who is first without a shared clock.

Costs, with ``L`` price levels on a side and ``m`` orders at one level:

* ``add``: O(log L) + O(1) for a key later than every key at its level (an
  own order always is: sum(vc) only grows), else O(log m) plus moving the
  keys after it (a peer's concurrent order: a few).
* ``remove`` / ``reduce``: O(1) amortised (+ O(log L) when a level empties);
  a removed order is only forgotten by the level's index and its key is
  dropped from the level's sorted list lazily, in a rebuild that runs when
  dead keys outnumber live ones, so no call scans a level.  The level's
  ``head`` skips the dead keys in front (fills take from the front), so a
  walk does not step over them again and again.
* ``best``, ``crossed``: O(1) (each side's best price is kept);
  ``crossing`` that meets nothing: O(1), no iterator built;  ``depth(n)``: O(n).

Invariants (``_check``): each level's ``total`` and ``count`` agree with its
live orders; no level is empty; its keys are sorted and unique, hold every
live key, and all before ``head`` are dead while the one at ``head`` is live;
every live order has positive quantity and is in the index at the right side
and price; the index holds nothing else; each side's kept best price is its
best level's (None when it is empty).
Whether the book is crossed is not an invariant of the book (concurrent orders
may cross for a while); the replica tests check it at quiescence.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Final

from sortedcontainers import SortedDict

from zmqex.core.events import Side

Key = tuple[int, str, int]

_BUY: Final = Side.BUY  # read once: attribute lookups on enum classes are slow (Final: see core/tif.py)
_COMPACT_MIN: Final = 8  # below this many dead keys a level never bothers to rebuild (32 cost a mixed mesh ~25% more CPU)


class Resting:
    """One resting order as the book sees it: its open quantity and place in line."""

    __slots__ = ("order_id", "side", "price", "key", "qty")

    def __init__(self, order_id: str, side: Side, price: int, key: Key, qty: int) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.key = key
        self.qty = qty

    def __repr__(self) -> str:
        return f"Resting({self.order_id} {self.side.value} {self.qty}@{self.price})"


class Level:
    """The orders at one price, in priority order.

    ``keys`` is a plain sorted list (bisect and append are C; a SortedList's add was
    Python): it may still hold keys of removed orders, and ``keys[head]`` is the first
    live one.
    """

    __slots__ = ("price", "keys", "head", "live", "total", "dead")

    def __init__(self, price: int) -> None:
        self.price = price
        self.keys: list[Key] = []  # sorted; may still hold keys of removed orders
        self.head = 0  # keys[:head] are all dead
        self.live: dict[Key, Resting] = {}
        self.total = 0
        self.dead = 0

    def __iter__(self) -> Iterator[Resting]:
        live = self.live
        for key in islice(self.keys, self.head, None):
            order = live.get(key)
            if order is not None:
                yield order

    def after(self, key: Key) -> Iterator[Resting]:
        """Its live orders with a key after ``key``, in priority order. O(log m) plus those yielded."""
        live = self.live
        keys = self.keys
        for later in islice(keys, max(bisect_right(keys, key), self.head), None):
            order = live.get(later)
            if order is not None:
                yield order

    def add(self, order: Resting) -> None:
        key = order.key
        live = self.live
        if key in live:
            raise ValueError(f"{order.order_id} has the same priority key as {live[key].order_id}")
        keys = self.keys
        if not keys or key > keys[-1]:
            keys.append(key)  # the common case: the latest key here
        else:
            i = bisect_left(keys, key)
            if keys[i] == key:  # back after a removal, its dead key not yet compacted away
                self.dead -= 1
            else:
                keys.insert(i, key)
            if i < self.head:
                self.head = i
        live[key] = order
        self.total += order.qty

    def discard(self, order: Resting) -> None:
        live = self.live
        del live[order.key]
        self.total -= order.qty
        self.dead += 1
        if self.dead > _COMPACT_MIN and self.dead > len(live):
            self.keys = sorted(live)
            self.head = self.dead = 0
            return
        keys, head = self.keys, self.head
        if keys[head] == order.key:  # the first left: step past the dead keys in front
            end = len(keys)
            head += 1
            while head < end and keys[head] not in live:
                head += 1
            self.head = head


class Book:
    """Both sides of the book, plus an index from order id to resting order."""

    __slots__ = ("bids", "asks", "_index", "_bid", "_ask")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict(operator.neg)  # best (highest) first
        self.asks: SortedDict = SortedDict()  # best (lowest) first
        self._index: dict[str, Resting] = {}
        # Each side's best price, kept: every order placed asks whether it crosses, and
        # a SortedDict answers in Python calls.
        self._bid: int | None = None
        self._ask: int | None = None

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def get(self, order_id: str) -> Resting | None:
        return self._index.get(order_id)

    def _side(self, side: Side) -> SortedDict:
        return self.bids if side is _BUY else self.asks

    def add(self, order_id: str, side: Side, price: int, key: Key, qty: int) -> None:
        """Rest an order. O(log L + log m)."""
        if qty <= 0:
            raise ValueError(f"cannot rest {order_id} with quantity {qty}")
        if order_id in self._index:
            raise ValueError(f"{order_id} already rests in the book")
        levels = self.bids if side is _BUY else self.asks  # _side inline: one call less per order
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level(price)
            if side is _BUY:
                if self._bid is None or price > self._bid:
                    self._bid = price
            elif self._ask is None or price < self._ask:
                self._ask = price
        order = Resting(order_id, side, price, key, qty)
        level.add(order)
        self._index[order_id] = order

    def remove(self, order_id: str) -> bool:
        """Take an order out; False if it was not resting. O(1) amortised."""
        order = self._index.pop(order_id, None)
        if order is None:
            return False
        self._drop(order)
        return True

    def _drop(self, order: Resting) -> None:
        """Take ``order``, already out of the index, out of its level."""
        levels = self.bids if order.side is _BUY else self.asks
        level = levels[order.price]
        level.discard(order)
        if not level.live:
            del levels[order.price]
            if order.side is _BUY:
                if order.price == self._bid:
                    self._bid = levels.peekitem(0)[0] if levels else None
            elif order.price == self._ask:
                self._ask = levels.peekitem(0)[0] if levels else None

    def reduce(self, order_id: str, qty: int) -> None:
        """Lower an order's open quantity by ``qty``, removing it at zero. O(1) amortised."""
        self._reduce(self._index[order_id], qty)

    def fill(self, order_id: str, qty: int) -> None:
        """``reduce`` if the order rests here, nothing if not (a taker that does not rest):
        one look-up for both, as each fill needs. O(1) amortised."""
        order = self._index.get(order_id)
        if order is not None:
            self._reduce(order, qty)

    def _reduce(self, order: Resting, qty: int) -> None:
        if not 0 < qty <= order.qty:
            raise ValueError(f"cannot reduce {order.order_id} ({order.qty} open) by {qty}")
        if qty == order.qty:
            del self._index[order.order_id]
            self._drop(order)
            return
        order.qty -= qty
        (self.bids if order.side is _BUY else self.asks)[order.price].total -= qty

    def best(self, side: Side) -> int | None:
        """Best price on ``side``, or None if it is empty. O(1)."""
        return self._bid if side is _BUY else self._ask

    def best_bid(self) -> int | None:
        return self._bid

    def best_ask(self) -> int | None:
        return self._ask

    def crossed(self) -> bool:
        """True if some bid is at or above some ask. O(1)."""
        bid, ask = self._bid, self._ask
        return bid is not None and ask is not None and bid >= ask

    def depth(self, side: Side, levels: int) -> list[tuple[int, int, int]]:
        """``[(price, total qty, orders)]`` for the best ``levels`` prices. O(levels)."""
        out: list[tuple[int, int, int]] = []
        for price, level in self._side(side).items():
            if len(out) >= levels:
                break
            out.append((price, level.total, len(level.live)))
        return out

    def meets(self, taker: Side, limit: int | None) -> bool:
        """Whether a ``taker`` order at ``limit`` (None: market) would meet any resting order. O(1)."""
        if taker is _BUY:
            best = self._ask
            return best is not None and (limit is None or best <= limit)
        best = self._bid
        return best is not None and (limit is None or best >= limit)

    def crossing(self, taker: Side, limit: int | None) -> Iterable[Resting]:
        """Resting orders a ``taker`` order at ``limit`` (None: market) would meet.

        Best price first, then priority.  Lazy: O(1) per order yielded, plus the
        dead keys skipped; O(1), and no generator, when it meets nothing (most
        orders placed: passive ones).
        """
        return self._crossing(taker, limit) if self.meets(taker, limit) else ()

    def _crossing(self, taker: Side, limit: int | None) -> Iterator[Resting]:
        buy = taker is _BUY
        levels = self.asks if buy else self.bids
        best = self._ask if buy else self._bid
        assert best is not None  # crossing() asked meets() first
        # The best level by its kept price, a dict look-up: most walks end in it, and
        # iterating a SortedDict costs ~1 us of Python calls before its first key.
        level = levels[best]
        live = level.live  # the level's walk inline (Level.__iter__): a generator less per level
        for key in islice(level.keys, level.head, None):
            order = live.get(key)
            if order is not None:
                yield order
        for price in islice(levels, 1, None):  # keys, then a dict look-up: a SortedDict.items() view costs ~1.4us more per walk
            if limit is not None and (price > limit if buy else price < limit):
                return
            level = levels[price]
            live = level.live
            for key in islice(level.keys, level.head, None):
                order = live.get(key)
                if order is not None:
                    yield order

    def crossing_after(self, taker: Side, limit: int, key: Key) -> Iterable[Resting]:
        """The orders :meth:`crossing` yields whose key is after ``key``: O(log m) a level
        crossed, plus those yielded, where a full walk costs every order crossed."""
        return self._crossing_after(taker, limit, key) if self.meets(taker, limit) else ()

    def _crossing_after(self, taker: Side, limit: int, key: Key) -> Iterator[Resting]:
        levels = self.asks if taker is _BUY else self.bids
        for price in levels:
            if price > limit if taker is _BUY else price < limit:
                return
            yield from levels[price].after(key)

    def crossed_orders(self) -> Iterator[Resting]:
        """Every resting order in the crossed region (empty if not crossed)."""
        bid, ask = self._bid, self._ask
        if bid is None or ask is None or bid < ask:
            return
        yield from self.crossing(Side.SELL, ask)  # bids at or above the best ask
        yield from self.crossing(Side.BUY, bid)  # asks at or below the best bid

    def orders(self, side: Side) -> Iterator[Resting]:
        """Every resting order on ``side``, best first."""
        for level in self._side(side).values():
            yield from level

    def _check(self) -> None:
        """Assert every invariant in the module docstring. O(n log n)."""
        seen = 0
        for side in Side:
            for price, level in self._side(side).items():
                assert level.price == price, (price, level.price)
                assert level.live, f"empty level {side.value} {price}"
                assert level.total == sum(o.qty for o in level.live.values()), f"level total at {price}"
                keys = level.keys
                assert all(a < b for a, b in zip(keys, keys[1:])), f"level keys out of order at {price}"
                assert set(level.live) <= set(keys), f"level keys at {price}"
                assert len(keys) == len(level.live) + level.dead, f"keys at {price}"
                assert not any(k in level.live for k in keys[:level.head]), f"a live key before head at {price}"
                assert keys[level.head] in level.live, f"head at {price} is not live"
                for key, order in level.live.items():
                    assert order.key == key and order.qty > 0, order
                    assert order.side is side and order.price == price, order
                    assert self._index.get(order.order_id) is order, order
                    seen += 1
        assert seen == len(self._index), "index holds orders that are not in any level"
        for side, kept in ((Side.BUY, self._bid), (Side.SELL, self._ask)):
            levels = self._side(side)
            assert kept == (levels.peekitem(0)[0] if levels else None), f"best {side.value} kept as {kept}"
