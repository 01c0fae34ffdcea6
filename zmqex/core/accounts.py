"""What the OTC desk asks of a node's limits: its traders' balances and the credit it grants other desks.

:class:`Limits` is the whole of it, so the desk (:mod:`zmqex.core.otcdesk`)
needs to know nothing else of them; :class:`NodeLimits` is a node's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from zmqex.core.balances import Balances
from zmqex.core.credit import Credit
from zmqex.core.events import Side


class Limits(Protocol):
    """What the desk asks of the node's trader balances and bilateral credit.

    Keys name a reservation (an own directed order's id, an accept's request id).
    ``reserve`` raises InsufficientBalance (a :class:`~zmqex.errors.Rejected`),
    changing nothing; ``traded`` moves a trader's balance, paying from what
    ``key`` reserved if one is given; ``credit_fit`` is the most of ``qty`` at
    ``price`` the credit this desk grants ``desk`` lets trade now.
    """

    def check(self, trader: str, side: Side, price: int, qty: int) -> None: ...
    def reserve(self, key: str, trader: str, side: Side, price: int, qty: int) -> None: ...
    def release(self, key: str) -> None: ...
    def traded(self, trader: str, side: Side, price: int, qty: int, key: str | None = None) -> None: ...
    def credit_fit(self, desk: str, price: int, qty: int) -> int: ...
    def credit_reserve(self, key: str, desk: str, price: int, qty: int) -> None: ...
    def credit_release(self, key: str) -> None: ...
    def credit_traded(self, key: str, desk: str, price: int, qty: int, ts: int) -> None: ...


class NodeLimits:
    """A node's trader balances (:mod:`zmqex.core.balances`) and bilateral credit
    (:mod:`zmqex.core.credit`), as the OTC desk asks them; ``wall`` is the node's wall clock."""

    def __init__(self, balances: Balances, credit: Credit, wall: Callable[[], int]) -> None:
        self._balances = balances
        self._credit = credit
        self._wall = wall

    def check(self, trader: str, side: Side, price: int, qty: int) -> None:
        self._balances.check(trader, side, price, qty)

    def reserve(self, key: str, trader: str, side: Side, price: int, qty: int) -> None:
        self._balances.reserve(key, trader, side, price, qty)

    def release(self, key: str) -> None:
        self._balances.release(key)

    def traded(self, trader: str, side: Side, price: int, qty: int, key: str | None = None) -> None:
        self._balances.traded(trader, side, price, qty, key)

    def credit_fit(self, desk: str, price: int, qty: int) -> int:
        return self._credit.fit(desk, price, qty, self._wall())

    def credit_reserve(self, key: str, desk: str, price: int, qty: int) -> None:
        self._credit.reserve(key, desk, price, qty)

    def credit_release(self, key: str) -> None:
        self._credit.release(key)

    def credit_traded(self, key: str, desk: str, price: int, qty: int, ts: int) -> None:
        self._credit.traded(key, desk, price, qty, ts)
