"""Peers that stop answering, and nodes that are asked to stop."""

from __future__ import annotations

import os
import signal
import threading

from zmqex.local import wait_for


def peer_up(node, peer):
    with node.client() as c:
        return c.status()["peers"][peer]["up"]


def test_a_frozen_maker_is_skipped_and_its_take_settles_when_it_returns(net):
    net.start_mesh(["a", "b", "c"])
    a, b, c = (net.nodes[i] for i in "abc")
    with b.client() as cb:
        frozen_maker = cb.place("sell", "1", "50000")["order_id"]
    with c.client() as cc:
        next_maker = cc.place("sell", "1", "50001")["order_id"]
    net.wait_converged()

    os.kill(b.proc.pid, signal.SIGSTOP)  # b stops answering, state intact
    try:
        in_flight = {}

        def take():  # asks b at once: b is still "up" in a's view, so this take waits for b
            with a.client(timeout=30) as ca:
                in_flight["result"] = ca.place("buy", "0.4", "50000")

        taker = threading.Thread(target=take)
        taker.start()
        wait_for(lambda: not peer_up(a, "b") and not peer_up(c, "b"), 15, "b to be marked down")
        with a.client() as ca:
            book = ca.book()
            assert book["unavailable"]["asks"] == [["50000.00", "1.00000000", 1]]
            assert book["asks"] == [["50001.00", "1.00000000", 1]]
            assert ca.order(frozen_maker)["available"] is False
        with c.client() as cc:  # a new taker skips b's order and takes the next one at once
            result = cc.place("buy", "0.5", "50001", tif="ioc")
        assert [(f["maker"], f["qty"]) for f in result["fills"]] == [(next_maker, "0.50000000")]
        assert "result" not in in_flight
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    taker.join(30)
    assert in_flight["result"]["fills"][0]["maker"] == frozen_maker
    assert in_flight["result"]["filled"] == "0.40000000"
    statuses = net.wait_converged()
    assert all(s["peers"][p]["up"] for s in statuses.values() for p in s["peers"])
    with a.client() as ca:
        assert ca.order(frozen_maker)["filled"] == "0.40000000"


def test_sigterm_and_sigint_stop_a_node_cleanly(net):
    net.start_mesh(["a", "b"])
    for node, sig in ((net.nodes["a"], signal.SIGTERM), (net.nodes["b"], signal.SIGINT)):
        node.proc.send_signal(sig)
        assert node.proc.wait(10) == 0
        assert f"node {node.id} stopped" in node.log()
