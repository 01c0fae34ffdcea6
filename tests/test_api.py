"""The client protocol without sockets: every request gets an answer, bad ones change nothing."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.api import ClientApi
from zmqex.core.outputs import Reply
from zmqex.core.queries import fill_info
from zmqex.core.replica import Replica
from zmqex.limits import Limits
from zmqex.protocol import fill_view

ME = b"\x00client"


def make(limits=Limits()):
    replica = Replica("a")
    return replica, ClientApi(replica, limits)


def call(api, *, who=ME, user=None, now=0, **request):
    request.setdefault("v", 1)
    request.setdefault("id", 7)
    raw = api.handle(who, msgpack.packb(request), user=user, now=now)
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
    assert call(api, op="fills")["result"] == {"fills": [], "truncated": False}


def test_two_traders_of_one_node_trade_and_stream_to_watchers():
    replica, api = make()
    assert call(api, op="watch")["result"] == {"watching": True}
    call(api, op="place", side="sell", qty="1", price="50000", trader="seller")
    call(api, op="place", side="buy", qty="0.25", price="50001", trader="buyer")
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


# --- traders: who owns an order ------------------------------------------------------------


def place(replica, api, trader=None, price="50000", **kw):
    """Place a sell as ``trader`` (a request field; None: the connection's own) and return its id."""
    if trader is not None:
        kw["trader"] = trader
    assert call(api, op="place", side="sell", qty="1", price=price, **kw) is None
    [reply] = finish(replica, api)
    assert reply["ok"], reply
    return reply["result"]["order_id"]


def test_an_order_belongs_to_the_trader_who_placed_it():
    replica, api = make()
    oid = place(replica, api, "alice")
    assert call(api, op="order", order_id=oid, trader="alice")["result"]["mine"] is True
    assert call(api, op="order", order_id=oid, trader="bob")["result"]["mine"] is False
    refused = call(api, op="cancel", order_id=oid, trader="bob")["error"]
    assert refused["code"] == "not_owner" and "another trader" in refused["message"]
    assert "alice" not in refused["message"]
    other = b"\x00other"  # the same trader on another connection (a reconnect)
    assert call(api, who=other, op="cancel", order_id=oid, trader="alice")["result"]["status"] == "cancelled"


def test_without_a_name_a_connection_is_its_own_trader():
    replica, api = make()
    oid = place(replica, api)
    assert replica.traders.of[oid] == "conn-" + ME.hex()
    assert call(api, who=b"\x00other", op="cancel", order_id=oid)["error"]["code"] == "not_owner"
    assert call(api, op="cancel", order_id=oid, trader="alice")["error"]["code"] == "not_owner"
    assert call(api, op="order", order_id=oid)["result"]["mine"] is True
    assert call(api, op="cancel", order_id=oid)["result"]["status"] == "cancelled"


@pytest.mark.parametrize("name", ["", "x" * 33, "a b", "é", 5, ["alice"], "o:alice"])
def test_a_trader_name_must_be_short_plain_text(name):
    replica, api = make()
    reply = call(api, op="place", side="sell", qty="1", price="1", trader=name)
    assert reply["error"]["code"] == "invalid_request" and replica.take_outputs() == []


def test_with_keys_the_authenticated_trader_acts_and_may_not_name_another():
    replica, api = make()
    oid = place(replica, api, user="t:alice")
    assert replica.traders.of[oid] == "alice"
    assert call(api, op="order", order_id=oid, user="t:alice")["result"]["mine"] is True
    assert call(api, op="order", order_id=oid, user="t:alice", trader="alice")["result"]["mine"] is True
    impostor = call(api, op="cancel", order_id=oid, user="t:bob", trader="alice")["error"]
    assert impostor["code"] == "not_owner" and "authenticated as bob" in impostor["message"]
    assert call(api, op="cancel", order_id=oid, user="t:bob")["error"]["code"] == "not_owner"
    assert call(api, op="place", side="sell", qty="1", price="1", user="x:alice")["error"]["code"] == "not_owner"
    unkeyed = place(replica, api, "alice")  # the same name without keys is the same trader
    assert call(api, op="cancel", order_id=unkeyed, user="t:alice")["result"]["status"] == "cancelled"


def test_an_operator_may_cancel_any_order_of_this_node_and_sees_them_as_its_own():
    replica, api = make()
    oid = place(replica, api, user="t:alice")
    assert call(api, op="order", order_id=oid, user="o:ops")["result"]["mine"] is True
    assert call(api, op="cancel", order_id=oid, user="o:ops", trader="alice")["error"]["code"] == "not_owner"
    assert call(api, op="cancel", order_id=oid, user="o:ops")["result"]["status"] == "cancelled"
    own = place(replica, api, user="o:ops")  # an operator's orders are its own, under a name no trader has
    assert replica.traders.of[own] == "o:ops"
    assert call(api, op="cancel", order_id=own, user="t:ops")["error"]["code"] == "not_owner"


# --- limits ----------------------------------------------------------------------------------


def test_a_trader_with_its_places_in_flight_is_busy_and_others_are_served():
    replica, api = make()
    for i in range(1000):
        assert call(api, op="place", side="sell", qty="1", price=str(50000 + i), trader="alice", id=i) is None
    assert api.pending == 1000 and replica.take_outputs()  # no reply carried out yet: all still in flight
    busy = call(api, op="place", side="sell", qty="1", price="1", trader="alice")["error"]
    assert busy["code"] == "busy" and "alice" in busy["message"]
    assert call(api, op="place", side="buy", qty="1", price="1", trader="bob") is None  # bob is served
    assert call(api, op="status", trader="alice")["ok"]  # and alice's other requests too


def test_the_node_wide_cap_on_places_in_flight_still_holds():
    replica, api = make(Limits(pending_per_trader=2, pending_per_node=3))
    for trader in ("alice", "alice", "bob"):
        assert call(api, op="place", side="sell", qty="1", price="9", trader=trader) is None
    assert call(api, op="place", side="sell", qty="1", price="9", trader="carol")["error"]["code"] == "busy"
    finish(replica, api)
    assert api.pending == 0 and api._pending_of == {}
    assert call(api, op="place", side="sell", qty="1", price="9", trader="carol") is None


def test_requests_per_second_per_trader_are_rate_limited():
    replica, api = make(Limits(rate_per_s=10, burst=5))
    for _ in range(5):
        assert call(api, op="status", trader="alice", now=1000)["ok"]
    refused = call(api, op="status", trader="alice", now=1000)["error"]
    assert refused["code"] == "rate_limited" and "10 requests a second" in refused["message"]
    assert call(api, op="status", trader="bob", now=1000)["ok"]  # another trader has a bucket of its own
    assert call(api, op="status", trader="alice", now=1099)["error"]["code"] == "rate_limited"
    assert call(api, op="status", trader="alice", now=1100)["ok"]  # 100 ms: one more token
    assert call(api, op="status", trader="alice", now=1100)["error"]["code"] == "rate_limited"
    assert all(call(api, op="status", trader="alice", now=60_000)["ok"] for _ in range(5))  # refilled to the burst
    assert call(api, op="status", trader="alice", now=60_000)["error"]["code"] == "rate_limited"


def test_idle_buckets_are_forgotten():
    replica, api = make(Limits(rate_per_s=1000, burst=2))
    for i in range(3000):  # a connection each, as a flood of new connections would be
        assert call(api, who=i.to_bytes(5, "big"), op="status", now=i)["ok"]
    assert len(api._buckets) <= 2048  # full buckets were swept


def test_open_orders_per_trader_and_per_node_are_bounded():
    replica, api = make(Limits(open_per_trader=2, open_per_node=3))
    first = place(replica, api, "alice", price="50000")
    place(replica, api, "alice", price="50001")
    refused = call(api, op="place", side="sell", qty="1", price="50002", trader="alice")["error"]
    assert refused["code"] == "limit" and "2 open orders" in refused["message"]
    place(replica, api, "bob", price="50003")
    assert call(api, op="place", side="sell", qty="1", price="50004", trader="carol")["error"]["code"] == "limit"
    call(api, op="cancel", order_id=first, trader="alice")
    place(replica, api, "alice", price="50002")  # room again
    assert replica.open_orders() == 3


def test_fills_reply_holds_the_most_recent_and_says_it_was_cut():
    replica, api = make(Limits(fills_reply=2))
    place(replica, api, "alice", price="50000")
    for i in range(3):
        assert call(api, op="place", side="buy", qty="0.1", price="50000", trader="bob") is None
    finish(replica, api)
    all_fills = [f["id"] for f in (fill_view(fill_info(e, replica.ledger)) for e in replica.ledger.fills.values())]
    assert len(all_fills) == 3
    result = call(api, op="fills")["result"]
    assert [f["id"] for f in result["fills"]] == all_fills[1:] and result["truncated"] is True
    api.limits = Limits(fills_reply=3)
    assert call(api, op="fills")["result"]["truncated"] is False


def test_book_depth_stays_capped():
    replica, api = make()
    assert call(api, op="book", depth=1000)["ok"]
    assert call(api, op="book", depth=1001)["error"]["code"] == "invalid_request"


def test_limits_must_be_positive_integers():
    with pytest.raises(ValueError):
        Limits(burst=0)
