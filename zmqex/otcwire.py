"""The client protocol's OTC part: requests for quote, quotes, directed orders, private trades.

:mod:`zmqex.protocol` lists the ops, their arguments and the streams; this
module holds what is OTC's own, in the same manner (pure, maps in and maps
out): reading the arguments of ``rfq``, ``quote``, ``accept``, ``withdraw``
and ``place``'s ``only``, and the views of an RFQ, an offer and a private
trade as the wire carries them (amounts as decimal strings), with strict
parsers for clients.  docs/protocol.md ("Off the book") is what a client sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from zmqex.core import money, wire
from zmqex.core.otc import ACCEPT, DIRECTED, MAX_DESKS, QUOTE, RFQ, Offer, Rfq, Trade, parse_otc_id
from zmqex.core.otcdesk import REASONS
from zmqex.errors import DecodeError, InvalidRequest

#: Bounds of ``answer_ms`` (an RFQ) and ``valid_ms`` (a quote): how long from now, in ms.
MIN_MS, MAX_MS = 100, 24 * 3600 * 1000
#: Why an offer's owner refused an accept (``reason`` of an accept's reply).
ACCEPT_REASONS = REASONS
OTC_STATUSES = ("open", "filled", "withdrawn", "expired")
OFFER_KINDS = ("quote", "directed")
#: What an ``rfqs`` stream message carries: one of these keys.
RFQS_ITEMS = ("rfq", "offer", "trade")
RFQ_ITEM, OFFER_ITEM, TRADE_ITEM = RFQS_ITEMS


class RfqView(TypedDict):
    rfq_id: str
    desk: str  # who asks
    side: str  # what it wants to do
    qty: str
    accepted: str  # traded so far on its quotes
    answer_by: int  # epoch ms
    status: str
    mine: bool  # asked by this desk
    desks: list[str]  # whom it asks (shown to the desk that asks; [] to the others)


class OfferView(TypedDict):
    offer_id: str
    kind: str  # "quote" or "directed"
    desk: str  # the owner: the one desk that grants trades against it
    side: str  # the owner's side
    price: str
    qty: str
    filled: str
    open: str
    valid_until: int | None  # epoch ms
    rfq_id: str  # the request a quote answers, "" for a directed order
    status: str
    mine: bool
    only: list[str]  # the desks that may trade with it (shown to its owner; [] to the others)


class TradeView(TypedDict):
    request: str  # the accept's id
    offer_id: str
    counterparty: str  # the other desk
    side: str  # this desk's side
    price: str
    qty: str
    ts: int  # epoch ms, the owner's clock when it granted the trade
    report_id: str  # the public report on the tape, "origin:seq"


class AcceptView(TypedDict):
    request: str
    traded: bool
    reason: str | None  # why not, one of ACCEPT_REASONS
    trade: TradeView | None


# --- building ----------------------------------------------------------------------------------


def rfq_view(rfq: Rfq, me: str) -> RfqView:
    mine = rfq.owner == me
    return {"rfq_id": rfq.id, "desk": rfq.owner, "side": rfq.side.value, "qty": money.format_qty(rfq.qty),
            "accepted": money.format_qty(rfq.accepted), "answer_by": rfq.answer_by, "status": rfq.status.value,
            "mine": mine, "desks": list(rfq.desks) if mine else []}


def offer_view(offer: Offer, me: str) -> OfferView:
    mine = offer.owner == me
    return {"offer_id": offer.id, "kind": "quote" if offer.rfq else "directed", "desk": offer.owner,
            "side": offer.side.value, "price": money.format_price(offer.price), "qty": money.format_qty(offer.qty),
            "filled": money.format_qty(offer.filled), "open": money.format_qty(offer.open),
            "valid_until": offer.valid_until, "rfq_id": offer.rfq, "status": offer.status.value, "mine": mine,
            "only": list(offer.only) if mine else []}


def trade_view(trade: Trade, me: str) -> TradeView:
    taker = trade.taker == me
    return {"request": trade.request, "offer_id": trade.offer, "counterparty": trade.maker if taker else trade.taker,
            "side": (trade.side if taker else trade.side.opposite).value, "price": money.format_price(trade.price),
            "qty": money.format_qty(trade.qty), "ts": trade.ts, "report_id": trade.report}


def accept_view(request: str, reason: str, trade: Trade | None, me: str) -> AcceptView:
    return {"request": request, "traded": trade is not None, "reason": reason or None,
            "trade": None if trade is None else trade_view(trade, me)}


# --- reading arguments (node and client alike) -----------------------------------------------------


def desks_field(value: Any, what: str = "desks") -> tuple[str, ...]:
    if type(value) is not list or not 0 < len(value) <= MAX_DESKS:
        raise InvalidRequest(f"{what} must be a list of 1..{MAX_DESKS} node ids")
    for desk in value:
        if not wire.is_node_id(desk):
            raise InvalidRequest(f"{what}: {wire.brief(desk, 40)} is not a node id")
    if len(set(value)) != len(value):
        raise InvalidRequest(f"{what} names a desk twice")
    return tuple(value)


def ms_field(value: Any, what: str) -> int:
    if type(value) is not int or not MIN_MS <= value <= MAX_MS:
        raise InvalidRequest(f"{what} must be an integer of milliseconds, {MIN_MS}..{MAX_MS}")
    return value


def otc_id_field(value: Any, kinds: str, what: str) -> str:
    try:
        parse_otc_id(value, kinds, what)
    except DecodeError as exc:
        raise InvalidRequest(str(exc)) from None
    return str(value)


def offer_id_field(value: Any) -> str:
    return otc_id_field(value, DIRECTED + QUOTE, "offer_id")


def rfq_id_field(value: Any) -> str:
    return otc_id_field(value, RFQ, "rfq_id")


def item_id_field(value: Any) -> str:
    return otc_id_field(value, DIRECTED + QUOTE + RFQ, "item_id")


def disclose_field(value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidRequest("disclose must be true or false")
    return value


# --- reading a node's answers (clients) -----------------------------------------------------------


def parse_rfq(value: Any) -> RfqView:
    m = _map(value, "rfq")
    parse_otc_id(m.get("rfq_id"), RFQ, "rfq_id")
    _fields(m, RfqView, "rfq")
    return m  # type: ignore[return-value]


def parse_offer(value: Any) -> OfferView:
    m = _map(value, "offer")
    parse_otc_id(m.get("offer_id"), DIRECTED + QUOTE, "offer_id")
    _fields(m, OfferView, "offer")
    if m["kind"] not in OFFER_KINDS or m["status"] not in OTC_STATUSES:
        raise DecodeError("offer kind or status is not one of the protocol's")
    for key in ("qty", "filled", "open"):
        _amount(m[key], key, money.parse_qty, zero=key != "qty")
    _amount(m["price"], "price", money.parse_price)
    return m  # type: ignore[return-value]


def parse_trade(value: Any) -> TradeView:
    m = _map(value, "trade")
    parse_otc_id(m.get("request"), ACCEPT, "request")
    _fields(m, TradeView, "trade")
    _amount(m["qty"], "qty", money.parse_qty)
    _amount(m["price"], "price", money.parse_price)
    return m  # type: ignore[return-value]


def parse_accept(value: Any) -> AcceptView:
    m = _map(value, "accept")
    _fields(m, AcceptView, "accept")
    if type(m["traded"]) is not bool or (m["traded"] != (m["trade"] is not None)):
        raise DecodeError("an accept's traded and trade disagree")
    if m["reason"] is not None and m["reason"] not in ACCEPT_REASONS:
        raise DecodeError(f"accept reason {wire.brief(m['reason'], 30)} is not one of the protocol's")
    if m["trade"] is not None:
        parse_trade(m["trade"])
    return m  # type: ignore[return-value]


def parse_otc(value: Any) -> dict[str, list[Any]]:
    m = _map(value, "otc")
    return {"rfqs": [parse_rfq(v) for v in wire.need_list(m.get("rfqs"), "rfqs")],
            "offers": [parse_offer(v) for v in wire.need_list(m.get("offers"), "offers")],
            "trades": [parse_trade(v) for v in wire.need_list(m.get("trades"), "trades")]}


def _map(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError(f"{what} must be a map, got {type(value).__name__}")
    return value


def _fields(m: Mapping[str, Any], view: type, what: str) -> None:
    missing = set(view.__annotations__) - set(m)
    if missing:
        raise DecodeError(f"{what} lacks {sorted(missing)}")


def _amount(value: Any, what: str, parse: Any, zero: bool = False) -> None:
    if type(value) is not str:
        raise DecodeError(f"{what} must be a decimal string")
    if zero and value in ("0", "0.00000000"):
        return
    try:
        parse(value)
    except Exception as exc:
        raise DecodeError(f"{what} {wire.brief(value, 30)} is not an amount: {exc}") from None
