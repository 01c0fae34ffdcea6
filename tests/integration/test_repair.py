"""A store row rewritten on disk (a valid-looking peer's order at another price) is found and repaired."""

from __future__ import annotations

import dataclasses
import sqlite3

from zmqex.client import Client
from zmqex.core import events
from zmqex.core.events import NewOrder
from zmqex.store import FILENAME


def test_a_rewritten_store_row_is_repaired_from_its_origin_and_the_replicas_converge(net):
    net.start_mesh(["a", "b", "c"])
    a, b = net.nodes["a"], net.nodes["b"]
    with Client(a.address, trader="alice") as alice:
        oid = alice.place("sell", "1", "50000")["order_id"]
        alice.place("sell", "2", "50001")
    net.wait_converged()
    b.stop()
    db = sqlite3.connect(net.workdir / "b" / FILENAME)
    origin, seq = oid.split(":")
    (data,) = db.execute("SELECT data FROM events WHERE origin = ? AND seq = ?", (origin, int(seq))).fetchone()
    event = events.decode(data)
    assert isinstance(event.body, NewOrder)
    forged = dataclasses.replace(event, body=dataclasses.replace(event.body, price=event.body.price + 500))
    db.execute("UPDATE events SET data = ? WHERE origin = ? AND seq = ?", (events.encode(forged), origin, int(seq)))
    db.commit()
    db.close()
    b = net.restart("b")
    statuses = net.wait_converged(60)  # the same clock at once; the same state once b repaired a's record
    assert len({s["hash"] for s in statuses.values()}) == 1
    assert statuses["b"]["counters"]["records_repaired"] == 1
    with b.client() as client:
        assert client.order(oid)["price"] == "50000.00"
    assert f"records of a here differed from a's own and were replaced by them: {oid}" in b.log()
