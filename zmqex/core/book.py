"""The resting order book: price levels on sortedcontainers.

Bids and asks are each a ``SortedDict`` from price to :class:`Level`, iterated
best price first.  Within a level, orders stand in priority-key order: the key
``(sum(vc), origin, seq)`` every replica computes alike, so all replicas agree
on who is first without a shared clock.

Costs, with ``L`` price levels on a side and ``m`` orders at one level:

* ``add``: O(log L + log m)
* ``remove`` / ``reduce``: O(1) amortised (+ O(log L) when a level empties);
  a removed order is only forgotten by the level's index and its key is
  dropped from the level's sorted list lazily, in a rebuild that runs when
  dead keys outnumber live ones, so no call scans a level.
* ``best``, ``crossed``: O(1);  ``depth(n)``: O(n).

Invariants (``_check``): each level's ``total`` and ``count`` agree with its
live orders; no level is empty; every live order has positive quantity and is
in the index at the right side and price; the index holds nothing else.
Whether the book is crossed is not an invariant of the book (concurrent orders
may cross for a while); the replica tests check it at quiescence.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Final

from sortedcontainers import SortedDict, SortedList

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
    """The orders at one price, in priority order."""

    __slots__ = ("price", "keys", "live", "total", "dead")

    def __init__(self, price: int) -> None:
        self.price = price
        self.keys: SortedList = SortedList()  # may still hold keys of removed orders
        self.live: dict[Key, Resting] = {}
        self.total = 0
        self.dead = 0

    def __iter__(self) -> Iterator[Resting]:
        live = self.live
        for key in self.keys:
            order = live.get(key)
            if order is not None:
                yield order

    def after(self, key: Key) -> Iterator[Resting]:
        """Its live orders with a key after ``key``, in priority order. O(log m) plus those yielded."""
        live = self.live
        for later in self.keys.irange(key, inclusive=(False, True)):
            order = live.get(later)
            if order is not None:
                yield order

    def add(self, order: Resting) -> None:
        if order.key in self.live:
            raise ValueError(f"{order.order_id} has the same priority key as {self.live[order.key].order_id}")
        if self.dead and order.key in self.keys:  # back after a removal, its dead key not yet compacted away
            self.dead -= 1
        else:
            self.keys.add(order.key)
        self.live[order.key] = order
        self.total += order.qty

    def discard(self, order: Resting) -> None:
        del self.live[order.key]
        self.total -= order.qty
        self.dead += 1
        if self.dead > _COMPACT_MIN and self.dead > len(self.live):
            self.keys = SortedList(self.live)
            self.dead = 0


class Book:
    """Both sides of the book, plus an index from order id to resting order."""

    __slots__ = ("bids", "asks", "_index")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict(operator.neg)  # best (highest) first
        self.asks: SortedDict = SortedDict()  # best (lowest) first
        self._index: dict[str, Resting] = {}

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
        levels = self._side(side)
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level(price)
        order = Resting(order_id, side, price, key, qty)
        level.add(order)
        self._index[order_id] = order

    def remove(self, order_id: str) -> bool:
        """Take an order out; False if it was not resting. O(1) amortised."""
        order = self._index.pop(order_id, None)
        if order is None:
            return False
        levels = self._side(order.side)
        level = levels[order.price]
        level.discard(order)
        if not level.live:
            del levels[order.price]
        return True

    def reduce(self, order_id: str, qty: int) -> None:
        """Lower an order's open quantity by ``qty``, removing it at zero. O(1) amortised."""
        order = self._index[order_id]
        if not 0 < qty <= order.qty:
            raise ValueError(f"cannot reduce {order_id} ({order.qty} open) by {qty}")
        if qty == order.qty:
            self.remove(order_id)
            return
        order.qty -= qty
        self._side(order.side)[order.price].total -= qty

    def best(self, side: Side) -> int | None:
        """Best price on ``side``, or None if it is empty. O(1)."""
        levels = self._side(side)
        if not levels:
            return None
        price: int = levels.peekitem(0)[0]
        return price

    def best_bid(self) -> int | None:
        return self.best(Side.BUY)

    def best_ask(self) -> int | None:
        return self.best(Side.SELL)

    def crossed(self) -> bool:
        """True if some bid is at or above some ask. O(1)."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def depth(self, side: Side, levels: int) -> list[tuple[int, int, int]]:
        """``[(price, total qty, orders)]`` for the best ``levels`` prices. O(levels)."""
        out: list[tuple[int, int, int]] = []
        for price, level in self._side(side).items():
            if len(out) >= levels:
                break
            out.append((price, level.total, len(level.live)))
        return out

    def crossing(self, taker: Side, limit: int | None) -> Iterator[Resting]:
        """Resting orders a ``taker`` order at ``limit`` (None: market) would meet.

        Best price first, then priority.  Lazy: O(1) per order yielded, plus
        the dead keys skipped.
        """
        levels = self.asks if taker is _BUY else self.bids
        for price in levels:  # keys, then a dict look-up: a SortedDict.items() view costs ~1.4us more per walk
            if limit is not None and (price > limit if taker is _BUY else price < limit):
                return
            yield from levels[price]

    def crossing_after(self, taker: Side, limit: int, key: Key) -> Iterator[Resting]:
        """The orders :meth:`crossing` yields whose key is after ``key``: O(log m) a level
        crossed, plus those yielded, where a full walk costs every order crossed."""
        levels = self.asks if taker is _BUY else self.bids
        for price in levels:
            if price > limit if taker is _BUY else price < limit:
                return
            yield from levels[price].after(key)

    def crossed_orders(self) -> Iterator[Resting]:
        """Every resting order in the crossed region (empty if not crossed)."""
        bid, ask = self.best_bid(), self.best_ask()
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
                assert set(level.live) <= set(level.keys), f"level keys at {price}"
                assert len(level.keys) == len(set(level.keys)) == len(level.live) + level.dead, f"keys at {price}"
                for key, order in level.live.items():
                    assert order.key == key and order.qty > 0, order
                    assert order.side is side and order.price == price, order
                    assert self._index.get(order.order_id) is order, order
                    seen += 1
        assert seen == len(self._index), "index holds orders that are not in any level"
