"""The comparator for the core replica: a minimal price-time book with no replication.

:class:`PlainBook` is what :func:`zmqex.bench.core.bench_core` and
:func:`~zmqex.bench.core.bench_depth` measure the replica against, on the same
stream; it is also the book :func:`zmqex.bench.stream.make_stream` generates
streams against. It must produce the same fills as the replica.
"""

from __future__ import annotations

import operator
from collections import deque
from typing import Any

from sortedcontainers import SortedDict  # untyped (pyproject.toml's mypy overrides): used as Any

from zmqex.core.events import Side, Tif

BUY, IOC = Side.BUY, Tif.IOC


class PlainBook:
    """Price-time priority, matching at the maker's price, no replication.

    ``bids``/``asks``: SortedDict price -> [deque of orders, live count];
    an order is ``[open qty, id, side, price]``; ``index`` id -> order for O(1)
    cancel (a cancelled order is zeroed and skipped when it reaches the front).
    """

    __slots__ = ("bids", "asks", "index", "fills")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict(operator.neg)
        self.asks: SortedDict = SortedDict()
        self.index: dict[Any, list[Any]] = {}  # an order: [open qty, id, side, price]
        self.fills: list[tuple[Any, Any, int, int]] = []  # (maker, taker, price, qty)

    def best(self, side: Side) -> int | None:
        levels = self.bids if side is BUY else self.asks
        return levels.peekitem(0)[0] if levels else None

    def place(self, oid: Any, side: Side, qty: int, price: int, tif: Tif) -> None:
        buy = side is BUY
        opposite = self.asks if buy else self.bids
        index, fills = self.index, self.fills
        while qty and opposite:
            level_price, level = opposite.peekitem(0)
            if (level_price > price) if buy else (level_price < price):
                break
            queue = level[0]
            while qty and queue:
                maker = queue[0]
                if maker[0] == 0:  # cancelled
                    queue.popleft()
                    continue
                traded = maker[0] if maker[0] < qty else qty
                fills.append((maker[1], oid, level_price, traded))
                maker[0] -= traded
                qty -= traded
                if maker[0] == 0:
                    queue.popleft()
                    del index[maker[1]]
                    level[1] -= 1
            if level[1] == 0:
                del opposite[level_price]
        if qty and tif is not IOC:
            levels = self.bids if buy else self.asks
            level = levels.get(price)
            if level is None:
                level = levels[price] = [deque(), 0]
            order = [qty, oid, side, price]
            level[0].append(order)
            level[1] += 1
            index[oid] = order

    def cancel(self, oid: Any) -> bool:
        order = self.index.pop(oid, None)
        if order is None:
            return False
        order[0] = 0
        levels = self.bids if order[2] is BUY else self.asks
        level = levels[order[3]]
        level[1] -= 1
        if level[1] == 0:
            del levels[order[3]]
        return True

    def __len__(self) -> int:
        return len(self.index)
