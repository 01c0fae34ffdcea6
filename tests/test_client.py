"""zmqex.client and examples/send_order.py against a fake node with canned replies."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import msgpack
import pytest
import zmq

from zmqex import errors
from zmqex.client import Client

ROOT = Path(__file__).resolve().parent.parent
SEND_ORDER = ROOT / "examples" / "send_order.py"

FILL = {"id": "b:9", "maker": "b:4", "taker": "a:17", "price": "50000.00", "qty": "0.50000000", "ts": 1718000000000,
        "taker_side": "buy"}
MY_FILL = {**FILL, "order_id": "a:17", "client_order_id": "", "side": "buy", "liquidity": "taker"}
UPDATE = {
    "order_id": "a:17", "owner": "a", "side": "buy", "price": "50000.00", "qty": "1.50000000", "tif": "gtc",
    "status": "partial", "filled": "0.50000000", "open": "1.00000000", "pending": "0.00000000",
    "available": True, "ts": 1718000000000, "reason": None, "expire_at": None, "client_order_id": "",
}
ORDER = {**UPDATE, "fills": [FILL]}
EMPTY_BOOK = {"bids": [], "asks": [], "unavailable": {"bids": [], "asks": []}}
RESULTS: dict[str, Any] = {
    "place": ORDER,
    "cancel": {**ORDER, "status": "cancelled", "open": "0.00000000", "reason": "user"},
    "cancel_all": {"cancelled": ["a:17", "a:18"]},
    "amend": ORDER,
    "order": ORDER,
    "open_orders": {"orders": [ORDER], "next": 17, "more": False},
    "my_fills": {"fills": [MY_FILL], "next": 4, "more": True},
    "trades": {"trades": [FILL], "next": 4, "more": False},
    "book": {"bids": [["50000.00", "1.00000000", 1]], "asks": [], "unavailable": {"bids": [], "asks": []}},
    "status": {"node": "a", "peers": {}, "vc": {"a": 3}, "hash": "ab12", "open_orders": 1, "orders": 2, "fills": 1},
    "fills": {"fills": [FILL]},
    "watch": {"watching": True},
    "cancel_on_disconnect": {"timeout_ms": 5000},
    "heartbeat": {"timeout_ms": 5000},
    "unsubscribe": {"unsubscribed": 1},
}

Handler = Callable[[dict], list[dict]]


def ok(request: dict, result: Any) -> dict:
    return {"v": 1, "id": request["id"], "ok": True, "result": result}


def fail(request_id: Any, code: str, message: str) -> dict:
    return {"v": 1, "id": request_id, "ok": False, "error": {"code": code, "message": message}}


class FakeNode:
    """A ROUTER on a free loopback port, served by one thread that owns the socket.

    ``handlers[op](request)`` returns the messages to send back to the requester;
    every request is recorded with the routing id it came from.
    """

    def __init__(self) -> None:
        self.socket = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind("tcp://127.0.0.1:0")
        self.endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.address = self.endpoint.removeprefix("tcp://")
        self.handlers: dict[str, Handler] = {op: (lambda req, r=r: [ok(req, r)]) for op, r in RESULTS.items()}
        self.handlers["subscribe"] = lambda req: [ok(req, {"subscribed": req["stream"]})]
        self.requests: queue.Queue[tuple[bytes, dict]] = queue.Queue()
        self.outbox: queue.Queue[tuple[bytes, dict]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                while not self.outbox.empty():
                    self._send(*self.outbox.get())
                if not poller.poll(10):
                    continue
                identity, frame = self.socket.recv_multipart()
                request = msgpack.unpackb(frame)
                self.requests.put((identity, request))
                for message in self.handlers[request["op"]](request):
                    self._send(identity, message)
        finally:
            self.socket.close(linger=0)

    def _send(self, identity: bytes, message: dict) -> None:
        self.socket.send_multipart([identity, msgpack.packb(message)])

    def next_request(self, timeout: float = 2.0) -> tuple[bytes, dict]:
        return self.requests.get(timeout=timeout)

    def sent_ops(self) -> list[str]:
        ops = []
        while not self.requests.empty():
            ops.append(self.requests.get()[1]["op"])
        return ops

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "fake node did not stop"


@pytest.fixture
def node():
    fake = FakeNode()
    yield fake
    fake.stop()


@pytest.fixture
def client(node):
    with Client(node.address, timeout=2.0) as c:
        yield c


@pytest.fixture
def dead_address():
    """A loopback port where nothing listens (held open so no one else takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield "127.0.0.1:%d" % s.getsockname()[1]


# --- request shapes ---------------------------------------------------------------------


def test_place_sends_canonical_decimal_strings(node, client):
    assert client.place("buy", Decimal("1.5"), 50000) == ORDER
    _, request = node.next_request()
    assert type(request["id"]) is int
    assert {k: v for k, v in request.items() if k != "id"} == {
        "v": 1, "op": "place", "side": "buy", "qty": "1.50000000", "price": "50000.00", "tif": "gtc"}


def test_market_and_tif(node, client):
    client.place("sell", "0.1")
    client.place("buy", 2, "49999.9", tif="ioc")
    client.place("sell", " 3 ", "50001", tif="post_only")
    market, ioc, post = (node.next_request()[1] for _ in range(3))
    assert "price" not in market and market["qty"] == "0.10000000" and market["tif"] == "gtc"
    assert (ioc["qty"], ioc["price"], ioc["tif"]) == ("2.00000000", "49999.90", "ioc")
    assert (post["side"], post["qty"], post["price"], post["tif"]) == ("sell", "3.00000000", "50001.00", "post_only")


@pytest.mark.parametrize("call, op, args, result", [
    (lambda c: c.cancel("a:17"), "cancel", {"order_id": "a:17"}, RESULTS["cancel"]),
    (lambda c: c.cancel(client_order_id="x-1"), "cancel", {"client_order_id": "x-1"}, RESULTS["cancel"]),
    (lambda c: c.amend("a:17", qty="0.5"), "amend", {"order_id": "a:17", "qty": "0.50000000"}, ORDER),
    (lambda c: c.amend(client_order_id="x-1", price="50050"), "amend", {"client_order_id": "x-1", "price": "50050.00"},
     ORDER),
    (lambda c: c.cancel_all(), "cancel_all", {}, ["a:17", "a:18"]),
    (lambda c: c.cancel_all("sell"), "cancel_all", {"side": "sell"}, ["a:17", "a:18"]),
    (lambda c: c.order("b:4"), "order", {"order_id": "b:4"}, ORDER),
    (lambda c: c.order(client_order_id="x-1"), "order", {"client_order_id": "x-1"}, ORDER),
    (lambda c: c.open_orders(), "open_orders", {"since": 0, "limit": 100}, ([ORDER], 17, False)),
    (lambda c: c.my_fills(3, 10), "my_fills", {"since": 3, "limit": 10}, ([MY_FILL], 4, True)),
    (lambda c: c.trades(since=2), "trades", {"since": 2, "limit": 100}, ([FILL], 4, False)),
    (lambda c: c.book(), "book", {"depth": 10}, RESULTS["book"]),
    (lambda c: c.book(depth=3), "book", {"depth": 3}, RESULTS["book"]),
    (lambda c: c.status(), "status", {}, RESULTS["status"]),
    (lambda c: c.fills(), "fills", {}, [FILL]),
    (lambda c: c.cancel_on_disconnect(5000), "cancel_on_disconnect", {"timeout_ms": 5000}, 5000),
    (lambda c: c.heartbeat(), "heartbeat", {}, 5000),
])
def test_request_shapes(node, client, call, op, args, result):
    assert call(client) == result
    _, request = node.next_request()
    assert request == {"v": 1, "id": request["id"], "op": op, **args}


def test_place_with_a_client_order_id_an_expiry_and_an_early_ack(node, client):
    client.place("sell", "1", "50000", "gtd", client_order_id="bot-1", expire_at=1_718_000_000_000, ack="accepted")
    _, request = node.next_request()
    assert {k: v for k, v in request.items() if k not in ("v", "id")} == {
        "op": "place", "side": "sell", "qty": "1.00000000", "price": "50000.00", "tif": "gtd",
        "client_order_id": "bot-1", "expire_at": 1_718_000_000_000, "ack": "accepted"}


def test_each_request_gets_a_fresh_id(node, client):
    for _ in range(3):
        client.status()
    ids = [node.next_request()[1]["id"] for _ in range(3)]
    assert len(set(ids)) == 3


# --- local validation: nothing is sent --------------------------------------------------


@pytest.mark.parametrize("qty, price", [
    (0.5, "50000"), (True, "50000"), ("1", 50000.0), ("1", False), ("-1", "50000"), ("0", "50000"),
    ("1.000000001", "50000"), ("1", "50000.001"), ("abc", None), ("1e3", None), (Decimal("NaN"), None),
])
def test_bad_amounts_rejected_locally(node, client, qty, price):
    with pytest.raises(errors.InvalidAmount):
        client.place("buy", qty, price)
    client.status()  # one connection keeps order: had anything been sent, it would come first
    assert node.sent_ops() == ["status"]


@pytest.mark.parametrize("call", [
    lambda c: c.place("hold", "1", "50000"),
    lambda c: c.place("buy", "1", "50000", tif="day"),
    lambda c: c.place("buy", "1", tif="post_only"),
    lambda c: c.place("buy", "1", "50000", tif="gtd"),
    lambda c: c.place("buy", "1", "50000", client_order_id="not ok"),
    lambda c: c.place("buy", "1", "50000", ack="later"),
    lambda c: c.cancel(17),
    lambda c: c.cancel(),
    lambda c: c.cancel("a:1", client_order_id="x"),
    lambda c: c.cancel_all("both"),
    lambda c: c.order(""),
    lambda c: c.order(client_order_id="x" * 37),
    lambda c: c.book(depth=0),
    lambda c: c.book(depth=True),
    lambda c: c.trades(-1),
    lambda c: c.my_fills(limit=1001),
    lambda c: c.cancel_on_disconnect(100),
    lambda c: c.subscribe("fills"),
    lambda c: c.subscribe("book", depth=101),
    lambda c: c.subscribe("book", depth=2),
    lambda c: c.subscribe("orders", depth=5),
])
def test_bad_requests_rejected_locally(node, client, call):
    with pytest.raises(errors.InvalidRequest):
        call(client)
    client.status()
    assert node.sent_ops() == ["status"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", ":7001", "udp://x:1"])
def test_bad_node_address(address):
    with pytest.raises(errors.InvalidRequest):
        Client(address)


def test_tcp_prefix_accepted(node):
    with Client(node.endpoint, timeout=2.0) as c:
        assert c.status() == RESULTS["status"]


# --- error replies ----------------------------------------------------------------------


@pytest.mark.parametrize("code, cls", [
    ("malformed", errors.DecodeError),
    ("invalid_amount", errors.InvalidAmount),
    ("invalid_request", errors.InvalidRequest),
    ("unknown_order", errors.UnknownOrder),
    ("not_owner", errors.NotOwner),
    ("order_closed", errors.OrderClosed),
    ("rejected", errors.Rejected),
    ("busy", errors.Busy),
    ("rate_limited", errors.RateLimited),
    ("limit", errors.LimitReached),
    ("unknown_op", errors.ErrorReply),
    ("unsupported_version", errors.ErrorReply),
    ("something_new", errors.ErrorReply),
])
def test_error_replies_map_to_exceptions(node, client, code, cls):
    node.handlers["cancel"] = lambda req: [fail(req["id"], req["client_order_id"],
                                                f"the node says {req['client_order_id']}")]
    with pytest.raises(cls) as info:
        client.cancel(client_order_id=code)
    assert isinstance(info.value, errors.ZmqexError)
    assert str(info.value) == f"the node says {code}"
    assert info.value.code == code


def test_error_reply_with_null_id_is_raised(node, client):
    node.handlers["status"] = lambda req: [fail(None, "malformed", "a request must be a msgpack map")]
    with pytest.raises(errors.DecodeError, match="msgpack map"):
        client.status()


# --- timeouts, stale and out-of-order replies -------------------------------------------


def test_timeout_then_stale_reply_is_discarded(node):
    held: list[dict] = []

    def status(req: dict) -> list[dict]:
        if not held:
            held.append(req)
            return []  # no answer: the client times out
        return [ok(held[0], {"stale": True}), ok(req, RESULTS["status"])]

    node.handlers["status"] = status
    with Client(node.address, timeout=0.3) as c:
        started = time.monotonic()
        with pytest.raises(errors.Timeout, match=rf"node {node.address} did not answer 'status' within 0.3s"):
            c.status()
        assert 0.29 <= time.monotonic() - started < 1.0
        assert c.status() == RESULTS["status"]  # the late reply to the first request is not taken for it
        node.handlers["status"] = lambda req: [ok(req, {"third": True})]
        assert c.status() == {"third": True}


def test_place_timeout_says_the_order_may_exist(node):
    node.handlers["place"] = lambda req: []
    with Client(node.address, timeout=0.3) as c:
        with pytest.raises(errors.Timeout, match="may still have been placed"):
            c.place("buy", "1", "50000")


def test_unreachable_node_times_out(dead_address):
    with Client(dead_address, timeout=0.3) as c:
        started = time.monotonic()
        with pytest.raises(errors.Timeout, match="did not answer 'book' within 0.3s"):
            c.book()
        assert time.monotonic() - started < 1.0


def test_out_of_order_replies_matched_by_id(node, client):
    held: list[dict] = []

    def book(req: dict) -> list[dict]:
        held.append(req)
        return []

    def order(req: dict) -> list[dict]:
        decoys = [ok({"id": req["id"] + 1}, {"future": True}),   # not asked yet
                  ok({"id": str(req["id"])}, {"str id": True}),   # same digits, other type
                  {"v": 1, "id": req["id"], "stream": "fill", "fill": FILL}]
        return decoys + [ok(req, ORDER)] + [ok(r, {"late book": True}) for r in held]

    node.handlers["book"], node.handlers["order"] = book, order
    client.timeout = 0.3
    with pytest.raises(errors.Timeout):
        client.book()
    assert client.order("a:17") == ORDER
    assert client.status() == RESULTS["status"]  # the late book reply queued before it is dropped


# --- subscriptions ----------------------------------------------------------------------


def stream(req: dict, seq: int, **body: Any) -> dict:
    return {"v": 1, "id": req["id"], "stream": req["stream"], "seq": seq, **body}


def test_a_subscription_streams_on_its_own_socket_and_skips_heartbeats(node, client):
    other = {**FILL, "id": "c:2"}
    node.handlers["subscribe"] = lambda req: [
        ok(req, {"subscribed": "trades"}),
        stream(req, 1, trade=FILL),
        stream(req, 1, heartbeat=True),
        {**stream(req, 9, trade={**FILL, "id": "nope"}), "id": req["id"] + 100},  # another subscription's
    ]
    client.status()
    client_identity, _ = node.next_request()
    with client.subscribe("trades", timeout=0.3) as trades:
        sub_identity, request = node.next_request()
        assert request == {"v": 1, "id": request["id"], "op": "subscribe", "stream": "trades"}
        assert sub_identity != client_identity
        assert next(trades) == FILL
        node.outbox.put((sub_identity, stream(request, 2, trade=other)))
        started = time.monotonic()
        assert list(trades) == [other]  # then stops after 0.3 s without an update
        assert 0.29 <= time.monotonic() - started < 1.0
        assert trades._socket is None and trades.seq == 2
    assert client.status() == RESULTS["status"]  # the request socket saw none of the stream


def test_watch_is_a_trades_subscription(node, client):
    node.handlers["subscribe"] = lambda req: [ok(req, {"subscribed": "trades"}), stream(req, 1, trade=FILL)]
    with client.watch(timeout=0.3) as fills:
        assert next(fills) == FILL


def test_an_orders_subscription_yields_each_change(node, client):
    node.handlers["subscribe"] = lambda req: [
        ok(req, {"subscribed": "orders"}), stream(req, 1, event="placed", order=UPDATE),
        stream(req, 2, event="fill", order=UPDATE, fill=MY_FILL)]
    with client.subscribe("orders", timeout=0.3) as orders:
        assert next(orders) == {"event": "placed", "order": UPDATE}
        assert next(orders) == {"event": "fill", "order": UPDATE, "fill": MY_FILL}


def test_a_book_subscription_keeps_the_book(node, client):
    node.handlers["subscribe"] = lambda req: [
        ok(req, {"subscribed": "book"}), stream(req, 1, snapshot={**EMPTY_BOOK, "bids": [["1.00", "1.00000000", 1]]}),
        stream(req, 2, changes={**EMPTY_BOOK, "bids": [["1.00", "0.00000000", 0], ["2.00", "3.00000000", 2]],
                                "asks": [["5.00", "1.00000000", 1]]})]
    with client.subscribe("book", depth=5, timeout=0.3) as book:
        _, request = node.next_request()
        assert request["depth"] == 5
        assert next(book)["bids"] == [["1.00", "1.00000000", 1]]
        assert next(book) == {**EMPTY_BOOK, "bids": [["2.00", "3.00000000", 2]], "asks": [["5.00", "1.00000000", 1]]}


@pytest.mark.parametrize("messages, code", [
    (lambda req: [stream(req, 2, trade=FILL)], "gap"),
    (lambda req: [stream(req, 1, trade=FILL), stream(req, 3, trade=FILL)], "gap"),
    (lambda req: [stream(req, 4, heartbeat=True)], "gap"),
    (lambda req: [stream(req, 1, trade=FILL), stream(req, 1, end={"code": "slow_reader", "message": "read faster"})],
     "slow_reader"),
])
def test_a_subscription_that_breaks_raises_stream_ended(node, client, messages, code):
    node.handlers["subscribe"] = lambda req: [ok(req, {"subscribed": "trades"}), *messages(req)]
    with client.subscribe("trades", timeout=1) as trades:
        with pytest.raises(errors.StreamEnded) as ended:
            list(trades)
        assert ended.value.code == code and trades._socket is None


def test_a_silent_subscription_raises_stream_ended(node, client):
    with client.subscribe("trades") as trades:
        trades.silence = 0.3
        started = time.monotonic()
        with pytest.raises(errors.StreamEnded, match="not even a heartbeat") as ended:
            trades.poll()
        assert ended.value.code == "silent" and 0.29 <= time.monotonic() - started < 1.0


def test_unsubscribe_ends_it_on_the_node_then_closes(node, client):
    with client.subscribe("book") as book:
        _, request = node.next_request()
        book.unsubscribe()
        assert node.next_request()[1]["subscription"] == request["id"] and book._socket is None
        assert book.poll(0.1) is None


def test_a_refused_subscription_raises(node, client):
    node.handlers["subscribe"] = lambda req: [fail(req["id"], "limit", "too many subscriptions")]
    with pytest.raises(errors.LimitReached, match="too many subscriptions"):
        client.subscribe("trades")


# --- examples/send_order.py -------------------------------------------------------------


def send_order(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SEND_ORDER), *args], capture_output=True, text=True,
                          timeout=10, cwd=ROOT.parent)  # not the repo: the script finds zmqex itself


def test_send_order_prints_the_outcome(node):
    done = send_order("--node", node.address, "buy", "1.5", "50000")
    assert done.returncode == 0, done.stderr
    assert "a:17" in done.stdout and "partial" in done.stdout
    assert "filled 0.5 BTC @ 50000.00 from maker b:4 (fill b:9)" in done.stdout
    assert "rests: 1 BTC @ 50000.00" in done.stdout
    _, request = node.next_request()
    assert [request[k] for k in ("side", "qty", "price", "tif")] == ["buy", "1.50000000", "50000.00", "gtc"]


def test_a_named_trader_goes_with_every_request(node):
    with Client(node.address, timeout=2.0, trader="alice") as alice:
        alice.place("buy", "1", "50000")
        alice.cancel("a:17")
        alice.subscribe("orders", timeout=0.01).close()
    assert [node.next_request()[1].get("trader") for _ in range(3)] == ["alice"] * 3
    with Client(node.address, timeout=2.0) as anonymous:
        anonymous.status()
    assert "trader" not in node.next_request()[1]
    with pytest.raises(errors.InvalidRequest, match="trader must be"):
        Client(node.address, trader="not a name")


def test_send_order_names_its_trader(node):
    done = send_order("--node", node.address, "buy", "1.5", "50000", "--trader", "alice")
    assert done.returncode == 0, done.stderr
    assert node.next_request()[1]["trader"] == "alice"
    done = send_order("--node", node.address, "buy", "1.5", "50000", "--trader", "a b")
    assert done.returncode == 2 and "trader must be" in done.stderr


def test_send_order_json(node):
    done = send_order("--node", node.address, "sell", "0.1", "--ioc", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ORDER
    _, request = node.next_request()
    assert "price" not in request and request["tif"] == "ioc"


def test_send_order_fok(node):
    done = send_order("--node", node.address, "buy", "2", "50010", "--fok", "--json")
    assert done.returncode == 0, done.stderr
    _, request = node.next_request()
    assert (request["tif"], request["qty"], request["price"]) == ("fok", "2.00000000", "50010.00")


@pytest.mark.parametrize("qty, message", [
    ("1.000000001", "whole number of satoshis"), ("-1", "quantity '-1'"), ("abc", "not a plain decimal"),
])
def test_send_order_bad_quantity(node, qty, message):
    done = send_order("--node", node.address, "buy", qty, "50000")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert node.requests.empty()


def test_send_order_error_reply(node):
    node.handlers["place"] = lambda req: [fail(req["id"], "rejected", "post-only order would cross")]
    done = send_order("--node", node.address, "buy", "1", "50000", "--post-only")
    assert done.returncode == 1
    assert "rejected: post-only order would cross" in done.stderr and "Traceback" not in done.stderr


def test_send_order_unreachable(dead_address):
    started = time.monotonic()
    done = send_order("--node", dead_address, "buy", "1", "50000", "--timeout", "0.5")
    assert done.returncode == 1
    assert f"node {dead_address} did not answer 'place' within 0.5s" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 8


def test_send_order_with_a_client_order_id_and_an_early_ack(node):
    done = send_order("--node", node.address, "--trader", "alice", "sell", "1", "50000", "--client-order-id", "a-1",
                      "--accepted")
    assert done.returncode == 0, done.stderr
    request = node.next_request()[1]
    assert (request["client_order_id"], request["ack"], request["trader"]) == ("a-1", "accepted", "alice")
    done = send_order("--node", node.address, "sell", "1", "50000", "--gtd", "1718000000000")
    assert done.returncode == 0, done.stderr
    request = node.next_request()[1]
    assert (request["tif"], request["expire_at"]) == ("gtd", 1718000000000)


@pytest.mark.parametrize("args, op, sent", [
    (["cancel", "a:17"], "cancel", {"order_id": "a:17"}),
    (["cancel", "--client-order-id", "a-1"], "cancel", {"client_order_id": "a-1"}),
    (["amend", "a:17", "--qty", "0.5"], "amend", {"order_id": "a:17", "qty": "0.50000000"}),
    (["amend", "--client-order-id", "a-1", "--price", "50050"], "amend", {"client_order_id": "a-1", "price": "50050.00"}),
    (["cancel-all", "--side", "buy"], "cancel_all", {"side": "buy"}),
    (["open-orders"], "open_orders", {"since": 0, "limit": 100}),
    (["my-fills", "--since", "3", "--limit", "5"], "my_fills", {"since": 3, "limit": 5}),
    (["trades", "--json"], "trades", {"since": 0, "limit": 100}),
])
def test_send_order_commands(node, args, op, sent):
    done = send_order("--node", node.address, "--trader", "alice", *args)
    assert done.returncode == 0, done.stderr
    request = node.next_request()[1]
    assert request == {"v": 1, "id": request["id"], "op": op, "trader": "alice", **sent}
    assert done.stdout.strip()


def test_send_order_pages_through_everything(node):
    pages = iter([{"trades": [FILL], "next": 1, "more": True}, {"trades": [{**FILL, "id": "b:10"}], "next": 2,
                                                                "more": False}])
    node.handlers["trades"] = lambda req: [ok(req, next(pages))]
    done = send_order("--node", node.address, "trades", "--all")
    assert done.returncode == 0, done.stderr
    assert "fill b:9" in done.stdout and "fill b:10" in done.stdout and "next: 2" in done.stdout
    assert [node.next_request()[1]["since"] for _ in range(2)] == [0, 1]


def test_send_order_watches_a_stream_keeping_cancel_on_disconnect_alive(node):
    node.handlers["subscribe"] = lambda req: [ok(req, {"subscribed": "orders"}),
                                              stream(req, 1, event="placed", order=UPDATE)]
    done = send_order("--node", node.address, "--trader", "alice", "watch", "orders", "--cod", "5000", "--for", "1.5")
    assert done.returncode == 0, done.stderr
    assert "placed a:17 partial" in done.stdout
    ops = node.sent_ops()
    assert ops[:2] == ["subscribe", "cancel_on_disconnect"] and "heartbeat" in ops


def test_send_order_bad_command_arguments(node):
    done = send_order("--node", node.address, "cancel")
    assert done.returncode == 2 and "order_id or a client_order_id" in done.stderr
    done = send_order("--node", node.address, "watch", "fills")
    assert done.returncode == 2 and "invalid choice" in done.stderr
