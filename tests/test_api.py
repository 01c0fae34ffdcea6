"""The client protocol without sockets: every request gets an answer, bad ones change nothing."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.api import ClientApi
from zmqex.core.outputs import Reply
from zmqex.core.replica import Replica

ME = b"\x00client"


def make():
    replica = Replica("a")
    return replica, ClientApi(replica)


def call(api, **request):
    request.setdefault("v", 1)
    request.setdefault("id", 7)
    raw = api.handle(ME, msgpack.packb(request))
    return None if raw is None else msgpack.unpackb(raw)


def finish(replica, api):
    """Carry out the replica's Reply outputs the way the node does."""
    replies = [api.finish(o.token, o.result) for o in replica.take_outputs() if isinstance(o, Reply)]
    return [msgpack.unpackb(frame) for _, frame in replies]


def test_place_replies_when_the_flow_ends_with_decimal_strings():
    replica, api = make()
    assert call(api, op="place", side="sell", qty="1.5", price="50000") is None
    [reply] = finish(replica, api)
    assert reply["ok"] and reply["id"] == 7
    result = reply["result"]
    assert (result["order_id"], result["price"], result["qty"], result["status"]) == (
        "a:1", "50000.00", "1.50000000", "open")
    assert api.pending == 0


def test_queries():
    replica, api = make()
    call(api, op="place", side="sell", qty="1", price="50000")
    call(api, op="place", side="sell", qty="2", price="50000")
    call(api, op="place", side="buy", qty="0.5", price="49999.99")
    finish(replica, api)
    book = call(api, op="book", depth=5)["result"]
    assert book["asks"] == [["50000.00", "3.00000000", 2]]
    assert book["bids"] == [["49999.99", "0.50000000", 1]]
    status = call(api, op="status")["result"]
    assert (status["node"], status["open_orders"], status["orders"], status["fills"]) == ("a", 3, 3, 0)
    assert status["vc"] == {"a": 3}
    assert call(api, op="order", order_id="a:2")["result"]["qty"] == "2.00000000"
    assert call(api, op="fills")["result"] == {"fills": []}


def test_self_trade_fills_and_streams_to_watchers():
    replica, api = make()
    assert call(api, op="watch")["result"] == {"watching": True}
    call(api, op="place", side="sell", qty="1", price="50000")
    call(api, op="place", side="buy", qty="0.25", price="50001")
    fills = [o.event for o in replica.take_outputs() if type(o).__name__ == "Delivered"
             and type(o.event.body).__name__ == "Fill"]
    [(identity, frame)] = api.stream_fill(fills[0])
    message = msgpack.unpackb(frame)
    assert identity == ME and message["stream"] == "fill"
    assert message["fill"]["qty"] == "0.25000000" and message["fill"]["price"] == "50000.00"


def test_cancel_and_its_errors():
    replica, api = make()
    call(api, op="place", side="sell", qty="1", price="50000")
    finish(replica, api)
    assert call(api, op="cancel", order_id="a:1")["result"]["status"] == "cancelled"
    assert call(api, op="cancel", order_id="a:1")["error"]["code"] == "order_closed"
    assert call(api, op="cancel", order_id="a:9")["error"]["code"] == "unknown_order"
    assert call(api, op="order", order_id="zz:1")["error"]["code"] == "unknown_order"


BAD_REQUESTS = [
    ({"op": "place", "side": "buy", "qty": 1.5, "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": "1", "price": 50000.5}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": "-1", "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": "0", "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1.001"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": "1e400", "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": 2**64 - 1, "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": True, "price": "1"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": ["1"], "price": "1"}, "invalid_request"),
    ({"op": "place", "side": "up", "qty": "1", "price": "1"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "tif": "fok"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "tif": "post_only"}, "invalid_request"),
    ({"op": "book", "depth": 0}, "invalid_request"),
    ({"op": "book", "depth": "10"}, "invalid_request"),
    ({"op": "order", "order_id": 5}, "invalid_request"),
    ({"op": "cancel", "order_id": "x" * 100}, "invalid_request"),
    ({"op": "cancel", "order_id": "no-colon"}, "malformed"),
    ({"op": "fly"}, "unknown_op"),
    ({"op": None}, "unknown_op"),
    ({"op": "status", "v": 2}, "unsupported_version"),
]


@pytest.mark.parametrize("request_, code", BAD_REQUESTS)
def test_bad_requests_get_a_clear_error_and_change_nothing(request_, code):
    replica, api = make()
    before = replica.ledger.state_hash(), replica.clock
    reply = call(api, **request_)
    assert reply["ok"] is False and reply["id"] == 7
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    assert (replica.ledger.state_hash(), replica.clock) == before
    assert replica.take_outputs() == []


@pytest.mark.parametrize("frame", [b"", b"\xc1", b"garbage", msgpack.packb([1, 2]), msgpack.packb("x"),
                                   msgpack.packb({"v": 1, "id": 1.5, "op": "status"}),
                                   msgpack.packb({"v": 1, "id": "x" * 65, "op": "status"}),
                                   msgpack.packb({1: 2})])
def test_malformed_frames_get_an_error_with_null_id(frame):
    replica, api = make()
    reply = msgpack.unpackb(api.handle(ME, frame))
    assert reply["ok"] is False and reply["id"] is None and reply["error"]["code"] == "malformed"


@given(st.binary(max_size=200))
def test_no_frame_breaks_the_api(frame):
    replica, api = make()
    before = replica.ledger.state_hash()
    reply = api.handle(ME, frame)
    assert reply is not None and msgpack.unpackb(reply)["ok"] is False
    assert replica.ledger.state_hash() == before
