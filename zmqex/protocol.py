"""The client protocol of docs/protocol.md, written once: node and client both import it.

Here and nowhere else: the version, the ops and their arguments, the bounds,
the sides, TIFs and order statuses (sides and TIFs are the core's own enums),
replies and stream messages, the error codes with each one's exception class,
and the exact fields of an order, a fill and the book on the wire.
:mod:`zmqex.api` serves it, :mod:`zmqex.client` speaks it, and
tests/test_protocol.py holds docs/protocol.md to it.

Pure, in the manner of h11: maps in, maps out; no sockets, no clock, no
logging (packing maps into frames is the caller's job).  Two directions:

* building: ``place_args``, ``parse_place`` and the field readers check a
  request's arguments, the same for a trader's program (client) as for a frame
  (node), raising InvalidRequest or InvalidAmount; ``order_view`` and
  ``fill_view`` turn the core's integers into decimal strings and cannot fail.
* reading a node's reply (``decode_reply``, ``parse_order``, ...): the input is
  untrusted (``Any``); anything off raises DecodeError, and an error reply the
  exception its code names.

Costs: O(size of the input) throughout; ``parse_order`` is O(f) for f fills.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, NotRequired, TypedDict, TypeVar

from zmqex.core import money, wire
from zmqex.core.events import Side, Tif, parse_order_id
from zmqex.core.money import Amount
from zmqex.core.tif import RULES
from zmqex.errors import (Busy, DecodeError, ErrorReply, InvalidAmount, InvalidRequest, LimitReached, NotOwner,
                          OrderClosed, RateLimited, Rejected, UnknownOrder, ZmqexError)

VERSION = 1

#: Each op and the arguments it takes, besides the fields of every request (``COMMON``).
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "place": ("side", "qty", "price", "tif", "expire_at"),
    "cancel": ("order_id",),
    "order": ("order_id",),
    "book": ("depth",),
    "status": (),
    "fills": (),
    "watch": (),
}
OPS = tuple(ARGUMENTS)
#: Fields of every request; ``trader`` may be left out.
COMMON = ("v", "id", "op", "trader")

SIDES = tuple(side.value for side in Side)
TIFS = tuple(tif.value for tif in Tif)
DEFAULT_TIF = Tif.GTC.value
#: What an order's ``status`` may be: zmqex.core.ledger.OrderState.status, which has no enum to derive from.
STATUSES = ("open", "partial", "filled", "cancelled", "expired")

DEFAULT_DEPTH = 10
#: Most ``book`` levels per side a client asks for: the default node bound (zmqex.limits.Limits.book_depth).
MAX_DEPTH = 1000
#: Largest request frame a node accepts (libzmq drops the connection past it).
MAX_REQUEST = wire.MAX_FRAME
#: Largest reply a client reads: a long ``fills`` may be far larger than any request.
MAX_REPLY = 1 << 30
#: A request id is an integer of magnitude below MAX_ID, or a string of at most MAX_ID_TEXT characters.
MAX_ID = 2**63
MAX_ID_TEXT = 64
#: Longest ``order_id`` argument a node looks at (the replica then parses it).
MAX_ORDER_ID = 64
TRADER_RULE = "1-32 characters of A-Z a-z 0-9 _ . -"
_TRADER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")

#: The ``stream`` of the messages that follow a ``watch``.
STREAM_FILL = "fill"

#: Error codes with no class of their own: a client raises ErrorReply(code, message) for them.
UNSUPPORTED_VERSION = "unsupported_version"
UNKNOWN_OP = "unknown_op"
DROPPED = "dropped"  # id null, with a ``count``: replies the node dropped for a client that did not read
#: The errors a node answers with a class of their own; each class's ``code`` is its wire code.
ERROR_CLASSES: tuple[type[ZmqexError], ...] = (DecodeError, InvalidAmount, InvalidRequest, UnknownOrder, NotOwner,
                                               OrderClosed, Rejected, Busy, RateLimited, LimitReached)
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


class OrderView(TypedDict):
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
    fills: list[FillView]
    mine: NotRequired[bool]  # only in the reply to ``order``


#: One book level: [price, qty, number of orders].
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
    }


def order_view(info: Mapping[str, Any], mine: bool | None = None) -> OrderView:
    """An order as :func:`zmqex.core.queries.order_info` gives it, as the wire carries it.

    ``mine`` (given only in the reply to ``order``) goes last, as it always has.
    """
    view: OrderView = {
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
        "fills": [fill_view(fill) for fill in info["fills"]],
    }
    if mine is not None:
        view["mine"] = mine
    return view


def level(price: int, qty: int, orders: int) -> Level:
    """One book level from cents, satoshis and a count."""
    return [money.format_price(price), money.format_qty(qty), orders]


# --- requests: building them (client) and reading their fields (node) ---------------------


def request(request_id: int | str, op: str, args: Mapping[str, Any], trader: str | None = None) -> dict[str, Any]:
    """A request map; ``args`` must be arguments of ``op`` (InvalidRequest otherwise)."""
    if op not in ARGUMENTS or not set(args) <= set(ARGUMENTS[op]):
        raise InvalidRequest(f"op {op!r:.30} takes {ARGUMENTS.get(op)}, not {sorted(args)}")
    message = {"v": VERSION, "id": request_id, "op": op, **args}
    if trader is not None:
        message["trader"] = trader_name(trader)
    return message


def place_args(side_: Any, qty: Amount, price: Amount | None = None, tif_: Any = DEFAULT_TIF,
               expire_at: int | None = None) -> dict[str, Any]:
    """The arguments of a ``place`` from a program's values (``Decimal`` too), canonical decimal strings.

    Checks what the node would, so a bad order is refused before it is sent.
    """
    args: dict[str, Any] = {"side": side(side_).value, "tif": tif(tif_).value,
                            "qty": money.format_qty(money.parse_qty(qty))}
    if price is not None:
        args["price"] = money.format_price(money.parse_price(price))
    elif RULES[Tif(args["tif"])].market is None:
        raise InvalidRequest(f"a {args['tif']} order needs a price")
    if expire_at is not None or RULES[Tif(args["tif"])].expiry:
        args["expire_at"] = expire_at_field(expire_at, args["tif"])
    return args


def expire_at_field(value: Any, tif_: str) -> int:
    """``expire_at``: epoch ms, only and always for a tif with an expiry (``gtd``)."""
    if not RULES[tif(tif_)].expiry:
        raise InvalidRequest(f"a {tif_} order takes no expire_at")
    if type(value) is not int or not 0 < value < MAX_ID:
        raise InvalidRequest(f"a {tif_} order needs expire_at: the epoch time in integer milliseconds")
    return value


def request_id(value: Any) -> int | str:
    """A request's ``id``, or DecodeError (answered with id null: the node cannot echo it)."""
    if type(value) is int and abs(value) < MAX_ID or type(value) is str and len(value) <= MAX_ID_TEXT:
        return value
    raise DecodeError(f"request 'id' must be an integer or a string of at most {MAX_ID_TEXT} characters")


def parse_place(request: Mapping[str, Any]) -> tuple[Side, int, int | None, Tif, int | None]:
    """(side, qty in satoshis, price in cents or None for market, tif, expire_at or None) of a ``place`` request."""
    side_, tif_ = side(request.get("side")), tif(request.get("tif", DEFAULT_TIF))
    qty = money.parse_qty(_wire_amount(request.get("qty"), "quantity"))
    price = request.get("price")
    expire_at = None
    if "expire_at" in request or RULES[tif_].expiry:
        expire_at = expire_at_field(request.get("expire_at"), tif_.value)
    return side_, qty, None if price is None else money.parse_price(_wire_amount(price, "price")), tif_, expire_at


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


def _wire_amount(value: Any, what: str) -> Any:
    """Let through what money.parse_* judges: a float too, which it refuses with the reason why."""
    if type(value) not in (str, int, float):
        raise InvalidRequest(f"{what} must be a decimal string, got {type(value).__name__}")
    return value


def order_id_field(value: Any, empty: bool = True) -> str:
    """The ``order_id`` of a request, bounded; the replica parses it (a malformed one: DecodeError).

    A client passes ``empty=False``: an empty id names no order, so it is not sent.
    """
    if type(value) is not str or len(value) > MAX_ORDER_ID or not (empty or value):
        raise InvalidRequest(f"order_id must be a string like 'a:17'{'' if empty else ', not empty'}")
    return value


def depth_field(value: Any, most: int = MAX_DEPTH) -> int:
    """A ``book`` depth: an integer 1..most (a node passes its own bound)."""
    if type(value) is not int or not 1 <= value <= most:
        raise InvalidRequest(f"depth must be an integer 1..{most}")
    return value


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


def fill_message(watch_id: Any, fill: FillView) -> dict[str, Any]:
    """A stream message to a watcher, under the id of its ``watch`` request."""
    return {"v": VERSION, "id": watch_id, "stream": STREAM_FILL, "fill": fill}


# --- replies and streams: reading them (client) -----------------------------------------------


def decode_reply(reply: Any) -> dict[str, Any]:
    """The result map of an ok reply; for an error reply, raise the exception its code names.

    ``ERRORS`` gives the class of a code; a code without one raises
    ``ErrorReply(code, message)``.  Anything that is not a reply of this version
    raises DecodeError.  Stream messages are not replies (see ``stream_fill``).
    """
    message = _map(reply, "reply")
    version = message.get("v")
    if type(version) is not int or version != VERSION:
        raise DecodeError(f"reply of protocol version {wire.brief(version, 20)}; this client speaks {VERSION}")
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
    """Whether ``message`` is a stream message (after a ``watch``), not a reply."""
    return "stream" in message


def is_dropped(message: Mapping[str, Any]) -> bool:
    """Whether ``message`` says the node dropped replies (to requests we no longer wait for)."""
    error = message.get("error")
    return message.get("id") is None and type(error) is dict and error.get("code") == DROPPED


def stream_fill(message: Mapping[str, Any], watch_id: int) -> FillView | None:
    """The fill a stream message under ``watch_id`` carries; None for any other message."""
    theirs = message.get("id")
    if message.get("stream") != STREAM_FILL or type(theirs) is not int or theirs != watch_id:
        return None
    return parse_fill(message.get("fill"))


def parse_fill(value: Any) -> FillView:
    """A fill from a node, checked field by field; fields this version does not know are left out."""
    fill = _map(value, "fill")
    return {
        "id": _ref(fill.get("id"), "fill id"),
        "maker": _ref(fill.get("maker"), "fill's maker"),
        "taker": _ref(fill.get("taker"), "fill's taker"),
        "price": _price(fill.get("price"), "fill's price"),
        "qty": _qty(fill.get("qty"), "fill's qty"),
    }


def parse_order(value: Any) -> OrderView:
    """An order from a node, checked as ``parse_fill`` checks a fill; ``mine`` kept when there."""
    order = _map(value, "order")
    if "price" not in order:  # null is a market order; missing is a malformed one
        raise DecodeError("order has no price (null for a market order)")
    price = order["price"]
    view: OrderView = {
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
        "fills": [parse_fill(fill) for fill in wire.need_list(order.get("fills"), "order's fills")],
    }
    if "mine" in order:
        view["mine"] = _bool(order["mine"], "order's mine")
    return view


def parse_book(value: Any) -> BookView:
    """The result of ``book``, every level checked."""
    book = _map(value, "book")
    unavailable = _map(book.get("unavailable"), "book's unavailable")
    return {
        "unavailable": {"bids": _levels(unavailable.get("bids"), "unavailable bids"),
                        "asks": _levels(unavailable.get("asks"), "unavailable asks")},
        "bids": _levels(book.get("bids"), "bids"),
        "asks": _levels(book.get("asks"), "asks"),
    }


def parse_fills(value: Any) -> list[FillView]:
    """The fills in the result of ``fills`` (its ``truncated``, when there, must be a bool)."""
    result = _map(value, "fills result")
    if "truncated" in result:
        _bool(result["truncated"], "truncated")
    return [parse_fill(fill) for fill in wire.need_list(result.get("fills"), "fills")]


def _map(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError(f"{what} must be a map, got {type(value).__name__}")
    return value


def _ref(value: Any, what: str) -> str:
    """An order or fill id: ``NODE:SEQ``."""
    parse_order_id(value, what)
    return value  # type: ignore[no-any-return]  # parse_order_id accepts only a str


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
    if zero and type(value) is str and value == _ZERO_QTY:  # filled, open, pending may be nothing
        return value
    return _canonical(value, what, money.parse_qty, money.format_qty)


_ZERO_QTY = money.format_qty(0)


def _canonical(value: Any, what: str, parse: Callable[[Amount], int], form: Callable[[int], str]) -> str:
    """A positive amount exactly as a node writes it: ``form(parse(value)) == value``."""
    if type(value) is str:
        try:
            if form(parse(value)) == value:
                return value
        except InvalidAmount:
            pass
    raise DecodeError(f"{what} must be a decimal string like {form(1)}, got {wire.brief(value, 40)}")


def _levels(value: Any, what: str) -> list[Level]:
    levels: list[Level] = []
    for item in wire.need_list(value, what):
        if type(item) is not list or len(item) != 3 or type(item[2]) is not int or not 0 < item[2] <= wire.MAX_INT:
            raise DecodeError(f"a level of {what} must be [price, qty, number of orders]")
        levels.append([_price(item[0], f"price in {what}"), _qty(item[1], f"qty in {what}"), item[2]])
    return levels
