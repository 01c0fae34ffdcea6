"""What a trading bot needs, on real node processes: client order ids, streams, cancel on disconnect."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

from zmqex.client import Client, Subscription
from zmqex.errors import OrderClosed, Timeout, UnknownOrder
from zmqex.local import wait_for


def test_a_retried_place_with_one_client_order_id_yields_one_order(net):
    node = net.start("a")
    with Client(node.address, trader="alice") as alice:
        first = alice.place("sell", "1", "50000", client_order_id="bot-0001")
        assert alice.place("sell", "1", "50000", client_order_id="bot-0001")["order_id"] == first["order_id"]
    with Client(node.address, trader="alice") as again:  # a new connection, the same trader
        assert again.place("sell", "1", "50000", client_order_id="bot-0001")["order_id"] == first["order_id"]
        assert again.order(client_order_id="bot-0001")["order_id"] == first["order_id"]
    with Client(node.address, trader="bob") as bob:  # another trader's id space
        assert bob.place("sell", "1", "50001", client_order_id="bot-0001")["order_id"] != first["order_id"]

    node.kill()
    node = net.restart("a")
    wait_for(lambda: _serves(node, first["order_id"]), 10, "the restarted node to serve its book")
    with Client(node.address, trader="alice") as alice:
        retried = alice.place("sell", "1", "50000", client_order_id="bot-0001")
        assert (retried["order_id"], retried["client_order_id"]) == (first["order_id"], "bot-0001")
        assert alice.cancel(client_order_id="bot-0001")["reason"] == "user"
        assert alice.place("sell", "1", "50000", client_order_id="bot-0001")["status"] == "cancelled"
        assert [o["order_id"] for o in alice.open_orders().items] == []
    with Client(node.address) as anyone:
        assert anyone.status()["orders"] == 2  # alice's one order, and bob's


def _serves(node, order_id: str) -> bool:
    try:
        with node.client(timeout=2.0) as client:
            client.order(order_id)
            return True
    except (UnknownOrder, Timeout):
        return False


def _drain(sub: Subscription, done, timeout: float, what: str) -> None:
    """Read ``sub`` until ``done()`` holds (checked after every update, and when it is quiet)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        sub.poll(0.2)


def test_a_book_stream_applied_to_its_snapshot_equals_book_on_every_node(net):
    net.start_mesh(["a", "b", "c"])
    nodes = [net.nodes[i] for i in "abc"]
    rng = random.Random(7)
    depth = 5
    with nodes[0].client() as watcher, watcher.subscribe("book", depth=depth) as book, \
            nodes[1].client() as other, other.subscribe("book", depth=1) as shallow:
        clients = [Client(n.address, trader=f"t{i}") for i, n in enumerate(nodes)]
        try:
            placed: list[tuple[Client, str]] = []
            for _ in range(60):
                i = rng.randrange(3)
                if placed and rng.random() < 0.25:
                    client, oid = placed.pop(rng.randrange(len(placed)))
                    _cancel(client, oid)
                    continue
                side = rng.choice(["buy", "sell"])
                price = str(50_000 + rng.randint(-8, 8))
                order = clients[i].place(side, str(Decimal(rng.randint(1, 30)) / 10), price)
                if order["open"] != "0.00000000":
                    placed.append((clients[i], order["order_id"]))
                book.poll(0)  # read as we go, as a bot would
            clients[1].place("buy", "0.1", "49000")  # a book with two sides at the end, whatever came before
            clients[2].place("sell", "0.1", "51000")
        finally:
            for client in clients:
                client.close()
        net.wait_converged()
        books = {}
        for n in nodes:
            with n.client() as c:
                books[n.id] = (c.book(depth), c.book(1))
        assert len({repr(b) for b in books.values()}) == 1  # converged: every node shows the same book
        want, want_shallow = books["a"]
        _drain(book, lambda: book.book == want, 10, "the book stream to reach the book")
        _drain(shallow, lambda: shallow.book == want_shallow, 10, "the shallow book stream to reach the book")
        assert want["bids"] and want["asks"]  # the random orders left a book to compare


def test_an_orders_stream_shows_every_change_of_every_order_of_its_trader(net):
    net.start_mesh(["a", "b"])
    a, b = net.nodes["a"], net.nodes["b"]
    rng = random.Random(11)
    with Client(a.address, trader="alice") as alice, alice.subscribe("orders") as orders, \
            Client(b.address, trader="bob") as bob, Client(a.address, trader="carol") as carol:
        events: list[dict[str, Any]] = []
        mine: list[str] = []
        for n in range(40):
            roll = rng.random()
            if roll < 0.4:
                mine.append(alice.place(rng.choice(["buy", "sell"]), "0.5", str(50_000 + rng.randint(-3, 3)),
                                        client_order_id=f"al-{n}")["order_id"])
            elif roll < 0.6:
                bob.place(rng.choice(["buy", "sell"]), "0.3", str(50_000 + rng.randint(-3, 3)), tif="ioc")
            elif roll < 0.7:
                carol.place(rng.choice(["buy", "sell"]), "0.2", str(50_000 + rng.randint(-3, 3)))  # same node
            elif mine:
                _cancel(alice, rng.choice(mine))
            update = orders.poll(0)
            if update is not None:
                events.append(update)
        alice.cancel_all()
        net.wait_converged()
        final = {oid: alice.order(oid) for oid in mine}

        def complete() -> bool:
            return all(_seen_all(events, order) for order in final.values())

        deadline = time.monotonic() + 10
        while not complete():
            assert time.monotonic() < deadline, "the orders stream did not show every change"
            update = orders.poll(0.2)
            if update is not None:
                events.append(update)
        assert orders.poll(0.5) is None  # nothing more than every change
    assert {e["order"]["order_id"] for e in events} == set(mine)  # alice's orders, no one else's
    for oid, order in final.items():
        theirs = [e for e in events if e["order"]["order_id"] == oid]
        assert theirs[0]["event"] == "placed" and theirs[0]["order"]["filled"] == "0.00000000"
        fills = [e["fill"] for e in theirs if e["event"] == "fill"]
        assert [f["id"] for f in fills] == [f["id"] for f in order["fills"]]  # each fill, in order
        assert all(f["order_id"] == oid and f["client_order_id"] == order["client_order_id"] for f in fills)
        filled = [Decimal(e["order"]["filled"]) for e in theirs]
        assert filled == sorted(filled)  # each message shows the order as it then stood
        assert theirs[-1]["order"]["status"] == order["status"] and theirs[-1]["order"]["filled"] == order["filled"]
        if order["reason"] is not None:
            assert [e["event"] for e in theirs].count("cancel") == 1 and theirs[-1]["event"] == "cancel"


def _cancel(client: Client, order_id: str) -> None:
    try:
        client.cancel(order_id)
    except OrderClosed:  # filled (or cancelled) meanwhile, by a taker at another node
        pass


def _seen_all(events: list[dict[str, Any]], order: dict[str, Any]) -> bool:
    theirs = [e for e in events if e["order"]["order_id"] == order["order_id"]]
    fills = sum(e["event"] == "fill" for e in theirs)
    closed = order["reason"] is None or any(e["event"] == "cancel" for e in theirs)
    return bool(theirs) and fills == len(order["fills"]) and closed


def test_cancel_on_disconnect_cancels_a_silent_bots_orders(net):
    node = net.start("a")
    bot = Client(node.address, trader="bot")
    assert bot.cancel_on_disconnect(500) == 500
    kept = bot.place("sell", "1", "50000")["order_id"]
    bot.heartbeat()
    with Client(node.address, trader="human") as human:
        theirs = human.place("sell", "1", "50001")["order_id"]
        assert human.heartbeat() == 0  # not armed on this connection
        bot.close()  # the bot goes silent
        wait_for(lambda: human.order(kept)["reason"] == "disconnect", 5, "the silent bot's order to be cancelled")
        assert human.order(theirs)["status"] == "open"
    assert "cancel on disconnect" in node.log()


def test_cancel_on_disconnect_outlives_a_kill_9_of_the_node(net):
    node = net.start("a")
    with Client(node.address, trader="bot") as bot, Client(node.address, trader="back") as back:
        assert bot.cancel_on_disconnect(5000) == 5000  # long enough for "back" to return on a loaded machine
        assert back.cancel_on_disconnect(5000) == 5000
        silent = bot.place("sell", "1", "50000")["order_id"]
        returning = back.place("sell", "1", "50001")["order_id"]
    node.kill()  # within the timeout: the bots never went silent before the crash
    node = net.restart("a")
    with Client(node.address, trader="back") as back:  # one comes back (without arming it again)
        back.heartbeat()
        with Client(node.address, trader="human") as human:
            wait_for(lambda: human.order(silent)["reason"] == "disconnect", 30,
                     "the order of the bot that never came back to be cancelled")
            assert human.order(returning)["status"] == "open"
