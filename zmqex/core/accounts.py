"""What the OTC desk asks of a node's limits: its traders' balances and the credit it grants other desks.

:class:`Limits` is the whole of it, so the desk (:mod:`zmqex.core.otcdesk`)
needs to know nothing else of them; :class:`NoLimits` is a node with neither.
"""

from __future__ import annotations

from typing import Protocol

from zmqex.core.events import Side


class Limits(Protocol):
    """What the desk asks of the node's trader balances and bilateral credit.

    ``reserve`` and ``credit_reserve`` raise InsufficientBalance / CreditRefused
    (a :class:`~zmqex.errors.Rejected`), changing nothing.
    """

    def check(self, trader: str, side: Side, price: int, qty: int) -> None: ...
    def reserve(self, key: str, trader: str, side: Side, price: int, qty: int) -> None: ...
    def release(self, key: str) -> None: ...
    def traded(self, trader: str, side: Side, price: int, qty: int) -> None: ...
    def credit_room(self, desk: str) -> int | None: ...
    def credit_reserve(self, key: str, desk: str, notional: int) -> None: ...
    def credit_release(self, key: str) -> None: ...
    def credit_traded(self, desk: str, notional: int, ts: int) -> None: ...


class NoLimits:
    """No balances and no credit limits: every trade fits."""

    def check(self, trader: str, side: Side, price: int, qty: int) -> None:
        pass

    def reserve(self, key: str, trader: str, side: Side, price: int, qty: int) -> None:
        pass

    def release(self, key: str) -> None:
        pass

    def traded(self, trader: str, side: Side, price: int, qty: int) -> None:
        pass

    def credit_room(self, desk: str) -> int | None:
        return None

    def credit_reserve(self, key: str, desk: str, notional: int) -> None:
        pass

    def credit_release(self, key: str) -> None:
        pass

    def credit_traded(self, desk: str, notional: int, ts: int) -> None:
        pass
