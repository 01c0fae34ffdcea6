"""The taker desk's promises: reservations of its own orders' quantity.

When a node asks a maker's owner for ``qty`` of its order ``O``, it reserves
``qty`` of ``O`` until the answer is known *and* the fill it announces (if
any) has been applied here.  The invariant that keeps ``O`` from over-filling,
whatever other takes or grants run at the same time, is::

    filled(O) + reserved(O) <= qty(O)

``available(O) = open(O) - reserved(O)`` is what may still be promised, by
the taker desk (asking) or the maker desk (granting).

The same quantities are summed per maker order too (``asked``): what our
takes have asked of it and its fills have not yet shown here.  A taker asks a
maker for no more than ``open(M) - asked(M)``, so a node's concurrent orders
do not all ask the same best maker for the same quantity, of which only one
can get it (under load that was 95% of all takes answered ``closed``).

A maker's owner reserves its own orders' quantity too, while it *holds* part
of one for an all-or-nothing trade (:mod:`zmqex.core.holds`): ``hold`` and
``unhold`` count that in ``reserved``, so ``filled + reserved <= qty`` covers
both kinds of promise and neither desk can promise what the other did.  The
hold desk keeps the holds themselves; this object keeps their totals.

Invariants (``_check``): the totals are the sums over the reservations (and
the held totals) and hold no zeros; an order has at most one unanswered reservation, and
``in_flight`` names exactly the unanswered ones; a reservation is dropped as
soon as it is answered and its fill applied.

Costs: O(1) per call.
"""

from __future__ import annotations

from collections.abc import Iterator


class Reservation:
    """One take request of ours: ``qty`` of our ``order`` asked of ``maker``'s owner."""

    __slots__ = ("request", "order", "maker", "qty", "sent_at", "granted", "applied")

    def __init__(self, request: str, order: str, maker: str, qty: int, sent_at: int) -> None:
        self.request = request
        self.order = order  # our order, the taker
        self.maker = maker  # their order
        self.qty = qty  # asked for, and reserved until answered
        self.sent_at = sent_at  # ms, for retries
        self.granted: int | None = None  # None while unanswered
        self.applied = 0  # quantity of this request's fill already in our ledger

    @property
    def reserved(self) -> int:
        """What this take still holds back: asked-for or granted, less what has filled."""
        return (self.qty if self.granted is None else self.granted) - self.applied

    def __repr__(self) -> str:
        return (f"Reservation({self.request} {self.order}<-{self.maker} qty={self.qty} "
                f"granted={self.granted} applied={self.applied})")


class Reservations:
    """Outstanding takes by request id, and their totals per order and per maker."""

    __slots__ = ("_takes", "_unanswered", "_reserved", "_asked", "_held")

    def __init__(self) -> None:
        self._takes: dict[str, Reservation] = {}
        self._unanswered: dict[str, Reservation] = {}  # our order -> its take in flight (one at a time)
        self._reserved: dict[str, int] = {}  # our order -> sum of its takes' reserved
        self._asked: dict[str, int] = {}  # their order -> sum of reserved of our takes on it
        self._held: dict[str, int] = {}  # our order -> quantity the hold desk holds of it (also in _reserved)

    def __len__(self) -> int:
        return len(self._takes)

    def __iter__(self) -> Iterator[Reservation]:
        return iter(list(self._takes.values()))  # a copy: callers settle takes as they go

    def get(self, request: str) -> Reservation | None:
        return self._takes.get(request)

    def reserved(self, order: str) -> int:
        return self._reserved.get(order, 0)

    def asked(self, maker: str) -> int:
        return self._asked.get(maker, 0)

    def held(self, order: str) -> int:
        """What of our ``order`` is held for all-or-nothing trades (part of ``reserved``)."""
        return self._held.get(order, 0)

    def held_totals(self) -> dict[str, int]:
        """Held quantity per own order: a copy, for the hold desk's check."""
        return dict(self._held)

    def hold(self, order: str, qty: int) -> None:
        """Hold ``qty`` more of our ``order`` (a maker) for an all-or-nothing trade."""
        _bump(self._held, order, qty)
        _bump(self._reserved, order, qty)

    def unhold(self, order: str, qty: int) -> None:
        """Let go of ``qty`` held of our ``order``: it was filled or released."""
        self.hold(order, -qty)

    def in_flight(self, order: str) -> Reservation | None:
        """The unanswered take of our ``order``, if it has one."""
        return self._unanswered.get(order)

    def open(self, take: Reservation) -> None:
        if take.order in self._unanswered:
            raise ValueError(f"{take.order} already has a take in flight")  # a caller's bug
        self._takes[take.request] = take
        self._unanswered[take.order] = take
        self._add(take, take.qty)

    def answer(self, take: Reservation, granted: int) -> None:
        """Record the owner's answer: keep ``granted`` reserved until its fill applies."""
        if take.granted is not None:
            return
        before = take.reserved
        take.granted = granted
        self._add(take, take.reserved - before)
        del self._unanswered[take.order]
        self._close_if_done(take)

    def fill_applied(self, take: Reservation, qty: int) -> None:
        """The fill for ``take`` is in the ledger now, so its quantity counts as filled."""
        take.applied = qty
        self._add(take, -qty)
        self._close_if_done(take)

    def _close_if_done(self, take: Reservation) -> None:
        if take.granted is not None and take.reserved == 0:
            del self._takes[take.request]

    def _add(self, take: Reservation, delta: int) -> None:
        _bump(self._reserved, take.order, delta)
        _bump(self._asked, take.maker, delta)

    def _check(self) -> None:
        reserved: dict[str, int] = dict(self._held)
        asked: dict[str, int] = {}
        assert all(v > 0 for v in self._held.values()), "a held total is not positive"
        for request, take in self._takes.items():
            assert take.request == request
            assert 0 <= take.applied and 0 <= take.reserved, f"{take} filled more than it holds"
            assert take.granted is None or take.reserved > 0, f"{take} is settled but kept"
            assert take.granted is None or take.granted <= take.qty, f"{take} granted more than it asked"
            reserved[take.order] = reserved.get(take.order, 0) + take.reserved
            asked[take.maker] = asked.get(take.maker, 0) + take.reserved
        assert {k: v for k, v in reserved.items() if v} == self._reserved, "reserved totals drifted"
        assert {k: v for k, v in asked.items() if v} == self._asked, "asked totals drifted"
        unanswered = {t.order: t for t in self._takes.values() if t.granted is None}
        assert unanswered == self._unanswered, "takes in flight drifted"


def _bump(totals: dict[str, int], key: str, delta: int) -> None:
    """Add ``delta`` to ``totals[key]``, keeping no zeros."""
    total = totals.get(key, 0) + delta
    if total:
        totals[key] = total
    else:
        totals.pop(key, None)
