"""The client protocol of docs/protocol.md, written once: node and client both import it.

Here and nowhere else: the version, the ops and their arguments, the bounds,
the sides, TIFs, order statuses and cancel reasons (sides, TIFs and reasons are
the core's own enums), replies and stream messages, the error codes with each
one's exception class, and the exact fields of an order, a fill and the book
on the wire.  :mod:`zmqex.api` serves it, :mod:`zmqex.client` speaks it, and
tests/test_protocol.py holds docs/protocol.md to it.  The arguments and views
of two families of ops live beside it, each in a module of its own:
:mod:`zmqex.otcwire` (off the book) and :mod:`zmqex.accountwire` (balances and
credit).

Pure, in the manner of h11: maps in, maps out; no sockets, no clock, no
logging (packing maps into frames is the caller's job).  Two directions:

* building: ``place_args`` and the field readers check a request's
  arguments, the same for a trader's program (client) as for a frame (node),
  raising InvalidRequest or InvalidAmount; ``order_view`` and ``fill_view``
  turn the core's integers into decimal strings and cannot fail.
* reading a node's reply or stream message (``decode_reply``,
  ``parse_order``, ``parse_stream``, ...): the input is untrusted (``Any``);
  anything off raises DecodeError, and an error reply the exception its code
  names.

Costs: O(size of the input) throughout; ``parse_order`` is O(f) for f fills.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, NamedTuple, NotRequired, TypedDict, TypeVar, cast

from zmqex.core import money, wire
from zmqex.core.credit import ANY
from zmqex.core.events import CancelReason, Side, Tif, parse_order_id
from zmqex.core.money import Amount
from zmqex.core.replica import PROTECTION_BPS
from zmqex.core.tif import RULES
from zmqex.core.traders import Stp
from zmqex.errors import (Busy, CreditRefused, DecodeError, ErrorReply, InsufficientBalance, InvalidAmount,
                          InvalidRequest, LimitReached, NotOwner, OrderClosed, RateLimited, Rejected, StoreUnavailable,
                          UnknownOrder, ZmqexError)
from zmqex.otcwire import desks_field

VERSION = 1

#: Each op and the arguments it takes, besides the fields of every request (``COMMON``).
#: A request with any other field is refused (``invalid_request``): a misspelt option is
#: never silently ignored.
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "place": ("side", "qty", "price", "tif", "expire_at", "client_order_id", "ack", "stp", "protection_bps", "only"),
    "cancel": ("order_id", "client_order_id"),
    "amend": ("order_id", "client_order_id", "qty", "price"),
    "cancel_all": ("side",),
    "order": ("order_id", "client_order_id"),
    "open_orders": ("since", "limit"),
    "my_fills": ("since", "limit"),
    "trades": ("since", "limit"),
    "book": ("depth",),
    "status": (),
    "fills": (),
    "subscribe": ("stream", "depth"),
    "unsubscribe": ("subscription",),
    "watch": (),
    "cancel_on_disconnect": ("timeout_ms",),
    "heartbeat": (),
    "rfq": ("side", "qty", "desks", "answer_ms"),
    "quote": ("rfq_id", "price", "qty", "valid_ms"),
    "accept": ("offer_id", "qty", "disclose"),
    "withdraw": ("item_id",),
    "otc": (),
    "fund": ("account", "usd", "btc"),
    "balance": ("account",),
    "set_credit": ("desk", "limit", "daily"),
    "settle": ("desk", "usd"),
    "credit": (),
}
OPS = tuple(ARGUMENTS)
#: The ops that change what a node keeps (an order, or a trader's cancel on disconnect): refused,
#: the rest still answered, while the node cannot write its store (``store_unavailable``) or
#: is not yet ready (``busy``).
WRITES = ("place", "cancel", "amend", "cancel_all", "cancel_on_disconnect", "rfq", "quote", "accept", "withdraw",
          "fund", "set_credit", "settle")
#: The ops of a node's operators: on a node with keys only an operator's connection may send them
#: (``not_owner`` otherwise); on a node without keys, where every name is only claimed, any may.
OPERATOR_OPS = ("set_credit", "settle", "credit")
#: The ``desk`` of ``set_credit`` that names every desk without limits of its own.
ANY_DESK = ANY
#: Fields of every request; ``trader`` may be left out.
COMMON = ("v", "id", "op", "trader")

SIDES = tuple(side.value for side in Side)
TIFS = tuple(tif.value for tif in Tif)
DEFAULT_TIF = Tif.GTC.value
#: The one TIF that needs ``expire_at``, and takes it.
TIF_EXPIRES = next(t.value for t, rule in RULES.items() if rule.expiry)
#: Self-trade prevention: what happens when an order meets a resting one of its own trader.
STPS = tuple(stp.value for stp in Stp)
DEFAULT_STP = Stp.CANCEL_NEWEST.value
#: An order that does not rest (ioc, market) trades within this many basis points of the best
#: opposite price at its arrival: the default, and the most an order may ask for.
DEFAULT_PROTECTION_BPS = PROTECTION_BPS
MAX_PROTECTION_BPS = 10_000
#: What an order's ``status`` may be: zmqex.core.ledger.OrderState.status, which has no enum to derive from.
STATUSES = ("open", "partial", "filled", "cancelled", "expired")
#: Why an order was closed before it filled (an order's ``reason``; null while it is not cancelled).
REASONS = tuple(reason.value for reason in CancelReason)
#: When a ``place`` is answered: once its matching is done (default), or at once.
ACKS = ("done", "accepted")
DEFAULT_ACK = "done"

DEFAULT_DEPTH = 10
#: Most ``book`` levels per side a client asks for: the default node bound (zmqex.limits.Limits.book_depth).
MAX_DEPTH = 1000
#: The depths a ``book`` subscription may have: few, so a node diffs the book a few times per change
#: however many subscribe; the most is the default node bound (zmqex.limits.Limits.stream_depth).
STREAM_DEPTHS = (1, 5, 10, 25, 50, 100)
MAX_STREAM_DEPTH = STREAM_DEPTHS[-1]
#: Items in one page of ``open_orders``, ``my_fills``, ``trades``: the default, and the most (Limits.page).
DEFAULT_PAGE = 100
MAX_PAGE = 1000
#: A subscription that sent nothing for this long gets a heartbeat.
HEARTBEAT_MS = 1000
#: ``cancel_on_disconnect`` timeouts: 0 (off), or COD_MIN_MS..COD_MAX_MS.
COD_MIN_MS = 500
COD_MAX_MS = 600_000
#: Largest request frame a node accepts (libzmq drops the connection past it).
MAX_REQUEST = wire.MAX_FRAME
#: Largest reply a client reads: a long ``fills`` may be far larger than any request.
MAX_REPLY = 1 << 30
#: A request id is an integer of magnitude below MAX_ID, or a string of at most MAX_ID_TEXT characters.
MAX_ID = 2**63
MAX_ID_TEXT = 64
#: Longest ``order_id`` argument a node looks at.
MAX_ORDER_ID = 64
#: Largest ``expire_at`` (epoch ms) and ``since`` cursor: msgpack's signed 64-bit range.
MAX_INT = wire.MAX_INT
TRADER_RULE = "1-32 characters of A-Z a-z 0-9 _ . -"
_TRADER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
CLIENT_ORDER_ID_RULE = "1-36 characters of A-Z a-z 0-9 _ . -"
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9_.-]{1,36}")
#: Amounts on the wire: digits, no leading zero (but "0.5"), a point only between digits, no
#: sign, space or exponent; at most PRICE_PLACES / QTY_PLACES decimals (trailing zeros count).
PRICE_PLACES = 2
QTY_PLACES = 8
_AMOUNT = {places: re.compile(rf"(0|[1-9][0-9]{{0,15}})(\.[0-9]{{1,{places}}})?")
           for places in (PRICE_PLACES, QTY_PLACES)}

#: The streams a client may ``subscribe`` to; ``watch`` is ``trades`` under another name.
STREAMS = ("trades", "orders", "book", "rfqs")
STREAM_TRADES, STREAM_ORDERS, STREAM_BOOK, STREAM_RFQS = STREAMS
#: What happened to an order, in an ``orders`` stream message.
ORDER_EVENTS = ("placed", "fill", "cancel")
#: Which side of a fill an own order was: the resting one (maker) or the one that took (taker).
LIQUIDITY = ("maker", "taker")
#: Why a node ends a subscription the client did not unsubscribe.
ENDS = ("slow_reader", "stopping", "revoked")
END_SLOW, END_STOPPING, END_REVOKED = ENDS
#: The keys of a stream message after ``v``, ``id`` and ``stream``: its ``seq``, then what it carries.
SEQ = "seq"
TRADE, EVENT, ORDER, FILL, SNAPSHOT, CHANGES, HEARTBEAT, END = (
    "trade", "event", "order", "fill", "snapshot", "changes", "heartbeat", "end")
#: The list each paged query's result holds its items in.
PAGES = {"open_orders": "orders", "my_fills": "fills", "trades": "trades"}

#: Error codes with no class of their own: a client raises ErrorReply(code, message) for them.
UNSUPPORTED_VERSION = "unsupported_version"
UNKNOWN_OP = "unknown_op"
DROPPED = "dropped"  # id null, with a ``count``: replies the node dropped for a client that did not read
#: The errors a node answers with a class of their own; each class's ``code`` is its wire code.
ERROR_CLASSES: tuple[type[ZmqexError], ...] = (DecodeError, InvalidAmount, InvalidRequest, UnknownOrder, NotOwner,
                                               OrderClosed, Rejected, Busy, RateLimited, LimitReached,
                                               StoreUnavailable, InsufficientBalance, CreditRefused)
ERRORS: dict[str, type[ZmqexError]] = {cls.code: cls for cls in ERROR_CLASSES}
#: Every code of an error reply to a request (``dropped`` answers none).
ERROR_CODES = (*ERRORS, UNSUPPORTED_VERSION, UNKNOWN_OP)


# --- the views: exactly the fields a node sends, amounts as decimal strings ----------------


class FillView(TypedDict):
    id: str  # the fill event's id, "origin:seq"
    maker: str  # the resting order; its owner granted the fill
    taker: str
    price: str  # the maker's, USD with 2 decimals
    qty: str  # BTC with 8 decimals
    ts: int  # the maker owner's wall clock when it granted the fill, epoch ms (display only)
    taker_side: str  # the side of the taker order: "buy" is a trade at the ask


class MyFillView(FillView):
    """A fill as one of its own orders' trader sees it (``my_fills``, the ``orders`` stream)."""

    order_id: str  # the trader's order
    client_order_id: str  # its client order id, "" if none
    side: str  # the trader's side
    liquidity: str  # "maker" or "taker"


class OrderUpdate(TypedDict):
    """An order without its fills: what an ``orders`` stream message carries."""

    order_id: str
    owner: str  # the node that placed it
    side: str  # one of SIDES
    price: str | None  # None: a market order
    qty: str
    tif: str  # one of TIFS
    status: str  # one of STATUSES
    filled: str
    open: str  # what still rests in the book
    pending: str  # asked of makers by the owner's taker side, not yet settled
    available: bool  # false while the owner is down
    ts: int  # the owner's wall clock when it was placed, epoch ms (display only)
    reason: str | None  # one of REASONS once cancelled or expired, else None
    expire_at: int | None  # a gtd order's expiry, epoch ms
    client_order_id: str  # the placing trader's own id for it; "" if none, or not theirs to see


class OrderView(OrderUpdate):
    fills: list[FillView]
    mine: NotRequired[bool]  # only in the reply to ``order``


#: One book level: [price, qty, number of orders], and [..., tradeable] while the node has credit limits set.
Level = list[str | int]


class Levels(TypedDict):
    bids: list[Level]
    asks: list[Level]


class BookView(TypedDict):
    unavailable: Levels  # levels of orders whose owner is down
    bids: list[Level]
    asks: list[Level]


def fill_view(info: Mapping[str, Any]) -> FillView:
    """A fill as :func:`zmqex.core.queries.fill_info` gives it (integers), as the wire carries it."""
    return {
        "id": info["id"],
        "maker": info["maker"],
        "taker": info["taker"],
        "price": money.format_price(info["price"]),
        "qty": money.format_qty(info["qty"]),
        "ts": info["ts"],
        "taker_side": info["taker_side"],
    }


def my_fill_view(fill: FillView, order: Mapping[str, Any], liquidity: str) -> MyFillView:
    """``fill`` as the trader of ``order`` (an order_info) sees it: one of its orders was the ``liquidity``."""
    return {**fill, "order_id": order["order_id"], "client_order_id": order["client_order_id"],
            "side": order["side"], "liquidity": liquidity}


def order_update(info: Mapping[str, Any], private: bool = True) -> OrderUpdate:
    """An order as :func:`zmqex.core.queries.order_info` gives it, without its fills.

    ``private``: the asker placed it, so it may see its client order id (which is
    otherwise sent as "": a trader's ids are nobody else's business).
    """
    return {
        "order_id": info["order_id"],
        "owner": info["owner"],
        "side": info["side"],
        "price": None if info["price"] is None else money.format_price(info["price"]),
        "qty": money.format_qty(info["qty"]),
        "tif": info["tif"],
        "status": info["status"],
        "filled": money.format_qty(info["filled"]),
        "open": money.format_qty(info["open"]),
        "pending": money.format_qty(info["pending"]),
        "available": info["available"],
        "ts": info["ts"],
        "reason": info["reason"],
        "expire_at": info["expire_at"],
        "client_order_id": info["client_order_id"] if private else "",
    }


def order_view(info: Mapping[str, Any], mine: bool | None = None, private: bool = True) -> OrderView:
    """An order with its fills; ``mine`` (given only in the reply to ``order``) goes last."""
    view = cast(OrderView, {**order_update(info, private), "fills": [fill_view(fill) for fill in info["fills"]]})
    if mine is not None:
        view["mine"] = mine
    return view


def level(price: int, qty: int, orders: int, tradeable: int | None = None) -> Level:
    """One book level from cents, satoshis and a count (a count of 0: the level is gone, in ``changes``);
    with ``tradeable``, the satoshis of it this desk's credit lets it trade against."""
    if tradeable is None:
        return [money.format_price(price), money.format_qty(qty), orders]
    return [money.format_price(price), money.format_qty(qty), orders, money.format_qty(tradeable)]


# --- requests: building them (client) and reading their fields (node) ---------------------


def request(request_id: int | str, op: str, args: Mapping[str, Any], trader: str | None = None) -> dict[str, Any]:
    """A request map; ``args`` must be arguments of ``op`` (InvalidRequest otherwise)."""
    if op not in ARGUMENTS or not set(args) <= set(ARGUMENTS[op]):
        raise InvalidRequest(f"op {op!r:.30} takes {ARGUMENTS.get(op)}, not {sorted(args)}")
    message = {"v": VERSION, "id": request_id, "op": op, **args}
    if trader is not None:
        message["trader"] = trader_name(trader)
    return message


def place_args(side_: Any, qty: Amount, price: Amount | None = None, tif_: Any = DEFAULT_TIF, *,
               client_order_id: str | None = None, expire_at: int | None = None, ack: str = DEFAULT_ACK,
               stp: str = DEFAULT_STP, protection_bps: int | None = None,
               only: list[str] | None = None) -> dict[str, Any]:
    """The arguments of a ``place`` from a program's values (``Decimal`` and ``int`` amounts too).

    Amounts go out as canonical decimal strings.  Checks what the node would,
    so a bad order is refused before it is sent.
    """
    args: dict[str, Any] = {"side": side(side_).value, "tif": tif(tif_).value,
                            "qty": money.format_qty(money.parse_qty(qty))}
    if price is not None:
        args["price"] = money.format_price(money.parse_price(price))
    if client_order_id is not None:
        args["client_order_id"] = client_order_id_field(client_order_id)
    if expire_at is not None:
        args["expire_at"] = expire_at
    if ack != DEFAULT_ACK:
        args["ack"] = ack
    if stp != DEFAULT_STP:
        args["stp"] = stp
    if protection_bps is not None:
        args["protection_bps"] = protection_bps
    if only is not None:
        args["only"] = list(only)
    parse_place(args)  # the node's own checks: post-only without a price, gtd without expire_at, ...
    return args


def request_id(value: Any) -> int | str:
    """A request's ``id``, or DecodeError (answered with id null: the node cannot echo it)."""
    if type(value) is int and abs(value) < MAX_ID or type(value) is str and len(value) <= MAX_ID_TEXT:
        return value
    raise DecodeError(f"request 'id' must be an integer or a string of at most {MAX_ID_TEXT} characters")


def version(value: Any) -> bool:
    """Whether ``v`` is this version: exactly the integer 1 (not true, not 1.0)."""
    return type(value) is int and value == VERSION


def check_fields(request: Mapping[str, Any], op: str) -> None:
    """Refuse a request with a field its op does not take (a typo must not pass unnoticed)."""
    allowed = ARGUMENTS[op]
    for key in request:
        if key not in COMMON and key not in allowed:
            raise InvalidRequest(f"{op} takes no field {wire.brief(key, 30)}; its fields are "
                                 f"{', '.join(allowed) or 'none'} (and {', '.join(COMMON)})")


class Place(NamedTuple):
    side: Side
    qty: int  # satoshis
    price: int | None  # cents; None: a market order
    tif: Tif
    expire_at: int | None  # epoch ms, for a gtd order only
    client_order_id: str  # "" if none
    ack: str  # one of ACKS
    stp: Stp
    protection_bps: int | None  # None: the node's default
    only: tuple[str, ...] = ()  # a directed order: the desks that may trade with it


def parse_place(request: Mapping[str, Any]) -> Place:
    """The arguments of a ``place`` request, checked; amounts in satoshis and cents."""
    side_, tif_ = side(request.get("side")), tif(request.get("tif", DEFAULT_TIF))
    qty = wire_qty(request.get("qty"))
    price = request.get("price")
    cents = None if price is None else wire_price(price)
    if cents is None and RULES[tif_].market is None:
        raise InvalidRequest(f"a {tif_.value} order needs a price")
    expire_at = request.get("expire_at")
    if tif_.value == TIF_EXPIRES:
        if type(expire_at) is not int or not 0 < expire_at <= MAX_INT:
            raise InvalidRequest(f"a {TIF_EXPIRES} order needs expire_at, an integer of epoch milliseconds")
    elif "expire_at" in request:
        raise InvalidRequest(f"only a {TIF_EXPIRES} order takes expire_at")
    coid = request.get("client_order_id")
    ack = request.get("ack", DEFAULT_ACK)
    if type(ack) is not str or ack not in ACKS:
        raise InvalidRequest(f"ack {wire.brief(ack, 20)} is not one of {list(ACKS)}")
    stp = _member(request.get("stp", DEFAULT_STP), Stp, "stp")
    bps = request.get("protection_bps")
    if "protection_bps" in request:
        if type(bps) is not int or not 0 <= bps <= MAX_PROTECTION_BPS:
            raise InvalidRequest(f"protection_bps must be an integer 0..{MAX_PROTECTION_BPS}")
        if RULES[tif_].rests and cents is not None:  # a market order never rests, whatever its tif
            raise InvalidRequest("only an order that does not rest (ioc, or market) takes protection_bps")
    only: tuple[str, ...] = ()
    if "only" in request:
        only = desks_field(request.get("only"), "only")
        if cents is None or tif_ not in (Tif.GTC, Tif.GTD) or coid is not None:
            raise InvalidRequest("a directed order (only) is a gtc or gtd limit order, without a client_order_id")
    return Place(side_, qty, cents, tif_, expire_at, "" if coid is None else client_order_id_field(coid), ack, stp,
                 bps, only)


def wire_price(value: Any) -> int:
    """A price as a request carries it (a decimal string, at most 2 decimals), in cents."""
    return _wire_amount(value, "price", PRICE_PLACES, money.parse_price)


def wire_qty(value: Any) -> int:
    """A quantity as a request carries it (a decimal string, at most 8 decimals), in satoshis."""
    return _wire_amount(value, "quantity", QTY_PLACES, money.parse_qty)


def _wire_amount(value: Any, what: str, places: int, parse: Callable[[Amount], int]) -> int:
    """Strict: a string of the one plain form, and nothing else (not an integer: is 1 one BTC, or one satoshi?)."""
    if type(value) is not str:
        raise InvalidAmount(f"{what} must be a decimal string like \"1.5\", not {type(value).__name__}"
                            f"{' (a float cannot hold money exactly)' if type(value) is float else ''}")
    if _AMOUNT[places].fullmatch(value) is None:
        raise InvalidAmount(f"{what} {wire.brief(value, 40)} must be digits with at most {places} decimals, "
                            "like \"1.5\": no sign, space, exponent, leading zero, or point without digits on "
                            "both sides")
    return parse(value)  # zero, and the range


def side(value: Any) -> Side:
    return _member(value, Side, "side")


def tif(value: Any) -> Tif:
    return _member(value, Tif, "tif")


_E = TypeVar("_E", bound=Enum)


def _member(value: Any, cls: type[_E], what: str) -> _E:
    for member in cls:  # not cls(value): an enum's own ValueError would repr() any value, however deep
        if type(value) is str and member.value == value:
            return member
    raise InvalidRequest(f"{what} {wire.brief(value, 20)} is not one of {[m.value for m in cls]}")


def order_id_field(value: Any) -> str:
    """An ``order_id`` argument: ``NODE:SEQ``, like ``"a:17"``."""
    if type(value) is not str or len(value) > MAX_ORDER_ID:
        raise InvalidRequest(f"order_id must be a string like 'a:17' of at most {MAX_ORDER_ID} characters")
    try:
        parse_order_id(value)
    except DecodeError:
        raise InvalidRequest(f"order_id {wire.brief(value, 40)} is not NODE:SEQ, like 'a:17'") from None
    return value


def client_order_id_field(value: Any) -> str:
    if type(value) is not str or _CLIENT_ORDER_ID.fullmatch(value) is None:
        raise InvalidRequest(f"client_order_id must be {CLIENT_ORDER_ID_RULE}")
    return value


def amend_args(request: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(new total quantity in satoshis, new price in cents) of an ``amend``: either may be absent, not both."""
    qty, price = request.get("qty"), request.get("price")
    if qty is None and price is None:
        raise InvalidRequest("an amend needs qty, price or both")
    return None if qty is None else wire_qty(qty), None if price is None else wire_price(price)


def order_ref(request: Mapping[str, Any]) -> tuple[str, str]:
    """(order_id, client_order_id) of a ``cancel`` or ``order``: exactly one of them, the other ""."""
    if ("order_id" in request) == ("client_order_id" in request):
        raise InvalidRequest("give order_id or client_order_id, one of them")
    if "order_id" in request:
        return order_id_field(request["order_id"]), ""
    return "", client_order_id_field(request["client_order_id"])


def depth_field(value: Any, most: int = MAX_DEPTH) -> int:
    """A ``book`` depth: an integer 1..most (a node passes its own bound)."""
    if type(value) is not int or not 1 <= value <= most:
        raise InvalidRequest(f"depth must be an integer 1..{most}")
    return value


def page_args(request: Mapping[str, Any], most: int = MAX_PAGE) -> tuple[int, int]:
    """(since, limit) of a paged query: a cursor 0..MAX_INT (default 0) and 1..most items (default DEFAULT_PAGE)."""
    since, limit = request.get("since", 0), request.get("limit", min(DEFAULT_PAGE, most))
    if type(since) is not int or not 0 <= since <= MAX_INT:
        raise InvalidRequest("since must be a cursor: an integer 0 or more, from a previous page's next")
    if type(limit) is not int or not 1 <= limit <= most:
        raise InvalidRequest(f"limit must be an integer 1..{most}")
    return since, limit


def page_request(since: int, limit: int) -> dict[str, Any]:
    """The arguments of a paged query from a program's values, checked as a node checks them."""
    args = {"since": since, "limit": limit}
    page_args(args)
    return args


def stream_field(value: Any) -> str:
    if type(value) is not str or value not in STREAMS:
        raise InvalidRequest(f"stream {wire.brief(value, 20)} is not one of {list(STREAMS)}")
    return value


def subscribe_args(request: Mapping[str, Any], most_depth: int = MAX_STREAM_DEPTH) -> tuple[str, int]:
    """(stream, depth) of a ``subscribe``: depth only for ``book``, one of STREAM_DEPTHS up to ``most_depth``
    (default DEFAULT_DEPTH); 0 for the other streams."""
    stream = stream_field(request.get("stream"))
    if stream != STREAM_BOOK:
        if "depth" in request:
            raise InvalidRequest(f"only a {STREAM_BOOK} subscription takes depth")
        return stream, 0
    depth = request.get("depth", DEFAULT_DEPTH)
    allowed = [d for d in STREAM_DEPTHS if d <= most_depth]
    if type(depth) is not int or depth not in allowed:
        raise InvalidRequest(f"a {STREAM_BOOK} subscription's depth must be one of {allowed}")
    return stream, depth


def subscribe_request(stream: str, depth: int | None = None) -> dict[str, Any]:
    """The arguments of a ``subscribe`` from a program's values, checked as a node checks them."""
    args: dict[str, Any] = {"stream": stream}
    if depth is not None:
        args["depth"] = depth
    subscribe_args(args)
    return args


def subscription_field(value: Any) -> int | str:
    """The ``subscription`` argument of ``unsubscribe``: the id of the ``subscribe`` request."""
    try:
        return request_id(value)
    except DecodeError:
        raise InvalidRequest("subscription must be the id of a subscribe request") from None


def cod_timeout(value: Any) -> int:
    """The ``timeout_ms`` of ``cancel_on_disconnect``: 0 (off) or COD_MIN_MS..COD_MAX_MS."""
    if type(value) is not int or not (value == 0 or COD_MIN_MS <= value <= COD_MAX_MS):
        raise InvalidRequest(f"timeout_ms must be 0 (off) or an integer {COD_MIN_MS}..{COD_MAX_MS}")
    return value


def optional_side(request: Mapping[str, Any]) -> Side | None:
    """The ``side`` of ``cancel_all``: one side, or absent for both."""
    return None if "side" not in request else side(request["side"])


def trader_name(value: Any) -> str:
    if not is_trader_name(value):
        raise InvalidRequest(f"trader must be {TRADER_RULE}")
    return value  # type: ignore[no-any-return]  # is_trader_name: a str


def is_trader_name(value: Any) -> bool:
    return type(value) is str and _TRADER_NAME.fullmatch(value) is not None


# --- replies and streams: building them (node) ------------------------------------------------


def ok_reply(request_id: Any, result: Mapping[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": True, "result": result}


def error_reply(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": False, "error": {"code": code, "message": message}}


def dropped_reply(count: int, message: str) -> dict[str, Any]:
    """Sent before the next message a slow reader gets: ``count`` replies to it were dropped."""
    return {"v": VERSION, "id": None, "ok": False, "error": {"code": DROPPED, "count": count, "message": message}}


def page(op: str, items: list[Any], next_: int, more: bool) -> dict[str, Any]:
    """The result of a paged query: its items, the cursor to pass as ``since`` next, whether more wait."""
    return {PAGES[op]: items, "next": next_, "more": more}


def subscribed(stream: str) -> dict[str, Any]:
    return {"subscribed": stream}


def unsubscribed(sub_id: Any) -> dict[str, Any]:
    return {"unsubscribed": sub_id}


def watching() -> dict[str, Any]:
    return {"watching": True}


def cancelled(order_ids: list[str]) -> dict[str, Any]:
    """The result of ``cancel_all``: the orders it cancelled, oldest first."""
    return {"cancelled": order_ids}


def cod(timeout_ms: int) -> dict[str, Any]:
    """The result of ``cancel_on_disconnect`` and ``heartbeat``: the connection's timeout, 0 if off."""
    return {"timeout_ms": timeout_ms}


def stream_message(sub_id: Any, stream: str, seq: int, **body: Any) -> dict[str, Any]:
    """A message of the subscription whose ``subscribe`` request had id ``sub_id``.

    ``body`` is one of: ``trade=fill``; ``event=..., order=update[, fill=my_fill]``;
    ``snapshot=book``; ``changes=book``; ``heartbeat=True``; ``end={"code", "message"}``.
    """
    return {"v": VERSION, "id": sub_id, "stream": stream, SEQ: seq, **body}


def end_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


# --- replies and streams: reading them (client) -----------------------------------------------


def decode_reply(reply: Any) -> dict[str, Any]:
    """The result map of an ok reply; for an error reply, raise the exception its code names.

    ``ERRORS`` gives the class of a code; a code without one raises
    ``ErrorReply(code, message)``.  Anything that is not a reply of this version
    raises DecodeError.  Stream messages are not replies (see ``parse_stream``).
    """
    message = _map(reply, "reply")
    if not version(message.get("v")):
        raise DecodeError(f"reply of protocol version {wire.brief(message.get('v'), 20)}; "
                          f"this client speaks {VERSION}")
    reply_id = message.get("id")
    if reply_id is not None:
        request_id(reply_id)
    ok = message.get("ok")
    if ok is True:
        return _map(message.get("result"), "reply's result")
    if ok is not False:
        raise DecodeError(f"reply 'ok' must be true or false, got {wire.brief(ok, 20)}")
    error = _map(message.get("error"), "reply's error")
    code = wire.need_str(error.get("code"), "error code")
    text = error.get("message")
    if type(text) is not str:
        raise DecodeError(f"error message must be a string, got {type(text).__name__}")
    cls = ERRORS.get(code)
    raise cls(text) if cls is not None else ErrorReply(code, text)


def is_stream(message: Mapping[str, Any]) -> bool:
    """Whether ``message`` is a stream message (after a ``subscribe``), not a reply."""
    return "stream" in message


def is_dropped(message: Mapping[str, Any]) -> bool:
    """Whether ``message`` says the node dropped replies (to requests we no longer wait for)."""
    error = message.get("error")
    return message.get("id") is None and type(error) is dict and error.get("code") == DROPPED


class StreamItem(NamedTuple):
    """One stream message, checked: ``kind`` is ``trade``, ``order``, ``snapshot``, ``changes``,
    ``heartbeat`` or ``end``; ``value`` a FillView, an OrderEvent, a BookView, None, or (code, message)."""

    stream: str
    seq: int
    kind: str
    value: Any


class OrderEvent(TypedDict):
    event: str  # one of ORDER_EVENTS
    order: OrderUpdate
    fill: NotRequired[MyFillView]  # with event "fill"


def parse_stream(message: Mapping[str, Any], sub_id: int | str) -> StreamItem | None:
    """The stream message of subscription ``sub_id``, checked; None for any other message."""
    theirs = message.get("id")
    if "stream" not in message or type(theirs) is not type(sub_id) or theirs != sub_id:
        return None
    stream = message["stream"]
    if type(stream) is not str or stream not in STREAMS:
        raise DecodeError(f"stream {wire.brief(stream, 20)} is not one of {list(STREAMS)}")
    seq = wire.need_int(message.get(SEQ), "stream seq")
    if message.get(HEARTBEAT) is True:
        return StreamItem(stream, seq, HEARTBEAT, None)
    if END in message:
        end = _map(message[END], "stream end")
        code, text = wire.need_str(end.get("code"), "end code"), end.get("message")
        if type(text) is not str:
            raise DecodeError("a stream end's message must be a string")
        return StreamItem(stream, seq, END, (code, text))
    if stream == STREAM_TRADES and TRADE in message:
        return StreamItem(stream, seq, TRADE, parse_fill(message[TRADE]))
    if stream == STREAM_ORDERS and ORDER in message:
        event: OrderEvent = {"event": _one_of(message.get(EVENT), ORDER_EVENTS, "order event"),
                             "order": parse_order_update(message[ORDER])}
        if event["event"] == ORDER_EVENTS[1]:
            event["fill"] = parse_my_fill(message.get(FILL))
        return StreamItem(stream, seq, ORDER, event)
    if stream == STREAM_BOOK and SNAPSHOT in message:
        return StreamItem(stream, seq, SNAPSHOT, parse_book(message[SNAPSHOT]))
    if stream == STREAM_BOOK and CHANGES in message:
        return StreamItem(stream, seq, CHANGES, parse_book(message[CHANGES], changes=True))
    raise DecodeError(f"a {stream} stream message without anything this client knows")


def apply_changes(book: BookView, changes: BookView) -> None:
    """Apply a ``book`` stream's ``changes`` to the book its snapshot began: each level given is
    now as given, and gone when its count is 0.  Levels stay best first."""
    book["bids"] = _applied(book["bids"], changes["bids"], True)
    book["asks"] = _applied(book["asks"], changes["asks"], False)
    down, down_changes = book["unavailable"], changes["unavailable"]
    down["bids"] = _applied(down["bids"], down_changes["bids"], True)
    down["asks"] = _applied(down["asks"], down_changes["asks"], False)


def _applied(levels: list[Level], changes: list[Level], bids: bool) -> list[Level]:
    by_price = {str(level_[0]): level_ for level_ in levels}
    for change in changes:
        if change[2] == 0:
            by_price.pop(str(change[0]), None)
        else:
            by_price[str(change[0])] = change
    return sorted(by_price.values(), key=lambda level_: money.parse_price(str(level_[0])), reverse=bids)


def parse_fill(value: Any) -> FillView:
    """A fill from a node, checked field by field; fields this version does not know are left out.

    A private trade's report is a fill whose ``maker`` and ``taker`` are both "" (docs/protocol.md).
    """
    fill = _map(value, "fill")
    report = fill.get("maker") == "" and fill.get("taker") == ""
    return {
        "id": _ref(fill.get("id"), "fill id"),
        "maker": "" if report else _ref(fill.get("maker"), "fill's maker"),
        "taker": "" if report else _ref(fill.get("taker"), "fill's taker"),
        "price": _price(fill.get("price"), "fill's price"),
        "qty": _qty(fill.get("qty"), "fill's qty"),
        "ts": wire.need_int(fill.get("ts"), "fill's ts"),
        "taker_side": _one_of(fill.get("taker_side"), SIDES, "fill's taker_side"),
    }


def parse_my_fill(value: Any) -> MyFillView:
    """A fill of ``my_fills`` or an ``orders`` stream: a fill and which of the trader's orders it filled."""
    fill = _map(value, "fill")
    coid = fill.get("client_order_id")
    if coid != "":
        coid = _client_order_id(coid, "fill's client_order_id")
    return {**parse_fill(fill), "order_id": _ref(fill.get("order_id"), "fill's order_id"), "client_order_id": coid,
            "side": _one_of(fill.get("side"), SIDES, "fill's side"),
            "liquidity": _one_of(fill.get("liquidity"), LIQUIDITY, "fill's liquidity")}


def parse_order_update(value: Any) -> OrderUpdate:
    """An order without fills, checked as ``parse_fill`` checks a fill."""
    order = _map(value, "order")
    for key in ("price", "reason", "expire_at"):  # null has a meaning; missing is a malformed order
        if key not in order:
            raise DecodeError(f"order has no {key}")
    price, reason, expire_at, coid = order["price"], order["reason"], order["expire_at"], order.get("client_order_id")
    return {
        "order_id": _ref(order.get("order_id"), "order id"),
        "owner": wire.need_node_id(order.get("owner"), "order's owner"),
        "side": _one_of(order.get("side"), SIDES, "order's side"),
        "price": None if price is None else _price(price, "order's price"),
        "qty": _qty(order.get("qty"), "order's qty"),
        "tif": _one_of(order.get("tif"), TIFS, "order's tif"),
        "status": _one_of(order.get("status"), STATUSES, "order's status"),
        "filled": _qty(order.get("filled"), "order's filled", zero=True),
        "open": _qty(order.get("open"), "order's open", zero=True),
        "pending": _qty(order.get("pending"), "order's pending", zero=True),
        "available": _bool(order.get("available"), "order's available"),
        "ts": wire.need_int(order.get("ts"), "order's ts"),
        "reason": None if reason is None else _one_of(reason, REASONS, "order's reason"),
        "expire_at": None if expire_at is None else wire.need_int(expire_at, "order's expire_at"),
        "client_order_id": "" if coid == "" else _client_order_id(coid, "order's client_order_id"),
    }


def parse_order(value: Any) -> OrderView:
    """An order from a node, with its fills; ``mine`` kept when there."""
    view = cast(OrderView, {**parse_order_update(value),
                            "fills": [parse_fill(fill) for fill in wire.need_list(value.get("fills"), "order's fills")]})
    if "mine" in value:
        view["mine"] = _bool(value["mine"], "order's mine")
    return view


def parse_book(value: Any, changes: bool = False) -> BookView:
    """The result of ``book`` (or a book stream's snapshot), every level checked; ``changes``:
    a book stream's changes, where a level with count 0 says the level is gone."""
    book = _map(value, "book")
    unavailable = _map(book.get("unavailable"), "book's unavailable")
    return {
        "unavailable": {"bids": _levels(unavailable.get("bids"), "unavailable bids", changes),
                        "asks": _levels(unavailable.get("asks"), "unavailable asks", changes)},
        "bids": _levels(book.get("bids"), "bids", changes),
        "asks": _levels(book.get("asks"), "asks", changes),
    }


def parse_fills(value: Any) -> list[FillView]:
    """The fills in the result of ``fills`` (its ``truncated``, when there, must be a bool)."""
    result = _map(value, "fills result")
    if "truncated" in result:
        _bool(result["truncated"], "truncated")
    return [parse_fill(fill) for fill in wire.need_list(result.get("fills"), "fills")]


class Page(NamedTuple):
    items: list[Any]  # OrderView, MyFillView or FillView
    next: int  # pass as ``since`` for the next page
    more: bool  # whether the node holds more after ``next``


_PAGE_ITEMS: dict[str, Callable[[Any], Any]] = {"open_orders": parse_order, "my_fills": parse_my_fill,
                                                "trades": parse_fill}


def parse_page(op: str, value: Any) -> Page:
    """The result of a paged query ``op``, every item checked."""
    result = _map(value, f"{op} result")
    items = [_PAGE_ITEMS[op](item) for item in wire.need_list(result.get(PAGES[op]), f"{op} items")]
    return Page(items, wire.need_int(result.get("next"), "next cursor"), _bool(result.get("more"), "more"))


def parse_cancelled(value: Any) -> list[str]:
    """The order ids in the result of ``cancel_all``."""
    result = _map(value, "cancel_all result")
    return [_ref(oid, "cancelled order") for oid in wire.need_list(result.get("cancelled"), "cancelled")]


def parse_cod(value: Any) -> int:
    """The timeout in the result of ``cancel_on_disconnect`` or ``heartbeat``."""
    return wire.need_int(_map(value, "heartbeat result").get("timeout_ms"), "timeout_ms", 0, COD_MAX_MS)


def parse_subscribed(value: Any, stream: str) -> None:
    """The result of ``subscribe`` (or ``watch``, for ``trades``) must say it subscribed to ``stream``."""
    result = _map(value, "subscribe result")
    if result.get("subscribed") != stream and not (stream == STREAM_TRADES and result.get("watching") is True):
        raise DecodeError(f"the node did not confirm a {stream} subscription")


def _map(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError(f"{what} must be a map, got {type(value).__name__}")
    return value


def _ref(value: Any, what: str) -> str:
    """An order or fill id: ``NODE:SEQ``."""
    parse_order_id(value, what)
    return value  # type: ignore[no-any-return]  # parse_order_id accepts only a str


def _client_order_id(value: Any, what: str) -> str:
    if type(value) is not str or _CLIENT_ORDER_ID.fullmatch(value) is None:
        raise DecodeError(f"{what} must be \"\" or {CLIENT_ORDER_ID_RULE}")
    return value


def _one_of(value: Any, choices: tuple[str, ...], what: str) -> str:
    if type(value) is not str or value not in choices:
        raise DecodeError(f"{what} must be one of {', '.join(choices)}, got {wire.brief(value, 20)}")
    return value


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"{what} must be true or false, got {wire.brief(value, 20)}")
    return value


def _price(value: Any, what: str) -> str:
    return _canonical(value, what, money.parse_price, money.format_price)


def _qty(value: Any, what: str, zero: bool = False) -> str:
    if zero and type(value) is str and value == ZERO_QTY:  # filled, open, pending may be nothing
        return value
    return _canonical(value, what, money.parse_qty, money.format_qty)


#: A quantity of nothing, as a node writes it (in a book stream's changes: the level is gone).
ZERO_QTY = money.format_qty(0)


def _canonical(value: Any, what: str, parse: Callable[[Amount], int], form: Callable[[int], str]) -> str:
    """A positive amount exactly as a node writes it: ``form(parse(value)) == value``."""
    if type(value) is str:
        try:
            if form(parse(value)) == value:
                return value
        except InvalidAmount:
            pass
    raise DecodeError(f"{what} must be a decimal string like {form(1)}, got {wire.brief(value, 40)}")


def _levels(value: Any, what: str, changes: bool = False) -> list[Level]:
    levels: list[Level] = []
    least = 0 if changes else 1
    for item in wire.need_list(value, what):
        if (type(item) is not list or len(item) not in (3, 4) or type(item[2]) is not int
                or not least <= item[2] <= wire.MAX_INT):
            raise DecodeError(f"a level of {what} must be [price, qty, number of orders] or [..., tradeable]")
        gone = item[2] == 0
        if gone and (item[1] != ZERO_QTY or len(item) == 4) or not gone and item[1] == ZERO_QTY:
            raise DecodeError(f"a level of {what} has a count of 0 exactly when its qty is 0, and then no tradeable")
        level_: Level = [_price(item[0], f"price in {what}"), item[1] if gone else _qty(item[1], f"qty in {what}"),
                         item[2]]
        if len(item) == 4:
            level_.append(_qty(item[3], f"tradeable in {what}", zero=True))
        levels.append(level_)
    return levels
