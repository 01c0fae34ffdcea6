"""The node's OTC ops: ``rfq``, ``quote``, ``accept``, ``withdraw``, ``otc``, and ``place`` with ``only``.

:class:`~zmqex.api.ClientApi` hands these ops here; they read their
arguments with :mod:`zmqex.otcwire`, call the replica's OTC commands
(:mod:`zmqex.core.otcdesk`), and answer with its views.  An ``accept`` is
answered later, when the offer's owner has decided: the replica's Reply comes
back with an :class:`AcceptToken`.

Who sees what at this desk: every trader sees the requests for quote asked of
this desk and the offers sent to it (they are the desk's to answer or take);
a trader sees the desk's own requests, quotes and directed orders too, but
trades only its own (an operator: every one).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from zmqex import otcwire, protocol
from zmqex.core.otc import Rfq
from zmqex.core.otcdesk import OtcDesk
from zmqex.core.replica import Replica


class AcceptToken(NamedTuple):
    """What the replica hands back with an ``accept``'s Reply: whom to answer."""

    identity: bytes
    request_id: Any


class OtcOps:
    """The OTC ops of one node's client api; ``caller`` is the api's Caller (identity, trader, operator)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def place_directed(self, caller: Any, order: protocol.Place) -> otcwire.OfferView:
        oid = self.replica.place(order.side, order.qty, order.price, order.tif, trader=caller.trader,
                                 expire_at=order.expire_at, only=order.only)
        return otcwire.offer_view(self.replica.otc.offers[oid], self.replica.id)

    def withdraw_view(self, caller: Any, item_id: str) -> dict[str, Any]:
        item = self.replica.withdraw(item_id, trader=caller.trader, operator=caller.operator)
        if isinstance(item, Rfq):
            return {"rfq": otcwire.rfq_view(item, self.replica.id)}
        return {"offer": otcwire.offer_view(item, self.replica.id)}

    def _rfq(self, caller: Any, request_id: Any, req: dict[str, Any]) -> otcwire.RfqView:
        side = protocol.side(req.get("side"))
        qty = protocol.wire_qty(req.get("qty"))
        desks = otcwire.desks_field(req["desks"]) if "desks" in req else None
        answer_ms = otcwire.ms_field(req.get("answer_ms", 30_000), "answer_ms")
        rfq = self.replica.rfq(side, qty, self.replica.wall() + answer_ms, desks=desks, trader=caller.trader)
        return otcwire.rfq_view(rfq, self.replica.id)

    def _quote(self, caller: Any, request_id: Any, req: dict[str, Any]) -> otcwire.OfferView:
        rfq_id = otcwire.rfq_id_field(req.get("rfq_id"))
        price = protocol.wire_price(req.get("price"))
        qty = protocol.wire_qty(req.get("qty"))
        valid_ms = otcwire.ms_field(req.get("valid_ms"), "valid_ms")
        offer = self.replica.quote(rfq_id, price, qty, self.replica.wall() + valid_ms, trader=caller.trader)
        return otcwire.offer_view(offer, self.replica.id)

    def _accept(self, caller: Any, request_id: Any, req: dict[str, Any]) -> None:
        offer_id = otcwire.offer_id_field(req.get("offer_id"))
        qty = protocol.wire_qty(req.get("qty"))
        disclose = otcwire.disclose_field(req.get("disclose", False))
        self.replica.accept(offer_id, qty, trader=caller.trader, token=AcceptToken(caller.identity, request_id),
                            disclose=disclose)
        return None  # answered when the owner has decided (ClientApi.finish)

    def _withdraw(self, caller: Any, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        return self.withdraw_view(caller, otcwire.item_id_field(req.get("item_id")))

    def _otc(self, caller: Any, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        desk, me = self.replica.otc, self.replica.id
        trades = [t for request, t in desk.trades.items() if sees_trade(desk, request, caller.trader, caller.operator)]
        return {"rfqs": [otcwire.rfq_view(r, me) for r in desk.rfqs.values()],
                "offers": [otcwire.offer_view(o, me) for o in desk.offers.values()],
                "trades": [otcwire.trade_view(t, me) for t in trades]}

    def accepted(self, result: dict[str, Any]) -> otcwire.AcceptView:
        return otcwire.accept_view(result["request"], result["reason"], result["trade"], self.replica.id)


def sees_trade(desk: OtcDesk, request: str, trader: str, operator: bool) -> bool:
    """Whether ``trader`` may see private trade ``request`` of this desk: its own, or an operator any."""
    return operator or desk.trader_of.get(request) == trader
