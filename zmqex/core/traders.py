"""Traders: who placed each of this node's own orders, under which client order id, and how many each has open.

Node-local state: trader names and client order ids never go into an event,
so no other node learns them.  They are kept durably with the order
(:class:`~zmqex.core.outputs.OrderTrader`, persisted by the replica with the
order's event) and come back on restart (:mod:`zmqex.core.restore`).

Self-trade prevention is by trader, and so node-local too: two orders meet
as the same trader's only when one node placed both for one named trader
(:meth:`Traders.same_trader`); each order says what then happens
(:class:`Stp`).

Invariants (``_check``):

* ``open`` holds exactly the own orders still open in ``ledger``, each with
  the trader in ``of`` (``""`` for an order placed without a name);
* ``open_of[t]`` counts the entries of ``open`` whose trader is ``t``, and
  holds no zero counts (a trader per connection would otherwise pile up);
* a client order id names one order of its trader, and that order names it back.

Costs: O(1) per order placed or closed; after a snapshot replaced the ledger
(its fills closed orders without an event here), the next count is
O(own open orders), once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

from zmqex.core.events import parse_order_id
from zmqex.core.ledger import Ledger
from zmqex.core.outputs import OrderTrader


class Stp(str, enum.Enum):
    """Self-trade prevention: what happens when an order meets a resting order of its own trader."""

    CANCEL_NEWEST = "cancel_newest"  # the incoming order's remainder is cancelled (the default)
    CANCEL_OLDEST = "cancel_oldest"  # the resting order is cancelled, the incoming one goes on
    CANCEL_BOTH = "cancel_both"


_NEWEST: Final = Stp.CANCEL_NEWEST  # read once (Final: see core/tif.py)


class Traders:
    def __init__(self) -> None:
        self.of: dict[str, str] = {}  # own order id -> the trader who placed it, if one was named
        self._client: dict[tuple[str, str], str] = {}  # (trader, client order id) -> own order id
        self._client_of: dict[str, str] = {}  # own order id -> its client order id, if it has one
        self._stp: dict[str, Stp] = {}  # own order id -> its mode, where not the default
        self._open: dict[str, str] = {}  # own orders still open -> their trader ("" if none was named)
        self._open_of: dict[str, int] = {}  # trader -> how many entries of _open are theirs
        self._ledger: Ledger | None = None  # _open is exact for this ledger

    def placed(self, oid: str, trader: str, ledger: Ledger, client_order_id: str = "",
               stp: Stp = Stp.CANCEL_NEWEST) -> None:
        if trader or client_order_id or stp is not _NEWEST:  # else nothing to name: an unnamed order
            self._name(OrderTrader(oid, trader, client_order_id, stp.value))
        if self._ledger is not ledger:
            self._sync(ledger)
        self._open[oid] = trader
        self._open_of[trader] = self._open_of.get(trader, 0) + 1

    def restore(self, records: Iterable[OrderTrader]) -> None:
        """Who placed which own order, as persisted; ``recount`` then counts the open ones."""
        for record in records:
            self._name(record)

    def _name(self, record: OrderTrader) -> None:
        oid = record.order
        if record.trader:
            self.of[oid] = record.trader
        if record.client_order_id:
            key = (record.trader, record.client_order_id)
            named = self._client.get(key)
            if named is not None and named != oid:
                # An amend moved the id to a new order: the later order has it, in whatever
                # order the records come back (own order ids grow with our event counter).
                # The old one still shows it, so its trader can tell what its cancel was.
                if parse_order_id(named)[1] > parse_order_id(oid)[1]:
                    oid = named
            self._client[key] = oid
            self._client_of[record.order] = record.client_order_id
            oid = record.order
        stp = Stp(record.stp) if record.stp else Stp.CANCEL_NEWEST
        if stp is not Stp.CANCEL_NEWEST:
            self._stp[oid] = stp

    def client_order(self, trader: str, client_order_id: str) -> str | None:
        """The own order ``trader`` placed under ``client_order_id``, if any. O(1)."""
        return self._client.get((trader, client_order_id))

    def client_order_id(self, oid: str) -> str:
        return self._client_of.get(oid, "")

    def stp(self, oid: str) -> Stp:
        return self._stp.get(oid, Stp.CANCEL_NEWEST)

    def same_trader(self, a: str, b: str) -> bool:
        """Whether own orders ``a`` and ``b`` were placed by one named trader."""
        trader = self.of.get(a)
        return trader is not None and trader == self.of.get(b)

    def may_cancel(self, oid: str, trader: str, operator: bool = False) -> bool:
        """The trader who placed ``oid`` or an operator may; anyone may, for an order placed unnamed."""
        return operator or self.of.get(oid, trader) == trader

    def is_mine(self, oid: str, trader: str, operator: bool = False) -> bool:
        return operator or self.of.get(oid, "") == trader

    def maybe_closed(self, oid: str, ledger: Ledger) -> None:
        """An event that may close own order ``oid`` was applied."""
        if oid in self._open and ledger.orders[oid].open == 0:
            self._close(oid)

    @property
    def any_open(self) -> bool:
        return bool(self._open)

    def open_orders(self, ledger: Ledger, trader: str | None = None) -> int:
        """Own orders still open in ``ledger``: placed by ``trader``, or by anyone (None)."""
        self._sync(ledger)
        return len(self._open) if trader is None else self._open_of.get(trader, 0)

    def open_ids(self, ledger: Ledger, trader: str | None = None) -> list[str]:
        """The own orders still open in ``ledger``, placed by ``trader`` (None: by anyone), oldest first. O(open)."""
        self._sync(ledger)
        return [oid for oid, t in self._open.items() if trader is None or t == trader]

    def recount(self, ledger: Ledger, node_id: str) -> None:
        """Rebuild the open counts from ``ledger`` (after a restore)."""
        self._open.clear()
        self._open_of.clear()
        for state in ledger.orders.values():
            if state.owner == node_id and state.open > 0:
                trader = self._open[state.id] = self.of.get(state.id, "")
                self._open_of[trader] = self._open_of.get(trader, 0) + 1
        self._ledger = ledger

    def _sync(self, ledger: Ledger) -> None:
        if self._ledger is not ledger:
            self._ledger = ledger
            for oid in [o for o in self._open if (s := ledger.orders.get(o)) is None or s.open == 0]:
                self._close(oid)

    def _close(self, oid: str) -> None:
        trader = self._open.pop(oid)
        left = self._open_of[trader] - 1
        if left:
            self._open_of[trader] = left
        else:
            del self._open_of[trader]

    def _check(self, ledger: Ledger, node_id: str) -> None:
        self._sync(ledger)
        assert set(self._open) == {s.id for s in ledger.orders.values() if s.owner == node_id and s.open > 0}
        assert all(self._open[o] == self.of.get(o, "") for o in self._open)
        counts: dict[str, int] = {}
        for trader in self._open.values():
            counts[trader] = counts.get(trader, 0) + 1
        assert counts == self._open_of, "open counts per trader drifted"
        for (trader, cid), oid in self._client.items():
            assert self._client_of.get(oid) == cid and self.of.get(oid, "") == trader, f"{cid} names {oid} wrongly"
        for oid, cid in self._client_of.items():  # an order an amend replaced keeps showing its id
            named = self._client.get((self.of.get(oid, ""), cid))
            assert named is not None and parse_order_id(named)[1] >= parse_order_id(oid)[1], f"{oid} lost {cid}"
