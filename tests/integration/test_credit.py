"""Credit across real node processes: a desk over its limit with one counterparty is refused by it
and still trades with another; then, its own limit spent too, its order ends with reason credit."""

from __future__ import annotations

from zmqex.client import Client
from zmqex.local import wait_for


def _asks(node) -> list[list[str | int]]:
    with node.client() as client:
        return client.book(depth=5)["asks"]


def test_a_desk_over_its_credit_with_a_counterparty_is_refused_by_it_and_still_trades_with_others(net):
    net.start_mesh(["a", "b", "c"])
    a, b, c = (net.nodes[n] for n in "abc")
    with a.client() as operator:  # a node without keys: any connection is its operator
        view = operator.set_credit("b", "100")  # a gives desk b $100.00 of open exposure
        assert view["desks"]["b"]["limit"] == "100.00" and view["desks"]["b"]["room"] == "100.00"
    with Client(a.address, trader="maker") as maker:
        a_ask = maker.place("sell", "2", "100.00")["order_id"]
    with Client(c.address, trader="maker") as maker:
        c_ask = maker.place("sell", "2", "100.50")["order_id"]
    wait_for(lambda: len(_asks(b)) == 2, 20, "b to see a's and c's asks")

    with Client(b.address, trader="taker", timeout=15) as taker:
        first = taker.place("buy", "1", "100.00", tif="ioc")  # $100.00: all a's credit for b
        assert (first["status"], first["filled"]) == ("filled", "1.00000000")
        assert [f["maker"] for f in first["fills"]] == [a_ask]
        # a's ask at $100.00 is the best, but a refuses b now (credit): b takes c's at $100.50
        second = taker.place("buy", "1", "100.50", tif="ioc")
        assert (second["status"], second["filled"]) == ("filled", "1.00000000")
        assert [f["maker"] for f in second["fills"]] == [c_ask]

    with a.client() as operator:
        desk = operator.credit()["desks"]["b"]
        assert (desk["exposure"], desk["room"], desk["pending"]) == ("100.00", "0.00", "0.00")
        assert operator.status()["counters"]["takes_refused_credit"] >= 1
        assert operator.order(a_ask)["open"] == "1.00000000"  # what a would not sell b is still there
    with b.client() as operator:
        # b's own view: a's ask is all tradeable for b (b set no limit); b now limits itself with c
        assert _asks(b)[0] == ["100.00", "1.00000000", 1]
        view = operator.set_credit("c", "0")
        assert [level[3] for level in operator.book()["asks"]] == ["1.00000000", "0.00000000"]
        assert view["desks"]["c"]["exposure"] == "100.50"
    with Client(b.address, trader="taker", timeout=15) as taker:
        # a still refuses b (b leaves a alone a while), and b gives c no credit: nothing trades
        third = taker.place("buy", "1", "100.50", tif="ioc")
        assert (third["status"], third["filled"], third["reason"]) == ("cancelled", "0.00000000", "credit")

    with a.client() as operator:  # settled: a's room for b is back, and b trades with a again
        settled, view = operator.settle("b", "100")
        assert settled == "100.00" and view["desks"]["b"]["room"] == "100.00"
    with Client(b.address, trader="taker", timeout=30) as taker:
        fourth = taker.place("buy", "1", "100.00")  # rests crossed until b asks a again (after its cool-off)

        def filled() -> bool:
            return taker.order(fourth["order_id"])["filled"] == "1.00000000"

        wait_for(filled, 25, "b's order to trade with a once a's credit for b came back")
    hashes = net.wait_converged()
    assert len({h["hash"] for h in hashes.values()}) == 1
