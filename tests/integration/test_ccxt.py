"""zmqex.ccxt on real node processes: a ccxt.pro market maker, written as for any ccxt exchange, on a 3-node mesh.

``market_maker`` and ``taker`` know nothing of zmqex: they use ccxt's unified
API and ccxt's exceptions only, and would run unchanged on any exchange that
ccxt.pro supports.  Only the constructor names zmqex.  The test then holds what
they saw against what the nodes hold.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from zmqex import protocol
from zmqex.ccxt import zmqex
from zmqex.ccxt import pro
from zmqex.client import Client
from zmqex.local import LocalNetwork

SYMBOL = "BTC/USD"
ROUNDS = 4
FINAL = ("closed", "canceled", "expired")


# --- a plain ccxt.pro market maker and taker: nothing below knows it runs on zmqex -------------


async def market_maker(exchange: Any, symbol: str, rounds: int, reference: float, patience: float) -> dict[str, Any]:
    """Quote both sides around the last trade, improve the bid by a tick, wait for fills, cancel, repeat.

    Returns what the bot saw: the orders it created, each order as watch_orders last showed it,
    its open orders after quoting, and its trades."""
    markets = await exchange.load_markets()
    market = markets[symbol]
    tick, size = market["precision"]["price"], exchange.amount_to_precision(symbol, 0.25)
    loop = asyncio.get_running_loop()
    created: list[list[str]] = []
    seen: dict[str, Any] = {}
    quoted: list[set[str]] = []
    watching = None  # the round in which watch_orders first showed something
    for n in range(rounds):
        book = await exchange.fetch_order_book(symbol, 5)
        last = await exchange.fetch_trades(symbol, limit=1)
        mid = last[-1]["price"] if last else reference
        assert not book["bids"] or not book["asks"] or book["bids"][0][0] < book["asks"][0][0]
        bid = await exchange.create_order(symbol, "limit", "buy", size, exchange.price_to_precision(symbol, mid - 5),
                                          {"clientOrderId": f"mm-{n}-bid"})
        ask = await exchange.create_order(symbol, "limit", "sell", size, exchange.price_to_precision(symbol, mid + 5),
                                          {"clientOrderId": f"mm-{n}-ask"})
        ids = [bid["id"], ask["id"]]
        quoted.append({o["clientOrderId"] for o in await exchange.fetch_open_orders(symbol)})
        try:  # improve the bid by a tick: a new price, so a new order under the same client order id
            bid = await exchange.edit_order(bid["id"], symbol, "limit", "buy", size,
                                            exchange.price_to_precision(symbol, bid["price"] + tick))
            ids[0:1] = [ids[0], bid["id"]]
        except ccxt.OrderNotFound:  # filled (or cancelled) before we got to it
            pass
        created.append(ids)
        deadline = loop.time() + patience
        while loop.time() < deadline and not all(seen.get(i, {}).get("status") in FINAL for i in ids[-2:]):
            try:
                for order in await asyncio.wait_for(exchange.watch_orders(symbol), deadline - loop.time()):
                    seen[order["id"]] = order
                    watching = n if watching is None else watching
            except asyncio.TimeoutError:
                break
        await exchange.cancel_all_orders(symbol)
    leftover = await exchange.fetch_open_orders(symbol)
    deadline = loop.time() + patience  # the last cancels, on the stream
    while loop.time() < deadline and not all(seen.get(i, {}).get("status") in FINAL for i in created[-1]):
        try:
            for order in await asyncio.wait_for(exchange.watch_orders(symbol), deadline - loop.time()):
                seen[order["id"]] = order
        except asyncio.TimeoutError:
            break
    balance = await exchange.fetch_balance()
    trades = await exchange.fetch_my_trades(symbol)
    return {"created": created, "seen": seen, "quoted": quoted, "leftover": leftover, "balance": balance,
            "trades": trades, "watching": watching}


async def taker(exchange: Any, symbol: str, side: str, stop: asyncio.Event) -> int:
    """Take whatever the book shows on the other side, at market, until ``stop``; the orders placed."""
    await exchange.load_markets()
    placed = 0
    while not stop.is_set():
        try:
            book = await asyncio.wait_for(exchange.watch_order_book(symbol), 0.5)
        except asyncio.TimeoutError:
            book = await exchange.fetch_order_book(symbol)
        levels = book["asks"] if side == "buy" else book["bids"]
        if not levels:
            continue
        try:
            await exchange.create_order(symbol, "market", side, exchange.amount_to_precision(symbol, levels[0][1]))
            placed += 1
        except ccxt.InvalidOrder:  # it was gone by the time we got there
            pass
    return placed


# --- the test ---------------------------------------------------------------------------------


def test_an_unchanged_ccxt_market_maker_on_a_three_node_mesh(net: LocalNetwork) -> None:
    net.start_mesh(["a", "b", "c"])
    a, b, c = (net.nodes[i] for i in "abc")

    async def run() -> tuple[dict[str, Any], list[int]]:
        maker = pro.zmqex({"node": a.address, "trader": "alice"})
        bob = pro.zmqex({"node": b.address, "trader": "bob"})
        carol = pro.zmqex({"node": c.address, "trader": "carol"})
        stop = asyncio.Event()
        try:
            takers = [asyncio.create_task(taker(bob, SYMBOL, "buy", stop)),
                      asyncio.create_task(taker(carol, SYMBOL, "sell", stop))]
            try:
                view = await asyncio.wait_for(market_maker(maker, SYMBOL, ROUNDS, 50_000.0, 5.0), 120)
            finally:
                stop.set()
                placed = await asyncio.wait_for(asyncio.gather(*takers), 30)
            return view, placed
        finally:
            for exchange in (maker, bob, carol):
                await exchange.close()

    view, placed = asyncio.run(run())
    statuses = net.wait_converged()
    assert len({s["hash"] for s in statuses.values()}) == 1

    # fills converge: every node knows the same fills, exactly
    fills = {}
    for node in (a, b, c):
        exchange = zmqex({"node": node.address})
        try:
            fills[node.id] = {(t["id"], t["info"]["price"], t["info"]["qty"]) for t in exchange.fetch_trades(SYMBOL)}
        finally:
            exchange.close()
    assert fills["a"] == fills["b"] == fills["c"] and fills["a"], "the takers traded with the maker"
    assert sum(placed) >= 1

    # the bot's view is the node's
    created = [oid for ids in view["created"] for oid in ids]
    with Client(a.address, trader="alice") as alice:
        node_fills = {f["id"]: f for f in _all(alice.my_fills)}
        node_orders = {oid: alice.order(oid) for oid in created}
        assert alice.open_orders().items == [] and view["leftover"] == []
    assert {t["id"] for t in view["trades"]} == set(node_fills) == {f[0] for f in fills["a"]}
    for trade in view["trades"]:  # floats from the node's strings, and the strings themselves in info
        fill = node_fills[trade["id"]]
        assert trade["info"] == fill and trade["side"] == fill["side"] and trade["takerOrMaker"] == "maker"
        assert Decimal(str(trade["amount"])) == Decimal(fill["qty"])
        assert Decimal(str(trade["price"])) == Decimal(fill["price"])
    for n, quoted in enumerate(view["quoted"]):  # fetch_open_orders showed the quotes (unless taken already)
        assert quoted <= {f"mm-{n}-bid", f"mm-{n}-ask"}
    for oid, order in view["seen"].items():
        theirs = node_orders[oid]
        assert (order["info"]["status"], order["info"]["filled"]) == (theirs["status"], theirs["filled"])
        # "" (none) is None; an order an edit replaced gave its client order id to the new one: ""
        assert order["clientOrderId"] == (theirs["client_order_id"] or None) and order["status"] in FINAL
    # once watch_orders has shown anything it is subscribed, and shows every order placed after
    assert view["watching"] is not None and view["watching"] < ROUNDS - 1
    assert set(oid for ids in view["created"][view["watching"] + 1:] for oid in ids) <= set(view["seen"])
    assert view["balance"]["used"] == {"USD": 0.0, "BTC": 0.0} and view["balance"]["free"] == {"USD": None,
                                                                                             "BTC": None}
    maker_qty = sum(Decimal(f["qty"]) for f in node_fills.values())
    assert maker_qty == sum(Decimal(o["filled"]) for o in node_orders.values())


def _all(fetch: Any) -> list[Any]:
    items, since = [], 0
    while True:
        page = fetch(since, protocol.MAX_PAGE)
        items += page.items
        if not page.more:
            return items
        since = page.next


@pytest.mark.skipif("fok" not in protocol.TIFS, reason="this node's protocol has no fill-or-kill (tif fok) yet")
def test_fill_or_kill_fills_whole_or_not_at_all(net: LocalNetwork) -> None:
    node = net.start("a")
    maker, taker_ = zmqex({"node": node.address, "trader": "alice"}), zmqex({"node": node.address, "trader": "bob"})
    try:
        ask = maker.create_order(SYMBOL, "limit", "sell", "1", "50000")
        try:
            killed = taker_.create_order(SYMBOL, "limit", "buy", "2", "50000", {"timeInForce": "FOK"})
            assert killed["filled"] == 0 and killed["status"] in ("canceled", "expired")
        except ccxt.InvalidOrder:  # a node may refuse outright a FOK it cannot fill whole
            pass
        assert maker.fetch_order(ask["id"])["info"]["filled"] == protocol.ZERO_QTY
        filled = taker_.create_order(SYMBOL, "limit", "buy", "1", "50000", {"timeInForce": "FOK"})
        assert (filled["filled"], filled["status"], filled["info"]["filled"]) == (1.0, "closed", "1.00000000")
    finally:
        maker.close()
        taker_.close()


def test_a_keyed_node_takes_the_traders_key_files(tmp_path: Any) -> None:
    with LocalNetwork(tmp_path, keyed=["a"], traders=["alice"], extra_args=["--ephemeral"]) as keyed:
        node = keyed.start("a")
        assert keyed.keys_dir is not None
        keys = {"secret": str(keyed.keys_dir / "alice" / "alice.key_secret"),
                "nodeKey": str(keyed.keys_dir / "alice" / "members" / "a.key")}
        alice = zmqex({"node": node.address, "trader": "alice", **keys})
        impostor = zmqex({"node": node.address, "trader": "bob", **keys})
        half = zmqex({"node": node.address, "secret": keys["secret"]})
        try:
            order = alice.create_order(SYMBOL, "limit", "sell", "1", "50000", {"clientOrderId": "k-1"})
            assert alice.fetch_order(None, SYMBOL, {"clientOrderId": "k-1"})["id"] == order["id"]
            with pytest.raises(ccxt.PermissionDenied):  # alice's key, naming someone else
                impostor.fetch_open_orders(SYMBOL)
            with pytest.raises(ccxt.AuthenticationError, match="both"):
                half.fetch_order_book(SYMBOL)
        finally:
            for exchange in (alice, impostor, half):
                exchange.close()
