"""zmqex.ccxt against a fake node with canned replies (tests/test_client.py's): what goes out, what comes back."""

from __future__ import annotations

import asyncio
import queue
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from tests.test_client import EMPTY_BOOK, FILL, MY_FILL, ORDER, RESULTS, UPDATE, FakeNode, fail, ok, stream
from zmqex import protocol
from zmqex.ccxt import errors as ccxt_errors
from zmqex.ccxt import pro, zmqex
from zmqex.ccxt.async_support import zmqex as async_zmqex

SYMBOL = "BTC/USD"
STATUS = {**RESULTS["status"], "ready": True}


@pytest.fixture
def node():
    fake = FakeNode()
    fake.handlers["status"] = lambda req: [ok(req, STATUS)]
    yield fake
    fake.stop()


@pytest.fixture
def exchange(node):
    ex = zmqex({"node": node.address, "trader": "alice", "timeout": 2000})
    ex.load_markets()
    assert node.next_request()[1]["op"] == "status"
    yield ex
    ex.close()


def sent(node: FakeNode) -> dict[str, Any]:
    """The next request the fake node got, without the fields of every request."""
    request = node.next_request()[1]
    assert request.pop("trader") == "alice" and request.pop("v") == 1
    del request["id"]
    return request


def nothing_sent(node: FakeNode) -> bool:
    try:
        node.next_request(timeout=0.1)
    except queue.Empty:
        return True
    return False


# --- describe, markets ------------------------------------------------------------------------


def test_it_is_a_ccxt_exchange_with_one_market_from_the_nodes_tick_and_lot(exchange):
    assert isinstance(exchange, ccxt.Exchange) and exchange.id == "zmqex"
    assert exchange.has["createOrder"] and exchange.has["editOrder"] and exchange.has["fetchBalance"]
    assert not exchange.has["fetchOHLCV"] and exchange.createOrder == exchange.create_order  # ccxt's camelCase
    assert exchange.symbols == [SYMBOL]
    market = exchange.market(SYMBOL)
    assert (market["id"], market["base"], market["quote"], market["spot"], market["active"]) == (
        "BTCUSD", "BTC", "USD", True, True)
    assert (market["precision"]["amount"], market["precision"]["price"]) == (1e-08, 0.01)
    assert market["limits"]["amount"] == {"min": 1e-08, "max": 21_000_000.0}
    assert market["limits"]["price"] == {"min": 0.01, "max": 10_000_000.0}
    assert market["info"]["tick"] == "0.01" and market["info"]["lot"] == "0.00000001"
    assert (market["maker"], market["taker"]) == (0.0, 0.0)
    assert exchange.price_to_precision(SYMBOL, 50000.123) == "50000.12"  # ccxt's own helpers, on our market
    assert exchange.features["spot"]["createOrder"]["timeInForce"]["FOK"] == ("fok" in protocol.TIFS)
    with pytest.raises(ccxt.BadSymbol):
        exchange.fetch_order_book("ETH/USD")


def test_the_async_exchange_is_the_pro_one_and_says_it_watches():
    assert async_zmqex is pro.zmqex
    exchange = pro.zmqex({"node": "127.0.0.1:1"})
    assert exchange.has["ws"] and exchange.has["watchOrders"] and exchange.has["watchOrderBook"]
    assert exchange.has["fetchOrder"]


# --- create_order: amounts, time in force -----------------------------------------------------


@pytest.mark.parametrize("amount, price, qty, price_text", [
    (0.1, 50000.1, "0.10000000", "50000.10"),  # floats: their shortest text, exact
    ("0.25", "50000", "0.25000000", "50000.00"),
    (Decimal("1.5"), Decimal("49999.99"), "1.50000000", "49999.99"),
    (2, 50001, "2.00000000", "50001.00"),
    (1e-08, 0.01, "0.00000001", "0.01"),
])
def test_create_order_sends_exact_decimal_strings(node, exchange, amount, price, qty, price_text):
    exchange.create_order(SYMBOL, "limit", "buy", amount, price, {"clientOrderId": "mm-1"})
    assert sent(node) == {"op": "place", "side": "buy", "qty": qty, "price": price_text, "tif": "gtc",
                          "client_order_id": "mm-1"}


@pytest.mark.parametrize("amount, price", [
    (0.1 + 0.2, 1),  # 0.30000000000000004: off the lot
    (1, 50000.001), ("1", "0.001"), (1e-09, 1), (0, 1), (-1, 1), ("abc", 1), (1, float("nan")),
    (21_000_001, 1), (1, 10_000_000.01), (True, 1),
])
def test_an_amount_off_tick_or_lot_is_an_invalid_order_and_nothing_is_sent(node, exchange, amount, price):
    with pytest.raises(ccxt.InvalidOrder):
        exchange.create_order(SYMBOL, "limit", "sell", amount, price)
    assert nothing_sent(node)


@pytest.mark.parametrize("type_, price, params, want", [
    ("limit", "1", {}, {"price": "1.00", "tif": "gtc"}),
    ("limit", "1", {"timeInForce": "GTC"}, {"price": "1.00", "tif": "gtc"}),
    ("limit", "1", {"timeInForce": "IOC"}, {"price": "1.00", "tif": "ioc"}),
    ("limit", "1", {"timeInForce": "ioc"}, {"price": "1.00", "tif": "ioc"}),
    ("limit", "1", {"timeInForce": "PO"}, {"price": "1.00", "tif": "post_only"}),
    ("limit", "1", {"postOnly": True}, {"price": "1.00", "tif": "post_only"}),
    ("limit", "1", {"timeInForce": "IOC", "stp": "cancel_both", "protectionBps": 50},
     {"price": "1.00", "tif": "ioc", "stp": "cancel_both", "protection_bps": 50}),
    ("market", None, {}, {"tif": "gtc"}),  # without a price the node makes it an ioc at its price band's edge
    ("market", "123", {}, {"tif": "gtc"}),  # ccxt ignores a market order's price
    ("market", None, {"timeInForce": "IOC"}, {"tif": "ioc"}),
])
def test_order_type_and_time_in_force(node, exchange, type_, price, params, want):
    exchange.create_order(SYMBOL, type_, "sell", "1", price, params)
    assert sent(node) == {"op": "place", "side": "sell", "qty": "1.00000000", **want}


@pytest.mark.parametrize("type_, price, params", [
    ("market", None, {"postOnly": True}),
    ("limit", "1", {"postOnly": True, "timeInForce": "IOC"}),
    ("limit", "1", {"timeInForce": "GTD"}),
    ("limit", "1", {"timeInForce": "DAY"}),
    ("limit", None, {}),  # a limit order needs a price
    ("stop", "1", {}),
])
def test_orders_the_node_cannot_take_are_invalid_orders(node, exchange, type_, price, params):
    with pytest.raises(ccxt.InvalidOrder):
        exchange.create_order(SYMBOL, type_, "buy", "1", price, params)
    assert nothing_sent(node)


def test_a_param_zmqex_does_not_take_is_a_bad_request_not_ignored(node, exchange):
    with pytest.raises(ccxt.BadRequest, match="reduceOnly"):
        exchange.create_order(SYMBOL, "limit", "buy", "1", "1", {"reduceOnly": True})
    with pytest.raises(ccxt.BadRequest, match="foo"):
        exchange.fetch_open_orders(SYMBOL, params={"foo": 1})
    assert nothing_sent(node)


@pytest.mark.skipif("fok" not in protocol.TIFS, reason="this zmqex's protocol has no fill-or-kill (tif fok) yet")
def test_fok_is_sent_as_tif_fok(node, exchange):
    exchange.create_order(SYMBOL, "limit", "buy", "1", "1", {"timeInForce": "FOK"})
    assert sent(node)["tif"] == "fok"


def test_fok_on_a_node_without_it_is_an_invalid_order(node, exchange):
    """A node that does not know tif fok answers invalid_request (and a client without it refuses it first)."""
    node.handlers["place"] = lambda req: [fail(req["id"], "invalid_request", "tif 'fok' is not one of ...")]
    with pytest.raises(ccxt.InvalidOrder, match="fok"):
        exchange.create_order(SYMBOL, "limit", "buy", "1", "1", {"timeInForce": "FOK"})


# --- the structures ---------------------------------------------------------------------------


def test_an_order_comes_back_as_ccxts_order_with_the_nodes_strings_in_info(exchange):
    order = exchange.create_order(SYMBOL, "limit", "buy", "1.5", "50000")
    assert {k: order[k] for k in ("id", "clientOrderId", "symbol", "type", "side", "price", "amount", "filled",
                                  "remaining", "cost", "average", "status", "timeInForce", "postOnly")} == {
        "id": "a:17", "clientOrderId": None, "symbol": SYMBOL, "type": "limit", "side": "buy", "price": 50000.0,
        "amount": 1.5, "filled": 0.5, "remaining": 1.0, "cost": 25000.0, "average": 50000.0, "status": "open",
        "timeInForce": "GTC", "postOnly": False}
    assert order["info"] == ORDER and order["timestamp"] == ORDER["ts"] and order["lastTradeTimestamp"] == FILL["ts"]
    [trade] = order["trades"]
    assert (trade["id"], trade["order"], trade["side"], trade["takerOrMaker"], trade["amount"], trade["cost"]) == (
        "b:9", "a:17", "buy", "taker", 0.5, 25000.0)
    assert trade["info"] == FILL


def test_exact_strings_when_ccxts_number_is_str(node, exchange):
    exchange.number = str
    node.handlers["place"] = lambda req: [ok(req, {**ORDER, "fills": [
        {**FILL, "price": "50000.01", "qty": "0.33333333"}, {**FILL, "id": "b:10", "price": "49999.99",
                                                             "qty": "0.16666667"}]})]
    order = exchange.create_order(SYMBOL, "limit", "buy", "1.5", "50000")
    assert (order["amount"], order["filled"], order["remaining"]) == ("1.50000000", "0.50000000", "1.00000000")
    # 50000.01 x 0.33333333 + 49999.99 x 0.16666667, in integers: no float anywhere
    assert order["cost"] == "25000.0016666666" and Decimal(order["cost"]) == (
        Decimal("50000.01") * Decimal("0.33333333") + Decimal("49999.99") * Decimal("0.16666667"))
    assert [Decimal(t["cost"]) for t in order["trades"]] == [Decimal("50000.01") * Decimal("0.33333333"),
                                                             Decimal("49999.99") * Decimal("0.16666667")]


def test_without_every_fill_the_cost_is_not_known_not_guessed(node, exchange):
    node.handlers["order"] = lambda req: [ok(req, {**ORDER, "fills": []})]  # filled 0.5, no fill shown
    order = exchange.fetch_order("a:17")
    assert order["filled"] == 0.5 and order["cost"] is None and order["average"] is None


def test_a_market_orders_price_is_its_average(node, exchange):
    node.handlers["place"] = lambda req: [ok(req, {**ORDER, "price": "52500.00", "tif": "ioc", "status": "filled",
                                                   "qty": "0.50000000", "open": "0.00000000"})]
    order = exchange.create_order(SYMBOL, "market", "buy", "0.5")
    assert (order["type"], order["price"], order["status"], order["timeInForce"]) == ("market", 50000.0, "closed",
                                                                                      "IOC")
    assert order["info"]["price"] == "52500.00"  # the band's edge, as the node holds it


@pytest.mark.parametrize("status, reason, want", [
    ("open", None, "open"), ("partial", None, "open"), ("filled", None, "closed"), ("cancelled", "user", "canceled"),
    ("expired", "expired", "expired"),
])
def test_order_statuses(node, exchange, status, reason, want):
    node.handlers["order"] = lambda req: [ok(req, {**ORDER, "status": status, "reason": reason})]
    assert exchange.fetch_order("a:17")["status"] == want


def test_the_order_book_leaves_out_levels_nobody_can_trade_with(node, exchange):
    book = {"bids": [["50000.00", "1.00000000", 2], ["49999.99", "0.00000001", 1]],
            "asks": [["50000.01", "2.50000000", 1]],
            "unavailable": {"bids": [["50000.50", "9.00000000", 1]], "asks": []}}
    node.handlers["book"] = lambda req: [ok(req, book)]
    result = exchange.fetch_order_book(SYMBOL, 5)
    assert sent(node) == {"op": "book", "depth": 5}
    assert result["bids"] == [[50000.0, 1.0, 2], [49999.99, 1e-08, 1]] and result["asks"] == [[50000.01, 2.5, 1]]
    assert result["symbol"] == SYMBOL and result["info"] == book
    exchange.fetch_order_book(SYMBOL)
    assert sent(node)["depth"] == protocol.MAX_DEPTH


def test_the_balance_is_the_nodes_free_used_and_total(node, exchange):
    view = {"trader": "alice", "usd": {"total": "1000.50", "reserved": "400.25", "available": "600.25"},
            "btc": {"total": "2.00000000", "reserved": "0.00000001", "available": "1.99999999"}}
    node.handlers["balance"] = lambda req: [ok(req, view)]
    balance = exchange.fetch_balance()
    assert sent(node) == {"op": "balance"}
    assert balance["USD"] == {"free": 600.25, "used": 400.25, "total": 1000.5}
    assert balance["BTC"] == {"free": 1.99999999, "used": 1e-08, "total": 2.0}
    assert balance["info"] == view
    exchange.number = str  # exact, as the node wrote them
    assert exchange.fetch_balance()["BTC"] == {"free": "1.99999999", "used": "0.00000001", "total": "2.00000000"}


@pytest.mark.parametrize("code", ["invalid_request", "unknown_op"])
def test_the_balance_of_a_trader_never_funded_is_what_open_orders_commit_and_nothing_made_up(node, exchange, code):
    """No account (or a node older than balances): only ``used``, from the open orders."""
    bid = {**ORDER, "side": "buy", "price": "50000.01", "qty": "0.50000000", "filled": "0.10000000"}
    ask = {**ORDER, "order_id": "a:18", "side": "sell", "qty": "1.50000000", "filled": "0.50000000"}
    node.handlers["balance"] = lambda req: [fail(req["id"], code, "trader alice has no account at this node")]
    node.handlers["open_orders"] = lambda req: [ok(req, {"orders": [bid, ask, bid], "next": 18, "more": False})]
    balance = exchange.fetch_balance()
    assert [sent(node)["op"] for _ in range(2)] == ["balance", "open_orders"]
    assert balance["info"]["used"] == {"USD": "40000.008", "BTC": "1"}  # 2 x 50000.01 x 0.4; 1.5 - 0.5
    assert balance["used"] == {"USD": 40000.008, "BTC": 1.0}
    assert balance["free"] == balance["total"] == {"USD": None, "BTC": None}  # the node keeps none for it
    assert balance["USD"] == {"free": None, "used": 40000.008, "total": None}


def test_a_balance_refused_otherwise_is_an_error(node, exchange):
    node.handlers["balance"] = lambda req: [fail(req["id"], "busy", "not ready")]
    with pytest.raises(ccxt.ExchangeNotAvailable):
        exchange.fetch_balance()


# --- the other calls --------------------------------------------------------------------------


def test_cancel_edit_fetch_by_id_or_client_order_id(node, exchange):
    assert exchange.cancel_order("a:17")["status"] == "canceled"
    assert sent(node) == {"op": "cancel", "order_id": "a:17"}
    exchange.cancel_order(None, SYMBOL, {"clientOrderId": "mm-1"})
    assert sent(node) == {"op": "cancel", "client_order_id": "mm-1"}
    exchange.fetch_order(None, params={"clientOrderId": "mm-1"})
    assert sent(node) == {"op": "order", "client_order_id": "mm-1"}
    assert exchange.edit_order("a:17", SYMBOL, "limit", "buy", 0.4, 50001.5)["id"] == "a:17"
    assert sent(node) == {"op": "amend", "order_id": "a:17", "qty": "0.40000000", "price": "50001.50"}
    exchange.edit_order(None, SYMBOL, "limit", "buy", price="1", params={"clientOrderId": "mm-1"})
    assert sent(node) == {"op": "amend", "client_order_id": "mm-1", "price": "1.00"}
    for call in (lambda: exchange.cancel_order(None), lambda: exchange.cancel_order("a:1", None, {"clientOrderId": "x"}),
                 lambda: exchange.edit_order("a:17", SYMBOL, "limit", "buy")):
        with pytest.raises(ccxt.ArgumentsRequired):
            call()
    with pytest.raises(ccxt.InvalidOrder):
        exchange.edit_order("a:17", SYMBOL, "market", "buy", 1)
    assert nothing_sent(node)


def test_cancel_all_orders_names_them(node, exchange):
    cancelled = exchange.cancel_all_orders(SYMBOL, {"side": "sell"})
    assert sent(node) == {"op": "cancel_all", "side": "sell"}
    assert [(o["id"], o["status"], o["symbol"]) for o in cancelled] == [("a:17", "canceled", SYMBOL),
                                                                          ("a:18", "canceled", SYMBOL)]


def test_open_orders_and_my_trades_read_every_page(node, exchange):
    def pages(key, item):
        fill = {**item, "id": "b:{}", "ts": item["ts"] + 1} if key == "fills" else None
        return lambda req: [ok(req, {key: [{**fill, "id": f"b:{req['since'] + 1}", "ts": item["ts"] + req["since"]}
                                           if fill else item],
                                     "next": req["since"] + 5, "more": req["since"] < 10})]

    node.handlers["open_orders"] = pages("orders", ORDER)
    assert len(exchange.fetch_open_orders(SYMBOL)) == 3
    assert [sent(node)["since"] for _ in range(3)] == [0, 5, 10]
    node.handlers["my_fills"] = pages("fills", MY_FILL)
    trades = exchange.fetch_my_trades(SYMBOL)
    assert [t["id"] for t in trades] == ["b:1", "b:6", "b:11"]
    assert [sent(node) for _ in range(3)][0] == {"op": "my_fills", "since": 0, "limit": protocol.MAX_PAGE}
    assert (trades[0]["side"], trades[0]["takerOrMaker"], trades[0]["order"], trades[0]["cost"]) == (
        "buy", "taker", "a:17", 25000.0)
    assert exchange.fetch_my_trades(SYMBOL, limit=1)[0]["id"] == "b:11"  # ccxt's: the latest


def test_a_cursor_that_does_not_advance_is_a_bad_response(node, exchange):
    node.handlers["open_orders"] = lambda req: [ok(req, {"orders": [], "next": 0, "more": True})]
    with pytest.raises(ccxt.BadResponse):
        exchange.fetch_open_orders()


def test_trades_are_the_last_ones_by_position_or_every_page_since_a_time(node, exchange):
    node.handlers["status"] = lambda req: [ok(req, {**STATUS, "fills": 250})]
    node.handlers["trades"] = lambda req: [ok(req, {"trades": [FILL], "next": req["since"] + 1, "more": False})]
    [trade] = exchange.fetch_trades(SYMBOL, limit=10)
    assert [sent(node) for _ in range(2)][1] == {"op": "trades", "since": 240, "limit": protocol.MAX_PAGE}
    assert (trade["side"], trade["takerOrMaker"], trade["order"], trade["price"]) == ("buy", None, None, 50000.0)
    assert exchange.fetch_trades(SYMBOL, since=FILL["ts"] + 1) == []  # every page from 0, then ccxt's filter
    assert sent(node)["since"] == 0


# --- errors -----------------------------------------------------------------------------------


def test_every_code_a_node_or_the_client_raises_has_a_row():
    assert set(protocol.ERROR_CODES) <= set(ccxt_errors.ERRORS)
    assert {*protocol.ENDS, "gap", "silent", "timeout", "keys"} <= set(ccxt_errors.ERRORS)


@pytest.mark.parametrize("code", sorted(protocol.ERROR_CODES))
def test_error_replies_are_ccxts_exceptions_from_the_table(node, exchange, code):
    on_order, otherwise = ccxt_errors.ERRORS[code]
    node.handlers["place"] = node.handlers["cancel"] = lambda req: [fail(req["id"], code, "no")]
    with pytest.raises(on_order, match=code) as raised:
        exchange.create_order(SYMBOL, "limit", "buy", "1", "1")
    assert isinstance(raised.value.__cause__, protocol.ERRORS.get(code, Exception))
    with pytest.raises(otherwise, match=code):
        exchange.cancel_order("a:1")


def test_the_table_reads_as_ccxt_code_expects():
    assert ccxt_errors.ERRORS["invalid_request"] == (ccxt.InvalidOrder, ccxt.BadRequest)
    assert ccxt_errors.ERRORS["unknown_order"][1] is ccxt.OrderNotFound
    assert ccxt_errors.ERRORS["rate_limited"][0] is ccxt.RateLimitExceeded
    assert issubclass(ccxt_errors.ERRORS["busy"][0], ccxt.NetworkError)  # retried like a network error
    assert issubclass(ccxt_errors.ERRORS["not_owner"][1], ccxt.AuthenticationError)


def test_a_node_that_does_not_answer_is_a_request_timeout(node):
    node.handlers["status"] = lambda req: []
    exchange = zmqex({"node": node.address, "timeout": 300})
    with pytest.raises(ccxt.RequestTimeout):
        exchange.load_markets()
    exchange.close()


def test_a_node_and_complete_keys_are_needed(tmp_path: Path):
    with pytest.raises(ccxt.ArgumentsRequired, match="node"):
        zmqex({}).load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="both"):
        zmqex({"node": "127.0.0.1:1", "secret": str(tmp_path / "a.key_secret")}).load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="cannot read"):
        zmqex({"node": "127.0.0.1:1", "secret": str(tmp_path / "a.key_secret"),
               "nodeKey": str(tmp_path / "n.key")}).load_markets()
    with pytest.raises(ccxt.BadRequest):
        zmqex({"node": "nowhere"}).load_markets()


# --- the async exchange and its watch_* -------------------------------------------------------


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def test_the_async_exchange_does_the_same_requests(node):
    async def go() -> Any:
        exchange = pro.zmqex({"node": node.address, "trader": "alice"})
        try:
            return await exchange.create_order(SYMBOL, "limit", "buy", 0.1, "50000", {"clientOrderId": "a-1"})
        finally:
            await exchange.close()

    assert run(go())["id"] == "a:17"
    assert sent(node)["op"] == "status"
    assert sent(node) == {"op": "place", "side": "buy", "qty": "0.10000000", "price": "50000.00", "tif": "gtc",
                          "client_order_id": "a-1"}


def test_watch_orders_returns_the_orders_that_changed_since_the_last_call(node):
    placed = {**UPDATE, "status": "open", "filled": "0.00000000", "open": "1.50000000", "client_order_id": "mm-1"}
    filled = {**placed, "status": "partial", "filled": "0.50000000", "open": "1.00000000"}
    other = {**placed, "order_id": "a:20", "client_order_id": "mm-2"}
    node.handlers["subscribe"] = lambda req: [ok(req, {"subscribed": "orders"}),
                                              stream(req, 1, event="placed", order=placed),
                                              stream(req, 2, event="fill", order=filled, fill=MY_FILL),
                                              stream(req, 3, event="placed", order=other)]

    async def go() -> tuple[list[Any], list[Any]]:
        exchange = pro.zmqex({"node": node.address, "trader": "alice"})
        try:
            first = await exchange.watch_orders(SYMBOL)
            while len(exchange.orders) < 2:  # the rest of the canned messages
                await exchange.watch_orders(SYMBOL)
            return first, list(exchange.orders)
        finally:
            await exchange.close()

    first, cached = run(go())
    assert first[0]["id"] == "a:17" and first[0]["clientOrderId"] == "mm-1"
    by_id = {o["id"]: o for o in cached}
    order = by_id["a:17"]
    assert (order["status"], order["filled"], order["cost"], order["average"]) == ("open", 0.5, 25000.0, 50000.0)
    assert [t["id"] for t in order["trades"]] == ["b:9"] and order["info"] == filled
    assert by_id["a:20"]["clientOrderId"] == "mm-2"


def test_watch_trades_and_watch_order_book(node):
    node.handlers["subscribe"] = lambda req: {
        "trades": [ok(req, {"subscribed": "trades"}), stream(req, 1, trade=FILL)],
        "book": [ok(req, {"subscribed": "book"}),
                 stream(req, 1, snapshot={**EMPTY_BOOK, "bids": [["1.00", "1.00000000", 1]]}),
                 stream(req, 2, changes={**EMPTY_BOOK, "bids": [["1.00", "0.00000000", 0], ["2.00", "3.00000000", 2]],
                                         "asks": [["5.00", "1.00000000", 1]]})],
    }[req["stream"]]

    async def go() -> tuple[Any, list[Any]]:
        exchange = pro.zmqex({"node": node.address})
        try:
            trades = await exchange.watch_trades(SYMBOL)
            book = await exchange.watch_order_book(SYMBOL, 3)
            while book["asks"] == []:
                book = await exchange.watch_order_book(SYMBOL, 3)
            return book, trades
        finally:
            await exchange.close()

    book, trades = run(go())
    assert [(t["id"], t["side"], t["amount"]) for t in trades] == [("b:9", "buy", 0.5)]
    assert book["bids"] == [[2.0, 3.0, 2]] and book["asks"] == [[5.0, 1.0, 1]] and book["symbol"] == SYMBOL
    assert book["info"]["bids"] == [["2.00", "3.00000000", 2]]
    depths = [r[1].get("depth") for r in list(node.requests.queue) if r[1]["op"] == "subscribe"]
    assert depths == [None, 5]  # 3 levels: the node streams 5


@pytest.mark.parametrize("end, error", [
    ({"end": {"code": "stopping", "message": "bye"}}, ccxt.ExchangeNotAvailable),
    ({"end": {"code": "slow_reader", "message": "read faster"}}, ccxt.NetworkError),
    ({"trade": FILL, "seq": 5}, ccxt.NetworkError),  # a gap
])
def test_a_stream_that_ends_raises_once_then_the_next_watch_subscribes_again(node, end, error):
    subscriptions = []

    def subscribe(req: dict) -> list[dict]:
        subscriptions.append(req["id"])
        if len(subscriptions) == 1:
            return [ok(req, {"subscribed": "trades"}), stream(req, 1, trade=FILL), {**stream(req, 1), **end}]
        return [ok(req, {"subscribed": "trades"}), stream(req, 1, trade={**FILL, "id": "c:1"})]

    node.handlers["subscribe"] = subscribe

    async def go() -> list[Any]:
        exchange = pro.zmqex({"node": node.address})
        try:
            await exchange.watch_trades(SYMBOL)
            with pytest.raises(error):
                await exchange.watch_trades(SYMBOL)
            return await exchange.watch_trades(SYMBOL)
        finally:
            await exchange.close()

    assert [t["id"] for t in run(go())] == ["c:1"] and len(subscriptions) == 2
