"""What a client sees of an order and its fills: plain dicts, ready for JSON.

An order's view is the replicated state (the same on every replica that has
delivered the same events) plus two figures only the asking node knows:
``pending``, what its own taker side has asked for with the order and not yet
settled (0 for a peer's order), and ``available``, whether the order's owner
is up as far as this node can tell (a down owner's orders are not taken).

Costs: ``order_info`` is O(f) for an order with f fills; ``fill_info`` O(1).
"""

from __future__ import annotations

from typing import Any

from zmqex.core.events import Event, NewOrder, Report, fill_of
from zmqex.core.ledger import Ledger
from zmqex.errors import UnknownOrder


def order_info(ledger: Ledger, oid: str, pending: int, available: bool, client_order_id: str = "") -> dict[str, Any]:
    """The order ``oid`` as a replica with ``ledger`` sees it; raises UnknownOrder if it has not delivered it.

    ``client_order_id`` is node-local: only the owner knows it ("" elsewhere).
    ``ts`` is the owner's wall clock when it placed the order (display only),
    ``reason`` why it was cancelled, if it was.
    """
    state = ledger.orders.get(oid)
    if state is None:
        raise UnknownOrder(f"order {oid} is not known here")
    fills = ledger.fills_of.get(oid)
    event = state.event
    body = event.body
    cancelled = state.cancelled
    return {
        "order_id": oid,
        "owner": state.owner,
        # _value_, the same str as .value: .value is a Python-level property, a tenth of this
        # function's cost, and called from compiled code it costs as much as in pure Python.
        "side": state.side._value_,
        "price": state.price,
        "qty": state.qty,
        "tif": state.tif._value_,
        "status": state.status,
        "filled": state.filled,
        "open": 0 if cancelled is not None else state.qty - state.filled,  # OrderState.open, without a call
        "pending": pending,
        "available": available,
        "ts": event.ts,
        "reason": None if cancelled is None else cancelled._value_,
        "expire_at": body.expire_at if isinstance(body, NewOrder) else None,
        "client_order_id": client_order_id,
        "fills": [fill_info(e, ledger) for e in fills] if fills else [],  # most orders have none
    }


def fill_info(event: Event, ledger: Ledger) -> dict[str, Any]:
    """A fill event as a client sees it; its id is ``origin:seq``, the event's identity.

    ``taker_side`` is the side of the order that took (the maker's other side);
    ``ts`` the maker's owner's wall clock when it granted the fill.  A private
    trade's report is a fill without order ids (``maker`` and ``taker`` "").
    """
    body = event.body
    if isinstance(body, Report):
        return {"id": f"{event.origin}:{event.seq}", "maker": "", "taker": "", "price": body.price, "qty": body.qty,
                "request": "", "taker_side": body.side._value_, "ts": event.ts}
    fill = fill_of(event)
    return {
        "id": f"{event.origin}:{event.seq}",
        "maker": fill.maker,
        "taker": fill.taker,
        "price": fill.price,
        "qty": fill.qty,
        "request": fill.request,
        "taker_side": ledger.orders[fill.taker].side._value_,  # the maker's opposite, without a property; _value_: see order_info
        "ts": event.ts,
    }
