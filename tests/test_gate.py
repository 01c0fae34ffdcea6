"""What waits for its commit's fsync (zmqex.gate, zmqex.walsync): nothing leaves before it is on disk,
and everything leaves in the order it was made."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgpack
import pytest

from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.messages import Heartbeat
from zmqex.core.outputs import OrderTrader, Output, Persist, Publish, Record, Reply, Send
from zmqex.gate import Gate
from zmqex.node import Node
from zmqex.store import MemoryStore
from tests.test_node import Stand


def test_the_gate_lets_out_in_order_what_is_durable() -> None:
    gate = Gate()
    assert not gate and gate.last_ticket == 0
    gate.hold(1, None, [(b"c", b"1")])
    gate.later((b"c", b"2"))
    gate.hold(0, None, [(b"c", b"3")])  # nothing of its own to wait for: it waits behind ticket 1
    gate.hold(2, None, [])
    gate._check()
    assert gate.last_ticket == 2 and len(gate) == 3
    assert list(gate.ready(lambda t: t <= 0)) == []
    out = list(gate.ready(lambda t: t <= 1))
    assert [(h.ticket, h.answers, h.frames) for h in out] == [(1, [(b"c", b"1")], [(b"c", b"2")]),
                                                               (1, [(b"c", b"3")], [])]
    assert [h.ticket for h in gate.ready(lambda t: t <= 2)] == [2] and not gate


class SlowDisk:
    """The store, the peers, the PUB socket and the ROUTER at once: promises get tickets, on disk once ``synced``."""

    def __init__(self) -> None:
        self.steps: list[tuple[object, ...]] = []
        self.ticket = 0
        self.synced = 0

    def commit(self, records: Iterable[Record], *, promise: bool = True, wait: bool = True) -> int:
        self.steps.append(("commit", promise))
        if not promise:
            return 0
        self.ticket += 1
        return self.ticket

    def durable(self, ticket: int) -> bool:
        return ticket <= self.synced

    def wait(self, ticket: int) -> None:
        self.synced = max(self.synced, ticket)

    def send(self, *args: Any) -> bool:
        if len(args) == 3:  # Peers.send(peer, kind, frame)
            self.steps.append(("peer", args[0]))
        else:  # the PUB socket's send(frame)
            self.steps.append(("gossip",))
        return True

    def send_multipart(self, parts: list[bytes], flags: int = 0) -> None:  # the ROUTER
        self.steps.append(("client", msgpack.unpackb(parts[1])["id"]))

    def getsockopt(self, option: int) -> int:  # the ROUTER: no request waiting
        return 0


@pytest.fixture
def node():
    n = Node("a", port=0, store=MemoryStore())
    yield n
    n.close()


def test_a_node_holds_what_waits_for_an_fsync_and_lets_it_out_in_order(node, monkeypatch) -> None:
    disk = SlowDisk()
    monkeypatch.setattr(node, "store", disk)
    monkeypatch.setattr(node.peers, "send", disk.send)
    monkeypatch.setattr(node, "pub", disk)
    monkeypatch.setattr(node, "router", disk)
    monkeypatch.setattr(node.api, "finish", lambda token, result: (token, msgpack.packb({"id": result["id"]})))
    drains: list[list[Output]] = [
        [Persist(OrderTrader("a:1", "alice")), Reply(b"client", {"id": 1}), Publish(Heartbeat("a", VectorClock(), ""))],
        [Send("b", Heartbeat("a", VectorClock(), ""))],  # commits nothing: it still waits behind the first
    ]
    monkeypatch.setattr(node, "replica", Stand(node.replica, take_outputs=lambda: drains.pop(0) if drains else []))
    node._carry_out()
    node._to_client(b"client", msgpack.packb({"id": 9}))  # a query's answer made meanwhile
    node._carry_out()
    assert disk.steps == [("commit", True)]  # written; nothing left the node
    node._release()
    assert disk.steps == [("commit", True)]  # the fsync has not finished
    disk.synced = 1
    node._release()
    assert disk.steps == [("commit", True), ("client", 1), ("gossip",), ("client", 9), ("peer", "b")]
    node._to_client(b"client", msgpack.packb({"id": 10}))  # nothing held: at once
    assert disk.steps[-1] == ("client", 10)
