"""Off the book across real node processes: a request for quote to three desks, quotes from two, one accept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zmqex.client import Client
from zmqex.errors import OrderClosed
from zmqex.local import wait_for


def _otc(node, trader: str = "t") -> dict:
    with Client(node.address, trader=trader) as client:
        return client.otc()


def _tape(node) -> list[tuple[str, str, str, str]]:
    """(maker, taker, price, qty) of every trade on the node's public tape."""
    with node.client() as client:
        return [(t["maker"], t["taker"], t["price"], t["qty"]) for t in client.trades(limit=1000).items]


def test_an_rfq_to_three_desks_answered_by_two_is_accepted_once_traded_once_and_on_every_tape(net):
    net.start_mesh(["a", "b", "c", "d"])
    a, b, c, d = (net.nodes[n] for n in "abcd")
    with Client(a.address, trader="alice") as alice:
        rfq = alice.rfq("buy", "2.5", desks=["b", "c", "d"], answer_ms=60_000)
    for node in (b, c, d):
        wait_for(lambda node=node: any(r["rfq_id"] == rfq["rfq_id"] for r in _otc(node)["rfqs"]), 20,
                 f"{node.id} to see the request for quote")
    with Client(b.address, trader="bob") as bob:
        qb = bob.quote(rfq["rfq_id"], "50000.00", "2.5", valid_ms=60_000)
    with Client(c.address, trader="carol") as carol:
        qc = carol.quote(rfq["rfq_id"], "50100.00", "2.5", valid_ms=60_000)
    wait_for(lambda: {qb["offer_id"], qc["offer_id"]} <= {o["offer_id"] for o in _otc(a, "alice")["offers"]}, 20,
             "a to see both quotes")
    assert qb["offer_id"] not in {o["offer_id"] for o in _otc(c)["offers"]}, "c never sees b's quote"
    assert qb["offer_id"] not in {o["offer_id"] for o in _otc(d)["offers"]}

    with Client(a.address, trader="alice") as alice:
        done = alice.accept(qb["offer_id"], "2.5")
        assert done["traded"] and done["trade"]["counterparty"] == "b" and done["trade"]["price"] == "50000.00"
        with pytest.raises(OrderClosed):  # the request is answered: c's quote can no longer be accepted
            alice.accept(qc["offer_id"], "2.5")
        mine = alice.otc()
    assert [t["qty"] for t in mine["trades"]] == ["2.50000000"]
    assert [r["status"] for r in mine["rfqs"] if r["rfq_id"] == rfq["rfq_id"]] == ["filled"]

    net.wait_converged()
    for node in (a, b, c, d):  # every replica's tape has the report, without order ids or desk names
        wait_for(lambda node=node: _tape(node) == [("", "", "50000.00", "2.50000000")], 20,
                 f"{node.id}'s tape to show the one trade")
    assert [t["counterparty"] for t in _otc(b, "bob")["trades"]] == ["a"], "b knows the trade in full"
    assert _otc(c, "carol")["trades"] == [] and _otc(d)["trades"] == []


def test_the_example_otc_session_trades_between_two_desks(net):
    net.start_mesh(["a", "b"])
    a, b = net.nodes["a"], net.nodes["b"]
    example = Path(__file__).resolve().parents[2] / "examples" / "otc_session.py"
    done = subprocess.run([sys.executable, str(example), a.address, b.address, "b"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "A bought 2.00000000 at 50000.00 from b" in done.stdout
    wait_for(lambda: _tape(b) == [("", "", "50000.00", "2.00000000")], 20, "b's tape to show the trade")
