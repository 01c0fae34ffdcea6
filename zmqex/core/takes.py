"""The taker side's promises: reservations of its own orders' quantity.

When a node asks a maker's owner for ``qty`` of its order ``O``, it reserves
``qty`` of ``O`` until the answer is known *and* the fill it announces (if
any) has been applied here.  The invariant that keeps ``O`` from over-filling,
whatever other takes or grants run at the same time, is::

    filled(O) + reserved(O) <= qty(O)

``available(O) = open(O) - reserved(O)`` is what may still be promised.

The same quantities are summed per maker order too (``asked``): what our
takes have asked of it and its fills have not yet shown here.  A taker asks a
maker for no more than ``open(M) - asked(M)``, so a node's concurrent orders
do not all ask the same best maker for the same quantity, of which only one
can get it (under load that was 95% of all takes answered ``closed``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, eq=False)
class PendingTake:
    request: str
    order: str  # our order (the taker)
    maker: str  # their order
    qty: int  # reserved when asked
    sent_at: int  # ms, for retries
    granted: int | None = None  # None while unanswered
    applied: int = 0  # quantity of this request's fill already in our ledger

    @property
    def reserved(self) -> int:
        """What this take still holds back: asked-for or granted, less what has filled."""
        return (self.qty if self.granted is None else self.granted) - self.applied


class Reservations:
    """Outstanding takes by request id, and their total per order. O(1) per call."""

    __slots__ = ("_takes", "_by_order", "_reserved", "_asked")

    def __init__(self) -> None:
        self._takes: dict[str, PendingTake] = {}
        self._by_order: dict[str, str] = {}  # order -> its unanswered request (one at a time)
        self._reserved: dict[str, int] = {}  # our order -> sum of its takes' reserved
        self._asked: dict[str, int] = {}  # their order -> sum of reserved of our takes on it

    def __len__(self) -> int:
        return len(self._takes)

    def __iter__(self):
        return iter(list(self._takes.values()))

    def get(self, request: str) -> PendingTake | None:
        return self._takes.get(request)

    def reserved(self, order: str) -> int:
        return self._reserved.get(order, 0)

    def asked(self, maker: str) -> int:
        return self._asked.get(maker, 0)

    def in_flight(self, order: str) -> PendingTake | None:
        request = self._by_order.get(order)
        return None if request is None else self._takes[request]

    def open(self, take: PendingTake) -> None:
        if take.order in self._by_order:
            raise ValueError(f"{take.order} already has a take in flight")
        self._takes[take.request] = take
        self._by_order[take.order] = take.request
        self._add(take, take.qty)

    def answer(self, take: PendingTake, granted: int) -> None:
        """Record the owner's answer: keep ``granted`` reserved until its fill applies."""
        if take.granted is not None:
            return
        before = take.reserved
        take.granted = granted
        self._add(take, take.reserved - before)
        del self._by_order[take.order]
        self._close_if_done(take)

    def fill_applied(self, take: PendingTake, qty: int) -> None:
        """The fill for ``take`` is in the ledger now, so its quantity counts as filled."""
        take.applied = qty
        self._add(take, -qty)
        self._close_if_done(take)

    def _close_if_done(self, take: PendingTake) -> None:
        if take.granted is not None and take.reserved == 0:
            del self._takes[take.request]

    def _add(self, take: PendingTake, delta: int) -> None:
        for totals, key in ((self._reserved, take.order), (self._asked, take.maker)):
            total = totals.get(key, 0) + delta
            if total:
                totals[key] = total
            else:
                totals.pop(key, None)
