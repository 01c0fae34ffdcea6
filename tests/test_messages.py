"""Tests for zmqex.core.messages: the strict peer-message codec."""

from __future__ import annotations

import copy

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, Fill, NewOrder, Side, Tif, to_wire
from zmqex.core.messages import (
    MAX_BATCH, MAX_PAGE, Audit, AuditReply, Confirm, ConfirmReply, Gossip, Heartbeat, Hold, HoldReply, Inquire,
    Records, RecordsRequest, SnapshotPage, SyncReply, SyncRequest, Take, TakeReply, decode, decode_batch, encode, encode_batch, encode_frames,
)
from zmqex.core.money import MAX_QTY
from zmqex.errors import DecodeError
from tests.hostile import new_orders
from tests.test_events import events, msgpack_values, node_ids, order_ids

# --- strategies ---------------------------------------------------------------

clocks = st.dictionaries(node_ids, st.integers(1, 2**63 - 1), max_size=6).map(VectorClock)
requests = st.text(min_size=1, max_size=128)

messages = st.one_of(
    st.builds(Gossip, events()),
    st.builds(Heartbeat, node_ids, clocks, st.text(max_size=64)),
    st.builds(Take, requests, order_ids, events(new_orders()), st.integers(1, MAX_QTY)),
    st.builds(TakeReply, requests, order_ids, st.integers(0, MAX_QTY), st.text(min_size=1, max_size=32),
              st.none() | events()),
    st.builds(Hold, requests, order_ids, events(new_orders()), st.integers(1, MAX_QTY)),
    st.builds(HoldReply, requests, order_ids, st.integers(0, MAX_QTY), st.text(min_size=1, max_size=32)),
    st.builds(Confirm, requests, order_ids, order_ids, st.integers(0, MAX_QTY)),
    st.builds(ConfirmReply, requests, order_ids, st.integers(0, MAX_QTY), st.none() | events()),
    st.builds(Inquire, requests, order_ids, order_ids),
    st.builds(Audit, clocks),
    st.builds(AuditReply, clocks, st.dictionaries(node_ids, st.dictionaries(st.integers(0, 2**50), st.text(min_size=1, max_size=32),
                                                                           min_size=1, max_size=3), max_size=3)),
    st.builds(RecordsRequest, node_ids, st.lists(st.integers(0, 2**50), min_size=1, max_size=8).map(tuple)),
    st.builds(SyncRequest, clocks, st.integers(1, MAX_PAGE)),
    st.builds(SyncReply, st.lists(events(), max_size=5).map(tuple), st.booleans()),
)

V = 5  # the peer protocol's version (zmqex.core.wire.VERSION)
ORDER = Event("a", 1, VectorClock({"a": 1}), NewOrder(Side.BUY, 5000, 10, Tif.GTC))
FILL = Event("b", 2, VectorClock({"a": 1, "b": 2}), Fill("b:1", "a:1", 5000, 10, "a.1"))


def rejects(data) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def decodes_or_rejects(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass


# --- round trip ---------------------------------------------------------------


@given(messages)
def test_round_trip(msg):
    data = encode(msg)
    assert decode(data) == msg
    assert encode(decode(data)) == data


@pytest.mark.parametrize("msg", [
    Gossip(ORDER),
    Heartbeat("a", VectorClock({"a": 3, "b": 1}), "0" * 32),
    Heartbeat("a", VectorClock(), "h"),
    Heartbeat("a", VectorClock({"a": 1}), ""),  # busy: no hash
    Take("a.1", "b:1", ORDER, 10),
    TakeReply("a.1", "b:1", 10, "filled", FILL),
    TakeReply("a.1", "b:1", 0, "closed", None),
    Hold("a:1:0", "b:1", ORDER, 10),
    HoldReply("a:1:0", "b:1", 10, "held"),
    Confirm("a:1:0", "b:1", "a:1", 0),
    ConfirmReply("a:1:0", "b:1", 10, FILL),
    Inquire("a:1:0", "b:1", "a:1"),
    Audit(VectorClock({"a": 1})),
    AuditReply(VectorClock({"a": 1}), {"a": {0: "0" * 32, 3: "f" * 32}, "b": {1: "1" * 32}}),
    RecordsRequest("a", (0, 3)),
    Records(VectorClock({"a": 1}), "a", (0,), ([0, to_wire(ORDER), 0, None, 10],)),
    SyncRequest(VectorClock({"a": 1}), 100),
    SyncRequest(VectorClock(), MAX_PAGE),
    SyncReply((ORDER, FILL), True),
    SyncReply((), False),
], ids=lambda m: type(m).__name__)
def test_round_trip_examples(msg):
    assert decode(encode(msg)) == msg


@given(st.lists(messages, min_size=1, max_size=6))
def test_batch_round_trip(msgs):
    data = encode_batch(msgs)
    assert decode_batch(data) == msgs
    if len(msgs) == 1:
        assert data == encode(msgs[0])  # a batch of one is the message itself


@given(st.lists(messages, max_size=8))
def test_frames_carry_every_message_in_order(msgs):
    assert [m for frame in encode_frames(msgs) for m in decode_batch(frame)] == msgs


def test_pages_travel_alone_and_batches_are_split():
    page = SyncReply((ORDER,) * MAX_PAGE, True)  # ~100 kB: many of them would pass the frame limit
    snapshot = SnapshotPage(VectorClock({"a": 1}), 0, 1, (), "h")
    small = [Gossip(ORDER)] * (MAX_BATCH + 1)
    frames = encode_frames([Gossip(FILL), page, page, *small, snapshot])
    assert [len(decode_batch(f)) for f in frames] == [1, 1, 1, MAX_BATCH, 1, 1]
    assert frames[1] == encode(page) and frames[-1] == encode(snapshot)


def test_batch_size_limits():
    with pytest.raises(ValueError):
        encode_batch([])
    with pytest.raises(ValueError):
        encode_batch([Gossip(ORDER)] * (MAX_BATCH + 1))
    assert len(decode_batch(encode_batch([Gossip(ORDER)] * MAX_BATCH))) == MAX_BATCH
    one = encode_batch([Gossip(ORDER), Gossip(FILL)])
    inner = msgpack.unpackb(one)[2]
    for items in ([], inner[:1], inner * (MAX_BATCH // 2 + 1)):
        with pytest.raises(DecodeError):
            decode_batch(msgpack.packb([V, "batch", items]))


@pytest.mark.parametrize("items", [
    "not a list",
    [[V, "gossip", to_wire(ORDER)], [1, "gossip", "bad"]],  # one bad message spoils the frame
    [[V, "gossip", to_wire(ORDER)], [V, "batch", [[V, "gossip", to_wire(ORDER)]] * 2]],  # no nesting
    [[V, "gossip", to_wire(ORDER)], None],
])
def test_malformed_batch_is_rejected_whole(items):
    with pytest.raises(DecodeError):
        decode_batch(msgpack.packb([V, "batch", items]))
    with pytest.raises(DecodeError):
        decode(msgpack.packb([V, "batch", items]))  # a single-message reader does not take batches


@given(msgpack_values)
def test_fuzz_batch_values(value):
    try:
        decode_batch(msgpack.packb([V, "batch", value]))
    except DecodeError:
        pass


def test_full_sync_page_is_accepted():
    page = SyncReply((ORDER,) * MAX_PAGE, False)
    assert decode(encode(page)) == page


def test_sync_page_over_max_is_rejected():
    rejects(encode(SyncReply((ORDER,) * (MAX_PAGE + 1), True)))


# --- strict decoding ----------------------------------------------------------

GOOD = {
    "gossip": [V, "gossip", to_wire(ORDER)],
    "hb": [V, "hb", "a", {"a": 3}, "abc"],
    "take": [V, "take", "a.1", "b:1", to_wire(ORDER), 10],
    "granted": [V, "granted", "a.1", "b:1", 10, "filled", to_wire(FILL)],
    "hold": [V, "hold", "a:1:0", "b:1", to_wire(ORDER), 10],
    "held": [V, "held", "a:1:0", "b:1", 10, "held"],
    "confirm": [V, "confirm", "a:1:0", "b:1", "a:1", 10],
    "confirmed": [V, "confirmed", "a:1:0", "b:1", 10, to_wire(FILL)],
    "inquire": [V, "inquire", "a:1:0", "b:1", "a:1"],
    "audit": [V, "audit", {"a": 1}],
    "digests": [V, "digests", {"a": 1}, [["a", 0, "0" * 32]]],
    "records?": [V, "records?", "a", [0, 1]],
    "records": [V, "records", {"a": 1}, "a", [0], [[0, to_wire(ORDER), 0, None, 10]]],
    "sync": [V, "sync", {"a": 1}, 100],
    "events": [V, "events", [to_wire(ORDER)], False],
}
BAD_FIELDS = {
    "gossip": [(2, None), (2, []), (2, to_wire(ORDER)[:-1]), (2, "event")],
    "hb": [(2, ""), (2, "a:b"), (2, 1), (3, {"a": 0}), (3, []), (4, "h" * 65), (4, 5)],
    "take": [(2, ""), (2, 1), (2, "r" * 129), (3, "b"), (3, "b:0"), (4, None), (5, 0), (5, -1),
             (5, MAX_QTY + 1), (5, True)],
    "granted": [(2, ""), (3, "b:01"), (4, -1), (4, MAX_QTY + 1), (4, True), (4, None), (5, ""), (5, "r" * 33),
                (6, []), (6, "fill")],
    "hold": [(2, ""), (2, 1), (3, "b"), (4, None), (5, 0), (5, MAX_QTY + 1), (5, True)],
    "held": [(2, None), (3, "b:0"), (4, -1), (4, True), (5, ""), (5, "r" * 33)],
    "confirm": [(2, ""), (3, "b"), (4, "a"), (4, None), (5, -1), (5, MAX_QTY + 1), (5, 1.0)],
    "confirmed": [(2, 1), (3, None), (4, -1), (4, None), (5, []), (5, "fill")],
    "inquire": [(2, ""), (3, "b:01"), (4, 7)],
    "audit": [(2, None), (2, {"a": 0})],
    "digests": [(2, None), (3, None), (3, [["a", 0]]), (3, [["a b", 0, "x"]]), (3, [["a", -1, "x"]]), (3, [["a", 0, "x" * 33]])],
    "records?": [(2, "a b"), (3, []), (3, [0] * 9), (3, [-1]), (3, None)],
    "records": [(2, None), (3, 7), (4, []), (5, None)],
    "sync": [(2, None), (2, {"a": -1}), (3, 0), (3, MAX_PAGE + 1), (3, True), (3, None)],
    "events": [(2, None), (2, {}), (2, [None]), (2, [to_wire(ORDER)[:-1]]), (3, 1), (3, 0), (3, None),
               (3, "true")],
}


def edit(raw: list, index: int, value) -> list:
    raw = copy.deepcopy(raw)
    raw[index] = value
    return raw


def test_good_frames_decode():
    for raw in GOOD.values():
        decode(msgpack.packb(raw))


def malformed_cases():
    for kind, raw in GOOD.items():
        for index, value in BAD_FIELDS[kind] + [(0, 4), (0, 6), (0, 0), (0, "5"), (0, None)]:
            yield pytest.param(msgpack.packb(edit(raw, index, value)), id=f"{kind}[{index}]={value!r:.16}")
        yield pytest.param(msgpack.packb(raw + [None]), id=f"{kind}-extra-field")
        yield pytest.param(msgpack.packb(raw[:-1]), id=f"{kind}-missing-field")
        yield pytest.param(msgpack.packb(raw)[:-1], id=f"{kind}-truncated")
        yield pytest.param(msgpack.packb(edit(raw, 0, msgpack.ExtType(1, b""))), id=f"{kind}-ext-type")
    for value in ([], [V], [V, "nope"], [V, None], {"v": 1}, "gossip", None, 1):
        yield pytest.param(msgpack.packb(value), id=f"top-level-{value!r:.16}")
    yield pytest.param(msgpack.packb(edit(GOOD["sync"], 2, {1: 1})), id="int-map-key")
    for data in (b"", b"\xc1", b"\x92\x01"):
        yield pytest.param(data, id=f"bytes-{data!r}")


@pytest.mark.parametrize("data", list(malformed_cases()))
def test_malformed_is_rejected(data):
    rejects(data)


@pytest.mark.parametrize("more", [0, 1, None, "yes"])
def test_more_must_be_bool(more):
    rejects(msgpack.packb([V, "events", [], more]))


@pytest.mark.parametrize("version", [True, 2.0])
def test_version_must_be_exactly_the_int(version):
    rejects(msgpack.packb(edit(GOOD["sync"], 0, version)))


def test_oversized_frame_is_rejected():
    with pytest.raises(DecodeError, match="over the limit"):
        decode(msgpack.packb(edit(GOOD["hb"], 4, "h" * (4 * 1024 * 1024))))


@given(messages)
def test_every_truncation_is_rejected(msg):
    data = encode(msg)
    for end in range(len(data)):
        rejects(data[:end])


# --- fuzz ---------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_fuzz_bytes(data):
    decodes_or_rejects(data)


@given(msgpack_values)
def test_fuzz_msgpack_values(value):
    decodes_or_rejects(msgpack.packb(value))


@given(st.sampled_from(sorted(GOOD)), st.data())
def test_fuzz_one_field(kind, data):
    raw = copy.deepcopy(GOOD[kind])
    raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(msgpack_values)
    decodes_or_rejects(msgpack.packb(raw))


@given(messages, st.data())
def test_fuzz_flipped_byte(msg, data):
    frame = bytearray(encode(msg))
    frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    decodes_or_rejects(bytes(frame))
