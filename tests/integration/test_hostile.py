"""Hostile frames on a node's ROUTER: answered or dropped and logged; nothing changes."""

from __future__ import annotations

import msgpack
import pytest
import zmq

from tests.integration.raw import Sockets
from zmqex.core import messages, wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif
from zmqex.local import wait_for


@pytest.fixture
def node(net):
    net.start_mesh(["a", "b"])
    with net.nodes["a"].client() as a:
        a.place("sell", "1", "50000")
    net.wait_converged()
    return net.nodes["a"]


@pytest.fixture
def ctx():
    sockets = Sockets()
    yield sockets
    sockets.close()


def dealer(ctx, node, routing_id=None):
    return ctx.socket(zmq.DEALER, connect=node.endpoint, **({"ROUTING_ID": routing_id} if routing_id else {}))


def reply_to(sock, *frames, timeout_ms=5000):
    sock.send_multipart(list(frames))
    assert sock.poll(timeout_ms), "no reply"
    return msgpack.unpackb(sock.recv())


def state(node):
    with node.client() as c:
        s = c.status()
    return s["hash"], s["vc"]


def test_bad_client_frames_get_error_replies(node, ctx):
    before = state(node)
    sock = dealer(ctx, node)
    cases = [
        (b"\x00garbage\xff", "malformed"),
        (msgpack.packb([1, 2, 3]), "malformed"),
        (msgpack.packb({"v": 1, "id": 1, "op": "explode"}), "unknown_op"),
        (msgpack.packb({"v": 9, "id": 2, "op": "status"}), "unsupported_version"),
        (msgpack.packb({"v": 1, "id": 3, "op": "place", "side": "buy", "qty": 2**64 - 1, "price": "1"}),
         "invalid_amount"),
        (msgpack.packb({"v": 1, "id": 4, "op": "place", "side": "buy", "qty": 0.5, "price": "50000"}),
         "invalid_amount"),
        (msgpack.packb({"v": 1, "id": 5, "op": "place", "side": "buy", "qty": "1", "price": "-5"}),
         "invalid_amount"),
        (msgpack.packb({"v": 1, "id": 6, "op": "cancel", "order_id": "b:999"}), "unknown_order"),
        (msgpack.packb({"v": 1, "id": 7, "op": "cancel", "order_id": "a:1", "extra": [1] * 1000}), None),
    ]
    for frame, code in cases[:-1]:
        reply = reply_to(sock, frame)
        assert reply["ok"] is False and reply["error"]["code"] == code, (frame[:40], reply)
    assert state(node) == before


def test_junk_frames_and_forged_peers_are_dropped_and_logged(node, ctx):
    before = state(node)
    junk = dealer(ctx, node)
    # a client request in two frames (a request is one), and three frames that are no peer message:
    # answered malformed, under the id of the first frame when it has one
    assert reply_to(junk, msgpack.packb({"v": 1, "id": 8, "op": "status"}), b"two")["error"] == {
        "code": "malformed", "message": "a request is one frame, not 2"}
    assert reply_to(junk, b"x", b"b/1", b"unknown kind")["id"] is None
    forger = dealer(ctx, node, routing_id=b"N:b")  # routing ids mean nothing to a node
    forger.send_multipart([b"c", b"mallory/1", b"\x93garbage"])  # a member it never heard hello from
    forger.send_multipart([b"c", b"not a tag", b"x"])
    # A take whose taker order claims to come from another node than the sender.
    fake = Event("b", 1, VectorClock({"b": 1}), NewOrder(Side.BUY, 60000_00, 100, Tif.IOC))
    forger.send_multipart([b"c", b"mallory/1", messages.encode(messages.Take("m.1", "a:1", fake, 100))])
    # Gossip that pretends to be the node's own future events, from b's id in another incarnation.
    own = Event("a", 50, VectorClock({"a": 50}), NewOrder(Side.BUY, 1, 1, Tif.GTC))
    forger.send_multipart([b"c", b"b/1", messages.encode(messages.Gossip(own))])
    wait_for(lambda: node.log().count("refused") >= 3, 10, "the node to log them")
    assert "a second node claims to be b" in node.log()
    assert node.alive()
    assert state(node) == before
    with node.client() as c:
        assert c.order("a:1")["filled"] == "0.00000000"


def test_oversized_frame_drops_the_connection_not_the_node(node, ctx):
    before = state(node)
    big = dealer(ctx, node)
    big.send(b"\x00" * (wire.MAX_FRAME + 1))
    sock = dealer(ctx, node)
    reply = reply_to(sock, msgpack.packb({"v": 1, "id": 1, "op": "status"}))
    assert reply["ok"] and reply["result"]["node"] == "a"
    assert state(node) == before
