"""Tests for zmqex.node's handling of peer frames, on an in-process node (real sockets, no peers)."""

from __future__ import annotations

import pytest

from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif
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
    # b may not speak for c on the fast path: the core refuses that gossip (Forged) ...
    b2 = order("b", 2, {"b": 2})
    forged = order("c", 1, {"c": 1})
    b3 = order("b", 3, {"b": 3})
    frame = messages.encode_batch([messages.Gossip(b2), messages.Gossip(forged), messages.Gossip(b3)])
    node._receive("b", messages.decode_batch(frame), "gossip")
    # ... and the messages around it are delivered all the same.
    assert set(node.replica.ledger.orders) == {"b:1", "b:2", "b:3"}
    assert node.replica.clock == VectorClock({"b": 3})
    assert "rejected gossip from b" in caplog.text


def test_incarnations_remember_a_bounded_number_of_ids(monkeypatch):
    from zmqex import mesh

    monkeypatch.setattr(mesh, "MAX_NODES", 3)
    seen = mesh.Incarnations()
    assert all(seen.heard(n, "1", 0) for n in ("a", "b", "c"))
    assert not seen.heard("d", "1", 10)  # full, nobody silent long enough to forget
    assert seen.heard("a", "1", mesh.RESTART_AFTER_MS)  # a speaks on ...
    assert seen.heard("d", "1", mesh.RESTART_AFTER_MS)  # ... b and c fell silent: forgotten
    assert set(seen.accepted) == {"a", "d"}
    assert not seen.heard("a", "2", mesh.RESTART_AFTER_MS + 1)  # a second a while a is heard
