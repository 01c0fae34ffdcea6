"""Traders: who placed each of this node's own orders, and how many each has open.

Node-local state: trader names never go into an event, so no other node
learns them.  The name is kept durably with the order
(:class:`~zmqex.core.outputs.OrderTrader`, persisted by the replica with the
order's event) and comes back on restart (:mod:`zmqex.core.restore`).

Invariants (``_check``):

* ``open`` holds exactly the own orders still open in ``ledger``, each with
  the trader in ``of`` (``""`` for an order placed without a name);
* ``open_of[t]`` counts the entries of ``open`` whose trader is ``t``, and
  holds no zero counts (a trader per connection would otherwise pile up).

Costs: O(1) per order placed or closed; after a snapshot replaced the ledger
(its fills closed orders without an event here), the next count is
O(own open orders), once.
"""

from __future__ import annotations

from zmqex.core.ledger import Ledger


class Traders:
    def __init__(self) -> None:
        self.of: dict[str, str] = {}  # own order id -> the trader who placed it, if one was named
        self._open: dict[str, str] = {}  # own orders still open -> their trader ("" if none was named)
        self._open_of: dict[str, int] = {}  # trader -> how many entries of _open are theirs
        self._ledger: Ledger | None = None  # _open is exact for this ledger

    def placed(self, oid: str, trader: str, ledger: Ledger) -> None:
        if trader:
            self.of[oid] = trader
        self._sync(ledger)
        self._open[oid] = trader
        self._open_of[trader] = self._open_of.get(trader, 0) + 1

    def restore(self, of: dict[str, str]) -> None:
        """Who placed which own order, as persisted; ``recount`` then counts the open ones."""
        self.of.update(of)

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
