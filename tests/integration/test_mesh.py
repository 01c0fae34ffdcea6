"""A real mesh: convergence, races, concurrent crosses, late joiners, repair."""

from __future__ import annotations

import threading
from decimal import Decimal

from zmqex.errors import UnknownOrder
from zmqex.local import wait_for


def total(fills, order_id):
    return sum(Decimal(f["qty"]) for f in fills if order_id in (f["maker"], f["taker"]))


def test_three_nodes_converge(net):
    net.start_mesh(["a", "b", "c"])
    a, b, c = (net.nodes[i].client() for i in "abc")
    maker = a.place("sell", "1.5", "50000.00")
    assert maker["status"] == "open"
    wait_for(lambda: _known(b, maker), 10, "b to learn of the maker order")
    taker = b.place("buy", "1", "50001")
    assert taker["status"] == "filled"
    fill = taker["fills"][0]
    assert taker["fills"] == [{"id": fill["id"], "maker": maker["order_id"], "taker": taker["order_id"],
                               "price": "50000.00", "qty": "1.00000000", "ts": fill["ts"], "taker_side": "buy"}]
    statuses = net.wait_converged()
    assert {s["fills"] for s in statuses.values()} == {1}
    for client in (a, b, c):
        assert client.book()["asks"] == [["50000.00", "0.50000000", 1]]
        assert client.order(maker["order_id"])["filled"] == "1.00000000"


def _known(client, order):
    try:
        client.order(order["order_id"])
        return True
    except UnknownOrder:
        return False


def by_id(fills):
    return sorted(fills, key=lambda f: f["id"])


def test_takers_racing_on_every_node_never_overfill(net):
    ids = ["a", "b", "c"]
    net.start_mesh(ids)
    rounds = 5
    for round_ in range(rounds):
        maker_node = net.nodes[ids[round_ % 3]]
        with maker_node.client() as c:
            maker = c.place("sell", "1", "50000")
        net.wait_converged()
        results = []

        def take(node):
            with node.client(timeout=10) as client:
                results.append(client.place("buy", "1", "50000", tif="ioc"))

        threads = [threading.Thread(target=take, args=(net.nodes[i],)) for i in ids for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 6
        sold = sum(Decimal(r["filled"]) for r in results)
        assert sold == Decimal(1), f"round {round_}: {sold} sold of 1"
        statuses = net.wait_converged()
        for node_id in ids:
            with net.nodes[node_id].client() as c:
                assert c.order(maker["order_id"])["filled"] == "1.00000000"
                assert total(c.fills(), maker["order_id"]) == Decimal(1)
        assert len({s["hash"] for s in statuses.values()}) == 1


def test_concurrent_crossing_orders_leave_no_crossed_book(net):
    ids = ["a", "b", "c"]
    net.start_mesh(ids)
    barrier = threading.Barrier(3)

    def place(node, side, price):
        with node.client(timeout=10) as client:
            barrier.wait(10)
            for i in range(10):
                client.place(side, "0.1", str(Decimal(price) + (i % 3)))

    threads = [
        threading.Thread(target=place, args=(net.nodes["a"], "buy", "50010")),
        threading.Thread(target=place, args=(net.nodes["b"], "sell", "49990")),
        threading.Thread(target=place, args=(net.nodes["c"], "sell", "50000")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = net.wait_converged()
    assert len({s["hash"] for s in statuses.values()}) == 1
    for node_id in ids:
        with net.nodes[node_id].client() as c:
            book = c.book(depth=50)
        if book["bids"] and book["asks"]:
            assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0]), book


def test_late_joiner_catches_up(net):
    net.start_mesh(["a", "b"])
    with net.nodes["a"].client() as a, net.nodes["b"].client() as b:
        for i in range(20):
            a.place("sell", "0.1", str(50000 + i))
        for i in range(5):
            b.place("buy", "0.15", "50010")
    net.start("c")
    statuses = net.wait_converged()
    assert statuses["c"]["orders"] == 25
    with net.nodes["c"].client() as c, net.nodes["a"].client() as a:
        assert c.book(depth=50) == a.book(depth=50)
        assert by_id(c.fills()) == by_id(a.fills())


def test_node_that_missed_gossip_repairs(net):
    net.start_mesh(["a", "b"])
    net.start("c", args=["--drop-gossip", "3"])  # loses every third gossip message
    net.wait_meshed()
    with net.nodes["a"].client() as a:
        for i in range(100):
            a.place("sell", "0.01", str(50000 + i % 50))
    statuses = net.wait_converged(60)
    assert statuses["c"]["orders"] == 100
    assert statuses["c"]["repaired"] > 0  # it did miss gossip, and repair filled the gaps


def test_late_joiner_after_compaction_gets_a_snapshot_and_the_tail(net):
    args = ["--compact-after", "10"]
    net.start("a", args=args)
    net.start("b", args=args)
    net.wait_meshed()
    with net.nodes["a"].client() as a:
        for i in range(30):
            a.place("sell" if i % 2 else "buy", "0.1", str(50000 + (i % 2) * 10))
    statuses = net.wait_converged()
    wait_for(lambda: all(_compacted(net.nodes[i]) for i in "ab"), 30, "a and b to compact")
    net.start("c", args=args)
    with net.nodes["b"].client() as b:
        b.place("buy", "0.05", "50010")  # the tail
    statuses = net.wait_converged()
    assert statuses["c"]["orders"] == 31
    assert statuses["c"]["compacted"] > 0  # it holds the early state, not the early events
    with net.nodes["c"].client() as c, net.nodes["a"].client() as a:
        assert c.book(depth=50) == a.book(depth=50)


def _compacted(node):
    with node.client() as c:
        return c.status()["compacted"] > 0
