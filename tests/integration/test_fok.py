"""Fill or kill across real node processes: whole from makers on three nodes, or nothing, also with one killed."""

from __future__ import annotations

from zmqex.client import Client
from zmqex.local import wait_for


def _book_shows(node, asks: int) -> bool:
    with node.client() as client:
        return len(client.book(depth=10)["asks"]) == asks


def test_a_fok_fills_whole_from_three_nodes_or_is_killed_with_nothing_filled(net):
    net.start_mesh(["a", "b", "c"])
    a, b, c = (net.nodes[n] for n in "abc")
    for node, price in ((a, "100.00"), (b, "100.01"), (c, "100.02")):
        with Client(node.address, trader="maker") as maker:
            maker.place("sell", "0.5", price)
    for node in (a, b, c):
        wait_for(lambda node=node: _book_shows(node, 3), 20, "every node to see the three asks")

    with Client(b.address, trader="taker") as taker:
        killed = taker.place("buy", "1.6", "100.02", tif="fok")  # the book has 1.5
        assert (killed["status"], killed["reason"], killed["filled"]) == ("cancelled", "killed", "0.00000000")
        filled = taker.place("buy", "1.2", "100.02", tif="fok", client_order_id="fok-1")
        assert (filled["status"], filled["filled"]) == ("filled", "1.20000000")
        assert sorted(f["price"] for f in filled["fills"]) == ["100.00", "100.01", "100.02"]

    hashes = net.wait_converged()
    assert len({h["hash"] for h in hashes.values()}) == 1
    for node in (a, b, c):
        with node.client() as client:
            assert client.order(filled["order_id"])["filled"] == "1.20000000"
            assert client.order(killed["order_id"])["filled"] == "0.00000000"


def test_a_fok_that_needs_a_killed_makers_node_is_killed_and_releases_what_was_held(net):
    net.start_mesh(["a", "b", "c"])
    a, b, c = (net.nodes[n] for n in "abc")
    for node in (b, c):
        with Client(node.address, trader="maker") as maker:
            maker.place("sell", "1", "100.00")
    wait_for(lambda: _total_ask(a) == 200_000_000, 20, "a to see both asks")
    c.kill()  # a may still think c is up: then b holds its part, c's is never answered
    with Client(a.address, trader="taker", timeout=30) as taker:
        result = taker.place("buy", "2", "100.00", tif="fok")
    assert (result["status"], result["reason"], result["filled"]) == ("cancelled", "killed", "0.00000000")
    wait_for(lambda: _holds_left(b) == 0, 20, "b to have let go of any hold it took")
    net.restart("c")
    hashes = net.wait_converged()
    assert len({h["hash"] for h in hashes.values()}) == 1
    for node in (a, b, net.nodes["c"]):
        with node.client() as client:
            assert client.order(result["order_id"])["filled"] == "0.00000000"
        assert _holds_left(node) == 0


def _holds_left(node) -> int:
    """Holds ``node`` took and has not settled yet."""
    with node.client() as client:
        counters = client.status()["counters"]
    return counters.get("holds_taken", 0) - counters.get("holds_confirmed", 0) - counters.get("holds_released", 0)


def _total_ask(node) -> int:
    """Satoshis on the ask side of ``node``'s book."""
    with node.client() as client:
        return sum(_sats(level[1]) for level in client.book(depth=5)["asks"])


def _sats(qty: str) -> int:
    whole, _, frac = qty.partition(".")
    return int(whole) * 100_000_000 + int((frac + "00000000")[:8])
