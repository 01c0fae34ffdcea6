"""Tests for zmqex.node's handling of peer frames, on an in-process node (real sockets, no peers)."""

from __future__ import annotations

import pytest

from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, Event, NewOrder, Side, Tif
from zmqex.node import Node
from zmqex.store import MemoryStore


@pytest.fixture
def node():
    n = Node("a", port=0, store=MemoryStore())
    yield n
    n.close()


def order(origin: str, seq: int, vc: dict[str, int]) -> Event:
    return Event(origin, seq, VectorClock(vc), NewOrder(Side.SELL, 50_000_00, 1000, Tif.GTC))


def test_a_message_the_core_refuses_does_not_stop_the_rest_of_its_frame(node, caplog):
    node.replica.receive("b", messages.Gossip(order("b", 1, {"b": 1})), 0)
    # b may not cancel c's order: the ledger refuses that event (InvariantViolation) ...
    c1 = order("c", 1, {"c": 1})
    forged = Event("b", 2, VectorClock({"b": 2, "c": 1}), Cancel("c:1"))
    c2 = order("c", 2, {"c": 2})
    frame = messages.encode_batch([messages.Gossip(c1), messages.Gossip(forged), messages.Gossip(c2)])
    node._receive("b", messages.decode_batch(frame), "gossip")
    # ... and the messages around it are delivered all the same.
    assert {"b:1", "c:1", "c:2"} <= set(node.replica.ledger.orders)
    assert node.replica.clock == VectorClock({"b": 1, "c": 2})
    assert "rejected gossip from b" in caplog.text

