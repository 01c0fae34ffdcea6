"""zmqex.protocol: the codec both ways, the error map, the checks on untrusted replies, and the doc.

The last part reads docs/protocol.md and holds its tables and examples to
zmqex/protocol.py, so the document cannot drift from the code.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex import errors, protocol
from zmqex.api import ClientApi
from zmqex.core import money, wire
from zmqex.core.events import Side, Tif
from zmqex.core.replica import Replica
from zmqex.limits import DEFAULT
from zmqex.protocol import (BookView, FillView, OrderView, decode_reply, error_reply, fill_view, ok_reply, order_view,
                            parse_book, parse_fill, parse_fills, parse_order)

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "protocol.md").read_text()

FILL = {"id": "b:9", "maker": "b:4", "taker": "a:17", "price": "50000.00", "qty": "0.50000000"}
ORDER = {"order_id": "a:17", "owner": "a", "side": "buy", "price": "50000.00", "qty": "1.50000000", "tif": "gtc",
         "status": "partial", "filled": "0.50000000", "open": "1.00000000", "pending": "0.00000000",
         "available": True, "fills": [FILL]}


def through_the_wire(message: Any) -> Any:
    return wire.unpack(wire.pack(message))


# --- the core's integers out, and back --------------------------------------------------

nodes = st.from_regex(r"[A-Za-z0-9_.-]{1,32}", fullmatch=True)
ids = st.builds("{}:{}".format, nodes, st.integers(1, 10**18 - 1))
fill_infos = st.fixed_dictionaries({
    "id": ids, "maker": ids, "taker": ids, "price": st.integers(1, money.MAX_PRICE),
    "qty": st.integers(1, money.MAX_QTY), "request": st.text(max_size=8)})
order_infos = st.fixed_dictionaries({
    "order_id": ids, "owner": nodes, "side": st.sampled_from(protocol.SIDES),
    "price": st.none() | st.integers(1, money.MAX_PRICE), "qty": st.integers(1, money.MAX_QTY),
    "tif": st.sampled_from(protocol.TIFS), "status": st.sampled_from(protocol.STATUSES),
    "filled": st.integers(0, money.MAX_QTY), "open": st.integers(0, money.MAX_QTY),
    "pending": st.integers(0, money.MAX_QTY), "available": st.booleans(), "fills": st.lists(fill_infos, max_size=3)})


def exact(text: str, unit: int) -> int:
    """A decimal string back to integer units, exactly (Decimal, never float)."""
    scaled = Decimal(text) * unit
    assert scaled == scaled.to_integral_value()
    return int(scaled)


@given(order_infos, st.none() | st.booleans())
def test_an_order_goes_out_as_decimal_strings_and_reads_back_as_it_went(info, mine):
    view = order_view(info, mine)
    assert parse_order(through_the_wire(view)) == view
    assert list(view) == list(OrderView.__annotations__)[:len(view)]  # the field order never moves
    assert ("mine" in view) == (mine is not None)
    for key in ("qty", "filled", "open", "pending"):
        assert exact(view[key], money.SATS_PER_BTC) == info[key]
    assert view["price"] is None if info["price"] is None else exact(view["price"], 100) == info["price"]
    for fill, fill_info in zip(view["fills"], info["fills"]):
        assert "request" not in fill  # the core's idempotency key stays inside
        assert (exact(fill["price"], 100), exact(fill["qty"], money.SATS_PER_BTC)) == (fill_info["price"],
                                                                                       fill_info["qty"])


@given(fill_infos)
def test_a_fill_reads_back_as_it_went(info):
    view = fill_view(info)
    assert parse_fill(through_the_wire(view)) == view
    assert set(view) == set(FillView.__annotations__)


def test_views_of_a_real_replica():
    replica = Replica("a")
    replica.place(Side.SELL, 100_000_000, 5_000_000, Tif.GTC, token=1, trader="alice")
    replica.place(Side.BUY, 25_000_000, 5_000_100, Tif.IOC, token=2, trader="bob")
    replica.place(Side.BUY, 10_000_000, None, Tif.IOC, token=3, trader="bob")
    replica.place(Side.SELL, 1, 6_000_000, Tif.POST_ONLY, token=4, trader="carol")
    replica.cancel("a:6", trader="carol")
    views = [order_view(replica.order_info(oid), mine=False) for oid in replica.ledger.orders]
    assert [v["status"] for v in views] == ["partial", "filled", "filled", "cancelled"]
    for view in views:
        assert parse_order(through_the_wire(view)) == view
    maker = order_view(replica.order_info("a:1"))
    assert (maker["status"], maker["filled"], maker["open"]) == ("partial", "0.35000000", "0.65000000")
    assert [f["qty"] for f in maker["fills"]] == ["0.25000000", "0.10000000"]
    assert order_view(replica.order_info("a:4"))["price"] == "52500.00"  # a market order trades within its band (5%)
    book = ClientApi(replica).handle(b"\x00c", msgpack.packb({"v": 1, "id": 1, "op": "book"}))
    assert parse_book(decode_reply(msgpack.unpackb(book)))["asks"] == [["50000.00", "0.65000000", 1]]


# --- requests ---------------------------------------------------------------------------


def test_requests_are_built_with_canonical_amounts():
    args = protocol.place_args("buy", Decimal("1.5"), 50000)
    assert args == {"side": "buy", "tif": "gtc", "qty": "1.50000000", "price": "50000.00"}
    assert protocol.request(3, "place", args, "alice") == {"v": 1, "id": 3, "op": "place", **args, "trader": "alice"}
    assert protocol.request("x", "status", {}) == {"v": 1, "id": "x", "op": "status"}
    # what a client sends is what the node reads
    assert protocol.parse_place(args) == (Side.BUY, 150_000_000, 5_000_000, Tif.GTC, None)
    assert protocol.parse_place({"side": "sell", "qty": "0.1"}) == (Side.SELL, 10_000_000, None, Tif.GTC, None)
    gtd = protocol.place_args("buy", "1", "1", "gtd", 1_800_000_000_000)
    assert protocol.parse_place(gtd)[3:] == (Tif.GTD, 1_800_000_000_000)


@pytest.mark.parametrize("call, error", [
    (lambda: protocol.place_args("hold", "1", "1"), errors.InvalidRequest),
    (lambda: protocol.place_args("buy", "1", "1", "fok"), errors.InvalidRequest),
    (lambda: protocol.place_args("buy", "1", None, "post_only"), errors.InvalidRequest),
    (lambda: protocol.place_args("buy", "1", "1", "gtd"), errors.InvalidRequest),
    (lambda: protocol.place_args("buy", "1", "1", "gtc", 5), errors.InvalidRequest),
    (lambda: protocol.place_args("buy", "1", "1", "gtd", True), errors.InvalidRequest),
    (lambda: protocol.place_args("buy", 0.5, "1"), errors.InvalidAmount),
    (lambda: protocol.place_args("buy", "1", "1.001"), errors.InvalidAmount),
    (lambda: protocol.parse_place({"side": "buy", "qty": ["1"]}), errors.InvalidRequest),
    (lambda: protocol.parse_place({"side": "buy", "qty": True}), errors.InvalidRequest),
    (lambda: protocol.parse_place({"side": "buy", "qty": 1.5}), errors.InvalidAmount),
    (lambda: protocol.parse_place({"side": Side.BUY.value, "qty": "1", "tif": ["gtc"]}), errors.InvalidRequest),
    (lambda: protocol.request(1, "fly", {}), errors.InvalidRequest),
    (lambda: protocol.request(1, "status", {"depth": 3}), errors.InvalidRequest),
    (lambda: protocol.request(1, "status", {}, trader="a b"), errors.InvalidRequest),
    (lambda: protocol.request_id(2**63), errors.DecodeError),
    (lambda: protocol.request_id("x" * 65), errors.DecodeError),
    (lambda: protocol.request_id(1.0), errors.DecodeError),
    (lambda: protocol.order_id_field(17), errors.InvalidRequest),
    (lambda: protocol.order_id_field("x" * 65), errors.InvalidRequest),
    (lambda: protocol.order_id_field("", empty=False), errors.InvalidRequest),
    (lambda: protocol.depth_field(0), errors.InvalidRequest),
    (lambda: protocol.depth_field(True), errors.InvalidRequest),
    (lambda: protocol.depth_field(1001), errors.InvalidRequest),
    (lambda: protocol.trader_name("x" * 33), errors.InvalidRequest),
    (lambda: protocol.trader_name("é"), errors.InvalidRequest),
])
def test_bad_arguments_are_refused(call, error):
    with pytest.raises(error):
        call()


def test_field_bounds_are_inclusive():
    assert protocol.request_id(-(2**63) + 1) == -(2**63) + 1 and protocol.request_id("x" * 64) == "x" * 64
    assert protocol.order_id_field("") == "" and protocol.order_id_field("x" * 64) == "x" * 64
    assert protocol.depth_field(1) == 1 and protocol.depth_field(1000) == 1000 and protocol.depth_field(5000, 5000)
    assert protocol.trader_name("A-z_0.9" + "x" * 25) and protocol.is_trader_name("o:ops") is False


# --- replies: the codec and the error map ------------------------------------------------


@given(st.one_of(st.integers(-(2**63) + 1, 2**63 - 1), st.text(max_size=64)),
       st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5), max_size=4))
def test_an_ok_reply_decodes_to_its_result(request_id, result):
    assert decode_reply(through_the_wire(ok_reply(request_id, result))) == result


def test_error_classes_are_those_of_errors_py_each_under_its_own_code():
    assert len(protocol.ERRORS) == len(protocol.ERROR_CLASSES)  # no two classes share a code
    assert all(protocol.ERRORS[cls.code] is cls for cls in protocol.ERROR_CLASSES)
    left_out = {errors.ZmqexError, errors.LocalError, errors.RemoteError,  # families, not errors
                errors.ErrorReply,  # the class of the codes without one
                errors.InvariantViolation,  # our own bug: never a class for what a node says
                errors.Timeout,  # the client's own: no node sends it
                errors.Forged, errors.BadEvent,  # about peers' events, not a client's request
                errors.StoreError, errors.KeyFileError}  # a node's environment, not a request
    every = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.ZmqexError)}
    assert every - left_out == set(protocol.ERROR_CLASSES), "a new error class: map its code, or say why not"
    assert not set(protocol.ERRORS) & {protocol.UNSUPPORTED_VERSION, protocol.UNKNOWN_OP, protocol.DROPPED}


@pytest.mark.parametrize("code", protocol.ERROR_CODES)
def test_every_error_code_raises_its_class(code):
    with pytest.raises(errors.ZmqexError) as raised:
        decode_reply(through_the_wire(error_reply(7, code, f"the node says {code}")))
    assert type(raised.value) is protocol.ERRORS.get(code, errors.ErrorReply)
    assert (raised.value.code, str(raised.value)) == (code, f"the node says {code}")


def test_an_unknown_code_raises_error_reply_with_code_and_message():
    with pytest.raises(errors.ErrorReply) as raised:
        decode_reply(error_reply(None, "bug", "an invariant broke"))
    assert (raised.value.code, str(raised.value)) == ("bug", "an invariant broke")
    assert isinstance(raised.value, errors.RemoteError)


GOOD_OK = ok_reply(1, {})
GOOD_ERROR = error_reply(1, "busy", "try again")


@pytest.mark.parametrize("reply", [
    None, [], "reply", [1, True, {}],
    {k: v for k, v in GOOD_OK.items() if k != "v"}, {**GOOD_OK, "v": 2}, {**GOOD_OK, "v": True}, {**GOOD_OK, "v": "1"},
    {**GOOD_OK, "id": 1.5}, {**GOOD_OK, "id": "x" * 65}, {**GOOD_OK, "id": 2**63},
    {k: v for k, v in GOOD_OK.items() if k != "ok"}, {**GOOD_OK, "ok": 1}, {**GOOD_OK, "ok": "true"},
    {k: v for k, v in GOOD_OK.items() if k != "result"}, {**GOOD_OK, "result": [1]}, {**GOOD_OK, "result": None},
    {k: v for k, v in GOOD_ERROR.items() if k != "error"}, {**GOOD_ERROR, "error": "busy"},
    {**GOOD_ERROR, "error": {"message": "no code"}}, {**GOOD_ERROR, "error": {"code": 5, "message": "x"}},
    {**GOOD_ERROR, "error": {"code": "", "message": "x"}}, {**GOOD_ERROR, "error": {"code": "x" * 129, "message": ""}},
    {**GOOD_ERROR, "error": {"code": "busy"}}, {**GOOD_ERROR, "error": {"code": "busy", "message": ["x"]}},
])
def test_malformed_replies_raise_decode_error(reply):
    with pytest.raises(errors.DecodeError):
        decode_reply(reply)


def test_stream_and_dropped_messages_are_told_apart():
    message = through_the_wire(protocol.fill_message(5, parse_fill(FILL)))
    assert protocol.is_stream(message) and not protocol.is_stream(GOOD_OK)
    assert protocol.stream_fill(message, 5) == FILL
    assert protocol.stream_fill(message, 6) is None and protocol.stream_fill(GOOD_OK, 1) is None
    assert protocol.stream_fill({**message, "id": "5"}, 5) is None
    with pytest.raises(errors.DecodeError):
        protocol.stream_fill({**message, "fill": {**FILL, "qty": 0.5}}, 5)
    dropped = through_the_wire(protocol.dropped_reply(3, "3 replies were dropped"))
    assert protocol.is_dropped(dropped) and dropped["error"]["count"] == 3
    assert not protocol.is_dropped(error_reply(None, "malformed", "x")) and not protocol.is_dropped(GOOD_OK)
    assert not protocol.is_dropped({**dropped, "id": 1})


# --- what a client accepts of an order, a fill, the book -----------------------------------


def test_what_a_client_reads_is_exactly_the_fields_it_knows():
    assert parse_order(ORDER) == ORDER and parse_order({**ORDER, "mine": True})["mine"] is True
    assert parse_order({**ORDER, "colour": "red"}) == ORDER  # a later node's field is left out
    assert parse_fill({**FILL, "request": "r1"}) == FILL
    assert parse_order({**ORDER, "price": None, "fills": []})["price"] is None
    assert parse_fills({"fills": [FILL], "truncated": True}) == [FILL] == parse_fills({"fills": [FILL]})


BAD_FIELDS = [
    ("order_id", ["x", "a:0", "a:01", "a:", ":1", 17, None]),
    ("owner", ["", "a b", "x" * 33, 1]),
    ("side", ["hold", "BUY", 0, None]),
    ("price", ["50000", "50000.0", "50000.001", "-1.00", "0.00", "1e4", 50000, 50000.0, " 50000.00", ""]),
    ("qty", ["1.5", "0.00000000", "1.500000000", 150000000, "99999999999.00000000"]),
    ("tif", ["fok", "GTC", None]),
    ("status", ["new", "", None]),
    ("filled", ["0", "-0.50000000", 0, None]),
    ("open", ["1", 1.0]),
    ("pending", ["", "0.0"]),
    ("available", [1, "true", None]),
    ("fills", [None, {}, [None], [{**FILL, "price": "1"}], [{k: v for k, v in FILL.items() if k != "taker"}]]),
    ("mine", [1, "yes", None]),
]


@pytest.mark.parametrize("field, value", [(f, v) for f, values in BAD_FIELDS for v in values])
def test_an_order_with_a_bad_field_raises_decode_error(field, value):
    with pytest.raises(errors.DecodeError, match="order|fill|owner"):
        parse_order({**ORDER, field: value})


@pytest.mark.parametrize("field", [f for f in OrderView.__annotations__ if f != "mine"])
def test_an_order_without_a_field_raises_decode_error(field):
    with pytest.raises(errors.DecodeError):
        parse_order({k: v for k, v in ORDER.items() if k != field})


@pytest.mark.parametrize("fill", [
    None, [], {**FILL, "id": "b9"}, {**FILL, "maker": 4}, {**FILL, "price": "50000"}, {**FILL, "qty": "0.00000000"},
    *({k: v for k, v in FILL.items() if k != field} for field in FillView.__annotations__),
])
def test_a_bad_fill_raises_decode_error(fill):
    with pytest.raises(errors.DecodeError):
        parse_fill(fill)
    with pytest.raises(errors.DecodeError):
        parse_fills({"fills": [FILL, fill]})


def test_fills_result_must_hold_a_list():
    for result in (None, {}, {"fills": None}, {"fills": [FILL], "truncated": "no"}):
        with pytest.raises(errors.DecodeError):
            parse_fills(result)


BOOK: BookView = {"unavailable": {"bids": [], "asks": [["50001.00", "0.10000000", 1]]},
                  "bids": [["50000.00", "1.00000000", 2]], "asks": []}


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("bids"), lambda b: b.pop("unavailable"), lambda b: b["unavailable"].pop("asks"),
    lambda b: b.update(asks={}), lambda b: b["bids"].append(["1.00", "1.00000000"]),
    lambda b: b["bids"].append(["1.00", "1.00000000", 0]), lambda b: b["bids"].append(["1.00", "1.00000000", True]),
    lambda b: b["bids"].append(["1.00", "1.00000000", 2**64]), lambda b: b["bids"].append(["1", "1.00000000", 1]),
    lambda b: b["bids"].append(("1.00", "1.00000000", 1)), lambda b: b["unavailable"]["asks"][0].__setitem__(1, "0"),
])
def test_a_bad_book_raises_decode_error(mutate):
    assert parse_book(through_the_wire(BOOK)) == BOOK
    book = through_the_wire(BOOK)
    mutate(book)
    with pytest.raises(errors.DecodeError):
        parse_book(book)


def test_a_level_is_price_qty_and_count():
    assert protocol.level(5_000_000, 1, 3) == ["50000.00", "0.00000001", 3]


# --- written once --------------------------------------------------------------------------


def test_protocol_is_pure_it_imports_no_sockets_and_neither_end():
    imports = "import sys, zmqex.protocol; print(sorted(m for m in sys.modules if m.split('.')[0] == 'zmq' " \
              "or m in ('zmqex.api', 'zmqex.client', 'zmqex.node', 'socket', 'asyncio')))"
    done = subprocess.run([sys.executable, "-c", imports], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_sides_and_tifs_are_the_cores():
    assert protocol.SIDES == tuple(s.value for s in Side) and protocol.TIFS == tuple(t.value for t in Tif)
    assert protocol.DEFAULT_TIF in protocol.TIFS


@pytest.mark.parametrize("module", ["api.py", "client.py"])
def test_the_ends_hold_no_copy_of_the_protocol(module):
    """No string of the protocol's vocabulary (but the ops' names) is written in api.py or client.py."""
    tree = ast.parse((ROOT / "zmqex" / module).read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr)}
    literals = {node.value for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and type(node.value) is str and id(node) not in docstrings}
    vocabulary = {*protocol.SIDES, *protocol.TIFS, *protocol.STATUSES, *protocol.ERROR_CODES, protocol.DROPPED,
                  protocol.STREAM_FILL, "result", "error", "stream", "available", "pending"}
    assert literals & vocabulary == set()


# --- docs/protocol.md says exactly this ------------------------------------------------------


def table(header: str) -> list[list[str]]:
    """The rows of the markdown table whose header row is ``header``, split into cells."""
    lines = DOC.splitlines()
    start = lines.index(header) + 2  # past the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    assert all(len(row) == header.count(" | ") + 1 for row in rows), header
    return rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def block(start: str) -> str:
    """The fenced code block of the doc whose first line starts with ``start``."""
    for found in re.findall(r"```\n(.*?)```", DOC, re.S):
        if found.startswith(start):
            return str(found)
    raise AssertionError(f"no example starting {start!r}")


def keys(text: str) -> list[str]:
    return re.findall(r'"(\w+)":', text)


def test_the_doc_names_protocol_py_as_the_single_source():
    assert "The one source of this protocol is **`zmqex/protocol.py`**" in DOC
    assert DOC.startswith(f"# The zmqex client protocol (version {protocol.VERSION})")


def test_the_doc_at_a_glance():
    rows = {row[0]: row[1] for row in table("| what | value | in `zmqex/protocol.py` |")}
    assert ticked(rows["version"]) == [str(protocol.VERSION)]
    assert tuple(ticked(rows["ops"])) == protocol.OPS
    assert tuple(ticked(rows["fields of every request"])) == protocol.COMMON
    assert tuple(ticked(rows["sides"])) == protocol.SIDES
    assert tuple(ticked(rows["TIFs"])) == protocol.TIFS
    assert f"`{protocol.DEFAULT_TIF}` (the default)" in rows["TIFs"]
    assert tuple(ticked(rows["order statuses"])) == protocol.STATUSES
    assert ticked(rows["request `id`"]) == ["2**63", str(protocol.MAX_ID_TEXT)] and protocol.MAX_ID == 2**63
    assert ticked(rows["trader name"]) == [protocol.TRADER_RULE]
    assert ticked(rows["`order_id` argument"]) == [str(protocol.MAX_ORDER_ID)]
    assert ticked(rows["`book` depth"]) == ["1", str(protocol.MAX_DEPTH), str(protocol.DEFAULT_DEPTH)]
    assert ticked(rows["request frame"]) == ["4 MiB"] and protocol.MAX_REQUEST == 4 << 20
    assert ticked(rows["reply frame, as the Python client reads it"]) == ["1 GiB"] and protocol.MAX_REPLY == 1 << 30
    assert ticked(rows["stream"]) == [protocol.STREAM_FILL]
    for row in table("| what | value | in `zmqex/protocol.py` |"):  # every name it cites exists
        assert all(hasattr(protocol, name) for name in ticked(row[2]) if name.isupper()), row


def test_the_doc_ops_and_their_arguments():
    rows = table("| op | arguments | result |")
    assert tuple(ticked(row[0])[0] for row in rows) == protocol.OPS
    for row in rows:
        op = ticked(row[0])[0]
        assert tuple(re.findall(r"`(\w+)`:", row[1])) == protocol.ARGUMENTS[op], op
        assert protocol.ARGUMENTS[op] or row[1] == "none"
    place = dict((ticked(row[0])[0], row) for row in rows)["place"]
    assert re.findall(r'`"(\w+)"`', place[1]) == [*protocol.SIDES, *protocol.TIFS]
    assert f'`"{protocol.DEFAULT_TIF}"` (default)' in place[1]
    assert f"`depth`: integer 1..{protocol.MAX_DEPTH} (default {protocol.DEFAULT_DEPTH})" in DOC
    book = dict((ticked(row[0])[0], row) for row in rows)["book"]
    assert set(keys(book[2])) == set(BookView.__annotations__) | {"bids", "asks"}
    fills = dict((ticked(row[0])[0], row) for row in rows)["fills"]
    assert f"the most recent {DEFAULT.fills_reply:,} fills" in fills[2]


def test_the_doc_status_fields_are_what_a_node_sends():
    status = dict((ticked(row[0])[0], row) for row in table("| op | arguments | result |"))["status"][2]
    listed = re.findall(r'"(\w+)"', status.split("`;")[0])
    reply = msgpack.unpackb(ClientApi(Replica("a")).handle(b"\x00c", msgpack.packb({"v": 1, "id": 1, "op": "status"})))
    assert set(listed) - {"up", "endpoint"} == set(reply["result"])


def test_the_doc_order_and_fill_examples():
    order = block('{"order_id"')
    assert keys(order) == [f for f in OrderView.__annotations__ if f != "mine"]
    assert tuple(re.findall(r'"(\w+)"', order.split('"status": ')[1].split(",\n")[0])) == protocol.STATUSES
    fill = json.loads(block('{"id"'))
    assert parse_fill(fill) == fill and list(fill) == list(FillView.__annotations__)
    example = json.loads(re.sub(r'"price": "50000.00" \| null', '"price": "50000.00"',
                                re.sub(r'"status": "open"[^,]*', '"status": "open"', order)).replace("[fill, ...]",
                                                                                                  json.dumps([fill])))
    assert parse_order(example) == example


def test_the_doc_replies_and_streams():
    ok, error = block('{"v": 1, "id": ID, "ok": true').splitlines()
    assert keys(ok) == list(ok_reply(1, {})) and keys(error) == list(error_reply(1, "c", "m")) + ["code", "message"]
    dropped = block('{"v": 1, "id": null, "ok": false')
    assert keys(dropped) == [*protocol.dropped_reply(1, "m"), "code", "count", "message"]
    assert f'"code": "{protocol.DROPPED}"' in dropped
    stream = block('{"v": 1, "id": WATCH_ID')
    assert keys(stream) == list(protocol.fill_message(1, parse_fill(FILL)))
    assert f'"stream": "{protocol.STREAM_FILL}"' in stream
    assert block("{\"v\": 1, \"id\": ID, \"op\": OP").startswith(f'{{"v": {protocol.VERSION}, ')


def test_the_doc_error_codes_and_their_classes():
    rows = table("| code | meaning | the Python client raises |")
    assert sorted(ticked(row[0])[0] for row in rows) == sorted(protocol.ERROR_CODES)
    for row in rows:
        code, raised = ticked(row[0])[0], ticked(row[2])
        assert raised == [protocol.ERRORS.get(code, errors.ErrorReply).__name__], code


def test_the_doc_limits_are_the_defaults():
    rows = {row[0]: row[1] for row in table("| bound | default | past it |")}
    assert rows == {
        "frame size": f"{protocol.MAX_REQUEST >> 20} MiB",
        "`place` requests in flight (awaiting their taker flow), per trader": f"{DEFAULT.pending_per_trader:,}",
        "... per node, all traders": f"{DEFAULT.pending_per_node:,}",
        "requests per second, per trader: a token bucket": f"{DEFAULT.rate_per_s:,}/s, bursts of {DEFAULT.burst:,}",
        "open orders (resting, or still matching) per trader": f"{DEFAULT.open_per_trader:,}",
        "open orders of the node's traders, per node": f"{DEFAULT.open_per_node:,}",
        "fills in one `fills` reply": f"{DEFAULT.fills_reply:,}, the most recent",
        "`book` depth": f"{DEFAULT.book_depth:,} levels per side",
    }
    assert DEFAULT.book_depth == protocol.MAX_DEPTH  # what a client refuses to ask is what a node refuses to give
