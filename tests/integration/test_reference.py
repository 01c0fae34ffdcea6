"""A real mesh, one order at a time at random nodes, trades exactly like the naive matcher."""

from __future__ import annotations

import random

import pytest

from tests.reference import NaiveMatcher
from zmqex.core.events import Side, Tif
from zmqex.core.money import format_price, format_qty, parse_price, parse_qty
from zmqex.errors import Rejected


@pytest.mark.parametrize("n, orders, seed", [(3, 40, 3), (5, 30, 5)])
def test_random_stream_matches_reference(net, n, orders, seed):
    ids = [f"n{i}" for i in range(n)]
    net.start_mesh(ids)
    clients = {i: net.nodes[i].client(timeout=10) for i in ids}
    rng = random.Random(seed)
    ref = NaiveMatcher()
    try:
        for _ in range(orders):
            if ref.resting and rng.random() < 0.1:
                victim = ref.resting[0]["id"]
                clients[victim.split(":")[0]].cancel(victim)
                ref.cancel(victim)
                net.wait_converged()
                continue
            node = rng.choice(ids)
            side = rng.choice(list(Side))
            qty = rng.randint(1, 40) * 1_000_000  # 0.01 .. 0.40 BTC
            price = None if rng.random() < 0.1 else 50_000_00 + rng.randint(-4, 4) * 100
            tif = Tif.IOC if price is None else rng.choice([Tif.GTC, Tif.GTC, Tif.IOC, Tif.POST_ONLY])
            try:
                result = clients[node].place(side.value, format_qty(qty), None if price is None else format_price(price),
                                             tif=tif.value)
                oid = result["order_id"]
            except Rejected:
                oid = None
            # Each node's orders come from one connection: one trader, so they never trade together.
            assert ref.place(oid or "rejected", side, qty, price, tif, trader=node) == (oid is not None)
            net.wait_converged()
        for node_id, client in clients.items():
            fills = [(f["maker"], f["taker"], parse_price(f["price"]), parse_qty(f["qty"])) for f in client.fills()]
            assert sorted(fills) == sorted(ref.fills), node_id
            book = client.book(depth=1000)
            for side, name in ((Side.BUY, "bids"), (Side.SELL, "asks")):
                got = [(parse_price(p), parse_qty(q), k) for p, q, k in book[name]]
                assert got == ref.depth(side), (node_id, name)
    finally:
        for client in clients.values():
            client.close()
