"""The client protocol without sockets: every request gets an answer, bad ones change nothing."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqex import protocol
from zmqex.api import ClientApi
from zmqex.core.outputs import Delivered, PeerChanged, Reply
from zmqex.core.queries import fill_info
from zmqex.core.replica import Replica
from zmqex.limits import Limits
from zmqex.store import MemoryStore
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
    return [msgpack.unpackb(frame) for _, frame in filter(None, replies)]


class Host:
    """A replica and its api carried out as the node does: replies to places, then the other replies of
    the iteration, then stream messages of what was delivered, then the book streams' flush."""

    def __init__(self, limits: Limits = Limits(), node: str = "a", peers=()) -> None:
        self.replica = Replica(node, peers=peers)
        self.api = ClientApi(self.replica, limits)
        self.now = 0
        self.answers: list[tuple[bytes, bytes]] = []
        self.inbox: dict[bytes, list[dict[str, Any]]] = {}

    def ask(self, who: bytes = ME, **request: Any) -> None:
        request.setdefault("v", 1)
        request.setdefault("id", 7)
        raw = self.api.handle(who, msgpack.packb(request), now=self.now)
        if raw is not None:
            self.answers.append((who, raw))

    def carry_out(self) -> None:
        outputs = self.replica.take_outputs()
        sent = [self.api.finish(o.token, o.result) for o in outputs if isinstance(o, Reply)]
        sent += self.answers
        self.answers = []
        sent += self.api.on_delivered([out.event for out in outputs if isinstance(out, Delivered)])
        if any(isinstance(out, PeerChanged) for out in outputs):
            self.api.streams.peers_changed()
        sent += self.api.flush(self.now)
        for who, frame in filter(None, sent):
            self.inbox.setdefault(who, []).append(msgpack.unpackb(frame))

    def tick(self, ms: int) -> None:
        self.now += ms
        self.replica.tick(self.now)
        for who, frame in self.api.tick(self.now):
            self.inbox.setdefault(who, []).append(msgpack.unpackb(frame))
        self.carry_out()

    def take(self, who: bytes = ME) -> list[dict[str, Any]]:
        return self.inbox.pop(who, [])

    def result(self, who: bytes = ME, **request: Any) -> Any:
        """Ask, carry out, and return the one reply (the stream messages after it stay in the inbox)."""
        request.setdefault("id", "result")
        self.ask(who, **request)
        self.carry_out()
        messages = self.take(who)
        [reply] = [m for m in messages if "ok" in m and m["id"] == request["id"]]
        self.inbox[who] = [m for m in messages if m is not reply]
        return reply["result"] if reply["ok"] else reply["error"]


def test_place_replies_when_the_flow_ends_with_decimal_strings():
    replica, api = make()
    assert call(api, op="place", side="sell", qty="1.5", price="50000") is None
    [reply] = finish(replica, api)
    assert reply["ok"] and reply["id"] == 7
    result = reply["result"]
    assert (result["order_id"], result["price"], result["qty"], result["status"]) == (
        "a:1", "50000.00", "1.50000000", "open")
    assert (result["reason"], result["expire_at"], result["client_order_id"]) == (None, None, "")
    assert type(result["ts"]) is int and api.pending == 0


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


def test_cancel_and_its_errors():
    replica, api = make()
    call(api, op="place", side="sell", qty="1", price="50000")
    finish(replica, api)
    cancelled = call(api, op="cancel", order_id="a:1")["result"]
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "user")
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
    ({"op": "place", "side": "buy", "qty": 1, "price": "1"}, "invalid_amount"),  # one BTC, or one satoshi?
    ({"op": "place", "side": "buy", "qty": "1", "price": 50000}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": True, "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": ["1"], "price": "1"}, "invalid_amount"),
    ({"op": "place", "side": "buy", "qty": "1", "price": b"1"}, "invalid_amount"),
    ({"op": "place", "side": "up", "qty": "1", "price": "1"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "tif": "day"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "tif": "post_only"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "tif": "gtd"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "tif": "gtd", "expire_at": 1.5e12}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "expire_at": 10**12}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "client_order_id": ""}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "client_order_id": "x" * 37}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "client_order_id": "a b"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "client_order_id": 5}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "ack": "now"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "colour": "red"}, "invalid_request"),
    ({"op": "place", "side": "buy", "qty": "1", "price": "1", "trader": None}, "invalid_request"),
    ({"op": "book", "depth": 0}, "invalid_request"),
    ({"op": "book", "depth": "10"}, "invalid_request"),
    ({"op": "book", "depth": 10, "since": 0}, "invalid_request"),
    ({"op": "order", "order_id": 5}, "invalid_request"),
    ({"op": "order"}, "invalid_request"),
    ({"op": "order", "order_id": "a:1", "client_order_id": "x"}, "invalid_request"),
    ({"op": "cancel", "order_id": "x" * 100}, "invalid_request"),
    ({"op": "cancel", "order_id": "no-colon"}, "invalid_request"),
    ({"op": "cancel", "order_id": "a:01"}, "invalid_request"),
    ({"op": "cancel", "client_order_id": "nobody"}, "unknown_order"),
    ({"op": "cancel_all", "side": "both"}, "invalid_request"),
    ({"op": "trades", "since": -1}, "invalid_request"),
    ({"op": "trades", "since": 1}, "invalid_request"),  # past the last fill
    ({"op": "trades", "limit": 0}, "invalid_request"),
    ({"op": "trades", "limit": 1001}, "invalid_request"),
    ({"op": "my_fills", "limit": True}, "invalid_request"),
    ({"op": "open_orders", "since": "0"}, "invalid_request"),
    ({"op": "subscribe", "stream": "fills"}, "invalid_request"),
    ({"op": "subscribe"}, "invalid_request"),
    ({"op": "subscribe", "stream": "trades", "depth": 5}, "invalid_request"),
    ({"op": "subscribe", "stream": "book", "depth": 101}, "invalid_request"),
    ({"op": "subscribe", "stream": "book", "depth": 2}, "invalid_request"),
    ({"op": "unsubscribe", "subscription": 3}, "invalid_request"),
    ({"op": "unsubscribe", "subscription": 1.5}, "invalid_request"),
    ({"op": "cancel_on_disconnect", "timeout_ms": 499}, "invalid_request"),
    ({"op": "cancel_on_disconnect", "timeout_ms": 600_001}, "invalid_request"),
    ({"op": "cancel_on_disconnect", "timeout_ms": "5000"}, "invalid_request"),
    ({"op": "cancel_on_disconnect"}, "invalid_request"),
    ({"op": "fly"}, "unknown_op"),
    ({"op": None}, "unknown_op"),
    ({"op": "status", "v": 2}, "unsupported_version"),
    ({"op": "status", "v": True}, "unsupported_version"),
    ({"op": "status", "v": 1.0}, "unsupported_version"),
    ({"op": "status", "v": "1"}, "unsupported_version"),
    ({"op": "status", "v": None}, "unsupported_version"),
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
    assert replica.take_outputs() == [] and len(api.streams) == 0 and not api.cod


@pytest.mark.parametrize("price", ["50000", "50000.5", "50000.50", "0.01", "10000000", "10000000.00"])
@pytest.mark.parametrize("qty", ["1", "1.5", "1.000", "0.00000001", "21000000", "0.10000000"])
def test_amounts_in_the_one_plain_form_are_taken(price, qty):
    replica, api = make()
    assert call(api, op="place", side="buy", qty=qty, price=price) is None


@pytest.mark.parametrize("field, value", [
    *(("qty", q) for q in [".5", "1.", " 1", "1 ", "+1", "-1", "01", "00.5", "1e3", "1_000", "١", "1.000000001",
                           "0.000000000", "21000000.00000001", "", ".", "0", "0.00000000", "1,5", "0x10"]),
    *(("price", p) for p in ["1.000", "50000.001", ".5", "1.", "0", "0.00", "10000000.01", " 1", "1e2", "0.001"]),
])
def test_amounts_in_any_other_form_are_refused(field, value):
    replica, api = make()
    request = {"qty": "1", "price": "1", field: value}
    reply = call(api, op="place", side="buy", **request)
    assert reply["error"]["code"] == "invalid_amount", (field, value, reply)
    assert replica.take_outputs() == []


@pytest.mark.parametrize("frame", [b"", b"\xc1", b"garbage", msgpack.packb([1, 2]), msgpack.packb("x"),
                                   msgpack.packb({"v": 1, "id": 1.5, "op": "status"}),
                                   msgpack.packb({"v": 1, "id": "x" * 65, "op": "status"}),
                                   msgpack.packb({"v": 1, "id": True, "op": "status"}),
                                   msgpack.packb({"v": 1, "op": "status"}),
                                   msgpack.packb({1: 2})])
def test_malformed_frames_get_an_error_with_null_id(frame):
    replica, api = make()
    reply = msgpack.unpackb(api.handle(ME, frame))
    assert reply["ok"] is False and reply["id"] is None and reply["error"]["code"] == "malformed"


def test_a_request_in_several_frames_gets_malformed_under_its_id_when_it_can_be_read():
    replica, api = make()
    reply = msgpack.unpackb(api.handle_parts(ME, 2, msgpack.packb({"v": 1, "id": 9, "op": "status"})))
    assert (reply["id"], reply["error"]["code"]) == (9, "malformed") and "one frame, not 2" in reply["error"]["message"]
    for first in (b"junk", msgpack.packb({"id": 1.5}), msgpack.packb([9])):
        reply = msgpack.unpackb(api.handle_parts(ME, 3, first))
        assert (reply["id"], reply["error"]["code"]) == (None, "malformed")


@given(st.binary(max_size=200))
def test_no_frame_breaks_the_api(frame):
    replica, api = make()
    before = replica.ledger.state_hash()
    reply = api.handle(ME, frame)
    assert reply is not None and msgpack.unpackb(reply)["ok"] is False
    assert replica.ledger.state_hash() == before


# --- traders: who owns an order ------------------------------------------------------------


def place(replica, api, trader=None, price="50000", side="sell", qty="1", **kw):
    """Place an order as ``trader`` (a request field; None: the connection's own) and return its id."""
    if trader is not None:
        kw["trader"] = trader
    assert call(api, op="place", side=side, qty=qty, price=price, **kw) is None
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


@pytest.mark.parametrize("name", ["", "x" * 33, "a b", "é", 5, ["alice"], "o:alice", None])
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


# --- client order ids ------------------------------------------------------------------------


def test_a_retried_place_with_a_client_order_id_gets_the_order_it_placed_and_places_nothing():
    replica, api = make()
    oid = place(replica, api, "alice", client_order_id="bot-1")
    again = call(api, who=b"\x00reconnected", op="place", side="sell", qty="1", price="50000", trader="alice",
                 client_order_id="bot-1")
    assert again["ok"] and again["result"]["order_id"] == oid and again["result"]["client_order_id"] == "bot-1"
    assert len(replica.ledger.orders) == 1 and replica.take_outputs() == []
    call(api, op="cancel", client_order_id="bot-1", trader="alice")
    closed = call(api, op="place", side="buy", qty="2", price="1", trader="alice", client_order_id="bot-1")
    assert (closed["result"]["order_id"], closed["result"]["status"]) == (oid, "cancelled")  # whatever its state
    other = place(replica, api, "bob", client_order_id="bot-1")  # ids are per trader
    assert other != oid and len(replica.ledger.orders) == 2


def test_orders_are_named_by_client_order_id_for_their_trader_only():
    replica, api = make()
    oid = place(replica, api, "alice", client_order_id="a.1")
    mine = call(api, op="order", client_order_id="a.1", trader="alice")["result"]
    assert (mine["order_id"], mine["mine"], mine["client_order_id"]) == (oid, True, "a.1")
    theirs = call(api, op="order", order_id=oid, trader="bob")["result"]
    assert (theirs["mine"], theirs["client_order_id"]) == (False, "")  # nobody else's business
    assert call(api, op="order", client_order_id="a.1", trader="bob")["error"]["code"] == "unknown_order"
    assert call(api, op="cancel", client_order_id="a.1", trader="bob")["error"]["code"] == "unknown_order"
    assert call(api, op="cancel", client_order_id="a.1", trader="alice")["result"]["order_id"] == oid


def test_a_refused_place_leaves_its_client_order_id_free():
    replica, api = make()
    place(replica, api, "bob", side="buy", price="50000")
    refused = call(api, op="place", side="sell", qty="1", price="49999", tif="post_only", trader="alice",
                   client_order_id="x")
    assert refused["error"]["code"] == "rejected"
    assert place(replica, api, "alice", price="50001", client_order_id="x") == "a:2"


def test_ack_accepted_answers_at_once_and_the_end_of_the_flow_says_nothing():
    replica, api = make()
    reply = call(api, op="place", side="sell", qty="1", price="50000", ack="accepted", client_order_id="q")
    assert reply["ok"] and reply["result"]["order_id"] == "a:1" and reply["result"]["status"] == "open"
    assert api.pending == 1
    assert finish(replica, api) == [] and api.pending == 0


# --- cancel_all and the paged queries --------------------------------------------------------


def test_cancel_all_cancels_this_traders_open_orders_here():
    replica, api = make()
    sells = [place(replica, api, "alice", price=str(50000 + i)) for i in range(3)]
    buy = place(replica, api, "alice", side="buy", price="100")
    bobs = place(replica, api, "bob", price="60000")
    assert call(api, op="cancel_all", side="buy", trader="alice")["result"] == {"cancelled": [buy]}
    assert call(api, op="cancel_all", trader="alice")["result"] == {"cancelled": sells}
    assert call(api, op="cancel_all", trader="alice")["result"] == {"cancelled": []}
    assert replica.order_info(bobs)["status"] == "open"


def test_open_orders_page_by_sequence_number():
    replica, api = make()
    oids = [place(replica, api, "alice", price=str(50000 + i)) for i in range(5)]
    place(replica, api, "bob", price="1")
    call(api, op="cancel", order_id=oids[1], trader="alice")
    page = call(api, op="open_orders", limit=2, trader="alice")["result"]
    assert [o["order_id"] for o in page["orders"]] == [oids[0], oids[2]] and page["more"] is True
    assert page["next"] == 3
    page = call(api, op="open_orders", since=page["next"], limit=2, trader="alice")["result"]
    assert [o["order_id"] for o in page["orders"]] == oids[3:] and page == {**page, "next": 5, "more": False}
    assert call(api, op="open_orders", since=5, trader="alice")["result"] == {"orders": [], "next": 5, "more": False}
    assert len(call(api, op="open_orders", user="o:ops")["result"]["orders"]) == 5  # an operator: every one


def test_trades_and_my_fills_page_by_position_with_liquidity_and_side():
    replica, api = make()
    maker = place(replica, api, "alice", price="50000", qty="1")
    takers = [place(replica, api, "bob", side="buy", price="50000", qty="0.1") for _ in range(3)]
    trades = call(api, op="trades", limit=2)["result"]
    assert [t["taker"] for t in trades["trades"]] == takers[:2] and (trades["next"], trades["more"]) == (2, True)
    assert all(t["taker_side"] == "buy" and type(t["ts"]) is int for t in trades["trades"])
    rest = call(api, op="trades", since=2)["result"]
    assert [t["taker"] for t in rest["trades"]] == takers[2:] and (rest["next"], rest["more"]) == (3, False)
    alices = call(api, op="my_fills", trader="alice")["result"]["fills"]
    assert [(f["order_id"], f["side"], f["liquidity"]) for f in alices] == [(maker, "sell", "maker")] * 3
    bobs = call(api, op="my_fills", trader="bob", since=1, limit=1)["result"]
    assert [(f["order_id"], f["side"], f["liquidity"]) for f in bobs["fills"]] == [(takers[1], "buy", "taker")]
    assert (bobs["next"], bobs["more"]) == (2, True)
    assert call(api, op="my_fills", trader="carol")["result"] == {"fills": [], "next": 0, "more": False}
    operator = call(api, op="my_fills", user="o:ops", limit=1)["result"]  # one fill, both of its shares
    assert [f["liquidity"] for f in operator["fills"]] == ["maker", "taker"] and operator["next"] == 1


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


def test_book_depth_and_pages_stay_capped():
    replica, api = make(Limits(page=5))
    assert call(api, op="book", depth=1000)["ok"]
    assert call(api, op="book", depth=1001)["error"]["code"] == "invalid_request"
    assert call(api, op="trades", limit=5)["ok"] and call(api, op="trades", limit=6)["error"]["code"] == "invalid_request"


def test_limits_must_be_positive_integers():
    with pytest.raises(ValueError):
        Limits(burst=0)


# --- streams ---------------------------------------------------------------------------------


def data(messages, stream=None):
    """The stream messages that carry something, in order (heartbeats left out)."""
    return [m for m in messages if "stream" in m and "heartbeat" not in m and (stream is None or m["stream"] == stream)]


def test_a_trades_subscription_numbers_its_fills_and_a_watch_is_one_too():
    host = Host()
    assert host.result(op="subscribe", stream="trades", id=1) == {"subscribed": "trades"}
    assert host.result(op="watch", id=2) == {"watching": True}
    host.ask(b"\x00alice", op="place", side="sell", qty="1", price="50000", trader="alice")
    for _ in range(2):
        host.ask(b"\x00bob", op="place", side="buy", qty="0.25", price="50001", trader="bob")
    host.carry_out()
    messages = data(host.take())
    for sub in (1, 2):
        mine = [m for m in messages if m["id"] == sub]
        assert [m["seq"] for m in mine] == [1, 2] and all(m["stream"] == "trades" for m in mine)
        assert [m["trade"]["qty"] for m in mine] == ["0.25000000"] * 2
        assert all(m["trade"]["taker_side"] == "buy" and m["trade"]["price"] == "50000.00" for m in mine)
    assert list(messages[0]) == list(protocol.stream_message(1, "trades", 1, trade={}))


def test_an_orders_subscription_sees_every_change_of_its_traders_orders_in_order():
    host = Host()
    alice = b"\x00alice"
    host.result(alice, op="subscribe", stream="orders", trader="alice", id="o")
    host.ask(alice, op="place", side="sell", qty="1", price="50000", trader="alice", client_order_id="s1")
    host.ask(b"\x00bob", op="place", side="buy", qty="0.4", price="50000", trader="bob")
    host.ask(alice, op="place", side="buy", qty="1", price="100", trader="alice")
    host.carry_out()
    host.ask(alice, op="cancel", client_order_id="s1", trader="alice")
    host.carry_out()
    messages = data(host.take(alice))
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    seen = [(m["event"], m["order"]["order_id"], m["order"]["status"]) for m in messages]
    assert seen == [("placed", "a:1", "open"), ("fill", "a:1", "partial"), ("placed", "a:4", "open"),
                    ("cancel", "a:1", "cancelled")]
    fill = messages[1]["fill"]
    assert (fill["order_id"], fill["client_order_id"], fill["side"], fill["liquidity"]) == (
        "a:1", "s1", "sell", "maker")
    assert messages[1]["order"]["client_order_id"] == "s1" and "fills" not in messages[1]["order"]
    assert messages[3]["order"]["reason"] == "user"
    assert protocol.parse_stream(messages[1], "o").value["fill"] == fill  # what a client reads back


def test_an_operators_orders_subscription_sees_every_order_of_the_node():
    host = Host()
    host.result(b"\x00ops", op="subscribe", stream="orders", id=1)  # an unkeyed connection: its own trader
    host.api.streams.subscribe(b"\x00op2", 1, "orders", 0, "o:root", True, 0)
    host.ask(b"\x00a", op="place", side="sell", qty="1", price="50000", trader="alice")
    host.carry_out()
    assert data(host.take(b"\x00ops")) == []
    assert [m["event"] for m in data(host.take(b"\x00op2"))] == ["placed"]


def apply(book, message):
    if "snapshot" in message:
        return protocol.parse_book(message["snapshot"])
    protocol.apply_changes(book, protocol.parse_book(message["changes"], changes=True))
    return book


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["place", "place", "place", "cancel", "peer", "time", "subscribe"]),
                          st.integers(0, 11), st.sampled_from(["buy", "sell"]), st.integers(1, 3)),
                max_size=40))
def test_a_book_stream_applied_to_its_snapshot_is_the_book(steps):
    from zmqex.core.clock import VectorClock
    from zmqex.core.events import Event, NewOrder, Side, Tif
    from zmqex.core.messages import Gossip

    host = Host(peers=["b"])
    subs = {1: 1, 2: 5, 3: 10}  # id -> depth
    for sub, depth in subs.items():
        host.result(op="subscribe", stream="book", depth=depth, id=sub)
    books: dict[int, Any] = {}
    b_seq = 0
    for action, n, side, qty in steps:
        price = str(49_990 + n) if side == "buy" else str(50_006 + n)  # a book that never crosses
        if action == "place":
            host.ask(op="place", side=side, qty=str(qty), price=price, trader=f"t{n % 3}")
        elif action == "cancel":
            open_ = [o for o, s in host.replica.ledger.orders.items() if s.owner == "a" and s.open]
            if open_:
                host.ask(op="cancel", order_id=open_[n % len(open_)], trader=host.replica.traders.of[open_[n % len(open_)]])
        elif action == "peer":  # b's order, heard from b: b is up
            b_seq += 1
            event = Event("b", b_seq, VectorClock({"b": b_seq}), NewOrder(Side(side), int(price) * 100, qty * 10**7,
                                                                           Tif.GTC))
            host.replica.receive("b", Gossip(event), host.now)
        elif action == "time":  # b may go quiet: down, its levels unavailable
            host.tick(1000 * n)
        else:
            sub = 10 + len(subs)
            subs[sub] = protocol.STREAM_DEPTHS[n % len(protocol.STREAM_DEPTHS)]
            host.ask(op="subscribe", stream="book", depth=subs[sub], id=sub)
        host.carry_out()
        for message in host.take():
            if message.get("stream") == "book" and "heartbeat" not in message:
                books[message["id"]] = apply(books.get(message["id"]), message)
        for sub, depth in subs.items():
            if sub in books:
                want = host.api.handle(b"\x00check", msgpack.packb({"v": 1, "id": 0, "op": "book", "depth": depth}))
                assert books[sub] == msgpack.unpackb(want)["result"], (sub, depth)


def test_book_changes_come_once_per_iteration_and_only_for_what_changed():
    host = Host()
    host.result(op="subscribe", stream="book", depth=1, id=1)
    [snapshot] = data(host.take())
    assert snapshot["seq"] == 1 and snapshot["snapshot"] == {"unavailable": {"bids": [], "asks": []}, "bids": [],
                                                             "asks": []}
    for price in ("100", "101", "102"):
        host.ask(b"\x00t", op="place", side="buy", qty="1", price=price, trader="t")
    host.carry_out()
    [changes] = data(host.take())
    assert changes["seq"] == 2 and changes["changes"]["bids"] == [["102.00", "1.00000000", 1]]
    host.ask(b"\x00t", op="place", side="buy", qty="1", price="99", trader="t")  # below the top: nothing to say
    host.carry_out()
    assert data(host.take()) == []
    host.ask(b"\x00t", op="cancel", order_id="a:3", trader="t")  # 102 goes: 101 moves into the top one
    host.carry_out()
    [changes] = data(host.take())
    assert sorted(changes["changes"]["bids"]) == [["101.00", "1.00000000", 1], ["102.00", "0.00000000", 0]]
    host.carry_out()
    assert data(host.take()) == []  # nothing changed, nothing sent


def test_heartbeats_carry_the_last_seq_and_come_only_to_idle_subscriptions():
    host = Host()
    host.result(op="subscribe", stream="trades", id=1)
    host.result(op="subscribe", stream="book", id=2)
    host.take()
    host.tick(999)
    assert host.take() == []
    host.tick(1)
    beats = host.take()
    assert sorted((m["id"], m["seq"], m["heartbeat"]) for m in beats) == [(1, 0, True), (2, 1, True)]
    assert list(beats[0]) == list(protocol.stream_message(1, "trades", 0, heartbeat=True))


def test_unsubscribe_and_the_bounds_on_subscriptions():
    host = Host(Limits(subs_per_connection=2, subs_per_trader=3, subs_per_node=4))
    assert host.result(op="subscribe", stream="trades", id=1) == {"subscribed": "trades"}
    assert host.result(op="subscribe", stream="trades", id=1)["code"] == "invalid_request"  # that id is open
    assert host.result(op="subscribe", stream="orders", id=2) == {"subscribed": "orders"}
    assert host.result(op="subscribe", stream="book", id=3)["code"] == "limit"  # per connection
    assert host.result(op="unsubscribe", subscription=1) == {"unsubscribed": 1}
    assert host.result(op="unsubscribe", subscription=1)["code"] == "invalid_request"
    assert host.result(op="subscribe", stream="book", id=3) == {"subscribed": "book"}
    alice = [bytes([i]) for i in range(3)]
    host.result(alice[0], op="subscribe", stream="trades", trader="alice", id=1)
    host.result(alice[1], op="subscribe", stream="trades", trader="alice", id=1)
    host.result(alice[1], op="subscribe", stream="trades", trader="alice", id=2)
    assert host.result(alice[2], op="subscribe", stream="trades", trader="alice", id=1)["code"] == "limit"  # trader
    assert host.result(b"\x00z", op="subscribe", stream="trades", trader="zed", id=1)["code"] == "limit"  # node
    host.ask(b"\x00a", op="place", side="sell", qty="1", price="1", trader="x")
    host.ask(b"\x00b", op="place", side="buy", qty="1", price="1", trader="y")
    host.carry_out()
    assert [m["id"] for m in data(host.take(), "trades")] == []  # ME's trades subscription is gone


def test_the_node_ends_a_connections_subscriptions_with_an_end_message():
    host = Host()
    host.result(op="subscribe", stream="trades", id=1)
    host.result(op="subscribe", stream="book", id=2)
    host.take()
    ends = [msgpack.unpackb(frame) for who, frame in host.api.streams.end(ME, "slow_reader", "read faster")]
    assert sorted((m["id"], m["seq"], m["end"]["code"]) for m in ends) == [(1, 0, "slow_reader"),
                                                                           (2, 1, "slow_reader")]
    assert protocol.parse_stream(ends[0], ends[0]["id"]).value == ("slow_reader", "read faster")
    assert len(host.api.streams) == 0 and host.api.streams.end(ME, "x", "y") == []


# --- cancel on disconnect ----------------------------------------------------------------------


def test_a_silent_connection_with_cancel_on_disconnect_loses_its_traders_orders():
    host = Host()
    bot = b"\x00bot"
    assert host.result(bot, op="cancel_on_disconnect", timeout_ms=1000, trader="alice") == {"timeout_ms": 1000}
    host.ask(bot, op="place", side="sell", qty="1", price="50000", trader="alice")
    host.ask(b"\x00other", op="place", side="sell", qty="1", price="50001", trader="alice")
    host.ask(b"\x00bob", op="place", side="sell", qty="1", price="50002", trader="bob")
    host.carry_out()
    host.tick(900)
    assert host.result(bot, op="heartbeat", trader="alice") == {"timeout_ms": 1000}  # alive: 1000 ms more
    host.tick(900)
    assert host.replica.order_info("a:1")["status"] == "open"
    host.tick(100)
    assert [host.replica.order_info(o)["reason"] for o in ("a:1", "a:2", "a:3")] == ["disconnect", "disconnect", None]
    assert not host.api.cod  # fired once, then forgotten


def test_cancel_on_disconnect_is_kept_per_trader_and_outlives_a_restart():
    kept = MemoryStore()
    host = Host()
    host.api = ClientApi(host.replica, kept=kept)
    host.result(b"\x00bot", op="cancel_on_disconnect", timeout_ms=1000, trader="alice")
    host.result(b"\x00bot2", op="cancel_on_disconnect", timeout_ms=3000, trader="alice")
    host.result(b"\x00carl", op="cancel_on_disconnect", timeout_ms=2000, trader="carl")
    assert kept.cod_armed() == [("alice", 3000), ("carl", 2000)]  # the longest of a trader's connections
    host.ask(b"\x00bot", op="place", side="sell", qty="1", price="50000", trader="alice")
    host.ask(b"\x00carl", op="place", side="sell", qty="1", price="50001", trader="carl")
    host.carry_out()
    host.result(b"\x00carl", op="cancel_on_disconnect", timeout_ms=0, trader="carl")
    host.result(b"\x00carl", op="cancel_on_disconnect", timeout_ms=2000, trader="carl")

    # The node restarts (its replica as the store left it): the connections are gone.
    host.api = ClientApi(host.replica, kept=kept)
    host.tick(100)  # the restored timeouts start at the first tick
    host.tick(1_950)
    host.result(b"\x00new", op="heartbeat", trader="carl")  # carl is back, on a new connection
    assert kept.cod_armed() == [("alice", 3000)], "carl did not arm it again: no longer kept"
    host.tick(1_000)
    assert host.replica.order_info("a:1")["status"] == "open"
    host.tick(100)  # alice: 3000 ms after the first tick, and not a word
    assert host.replica.order_info("a:1")["reason"] == "disconnect"
    assert host.replica.order_info("a:2")["status"] == "open"
    assert kept.cod_armed() == []


def test_cancel_on_disconnect_turned_off_and_bounded():
    host = Host(Limits(cod_per_node=1))
    assert host.result(op="cancel_on_disconnect", timeout_ms=500) == {"timeout_ms": 500}
    assert host.result(op="cancel_on_disconnect", timeout_ms=600_000) == {"timeout_ms": 600_000}  # changed
    assert host.result(b"\x00two", op="cancel_on_disconnect", timeout_ms=500)["code"] == "limit"
    assert host.result(op="cancel_on_disconnect", timeout_ms=0) == {"timeout_ms": 0}
    assert host.result(op="heartbeat") == {"timeout_ms": 0} and not host.api.cod
    assert host.result(b"\x00two", op="cancel_on_disconnect", timeout_ms=500) == {"timeout_ms": 500}


def test_any_frame_keeps_a_connection_alive_even_a_refused_one():
    host = Host()
    host.result(op="cancel_on_disconnect", timeout_ms=500, trader="alice")
    host.ask(op="place", side="sell", qty="1", price="1", trader="alice")
    host.carry_out()
    for _ in range(5):
        host.tick(400)
        host.api.handle(ME, b"junk", now=host.now)
    assert host.replica.order_info("a:1")["status"] == "open"
    host.tick(500)
    assert host.replica.order_info("a:1")["reason"] == "disconnect"


def test_amend_lowers_in_place_or_moves_to_a_new_order_under_the_same_client_order_id():
    replica, api = make()
    placed = call(api, op="place", side="sell", qty="1", price="50000.00", client_order_id="s1", trader="al",
                  ack="accepted")
    oid = placed["result"]["order_id"]
    lower = call(api, op="amend", client_order_id="s1", qty="0.4", trader="al")["result"]
    assert (lower["order_id"], lower["qty"], lower["open"]) == (oid, "0.40000000", "0.40000000")
    moved = call(api, op="amend", order_id=oid, price="50100.00", trader="al")["result"]
    assert moved["order_id"] != oid and moved["price"] == "50100.00" and moved["client_order_id"] == "s1"
    assert call(api, op="order", order_id=oid, trader="al")["result"]["reason"] == "amended"
    for bad, code in (({"qty": "0"}, "invalid_amount"), ({}, "invalid_request"), ({"qty": 1}, "invalid_amount")):
        before = replica.ledger.state_hash()
        reply = call(api, op="amend", client_order_id="s1", trader="al", **bad)
        assert reply["error"]["code"] == code and replica.ledger.state_hash() == before
    assert call(api, op="amend", client_order_id="s1", qty="0.1", trader="bob")["error"]["code"] == "unknown_order"
