"""What the OTC desk asks of a node's limits: its traders' balances and the credit it grants other desks.

:class:`Limits` is the whole of it, so the desk (:mod:`zmqex.core.otcdesk`)
needs to know nothing else of them; :class:`NoLimits` is a node with neither.
"""

from __future__ import annotations

from typing import Protocol

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


class NoLimits:
    """No balances and no credit limits: every trade fits."""

    def check(self, trader: str, side: Side, price: int, qty: int) -> None:
        pass

    def reserve(self, key: str, trader: str, side: Side, price: int, qty: int) -> None:
        pass

    def release(self, key: str) -> None:
        pass

    def traded(self, trader: str, side: Side, price: int, qty: int, key: str | None = None) -> None:
        pass

    def credit_fit(self, desk: str, price: int, qty: int) -> int:
        return qty

    def credit_reserve(self, key: str, desk: str, price: int, qty: int) -> None:
        pass

    def credit_release(self, key: str) -> None:
        pass

    def credit_traded(self, key: str, desk: str, price: int, qty: int, ts: int) -> None:
        pass
