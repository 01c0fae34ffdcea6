"""Orders belong to the trader who placed them, across connections and a kill -9 of the node."""

from __future__ import annotations

import pytest

from zmqex.client import Client
from zmqex.errors import NotOwner, Timeout, UnknownOrder
from zmqex.local import wait_for


def test_only_alice_cancels_alices_orders_from_any_connection_and_after_a_kill_9(net):
    node = net.start("a")
    with Client(node.address, trader="alice") as alice:
        first = alice.place("sell", "1", "50000")["order_id"]
        second = alice.place("sell", "1", "50001")["order_id"]
        assert alice.order(first)["mine"] is True
    with Client(node.address, trader="bob") as bob:
        with pytest.raises(NotOwner, match="another trader"):
            bob.cancel(first)
        assert bob.order(first)["mine"] is False
    with Client(node.address) as anonymous:  # a connection that names nobody is a trader of its own
        with pytest.raises(NotOwner):
            anonymous.cancel(first)
    with Client(node.address, trader="alice") as alice_again:  # a new connection, the same trader
        assert alice_again.cancel(first)["status"] == "cancelled"

    node.kill()
    node = net.restart("a")
    wait_for(lambda: _open(node, second), 10, "the restarted node to serve its book")
    with Client(node.address, trader="bob") as bob:
        with pytest.raises(NotOwner):
            bob.cancel(second)
    with Client(node.address, trader="alice") as alice:
        assert alice.order(second)["mine"] is True
        assert alice.cancel(second)["status"] == "cancelled"


def _open(node, order_id: str) -> bool:
    try:
        with node.client(timeout=2.0) as client:
            return client.order(order_id)["status"] == "open"
    except (UnknownOrder, Timeout):  # not loaded, or not answering yet: poll again
        return False
