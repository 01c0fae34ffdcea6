"""ccxt's unified calls as zmqex requests: the half of the exchange shared by the sync and async classes.

Each unified method is a :class:`Request`: the op (for its errors), what to say
to the node through a :class:`zmqex.client.Client` (blocking: the async class
runs it on a thread of its own), and how to read the answer (on the caller's
thread).  Arguments are checked here, before anything is sent.

Amounts come in as ``str``, ``int``, ``Decimal`` or ``float`` (a float as its
shortest text, ``Decimal(str(x))``: ``0.1`` is "0.1") and go out as the
node's exact decimal strings; an amount off the tick (0.01 USD) or lot
(0.00000001 BTC) is refused with InvalidOrder, never rounded.  ``params`` takes
only the keys a method lists: any other raises BadRequest (a misspelt option
is never ignored).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import zmq.auth
from ccxt.base.decimal_to_precision import TICK_SIZE
from ccxt.base.errors import ArgumentsRequired, BadRequest, InvalidOrder

from zmqex import accountwire, protocol
from zmqex.ccxt.errors import translated
from zmqex.ccxt.structures import SYMBOL, Structures
from zmqex.client import Client
from zmqex.core import money
from zmqex.core.money import Amount
from zmqex.errors import DecodeError, InvalidAmount, KeyFileError
from zmqex.errors import ErrorReply, InvalidRequest
from zmqex.protocol import Page

log = logging.getLogger(__name__)

#: ccxt's timeInForce -> the node's tif.  FOK is sent as "fok" whether or not this node has it yet
#: (one that does not answers invalid_request: InvalidOrder).
TIFS = {"GTC": "gtc", "IOC": "ioc", "PO": "post_only", "FOK": "fok"}
#: What create_order takes in ``params``: ccxt's own names, and two of zmqex's (self-trade prevention,
#: the price band of an order that does not rest: docs/protocol.md).
ORDER_PARAMS = ("clientOrderId", "timeInForce", "postOnly", "stp", "protectionBps")


class Request(NamedTuple):
    op: str  # the protocol op: which column of zmqex.ccxt.errors.ERRORS its errors take
    send: Callable[[Client], Any]  # the blocking conversation with the node
    parse: Callable[[Any], Any]  # its result as ccxt's structure


class Requests(Structures):
    """describe(), and a Request for each unified method; the classes send them (``_send``)."""

    #: Where to connect, and as whom: the constructor's config sets these (ccxt sets every key it is given).
    node: str | None = None  # "HOST:PORT"
    trader: str | None = None  # the trader every request acts for (without keys, taken on trust)
    secret: str | None = None  # a keyed node: the trader's NAME.key_secret (ccxt's own credential field)
    nodeKey: str | None = None  # ... and the node's public ID.key
    _client: Client | None = None

    def describe(self) -> Any:
        fok = "fok" in protocol.TIFS  # the node's protocol lists it once fill-or-kill has landed
        return self.deep_extend(super().describe(), {
            "id": "zmqex", "name": "zmqex", "countries": [], "version": str(protocol.VERSION), "pro": True,
            "rateLimit": 0.5,  # ms: a node allows 2,000 requests/s per trader (ccxt's own throttle is not used)
            "precisionMode": TICK_SIZE,
            "requiredCredentials": {"apiKey": False, "secret": False},  # keys only for a keyed node
            "has": {
                "CORS": None, "spot": True, "margin": False, "swap": False, "future": False, "option": False,
                "cancelAllOrders": True, "cancelOrder": True, "createLimitOrder": True, "createMarketOrder": True,
                "createOrder": True, "createPostOnlyOrder": True, "editOrder": True, "fetchBalance": True,
                "fetchCurrencies": False, "fetchMarkets": True, "fetchMyTrades": True, "fetchOpenOrders": True,
                "fetchOrder": True, "fetchOrderBook": True, "fetchTrades": True, "fetchTicker": False,
                "fetchTickers": False, "fetchOHLCV": False, "fetchOrders": False, "fetchClosedOrders": False,
                "fetchTradingFee": False, "withdraw": False, "fetchDepositAddress": False,
            },
            "fees": {"trading": {"maker": self.parse_number("0"), "taker": self.parse_number("0"),
                                 "percentage": True, "tierBased": False}},
            "features": {"spot": {"sandbox": False, "createOrder": {
                "timeInForce": {"IOC": True, "FOK": fok, "PO": True, "GTD": False},
                "marginMode": False, "triggerPrice": False, "hedged": False, "trailing": False, "leverage": False,
                "marketBuyByCost": False, "marketBuyRequiresPrice": False, "selfTradePrevention": True,
                "iceberg": False}}},
        })

    # --- the requests ---------------------------------------------------------------------

    def _fetch_markets_request(self, params: Mapping[str, Any] | None) -> Request:
        check_params(params, ())
        return Request("status", lambda node: node.status(), lambda status: [self._market_structure(status)])

    def _create_order_request(self, symbol: str, type: str, side: str, amount: Any, price: Any,
                              params: Mapping[str, Any] | None) -> Request:
        self._market(symbol)
        options = check_params(params, ORDER_PARAMS)
        if type not in ("limit", "market"):
            raise InvalidOrder(f"zmqex: type {type!r} is not 'limit' or 'market'")
        if side not in protocol.SIDES:
            raise InvalidOrder(f"zmqex: side {side!r} is not 'buy' or 'sell'")
        market = type == "market"
        if not market and price is None:
            raise InvalidOrder("zmqex: a limit order needs a price")
        place: dict[str, Any] = {"side": side, "qty": exact_qty(amount),
                                 "price": None if market else exact_price(price)}  # ccxt ignores a market's price
        if (tif := self._tif(market, options)) is not None:
            place["tif"] = tif
        for name, arg in (("clientOrderId", "client_order_id"), ("stp", "stp"), ("protectionBps", "protection_bps")):
            if options.get(name) is not None:
                place[arg] = options[name]
        log.debug("create_order: place %s", place)
        return Request("place", lambda node: node.place(**place), lambda view: self._order(view, type_=type))

    def _tif(self, market: bool, options: Mapping[str, Any]) -> str | None:
        """The node's tif for ccxt's timeInForce and postOnly; None: the node's default (gtc; a market, ioc)."""
        if self.is_post_only(market, False, options):  # ccxt's: refuses postOnly with IOC/FOK, or on a market
            return "post_only"
        name = options.get("timeInForce")
        if name is None:
            return None
        if not isinstance(name, str) or name.upper() not in TIFS:
            raise InvalidOrder(f"zmqex: timeInForce {name!r} is not one of {', '.join(TIFS)}")
        return TIFS[name.upper()]

    def _cancel_order_request(self, id: str | None, symbol: str | None, params: Mapping[str, Any] | None) -> Request:
        self._market(symbol)
        ref = _order_ref(id, check_params(params, ("clientOrderId",)), "cancelOrder")
        return Request("cancel", lambda node: node.cancel(**ref), self._order)

    def _edit_order_request(self, id: str | None, symbol: str, type: str, side: str, amount: Any, price: Any,
                            params: Mapping[str, Any] | None) -> Request:
        """An amend: a new qty and/or price for the order (its type and side stay what they are)."""
        self._market(symbol)
        ref: dict[str, Any] = _order_ref(id, check_params(params, ("clientOrderId",)), "editOrder")
        if type != "limit":
            raise InvalidOrder("zmqex: only a resting (limit) order can be edited")
        if amount is None and price is None:
            raise ArgumentsRequired("zmqex editOrder() needs an amount or a price")
        if amount is not None:
            ref["qty"] = exact_qty(amount)
        if price is not None:
            ref["price"] = exact_price(price)
        return Request("amend", lambda node: node.amend(**ref), self._order)

    def _fetch_order_request(self, id: str | None, symbol: str | None, params: Mapping[str, Any] | None) -> Request:
        self._market(symbol)
        ref = _order_ref(id, check_params(params, ("clientOrderId",)), "fetchOrder")
        return Request("order", lambda node: node.order(**ref), self._order)

    def _cancel_all_orders_request(self, symbol: str | None, params: Mapping[str, Any] | None) -> Request:
        self._market(symbol)
        side = check_params(params, ("side",)).get("side")
        return Request("cancel_all", lambda node: node.cancel_all(side), self._cancelled)

    def _fetch_open_orders_request(self, symbol: str | None, since: int | None, limit: int | None,
                                   params: Mapping[str, Any] | None) -> Request:
        market = self._market(symbol)
        check_params(params, ())
        return Request("open_orders", lambda node: all_pages(node.open_orders),
                       lambda orders: self.parse_orders(orders, market, since, limit))

    def _fetch_my_trades_request(self, symbol: str | None, since: int | None, limit: int | None,
                                 params: Mapping[str, Any] | None) -> Request:
        """Every page of the trader's fills at this node (O(its fills)), then ccxt's since/limit."""
        market = self._market(symbol)
        check_params(params, ())
        return Request("my_fills", lambda node: all_pages(node.my_fills),
                       lambda fills: self.parse_trades(fills, market, since, limit))

    def _fetch_trades_request(self, symbol: str, since: int | None, limit: int | None,
                              params: Mapping[str, Any] | None) -> Request:
        """The last ``limit`` fills the node knows (default 100) from their position; with ``since``
        (a time, which fills are not ordered by) every page, then ccxt's filter."""
        market = self._market(symbol)
        check_params(params, ())

        def send(node: Client) -> list[Any]:
            if since is not None:
                return all_pages(node.trades)
            want = limit or protocol.DEFAULT_PAGE
            last = node.status().get("fills")
            if type(last) is not int or last < 0:
                raise DecodeError("the node's status has no position of its last fill")
            return all_pages(node.trades, max(0, last - want), want)

        return Request("trades", send, lambda fills: self.parse_trades(fills, market, since, limit))

    def _fetch_order_book_request(self, symbol: str, limit: int | None, params: Mapping[str, Any] | None) -> Request:
        market = self._market(symbol)
        check_params(params, ())
        depth = protocol.MAX_DEPTH if limit is None else limit
        return Request("book", lambda node: node.book(depth), lambda book: self._order_book(book, market["symbol"]))

    def _fetch_balance_request(self, params: Mapping[str, Any] | None) -> Request:
        check_params(params, ())
        return Request("balance", funded_or_open_orders, self._balance)

    # --- sending ------------------------------------------------------------------------------

    def _send(self, request: Request) -> Any:
        """Carry out ``request`` on this exchange's client (made on first use, on the calling thread)."""
        if self._client is None:
            with translated("connect"):
                self._client = self._new_client()
        with translated(request.op):
            return request.send(self._client)

    def _new_client(self) -> Client:
        """A client of the configured node, as the configured trader; a keyed node needs both key files."""
        if not self.node:
            raise ArgumentsRequired("zmqex needs the node to talk to: zmqex({'node': 'HOST:PORT', ...})")
        if (self.secret is None) != (self.nodeKey is None):
            raise KeyFileError("a keyed node needs both 'secret' (the trader's NAME.key_secret) and "
                               "'nodeKey' (the node's public ID.key)")
        for path, private in ((self.secret, True), (self.nodeKey, False)):
            if path is not None:
                try:
                    _, secret_key = zmq.auth.load_certificate(path)
                except (OSError, ValueError) as exc:
                    raise KeyFileError(f"cannot read the key file {path}: {exc}") from None
                if private and secret_key is None:
                    raise KeyFileError(f"{path} holds no secret key")
        return Client(self.node, timeout=self.timeout / 1000, trader=self.trader, secret=self.secret,
                      server=self.nodeKey)

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _market(self, symbol: str | None) -> Any:
        """The market (BTC/USD, also when ``symbol`` is None); BadSymbol for any other."""
        return self.market(SYMBOL if symbol is None else symbol)


# --- helpers --------------------------------------------------------------------------------------


def exact_qty(value: Any) -> str:
    """An amount in BTC as the node's exact string; InvalidOrder if it is off the lot or out of range."""
    return _exact(value, "amount", money.parse_qty, money.format_qty)


def exact_price(value: Any) -> str:
    """A price in USD as the node's exact string; InvalidOrder if it is off the tick or out of range."""
    return _exact(value, "price", money.parse_price, money.format_price)


def _exact(value: Any, what: str, parse: Callable[[Amount], int], form: Callable[[int], str]) -> str:
    if isinstance(value, float):  # its shortest text is what the caller wrote: 0.1 -> "0.1"
        value = Decimal(str(value))
    try:
        return form(parse(value))
    except InvalidAmount as exc:
        raise InvalidOrder(f"zmqex {what}: {exc}") from exc


def check_params(params: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """``params``, if it holds only keys of ``allowed``; else BadRequest naming the others."""
    params = params or {}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BadRequest(f"zmqex takes no params {unknown} here; it takes {list(allowed)}")
    return params


def _order_ref(order_id: str | None, options: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The order an id or a params clientOrderId names (one of them), as Client's keyword arguments."""
    coid = options.get("clientOrderId")
    if (order_id is None) == (coid is None):
        raise ArgumentsRequired(f"zmqex {method}() needs an id or params clientOrderId, one of them")
    return {"order_id": order_id} if order_id is not None else {"client_order_id": coid}


def funded_or_open_orders(node: Client) -> accountwire.BalanceView | list[protocol.OrderView]:
    """The trader's balance; for a trader without an account (or a node older than balances), its
    open orders instead, which say only what they commit."""
    try:
        return node.balance()
    except InvalidRequest:  # no account: an operator never funded this trader
        pass
    except ErrorReply as exc:
        if exc.code != protocol.UNKNOWN_OP:
            raise
    return all_pages(node.open_orders)


def all_pages(fetch: Callable[[int, int], Page], since: int = 0, enough: int | None = None) -> list[Any]:
    """The items of a paged query from cursor ``since``, page after page (until ``enough`` items, if given)."""
    items: list[Any] = []
    while True:
        page = fetch(since, protocol.MAX_PAGE)
        items += page.items
        if not page.more or (enough is not None and len(items) >= enough):
            return items
        if page.next <= since:  # a node whose cursor does not advance would keep us here forever
            raise DecodeError(f"the node's cursor went from {since} to {page.next}")
        since = page.next

