"""``zmqex.ccxt.pro.zmqex``: the exchange for asyncio, with ccxt.pro's ``watch_*`` (ccxt's async ``Exchange``).

    import asyncio
    from zmqex.ccxt.pro import zmqex

    async def main() -> None:
        exchange = zmqex({"node": "127.0.0.1:7001", "trader": "alice"})
        try:
            await exchange.create_order("BTC/USD", "limit", "buy", "0.5", "50000", {"clientOrderId": "b-1"})
            while True:
                for order in await exchange.watch_orders("BTC/USD"):  # the orders that changed
                    print(order["clientOrderId"], order["status"], order["filled"])
        finally:
            await exchange.close()

    asyncio.run(main())

The unified methods are the sync class's requests (zmqex.ccxt.requests), run
one at a time on a thread of their own (the blocking client, never shared
between threads).  ``watch_order_book``, ``watch_trades`` and ``watch_orders``
read the node's ``book``, ``trades`` and ``orders`` streams in the background
(zmqex.ccxt.feeds) into ccxt.pro's own caches, as ccxt.pro does: a call waits
for the next update (returns at once if one came since the last call), then
returns the orders or trades that changed since the last call (ccxt's
``newUpdates``), or the book.  The first call subscribes: what happened before
it is not streamed (fetch_* has it).  A stream that ends raises
NetworkError (ExchangeNotAvailable when the node stops) once; the next call
subscribes again, and what happened in between is read with fetch_open_orders
and fetch_my_trades.  ``watch_order_book``'s ``limit`` is rounded up to a depth
the node streams (1, 5, 10, 25, 50, 100; default 100).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ccxt.async_support.base.exchange import Exchange
from ccxt.async_support.base.ws.cache import ArrayCache, ArrayCacheBySymbolById
from ccxt.base.errors import BadRequest

from zmqex import protocol
from zmqex.ccxt.feeds import Feed
from zmqex.ccxt.requests import Request, Requests, check_params
from zmqex.ccxt.structures import SYMBOL
from zmqex.protocol import BookView, FillView, OrderEvent

#: How many orders and trades ccxt.pro's caches keep, unless options ordersLimit / tradesLimit say otherwise.
CACHE_SIZE = 1000


class zmqex(Requests, Exchange):  # type: ignore[misc]  # mypy: ccxt's Exchange is untyped
    """ccxt's unified API on one zmqex node, async, with ccxt.pro's watch_* (see :mod:`zmqex.ccxt`)."""

    timeout_on_exit = 0  # ccxt's close() gives aiohttp this long to finish; there is no aiohttp here
    orders: Any  # ccxt's attribute: ccxt.pro's cache of the trader's orders (None until the first)

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(dict(config or {}))
        self._rest: ThreadPoolExecutor | None = None
        self._feeds: dict[tuple[str, int | None], Feed] = {}
        self._books: dict[int, Any] = {}  # ccxt.pro's OrderBook, by stream depth
        self._fills_seen: dict[str, list[Any]] = {}  # an open order's fills the orders stream brought

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), {"has": {
            "ws": True, "watchOrderBook": True, "watchTrades": True, "watchOrders": True,
            "watchMyTrades": False, "watchTicker": False, "watchBalance": False, "watchOHLCV": False}})

    async def close(self, clean_instance_data: bool = False) -> None:
        """End the streams, close the node connections and their threads."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()
        if self._rest is not None:
            await asyncio.get_running_loop().run_in_executor(self._rest, self._close_client)
            self._rest.shutdown(wait=False)
            self._rest = None
        await super().close(clean_instance_data)

    async def _do(self, request: Request) -> Any:
        if self._rest is None:
            self._rest = ThreadPoolExecutor(1, thread_name_prefix="zmqex-ccxt-rest")
        return request.parse(await asyncio.get_running_loop().run_in_executor(self._rest, self._send, request))

    # --- the unified methods: see zmqex.ccxt.exchange.zmqex for each -----------------------

    async def fetch_markets(self, params: Mapping[str, Any] | None = None) -> Any:
        return await self._do(self._fetch_markets_request(params))

    async def create_order(self, symbol: str, type: str, side: str, amount: Any, price: Any = None,
                           params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._create_order_request(symbol, type, side, amount, price, params))

    async def cancel_order(self, id: str | None, symbol: str | None = None,
                           params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._cancel_order_request(id, symbol, params))

    async def cancel_all_orders(self, symbol: str | None = None, params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._cancel_all_orders_request(symbol, params))

    async def edit_order(self, id: str | None, symbol: str, type: str, side: str, amount: Any = None,
                         price: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._edit_order_request(id, symbol, type, side, amount, price, params))

    async def fetch_order(self, id: str | None, symbol: str | None = None,
                          params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._fetch_order_request(id, symbol, params))

    async def fetch_open_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                                params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._fetch_open_orders_request(symbol, since, limit, params))

    async def fetch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                              params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._fetch_my_trades_request(symbol, since, limit, params))

    async def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                           params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._fetch_trades_request(symbol, since, limit, params))

    async def fetch_order_book(self, symbol: str, limit: int | None = None,
                               params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._fetch_order_book_request(symbol, limit, params))

    async def fetch_balance(self, params: Mapping[str, Any] | None = None) -> Any:
        await self.load_markets()
        return await self._do(self._fetch_balance_request(params))

    # --- ccxt.pro ------------------------------------------------------------------------------

    async def watch_order_book(self, symbol: str, limit: int | None = None,
                               params: Mapping[str, Any] | None = None) -> Any:
        """The book after the next change (the first call: after the node's snapshot)."""
        await self.load_markets()
        self._market(symbol)
        check_params(params, ())
        want = protocol.MAX_STREAM_DEPTH if limit is None else limit
        depth = next((d for d in protocol.STREAM_DEPTHS if d >= want), None)
        if depth is None:
            raise BadRequest(f"zmqex streams at most {protocol.MAX_STREAM_DEPTH} levels a side, not {limit}")
        await (await self._feed("book", depth, lambda view: self._on_book(view, depth))).next()
        return self._books[depth].limit()

    async def watch_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                           params: Mapping[str, Any] | None = None) -> Any:
        """Every trade (fill) the node learned since the last call, once the next one comes."""
        await self.load_markets()
        self._market(symbol)
        check_params(params, ())
        await (await self._feed("trades", None, self._on_trade)).next()
        trades = self.trades[SYMBOL]
        if self.newUpdates:
            limit = trades.getLimit(SYMBOL, limit)
        return self.filter_by_since_limit(trades, since, limit, "timestamp", True)

    async def watch_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                           params: Mapping[str, Any] | None = None) -> Any:
        """This trader's orders at this node that changed (placed, filled, cancelled) since the last call,
        once the next change comes; each as it stands after its latest change."""
        await self.load_markets()
        self._market(symbol)
        check_params(params, ())
        await (await self._feed("orders", None, self._on_order_event)).next()
        if self.newUpdates:
            limit = self.orders.getLimit(SYMBOL, limit)
        return self.filter_by_symbol_since_limit(self.orders, SYMBOL, since, limit, True)

    async def _feed(self, stream: str, depth: int | None, on_update: Callable[[Any], None]) -> Feed:
        """The running feed of ``stream``; a new one if there is none, or if its end has been reported."""
        feed = self._feeds.get((stream, depth))
        if feed is not None and feed.error is not None and feed.reported:
            await feed.close()
            feed = None
        if feed is None:
            feed = self._feeds[(stream, depth)] = Feed(self._new_client, stream, depth, on_update)
        return feed

    def _on_book(self, view: BookView, depth: int) -> None:
        book = self._books.get(depth)
        if book is None:
            book = self._books[depth] = self.order_book({}, depth)
        snapshot = self._order_book(copy.deepcopy(view), SYMBOL)  # the subscription keeps changing its view
        book.reset(snapshot)
        book["info"] = snapshot["info"]
        self.orderbooks[SYMBOL] = book

    def _on_trade(self, fill: FillView) -> None:
        if SYMBOL not in self.trades:
            self.trades[SYMBOL] = ArrayCache(self.safe_integer(self.options, "tradesLimit", CACHE_SIZE))
        self.trades[SYMBOL].append(self.parse_trade(fill))

    def _on_order_event(self, event: OrderEvent) -> None:
        """An order after a change; its cost is known once the stream has brought every fill of it."""
        update = event["order"]
        fills = self._fills_seen.setdefault(update["order_id"], [])
        if "fill" in event:
            fills.append(event["fill"])
        if self.orders is None:
            self.orders = ArrayCacheBySymbolById(self.safe_integer(self.options, "ordersLimit", CACHE_SIZE))
        self.orders.append(self._order(update, fills))
        if update["status"] not in ("open", "partial"):  # closed: no more fills will come
            del self._fills_seen[update["order_id"]]
