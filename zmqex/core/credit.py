"""Bilateral credit: how far this desk lets each counterparty desk trade with it.

A desk is a node.  Each desk sets, per counterparty desk, a limit on its open
exposure to that desk, and optionally on what it trades with that desk each UTC
day; a limit under the name :data:`ANY` (``*``) holds for every desk without
one of its own, and a desk with neither is unlimited.  Limits are node-local
(never replicated) and no desk knows another's: each node enforces its own, at
every promise it makes.  The maker desk grants a take, and the hold desk holds,
only as far as its limit for the taker's desk lets it (a refusal's reason is
:data:`CREDIT`); the taker desk and the coordinator ask a maker's owner only as
far as their own limit for that desk lets them.  A limit changed at run time
holds for the next promise at once.

**Exposure** to desk X is the gross notional of the trades between our orders
and X's, both ways, less what the operator marked settled with X (never below
0), plus what is **in flight**: notional promised or asked for and not yet seen
as a fill (our takes' reservations on X's orders, the holds we keep for X's
coordinator, the holds our coordinator asked of X), each at the maker's price.
**Today's** traded notional with X is that of the trades whose fill event's
timestamp falls on today's UTC day by our wall clock, plus what is in flight.
Trades between two of our own orders never count.  ``room`` is what a limit
leaves: ``min(limit - exposure, daily - today)``, never below 0.

**Units.**  Limits and settlements are integer cents.  Notional is kept exact,
as ``price * qty`` (cents per BTC times satoshis: units of 10**-8 cent), never
as a sum of rounded amounts: rounded down per fill (``money.notional``), a desk
at its limit could go on trading in fills worth less than a cent each, every
one of them counted as nothing.  So a grant of ``qty`` at ``price`` fits when
``price * qty <= room`` exactly, and the most that fits is ``room // price``.

Where the figures come from: trades by :meth:`Credit.count`, which
``Replica._deliver`` calls for every fill it delivers, and by :meth:`Credit.traded`
for trades the ledger never sees (a private trade: the caller keys it, and tells
it again after a restart); in-flight amounts by :meth:`Credit.reserve` /
:meth:`Credit.release`, which the desks call as their promises change.  After a
restart, a snapshot or a repair the replica calls :meth:`Credit.rebuild`: trades
from the ledger, in-flight amounts from the desks' own state (their
``credit_pending``).  Limits and settlements come back from their records
(:class:`~zmqex.core.outputs.CreditLimit`, :class:`~zmqex.core.outputs.Settlement`).

A desk whose owner refused us for credit is not asked again for a while
(:meth:`Credit.refused_by`, :meth:`Credit.cooling`): we cannot know its limits,
only that they are spent.  Not durable: after a restart we ask once more.

Invariants (``_check``): the traded totals per desk and per day are those of the
ledger's fills between our orders and another desk's, plus the private trades;
the in-flight totals are the sums of their parts, hold no zeros, and the core
desks' parts are exactly what the desks' own state says is in flight.  A
settlement never exceeds what was traded when it is made.

Costs: O(1) per fill, per change of an amount in flight, per ``room`` or
``fit``; ``rebuild`` and ``_check`` O(fills + amounts in flight).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from zmqex.core.events import Event, Fill, owner_of
from zmqex.core.ledger import Ledger
from zmqex.core.money import SATS_PER_BTC
from zmqex.core.outputs import CreditLimit, Settlement

#: The name under which a limit holds for every desk that has none of its own.
ANY: Final = "*"
#: The reason of a TakeReply or HoldReply refused because the maker's owner gives the taker's desk no more credit.
CREDIT: Final = "credit"
#: The largest limit or settlement, in cents (a 16-digit USD amount: a store's integers hold it).
MAX_CREDIT: Final = 10**18 - 1
#: Exact notional units (price * qty) in one cent.
UNIT: Final = SATS_PER_BTC
DAY_MS: Final = 86_400_000
#: Key prefixes of the core desks' in-flight amounts (``credit_pending`` of taker, holds, coordinator).
#: Another caller of ``reserve`` keys its amounts under a prefix of its own.
TAKE: Final = "take:"
HOLD: Final = "hold:"
ASK: Final = "ask:"
_CORE: Final = (TAKE, HOLD, ASK)

#: One amount in flight, as a desk reports it: (key, desk, price in cents, qty in satoshis).
Pending = tuple[str, str, int, int]
#: A desk's limits: (on open exposure, on today's traded), cents; None: no such limit.
Limits = tuple[int | None, int | None]
_UNLIMITED: Final[Limits] = (None, None)


class Credit:
    """This node's limits per counterparty desk, and what it has traded and has in flight with each."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._limits: dict[str, Limits] = {}  # desk or ANY -> its limits, cents (no (None, None) entries)
        self._settled: dict[str, int] = {}  # desk -> cents marked settled, in all
        self._gross: dict[str, int] = {}  # desk -> exact notional traded with it, ever
        self._days: dict[str, dict[int, int]] = {}  # desk -> UTC day -> exact notional traded that day
        self._private: dict[str, tuple[str, int, int]] = {}  # key -> (desk, exact, ts): trades told by traded()
        self._pending: dict[str, tuple[str, int]] = {}  # key -> (desk, exact notional in flight)
        self._pending_by: dict[str, int] = {}  # desk -> sum of its amounts in flight (no zeros)
        self._cooling: dict[str, int] = {}  # desk -> until when (ms, the replica's now) it is not asked

    # --- limits and settlements (the operator's) ---------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any limit is set: without one, every desk is unlimited and nothing is checked."""
        return bool(self._limits)

    @property
    def engaged(self) -> bool:
        """Whether anything may stop a trade: a limit set, or a desk that refused us lately."""
        return bool(self._limits or self._cooling)

    def set_limit(self, desk: str, limit: int | None, daily: int | None) -> None:
        """Set ``desk``'s limits in cents (None: none); both None removes its own, so ``*``'s hold for it."""
        if limit is None and daily is None:
            self._limits.pop(desk, None)
        else:
            self._limits[desk] = (limit, daily)

    def own_limits(self, desk: str) -> Limits | None:
        """The limits set for ``desk`` itself (or for ``*``), None if none are."""
        return self._limits.get(desk)

    def limits_of(self, desk: str) -> Limits:
        """The limits in force for trades with ``desk``: its own, else ``*``'s, else none; ours never have any."""
        if desk == self.me:
            return _UNLIMITED
        own = self._limits.get(desk)
        if own is None:
            own = self._limits.get(ANY, _UNLIMITED)
        return own

    def settle(self, desk: str, cents: int) -> int:
        """Mark up to ``cents`` of the exposure to ``desk`` from trades as settled; returns how much was.

        Never more than is outstanding (rounded down to the cent), so exposure never
        goes below 0 and a settlement never pays for trades still to come: the
        settled total never exceeds what was traded, which restart recounts.
        """
        outstanding = self._gross.get(desk, 0) - self._settled.get(desk, 0) * UNIT
        done = min(cents, max(0, outstanding) // UNIT)
        if done > 0:
            self._settled[desk] = self._settled.get(desk, 0) + done
        return done

    def restore(self, limits: Iterable[CreditLimit], settlements: Iterable[Settlement]) -> None:
        """Take back the limits (the latest per desk) and settlements made before a restart."""
        for record in limits:
            self.set_limit(record.desk, record.limit, record.daily)
        for settlement in settlements:
            self._settled[settlement.desk] = self._settled.get(settlement.desk, 0) + settlement.cents

    # --- what was traded ------------------------------------------------------------------------

    def count(self, event: Event) -> None:
        """A fill event was delivered here: count it if it is between our order and another desk's. O(1)."""
        body = event.body
        if not isinstance(body, Fill):
            return
        maker, taker = event.origin, owner_of(body.taker)  # a fill's origin owns its maker order
        me = self.me
        if maker == taker or (maker != me and taker != me):
            return
        self._add_trade(taker if maker == me else maker, body.price * body.qty, event.ts)

    def traded(self, key: str, desk: str, price: int, qty: int, ts: int) -> None:
        """A trade with ``desk`` the ledger does not hold (``qty`` at ``price``, at ``ts`` epoch ms).

        Keyed, so telling it twice counts it once; kept across ``rebuild``, not across
        a restart: its caller tells it again when it restores its own records.
        """
        if desk == self.me or key in self._private:
            return
        self._private[key] = (desk, price * qty, ts)
        self._add_trade(desk, price * qty, ts)

    def _add_trade(self, desk: str, amount: int, ts: int) -> None:
        self._gross[desk] = self._gross.get(desk, 0) + amount
        days = self._days.setdefault(desk, {})
        day = ts // DAY_MS
        days[day] = days.get(day, 0) + amount

    # --- what is in flight ------------------------------------------------------------------------

    def reserve(self, key: str, desk: str, price: int, qty: int) -> None:
        """``qty`` at ``price`` is in flight with ``desk`` under ``key`` now (replacing what was; 0 releases it)."""
        if qty <= 0 or desk == self.me:
            self.release(key)
            return
        amount = price * qty
        old = self._pending.get(key)
        if old is not None:
            if old[0] == desk and old[1] == amount:
                return
            self._bump(old[0], -old[1])
        self._pending[key] = (desk, amount)
        self._bump(desk, amount)

    def release(self, key: str) -> None:
        """Nothing is in flight under ``key`` any more."""
        old = self._pending.pop(key, None)
        if old is not None:
            self._bump(old[0], -old[1])

    def _bump(self, desk: str, delta: int) -> None:
        total = self._pending_by.get(desk, 0) + delta
        if total:
            self._pending_by[desk] = total
        else:
            self._pending_by.pop(desk, None)

    # --- room ---------------------------------------------------------------------------------

    def exposure(self, desk: str) -> int:
        """Open exposure to ``desk`` from trades (exact units): traded less settled, at least 0."""
        return max(0, self._gross.get(desk, 0) - self._settled.get(desk, 0) * UNIT)

    def today(self, desk: str, wall: int) -> int:
        """Notional traded with ``desk`` on the UTC day of ``wall`` (exact units)."""
        days = self._days.get(desk)
        return 0 if days is None else days.get(wall // DAY_MS, 0)

    def in_flight(self, desk: str) -> int:
        """Notional in flight with ``desk`` (exact units)."""
        return self._pending_by.get(desk, 0)

    def headroom(self, desk: str, wall: int) -> int | None:
        """What the limits for ``desk`` leave, in exact units (never below 0); None: unlimited. O(1)."""
        limit, daily = self.limits_of(desk)
        if limit is None and daily is None:
            return None
        flying = self._pending_by.get(desk, 0)
        room: int | None = None
        if limit is not None:
            room = limit * UNIT - self.exposure(desk) - flying
        if daily is not None:
            left = daily * UNIT - self.today(desk, wall) - flying
            room = left if room is None else min(room, left)
        assert room is not None
        return max(0, room)

    def room(self, desk: str, wall: int) -> int | None:
        """What the limits for ``desk`` leave, in cents rounded down; None: unlimited."""
        left = self.headroom(desk, wall)
        return None if left is None else left // UNIT

    def fit(self, desk: str, price: int, qty: int, wall: int, extra: int = 0) -> int:
        """The most of ``qty`` at ``price`` that the limits for ``desk`` let trade now (0..qty).

        ``extra``: exact notional the caller is about to promise the desk besides
        (a plan not made yet).  O(1); ``qty`` itself when no limit is set.
        """
        if not self._limits:
            return qty
        left = self.headroom(desk, wall)
        if left is None:
            return qty
        return max(0, min(qty, (left - extra) // price))

    # --- desks that refused us ---------------------------------------------------------------------

    def refused_by(self, desk: str, until: int) -> None:
        """``desk``'s owner refused us for credit: do not ask it again before ``until`` (ms, monotonic)."""
        self._cooling[desk] = max(until, self._cooling.get(desk, 0))

    def cooling(self, desk: str, now: int) -> bool:
        """Whether ``desk`` refused us for credit lately, so we do not ask it now."""
        until = self._cooling.get(desk)
        if until is None:
            return False
        if now >= until:
            del self._cooling[desk]
            return False
        return True

    # --- rebuilding and checking ---------------------------------------------------------------------

    def rebuild(self, ledger: Ledger, pending: Iterable[Pending]) -> None:
        """Count again from scratch: trades from ``ledger`` (and the private ones), the core desks'
        amounts in flight from ``pending``.  After a restart, a snapshot, a repair. O(fills + pending)."""
        self._gross, self._days = self._traded_from(ledger)
        self._pending = {k: v for k, v in self._pending.items() if not k.startswith(_CORE)}
        self._pending_by = {}
        for desk, amount in self._pending.values():
            self._bump(desk, amount)
        for key, desk, price, qty in pending:
            self.reserve(key, desk, price, qty)

    def _traded_from(self, ledger: Ledger) -> tuple[dict[str, int], dict[str, dict[int, int]]]:
        saved = self._gross, self._days
        self._gross, self._days = {}, {}
        try:
            for event in ledger.fills.values():
                self.count(event)
            for desk, amount, ts in self._private.values():
                self._add_trade(desk, amount, ts)
            return self._gross, self._days
        finally:
            self._gross, self._days = saved

    def _check(self, ledger: Ledger, pending: Iterable[Pending]) -> None:
        """Assert the invariants (see the module docstring) against ``ledger`` and the desks' ``pending``."""
        gross, days = self._traded_from(ledger)
        assert gross == self._gross, f"credit: traded totals drifted from the ledger: {self._gross} != {gross}"
        assert days == self._days, "credit: traded per day drifted from the ledger"
        # (A settlement is never more than was traded when it is made, but a repair may take a
        # bad fill away after it: exposure is then 0, never below, and that is no bug of ours.)
        assert all(cents > 0 for cents in self._settled.values()), "credit: an empty settlement is kept"
        by: dict[str, int] = {}
        for desk, amount in self._pending.values():
            assert amount > 0 and desk != self.me, "credit: an amount in flight is not positive, or is ours"
            by[desk] = by.get(desk, 0) + amount
        assert by == self._pending_by, "credit: in-flight totals drifted from their parts"
        core = {k: v for k, v in self._pending.items() if k.startswith(_CORE)}
        expected = {key: (desk, price * qty) for key, desk, price, qty in pending if qty > 0 and desk != self.me}
        assert core == expected, f"credit: in flight {core} but the desks have {expected}"
        assert all(v != _UNLIMITED for v in self._limits.values()), "credit: an empty limit is kept"

    # --- what an operator sees --------------------------------------------------------------------------

    def view(self, wall: int) -> dict[str, Any]:
        """The limits and figures, in cents, for the ``credit`` query: ``*``'s limits, and every desk
        with limits of its own or anything traded or in flight.  Exposure, in flight and today's are
        rounded up to the cent, room down (the figures never flatter a desk).  O(desks)."""
        desks = sorted((set(self._limits) | set(self._gross) | set(self._pending_by)) - {ANY})
        return {
            "default": self._limits.get(ANY),
            "desks": {desk: self.desk_view(desk, wall) for desk in desks},
        }

    def desk_view(self, desk: str, wall: int) -> dict[str, Any]:
        limit, daily = self.limits_of(desk)
        return {
            "limit": limit,
            "daily": daily,
            "exposure": _cents_up(self.exposure(desk)),
            "pending": _cents_up(self.in_flight(desk)),
            "today": _cents_up(self.today(desk, wall)),
            "room": self.room(desk, wall),
        }


class Rooms:
    """What each desk's room leaves while one side of the book is walked best first (the book view).

    ``take`` gives how much of an order ``desk`` shows at ``price`` we could trade
    against, and spends that much of the desk's room, so the levels after it get
    only what is left.  O(1) per order.
    """

    def __init__(self, credit: Credit, wall: int) -> None:
        self._credit = credit
        self._wall = wall
        self._left: dict[str, int | None] = {}

    def take(self, desk: str, price: int, qty: int) -> int:
        if desk not in self._left:
            self._left[desk] = self._credit.headroom(desk, self._wall)
        left = self._left[desk]
        if left is None:
            return qty
        n = min(qty, left // price)
        self._left[desk] = left - n * price
        return n


def _cents_up(amount: int) -> int:
    return -(-amount // UNIT)
