"""A node whose store refuses commits (zmqex.stall): nothing that a failed commit backs leaves the
node, writes are refused with store_unavailable, repair of durable events goes on, and everything
held goes out, in order, once a retry of the same records succeeds."""

from __future__ import annotations

from collections.abc import Iterable

import msgpack
import pytest

from tests.test_node import Recorder, Stand, hb, order
from zmqex.core import messages
from zmqex.core.outputs import Delivered, EventRecord, OrderTrader, Output, Persist, Publish, Record, Reply, Send
from zmqex.errors import StoreUnavailable
from zmqex.node import Node
from zmqex.store import MemoryStore


class FullDisk(Recorder):
    """A store that refuses every commit while ``full``, and records each attempt."""

    def __init__(self) -> None:
        super().__init__()
        self.full = True

    def commit(self, records: Iterable[Record], *, promise: bool = True, wait: bool = True) -> int:
        if self.full:
            self.steps.append(("refused", list(records)))
            raise StoreUnavailable("store x cannot be written: database or disk is full (0 bytes free)")
        return super().commit(records, promise=promise, wait=wait)


@pytest.fixture
def node():
    n = Node("a", port=0, store=MemoryStore())
    yield n
    n.close()


def stalled(node: Node, monkeypatch: pytest.MonkeyPatch) -> tuple[FullDisk, list[list[Output]]]:
    disk = FullDisk()
    drains: list[list[Output]] = []
    monkeypatch.setattr(node, "store", disk)
    monkeypatch.setattr(node.peers, "send", disk.send)
    monkeypatch.setattr(node, "pub", disk)
    monkeypatch.setattr(node.api, "finish", lambda token, result: (token, result["order_id"].encode()))
    monkeypatch.setattr(node, "_to_client", lambda identity, frame: disk.steps.append(("reply", frame)))
    monkeypatch.setattr(node, "_on_delivered", lambda event: disk.steps.append(("delivered", event.order_id)))
    monkeypatch.setattr(node, "replica", Stand(node.replica, take_outputs=lambda: drains.pop(0) if drains else []))
    return disk, drains


def test_nothing_a_refused_commit_backs_leaves_until_the_same_records_commit(node, monkeypatch):
    disk, drains = stalled(node, monkeypatch)
    event = order("a", 1, {"a": 1})
    own = [EventRecord(event), OrderTrader("a:1", "alice")]  # a place: our event a:1, and whose it is
    drains.append([*map(Persist, own), Send("b", hb(1)), Reply(b"client", {"order_id": "a:1"}), Publish(hb(2)),
                   Delivered(event)])
    node._carry_out()
    assert disk.steps == [("refused", own)]  # and nothing else: no peer, no reply, no gossip
    assert node.api.refusal is not None and node.api.refusal[0] is StoreUnavailable

    # Meanwhile: a write is refused with the documented code, a query is answered.
    node._client_request(b"c2", msgpack.packb({"v": 1, "id": 7, "op": "place", "side": "buy", "qty": "1",
                                               "price": "1"}))
    node._client_request(b"c2", msgpack.packb({"v": 1, "id": 8, "op": "status"}))
    refused, status = (msgpack.unpackb(frame) for _, frame in disk.steps[1:])
    assert refused["error"]["code"] == "store_unavailable" and "disk is full" in refused["error"]["message"]
    assert status["ok"] and status["result"]["ready"] is False
    del disk.steps[1:]

    # A peer's repair is served with what is durable; the rest waits behind the failed commit.
    theirs = order("b", 1, {"b": 1})  # durable at b before anyone heard of it; a:1 is not, here
    durable, not_yet = messages.SyncReply((theirs,), False), messages.SyncReply((theirs, event), False)
    later = OrderTrader("a:2", "bob")
    drains.append([Send("c", durable), Send("c", not_yet), Persist(later), Send("b", hb(3))])
    node._carry_out()
    assert disk.steps == [("refused", own), ("peer", "c", [durable])]
    del disk.steps[:]

    node._retry(node._stall.next_try)  # still full: tried again, nothing leaves
    assert disk.steps == [("refused", [*own, later])] and node._stall is not None
    del disk.steps[:]

    disk.full = False
    node._retry(node._stall.next_try)
    assert node._stall is None and node.api.refusal is None
    assert disk.steps == [
        ("commit", [*own, later], True),  # every record held, in order, in one transaction
        ("peer", "b", [hb(1)]), ("reply", b"a:1"), ("gossip", [hb(2)]),  # then the effects, in order
        ("peer", "c", [not_yet]), ("peer", "b", [hb(3)]),
        ("delivered", "a:1"),
    ]


def test_records_that_back_no_promise_are_kept_when_their_commit_fails(node, monkeypatch):
    disk, drains = stalled(node, monkeypatch)
    theirs = OrderTrader("a:1", "alice")
    drains.append([Persist(theirs, promise=False), Send("b", hb(1))])
    node._carry_out()
    # Their effects needed no record and went; the records wait for the next commit, first in it.
    assert disk.steps == [("peer", "b", [hb(1)]), ("refused", [theirs])]
    disk.full = False
    node._retry(node._stall.next_try)
    assert disk.steps[-1] == ("commit", [theirs], True) and node._stall is None
