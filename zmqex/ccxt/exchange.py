"""``zmqex.ccxt.zmqex``: a zmqex node as a ccxt exchange, blocking (ccxt's sync ``Exchange``).

    from zmqex.ccxt import zmqex

    exchange = zmqex({"node": "127.0.0.1:7001", "trader": "alice"})  # keyed: + "secret", "nodeKey" (paths)
    exchange.load_markets()                                           # one market, BTC/USD
    order = exchange.create_order("BTC/USD", "limit", "buy", "0.5", "50000.00", {"clientOrderId": "b-1"})
    print(order["status"], order["filled"], order["info"]["filled"])  # a float, and the node's exact string

Each method is one :class:`~zmqex.ccxt.requests.Request` carried out on one
:class:`zmqex.client.Client` (made on first use; ``timeout`` is ccxt's, in ms).
Not thread-safe, as the client is not: one exchange per thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccxt.base.exchange import Exchange

from zmqex.ccxt.requests import Request, Requests


class zmqex(Requests, Exchange):  # type: ignore[misc]  # mypy: ccxt's Exchange is untyped
    """ccxt's unified API on one zmqex node (see :mod:`zmqex.ccxt`)."""

    def close(self, clean_instance_data: bool = False) -> None:
        """Close the connection to the node (and ccxt's HTTP session, which is never used)."""
        self._close_client()
        super().close(clean_instance_data)

    def _do(self, request: Request) -> Any:
        return request.parse(self._send(request))

    def fetch_markets(self, params: Mapping[str, Any] | None = None) -> Any:
        """The one market, BTC/USD; asks the node's status (so a node that does not answer fails here)."""
        return self._do(self._fetch_markets_request(params))

    def create_order(self, symbol: str, type: str, side: str, amount: Any, price: Any = None,
                     params: Mapping[str, Any] | None = None) -> Any:
        """Place an order; returns it once its matching is done, with every fill it got.

        ``params``: ``clientOrderId`` (a retry with the same id places nothing new),
        ``timeInForce`` (GTC, IOC, PO, FOK), ``postOnly``, and zmqex's ``stp`` and ``protectionBps``.
        """
        self.load_markets()
        return self._do(self._create_order_request(symbol, type, side, amount, price, params))

    def cancel_order(self, id: str | None, symbol: str | None = None, params: Mapping[str, Any] | None = None) -> Any:
        """Cancel an order by id (or by ``params`` clientOrderId, with id None); the order after."""
        self.load_markets()
        return self._do(self._cancel_order_request(id, symbol, params))

    def cancel_all_orders(self, symbol: str | None = None, params: Mapping[str, Any] | None = None) -> Any:
        """Cancel every open order of this trader at this node (``params`` side: one side); ccxt orders naming them."""
        self.load_markets()
        return self._do(self._cancel_all_orders_request(symbol, params))

    def edit_order(self, id: str | None, symbol: str, type: str, side: str, amount: Any = None, price: Any = None,
                   params: Mapping[str, Any] | None = None) -> Any:
        """Amend: a lower amount keeps the order; a new price or more amount replaces it (a new id, the same
        clientOrderId).  Returns the order after."""
        self.load_markets()
        return self._do(self._edit_order_request(id, symbol, type, side, amount, price, params))

    def fetch_order(self, id: str | None, symbol: str | None = None, params: Mapping[str, Any] | None = None) -> Any:
        """An order as this node's replica knows it, by id (or ``params`` clientOrderId)."""
        self.load_markets()
        return self._do(self._fetch_order_request(id, symbol, params))

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                          params: Mapping[str, Any] | None = None) -> Any:
        """This trader's open orders at this node."""
        self.load_markets()
        return self._do(self._fetch_open_orders_request(symbol, since, limit, params))

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                        params: Mapping[str, Any] | None = None) -> Any:
        """The fills of this trader's orders at this node."""
        self.load_markets()
        return self._do(self._fetch_my_trades_request(symbol, since, limit, params))

    def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                     params: Mapping[str, Any] | None = None) -> Any:
        """Fills the node knows, every trader's."""
        self.load_markets()
        return self._do(self._fetch_trades_request(symbol, since, limit, params))

    def fetch_order_book(self, symbol: str, limit: int | None = None, params: Mapping[str, Any] | None = None) -> Any:
        """The book, ``limit`` levels a side (default 1,000)."""
        self.load_markets()
        return self._do(self._fetch_order_book_request(symbol, limit, params))

    def fetch_balance(self, params: Mapping[str, Any] | None = None) -> Any:
        """This trader's balance at its node: ``free`` (available), ``used`` (reserved by its orders),
        ``total``.  A trader no operator funded has none: then ``used`` is what its open orders commit, and
        ``free`` and ``total`` are None (not known, not zero)."""
        self.load_markets()
        return self._do(self._fetch_balance_request(params))
