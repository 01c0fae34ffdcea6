"""Tests for zmqex.core.events and zmqex.core.wire: the canonical, strict event codec."""

from __future__ import annotations

import copy

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import bodies
from zmqex.core import wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import (
    MAX_NODES, Cancel, CancelReason, Event, Fill, NewOrder, Side, Tif, decode, encode, from_wire, order_id,
    parse_order_id, to_wire,
)
from zmqex.core.money import MAX_PRICE, MAX_QTY
from zmqex.errors import DecodeError, InvalidAmount, InvalidRequest

# --- strategies (the valid values are the fuzzing helpers' own: tests/hostile.py) ---

node_ids = st.from_regex(r"[A-Za-z0-9_.\-]{1,32}", fullmatch=True)
counts = st.integers(1, wire.MAX_INT)
order_ids = st.builds(order_id, node_ids, st.integers(1, 10**18 - 1))
prices = st.integers(1, MAX_PRICE)
qtys = st.integers(1, MAX_QTY)


@st.composite
def events(draw, body=bodies) -> Event:
    origin, seq = draw(node_ids), draw(counts)
    others = draw(st.dictionaries(node_ids, counts, max_size=6))
    return Event(origin, seq, VectorClock({**others, origin: seq}), draw(body), ts=draw(st.integers(0, 2**53)))


# Any value msgpack can pack, nested.
msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)


def rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def decodes_or_rejects(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass  # anything else escaping is the failure


# --- round trip and canonical bytes -------------------------------------------


@given(events())
def test_round_trip(event):
    data = encode(event)
    assert decode(data) == event
    assert encode(decode(data)) == data
    assert from_wire(to_wire(event)) == event


@given(events())
def test_equal_events_encode_equally(event):
    twin = Event(event.origin, event.seq, VectorClock(dict(reversed(list(event.vc.items())))), event.body, ts=event.ts)
    assert twin == event
    assert encode(twin) == encode(event)


def test_clock_insertion_order_does_not_change_bytes():
    body = NewOrder(Side.SELL, 5000, 7, Tif.GTC)
    forward = Event("b", 2, VectorClock({"a": 1, "b": 2, "c": 3}), body)
    backward = Event("b", 2, VectorClock({"c": 3, "b": 2, "a": 1}), body)
    assert encode(forward) == encode(backward)


@given(events(), events())
def test_different_events_encode_differently(a, b):
    assert (encode(a) == encode(b)) == (a == b)


def test_a_gtd_order_and_only_it_carries_expire_at():
    assert NewOrder(Side.BUY, 1, 1, Tif.GTD, 5).expire_at == 5
    with pytest.raises(InvalidRequest):
        NewOrder(Side.BUY, 1, 1, Tif.GTD)
    with pytest.raises(InvalidRequest):
        NewOrder(Side.BUY, 1, 1, Tif.GTC, 5)
    raw = to_wire(Event("a", 1, VectorClock({"a": 1}), NewOrder(Side.BUY, 1, 1, Tif.GTD, 5)))
    raw[-1] = None
    with pytest.raises(DecodeError, match="needs expire_at"):
        from_wire(raw)


def test_market_order_must_be_ioc():
    assert NewOrder(Side.BUY, None, 1, Tif.IOC).price is None
    for tif in (Tif.GTC, Tif.POST_ONLY, Tif.GTD):
        with pytest.raises(InvalidAmount):
            NewOrder(Side.BUY, None, 1, tif)


# --- parse_order_id -----------------------------------------------------------


@pytest.mark.parametrize("value, parsed", [("a:1", ("a", 1)), ("node-1.x_y:42", ("node-1.x_y", 42))])
def test_parse_order_id_accepts(value, parsed):
    assert parse_order_id(value) == parsed


@pytest.mark.parametrize("value", ["a", "a:0", "a:01", "a:b", ":1", "a:1:2", "a:", "a:-1", "a:+1", "a:1 ", "a b:1",
                                   "a:1" + "0" * 18, "x" * 33 + ":1", None, 1, b"a:1"])
def test_parse_order_id_rejects(value):
    with pytest.raises(DecodeError):
        parse_order_id(value)


@pytest.mark.parametrize("value", ["a:\u00b2", "a:\u0661"])
def test_parse_order_id_rejects_non_ascii_digits(value):
    with pytest.raises(DecodeError):
        parse_order_id(value)


@given(node_ids, st.integers(1, 10**18 - 1))
def test_parse_order_id_inverts_order_id(origin, seq):
    assert parse_order_id(order_id(origin, seq)) == (origin, seq)


# --- strict decoding ----------------------------------------------------------

TS = 1_764_633_600_000
ORDER = [4, "a", 2, {"a": 2, "b": 1}, TS, "order", "buy", 5000, 10, "gtc", None]
CANCEL = [4, "a", 3, {"a": 3}, TS, "cancel", "a:1", "user"]
FILL = [4, "a", 3, {"a": 3, "b": 1}, TS, "fill", "a:1", "b:1", 5000, 10, "req-1"]
REDUCE = [4, "a", 3, {"a": 3}, TS, "reduce", "a:1", 5]
BASES = {"order": ORDER, "cancel": CANCEL, "fill": FILL, "reduce": REDUCE}


def edit(base: list, index: int, value) -> list:
    raw = copy.deepcopy(base)
    raw[index] = value
    return raw


def test_bases_are_valid():
    for raw in BASES.values():
        assert to_wire(decode(msgpack.packb(raw))) == raw


BAD_EVERY_KIND = [  # (index, value) wrong in any event
    (0, 3), (0, 5), (0, 0), (0, "4"), (0, None),
    (1, ""), (1, "a" * 33), (1, "a:b"), (1, "a b"), (1, 5), (1, None), (1, b"a"), (1, "\u00e9"),
    (2, 0), (2, -1), (2, True), (2, "3"), (2, 3.0), (2, 2**63), (2, 2**64 - 1), (2, None),
    (3, []), (3, {}), (3, None), (3, {"a": 9}), (3, {"b": 1}),
    (4, -1), (4, None), (4, "1"), (4, 1.0), (4, True), (4, 2**63),
    (5, "orders"), (5, ""), (5, None), (5, 1), (5, "ORDER"),
]
BAD_BY_KIND = {
    "order": [(6, "BUY"), (6, "hold"), (6, None), (6, True), (7, 0), (7, -1), (7, MAX_PRICE + 1), (7, "5000"),
              (7, 5000.0), (7, True), (8, 0), (8, MAX_QTY + 1), (8, True), (8, None), (9, "GTC"), (9, "aon"),
              (9, None), (9, "gtd"), (10, 5), (10, "5"), (10, True)],
    "cancel": [(6, "a"), (6, "a:0"), (6, "a:01"), (6, 1), (6, None), (7, "oops"), (7, None)],
    "reduce": [(6, "a"), (6, "a:0"), (6, None), (7, 0), (7, -1), (7, MAX_QTY + 1), (7, True), (7, "5"), (7, None)],
    "fill": [(6, "x"), (7, "b:0"), (8, 0), (8, None), (9, 0), (9, -5), (9, False), (10, ""), (10, "r" * 129),
             (10, 5), (10, None)],
}
CLOCK_ENTRIES = [{"b": 0}, {"b": -1}, {"b": True}, {"b": 1.0}, {"b c": 1}, {"b": 2**63}, {"": 1}, {"b": None}]


def malformed_cases():
    for kind, base in BASES.items():
        for index, value in BAD_EVERY_KIND + BAD_BY_KIND[kind]:
            yield pytest.param(msgpack.packb(edit(base, index, value)), id=f"{kind}[{index}]={value!r:.20}")
        yield pytest.param(msgpack.packb(base + ["extra"]), id=f"{kind}-extra-field")
        yield pytest.param(msgpack.packb(base[:-1]), id=f"{kind}-missing-field")
        for entry in CLOCK_ENTRIES:
            yield pytest.param(msgpack.packb(edit(base, 3, {**base[3], **entry})), id=f"{kind}-vc-{entry!r:.20}")
        for value in (msgpack.ExtType(5, b"x"), msgpack.Timestamp(1, 0)):
            yield pytest.param(msgpack.packb(edit(base, 2, value)), id=f"{kind}-ext-{type(value).__name__}")
    many = {f"n{i}": 1 for i in range(MAX_NODES)}
    yield pytest.param(msgpack.packb(edit(ORDER, 3, {**many, "a": 2})), id="too-many-clock-entries")
    yield pytest.param(msgpack.packb(edit(ORDER, 3, {1: 1, "a": 2})), id="int-map-key")
    yield pytest.param(msgpack.packb(edit(ORDER, 3, {b"b": 1, "a": 2})), id="bytes-map-key")
    for value in ([], [1, "a", 1, {"a": 1}], {"v": 1}, 1, "event", None, b"\x01"):
        yield pytest.param(msgpack.packb(value), id=f"top-level-{value!r:.20}")
    for data in (b"", b"\xc1", b"\x93\x01", msgpack.packb(ORDER) + b"\x00", msgpack.packb(ORDER)[:-1]):
        yield pytest.param(data, id=f"bytes-{data[:12]!r}")


@pytest.mark.parametrize("data", list(malformed_cases()))
def test_malformed_is_rejected(data):
    rejects(data)


def test_max_nodes_clock_entries_is_still_fine():
    many = {f"n{i}": 1 for i in range(MAX_NODES - 1)}
    assert len(decode(msgpack.packb(edit(ORDER, 3, {**many, "a": 2}))).vc) == MAX_NODES


@pytest.mark.parametrize("version", [True, 2.0])
def test_version_must_be_exactly_the_int(version):
    rejects(msgpack.packb(edit(ORDER, 0, version)))


@pytest.mark.parametrize("tif", ["gtc", "post_only", "gtd"])
def test_market_order_that_is_not_ioc_is_a_decode_error(tif):
    rejects(msgpack.packb(edit(edit(ORDER, 7, None), 9, tif)))


def test_market_ioc_order_decodes():
    assert decode(msgpack.packb(edit(edit(ORDER, 7, None), 9, "ioc"))).body.price is None


def test_oversized_frame_is_rejected_before_parsing():
    data = msgpack.packb(edit(FILL, 10, "r" * wire.MAX_FRAME))
    with pytest.raises(DecodeError, match="over the limit"):
        decode(data)


@pytest.mark.parametrize("value", ["text", None, 1, [b"x"]])
def test_non_bytes_input_is_rejected(value):
    rejects(value)


@given(events())
def test_every_truncation_is_rejected(event):
    data = encode(event)
    for end in range(len(data)):
        rejects(data[:end])


# --- fuzz ---------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_fuzz_bytes(data):
    decodes_or_rejects(data)


@given(msgpack_values)
def test_fuzz_msgpack_values(value):
    decodes_or_rejects(msgpack.packb(value))


@given(st.sampled_from(list(BASES.values())), st.data())
def test_fuzz_one_field(base, data):
    raw = copy.deepcopy(base)
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(msgpack_values)
    decodes_or_rejects(msgpack.packb(raw))


@given(events(), st.data())
def test_fuzz_flipped_byte(event, data):
    frame = bytearray(encode(event))
    frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    decodes_or_rejects(bytes(frame))
