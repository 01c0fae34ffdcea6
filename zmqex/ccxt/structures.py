"""A node's replies as ccxt's unified structures: market, order, trade, order book, balance.

A node sends amounts as exact decimal strings.  Every figure here is taken from
those strings, or computed from them in integers (cents times satoshis: a cost
is exact to 1e-10 USD), and handed to ccxt's own ``safe_order``,
``safe_trade``, ``safe_balance`` and ``parse_order_book`` as a string; ccxt turns
it into its number type at the end (``float`` by default; set
``exchange.number = str`` for the exact strings, as ccxt allows).  Nothing is
computed on floats.  ``info`` holds the node's view, strings and all.  An
order's ``average`` is ccxt's own quotient of the exact cost and filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zmqex import accountwire, protocol
from zmqex.core import money

if TYPE_CHECKING:
    _Ccxt = Any  # ccxt's Exchange (sync or async: the classes that use this mixin say which); ccxt is untyped
else:
    _Ccxt = object

BASE, QUOTE = "BTC", "USD"
SYMBOL = f"{BASE}/{QUOTE}"
#: The node holds one book, which has no name on the wire: this is ours for it.
MARKET_ID = BASE + QUOTE
#: The node's tick and lot, and the largest price and quantity it takes (zmqex.core.money).
TICK, LOT = money.format_price(1), money.format_qty(1)
MAX_PRICE, MAX_QTY = money.format_price(money.MAX_PRICE), money.format_qty(money.MAX_QTY)

#: A node's order status -> ccxt's.
STATUSES = {"open": "open", "partial": "open", "filled": "closed", "cancelled": "canceled", "expired": "expired"}
#: A node's tif -> ccxt's timeInForce (create_order maps the other way: zmqex.ccxt.requests).
TIF_NAMES = {"gtc": "GTC", "ioc": "IOC", "post_only": "PO", "fok": "FOK", "gtd": "GTD"}

#: A price (cents) times a quantity (satoshis) is in units of 1e-10 USD.
_COST_PLACES = protocol.PRICE_PLACES + protocol.QTY_PLACES


def sats(text: str) -> int:
    """A quantity from a node (canonical; "0.00000000" for nothing) in satoshis."""
    return 0 if text == protocol.ZERO_QTY else money.parse_qty(text)


def decimal_text(units: int, places: int) -> str:
    """``units`` of 10**-places as exact decimal text, trailing zeros dropped: (5000000, 3) -> "5000"."""
    whole, fraction = divmod(units, 10 ** places)
    return f"{whole}.{fraction:0{places}d}".rstrip("0").removesuffix(".")


def cost_text(units: int) -> str:
    """``units`` of 1e-10 USD (cents times satoshis) as exact decimal text."""
    return decimal_text(units, _COST_PLACES)


def fill_cost(fill: protocol.FillView) -> int:
    """A fill's cost in units of 1e-10 USD, exactly."""
    return money.parse_price(fill["price"]) * sats(fill["qty"])


class Structures(_Ccxt):  # type: ignore[misc]  # mypy: a mixin over ccxt's Exchange, which is untyped
    """The parsing half of the exchange: node views in, ccxt structures out, no I/O."""

    def _market_structure(self, status: dict[str, Any]) -> dict[str, Any]:
        """The one market, from the protocol's tick, lot and bounds (which every node has) and the node's status."""
        return {
            "id": MARKET_ID, "symbol": SYMBOL, "base": BASE, "quote": QUOTE, "baseId": BASE, "quoteId": QUOTE,
            "type": "spot", "spot": True, "margin": False, "swap": False, "future": False, "option": False,
            "contract": False, "active": status.get("ready") is True,
            "taker": self.parse_number("0"), "maker": self.parse_number("0"),  # a node charges no fees
            "precision": {"amount": self.parse_number(LOT), "price": self.parse_number(TICK)},
            "limits": {"amount": {"min": self.parse_number(LOT), "max": self.parse_number(MAX_QTY)},
                       "price": {"min": self.parse_number(TICK), "max": self.parse_number(MAX_PRICE)},
                       "cost": {"min": None, "max": None}, "leverage": {"min": None, "max": None}},
            "created": None,
            "info": {"node": status.get("node"), "ready": status.get("ready"), "tick": TICK, "lot": LOT,
                     "max_price": MAX_PRICE, "max_qty": MAX_QTY, "protocol": protocol.VERSION},
        }

    def parse_order(self, order: Any, market: Any = None) -> dict[str, Any]:
        """ccxt's hook: an order (OrderView, with its fills) as ccxt's order structure."""
        return self._order(order)

    def _order(self, view: Any, fills: list[Any] | None = None, type_: str | None = None) -> dict[str, Any]:
        """``view`` (an OrderView, or an OrderUpdate with the ``fills`` seen for it) as ccxt's order.

        ``cost`` is the exact sum of the fills' costs when the fills account for all of
        ``filled``, else None (ccxt would otherwise guess filled x price, which is wrong
        for a taker that filled at better prices); ``average`` follows it.  A node holds a
        market order as an IOC at its price band's edge and does not say which it was:
        orders read back are ``limit``; ``type_`` is what create_order knows.
        """
        if fills is None:
            fills = view.get("fills")
        filled, qty = sats(view["filled"]), sats(view["qty"])
        known = fills is not None and sum(sats(fill["qty"]) for fill in fills) == filled
        cost = cost_text(sum(fill_cost(fill) for fill in fills or [])) if known else None
        order: dict[str, Any] = self.safe_order({
            "id": view["order_id"], "clientOrderId": view["client_order_id"] or None,
            "timestamp": view["ts"], "datetime": self.iso8601(view["ts"]), "symbol": SYMBOL,
            "type": type_ or "limit", "side": view["side"],
            "price": None if type_ == "market" else view["price"],  # ccxt: a market order's price is its average
            "amount": view["qty"], "filled": view["filled"], "remaining": money.format_qty(qty - filled),
            "cost": cost, "status": STATUSES[view["status"]],
            "timeInForce": TIF_NAMES.get(view["tif"]), "postOnly": view["tif"] == "post_only",
            "trades": [self._trade_fields(fill, view) for fill in fills or []], "info": view,
        })
        if cost is None:
            order["cost"] = order["average"] = None
        return order

    def parse_trade(self, trade: Any, market: Any = None) -> dict[str, Any]:
        """ccxt's hook: a fill (FillView: every trade; MyFillView: the trader's own) as ccxt's trade."""
        trade_: dict[str, Any] = self.safe_trade(self._trade_fields(trade))
        return trade_

    def _trade_fields(self, fill: Any, order: Any = None) -> dict[str, Any]:
        """A fill's fields as ccxt names them, amounts as strings (``safe_trade``/``safe_order`` convert them).

        ``order``: the order view the fill belongs to (the fills of an OrderView carry
        neither side nor liquidity).  A public fill's side is its taker's.
        """
        if order is not None:
            side, order_id = order["side"], order["order_id"]
            liquidity = "taker" if fill["taker"] == order_id else "maker"
        else:
            side, order_id = fill.get("side", fill["taker_side"]), fill.get("order_id")
            liquidity = fill.get("liquidity")
        return {
            "id": fill["id"], "order": order_id, "timestamp": fill["ts"], "datetime": self.iso8601(fill["ts"]),
            "symbol": SYMBOL, "type": None, "side": side, "takerOrMaker": liquidity,
            "price": fill["price"], "amount": fill["qty"], "cost": cost_text(fill_cost(fill)),
            "fee": {"cost": "0", "currency": QUOTE}, "info": fill,
        }

    def _order_book(self, view: protocol.BookView, symbol: str) -> dict[str, Any]:
        """A book (levels ``[price, qty, orders]``) as ccxt's order book; levels whose owner is down are left out
        (the node lists them apart, under ``unavailable``: nobody can trade with them), and kept in ``info``."""
        book: dict[str, Any] = self.parse_order_book(view, symbol)  # ccxt's: its levels are always floats
        book["info"] = view
        return book

    def _balance(self, answer: accountwire.BalanceView | list[protocol.OrderView]) -> dict[str, Any]:
        """The trader's balance, as ccxt's: ``free`` is what the node says is available, ``used`` what
        its orders reserve, ``total`` both; the node's own view in ``info``.  A trader the operator
        never funded has no balance: then what its open orders commit (``_committed``)."""
        if isinstance(answer, list):
            return self._committed(answer)
        balance: dict[str, Any] = {"info": answer, "timestamp": None, "datetime": None}
        for code, held in ((QUOTE, answer["usd"]), (BASE, answer["btc"])):
            balance[code] = {"free": held["available"], "used": held["reserved"], "total": held["total"]}
        result: dict[str, Any] = self.safe_balance(balance)
        return result

    def _committed(self, orders: list[protocol.OrderView]) -> dict[str, Any]:
        """What the trader's open orders commit, as ccxt's balance: ``used`` only.

        The node keeps no balance for such a trader, so ``free`` and ``total`` are None:
        unknown, not zero.  ``used``: USD for bids, price x (qty - filled); BTC for asks, qty - filled.
        Exact strings in ``info``.
        """
        usd: int | None = 0
        btc = 0
        for order in orders:
            remaining = sats(order["qty"]) - sats(order["filled"])
            if order["side"] == "sell":
                btc += remaining
            elif order["price"] is None or usd is None:
                usd = None  # a market bid still matching: what it commits is not known
            else:
                usd += money.parse_price(order["price"]) * remaining
        used = {QUOTE: None if usd is None else cost_text(usd), BASE: decimal_text(btc, protocol.QTY_PLACES)}
        balance: dict[str, Any] = {"info": {"used": used, "open_orders": len(orders)}, "timestamp": None,
                                   "datetime": None}
        for code, text in used.items():
            balance[code] = {"free": None, "used": text, "total": None}
        result: dict[str, Any] = self.safe_balance(balance)
        return result

    def _cancelled(self, order_ids: list[str]) -> list[dict[str, Any]]:
        """The orders cancel_all cancelled, as ccxt orders: the node names only their ids."""
        return [self.safe_order({"id": oid, "symbol": SYMBOL, "status": "canceled", "info": {"order_id": oid}})
                for oid in order_ids]
