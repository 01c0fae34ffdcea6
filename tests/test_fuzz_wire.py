"""Fuzzed wire: every decoder, the client API and the replica's message handling on hostile input.

Pure and fast (no sockets).  The properties:

* every decoder returns a value of its type or raises DecodeError, never anything
  else (no TypeError, KeyError, RecursionError, MemoryError, ...);
* ``decode(encode(x)) == x`` for every valid value, and the encoding is canonical;
* ``ClientApi.handle`` never raises: it returns None (a ``place`` under way) or a
  msgpack map with ``ok`` and, on error, a documented ``error.code``; a request that
  is refused, or that is not ``place``/``cancel``, leaves state hash and clock alone;
* ``Replica.receive`` on hostile messages that decode raises only LocalError or RemoteError
  (never an InvariantViolation or another AssertionError), the replica keeps every
  invariant (``Replica._check``), and what it sends afterwards encodes.

The strategies are in tests/hostile.py.
"""

from __future__ import annotations

import contextlib
import sys

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests import hostile
from tests.hostile import DEEP, deep, pack, raw_array, raw_map, raw_str, uint64
from zmqex import api, mesh
from zmqex.core import events, messages, wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif
from zmqex.core.outputs import Publish, Send
from zmqex.core.replica import Replica
from zmqex.errors import DecodeError, LocalError, RemoteError

anything = st.one_of(hostile.hostile_frames, hostile.valid_frames, hostile.forged_frames)

# Frames that broke a decoder once: a field nested deeper than repr() can go.
DEEP_FIELDS = [
    raw_array([pack(1), deep(DEEP)]),  # message kind
    raw_array([deep(DEEP), pack("hb")]),  # message version
    raw_array([pack(1), pack("hb"), deep(DEEP), pack({}), pack("")]),  # heartbeat origin (a node id)
    raw_array([pack(1), pack("a"), pack(1), pack({"a": 1}), deep(DEEP)]),  # event kind
    raw_array([deep(DEEP), pack("a"), pack(1), pack({"a": 1}), pack("order")]),  # event version
    raw_array([pack(1), pack("a"), pack(1), pack({"a": 1}), pack("order"), deep(DEEP), pack(1), pack(1),
               pack("gtc")]),  # side
    raw_array([pack(1), pack("a"), pack(1), pack({"a": 1}), pack("cancel"), deep(DEEP), pack("user")]),  # order id
    raw_array([deep(DEEP), pack(["a", "tcp://x", "tcp://y"]), pack([])]),  # hello version
    raw_array([pack(1), raw_array([deep(DEEP), pack("tcp://x"), pack("tcp://y")]), pack([])]),  # hello sender id
]

DECODERS = [
    (wire.unpack, object),
    (messages.decode, messages.Message.__args__),
    (messages.decode_batch, list),
    (events.decode, Event),
    (mesh.decode_hello, mesh.Hello),
]


@contextlib.contextmanager
def production_stack():
    """Python's default recursion limit, as a node runs with: hypothesis raises the limit
    while a test runs, and under its limit a repr() of a value nested 1000 deep succeeds."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def decoded(decoder, data, kind):
    """The decoder's value (checked for type), or None if it refused the data with a DecodeError."""
    try:
        with production_stack():
            value = decoder(data)
    except DecodeError:
        return None
    assert isinstance(value, kind), (decoder.__qualname__, type(value))
    if decoder is messages.decode_batch:
        assert 1 <= len(value) <= messages.MAX_BATCH
        assert all(isinstance(m, messages.Message.__args__) for m in value)
    return value


# --- decoders -------------------------------------------------------------------------------


@given(data=anything)
def test_decoders_return_their_type_or_raise_decode_error(data):
    for decoder, kind in DECODERS:
        decoded(decoder, data, kind)


@pytest.mark.parametrize("decoder, kind", DECODERS, ids=lambda d: getattr(d, "__qualname__", ""))
@pytest.mark.parametrize("data", DEEP_FIELDS + hostile.LIARS, ids=range(len(DEEP_FIELDS) + len(hostile.LIARS)))
def test_decoders_on_known_hostile_frames(decoder, kind, data):
    decoded(decoder, data, kind)


@pytest.mark.parametrize("decoder, kind", DECODERS, ids=lambda d: getattr(d, "__qualname__", ""))
def test_decoders_refuse_frames_over_max_frame(decoder, kind):
    for data in hostile.OVERSIZED:
        with pytest.raises(DecodeError):
            decoder(data)


@given(raw=st.one_of(hostile.values, anything))
@example(raw=deep(DEEP))
@example(raw=raw_array([pack(1), pack("a"), pack(1), pack({"a": 1}), deep(DEEP)]))
def test_event_from_wire_returns_an_event_or_raises_decode_error(raw):
    """``raw`` is a value, or a frame whose unpacked value is used (hypothesis itself cannot
    print a value nested 1000 deep, so the deep ones come as frames)."""
    if isinstance(raw, bytes):
        try:
            raw = wire.unpack(raw)
        except DecodeError:
            pass  # from_wire must refuse bytes too
    try:
        with production_stack():
            event = events.from_wire(raw)
    except DecodeError:
        return
    assert isinstance(event, Event)


def test_deep_nesting_is_refused_by_unpack_not_by_a_crash():
    with pytest.raises(DecodeError):
        wire.unpack(deep(1100))
    assert decoded(wire.unpack, deep(DEEP), object) is not None  # within msgpack's limit: the decoders see it


def test_integers_at_the_edge_of_msgpack():
    # 2**64 - 1 is the largest integer msgpack can carry; no decoder field accepts it.
    ev = events.to_wire(Event("a", 1, VectorClock({"a": 1}), NewOrder(Side.BUY, 1, 1, Tif.GTC)))
    for position in (2, 7, 8):  # seq, price, qty
        frame = hostile.pack_with(ev, (position,), uint64(2**64 - 1))
        with pytest.raises(DecodeError):
            events.decode(frame)
    # A non-UTF-8 str anywhere is refused by the unpacker.
    with pytest.raises(DecodeError):
        events.decode(hostile.pack_with(ev, (1,), raw_str(b"a\xff")))


@pytest.mark.parametrize("endpoint", hostile.BAD_ENDPOINTS)
def test_a_hello_naming_an_endpoint_no_socket_can_connect_to_is_refused(endpoint):
    # Found by this fuzzing: decode_hello took any "tcp://..." text, the node connected a DEALER
    # to it, zmq_connect raised ZMQError (not a ZmqexError) out of the loop, and the node hung in
    # ctx.term() with the socket of the half-made link open: one frame from any connection.
    good = mesh.Member("b", "tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002")
    for bad in (mesh.Member("b", endpoint, good.pub), mesh.Member("b", good.router, endpoint)):
        with pytest.raises(DecodeError):
            mesh.decode_hello(mesh.encode_hello(mesh.Hello(bad, ())))
        with pytest.raises(DecodeError):
            mesh.decode_hello(mesh.encode_hello(mesh.Hello(good, (good, bad))))


# --- round trips ----------------------------------------------------------------------------


@given(event=hostile.valid_events())
def test_event_round_trip_is_exact_and_canonical(event):
    data = events.encode(event)
    assert events.decode(data) == event
    assert events.encode(events.decode(data)) == data
    assert events.from_wire(events.to_wire(event)) == event


@given(msg=hostile.valid_messages)
def test_message_round_trip(msg):
    data = messages.encode(msg)
    assert messages.decode(data) == msg
    assert messages.decode_batch(data) == [msg]


@given(msgs=st.lists(hostile.valid_messages, min_size=1, max_size=6))
def test_batch_round_trip(msgs):
    assert messages.decode_batch(messages.encode_batch(msgs)) == msgs
    assert [m for f in messages.encode_frames(msgs) for m in messages.decode_batch(f)] == msgs


@given(hello=hostile.valid_hellos)
def test_hello_round_trip(hello):
    assert mesh.decode_hello(mesh.encode_hello(hello)) == hello


# --- the client API -------------------------------------------------------------------------


def _state(replica):
    return replica.ledger.state_hash(), replica.clock


def _check_reply(frame: bytes, reply: bytes | None, replica: Replica, before) -> None:
    try:
        request = wire.unpack(frame)
    except DecodeError:
        request = None
    op = request.get("op") if type(request) is dict else None
    if reply is None:
        assert op == "place", "only a place is answered later"
        return
    answer = wire.unpack(reply)
    assert type(answer) is dict and answer["v"] == 1 and type(answer["ok"]) is bool, answer
    rid = request.get("id") if type(request) is dict else None
    assert answer["id"] is None or answer["id"] == rid
    if answer["ok"]:
        assert type(answer["result"]) is dict
    else:
        assert answer["error"]["code"] in hostile.CODES, answer
        assert type(answer["error"]["message"]) is str
    if not answer["ok"] or op not in ("cancel", "cancel_all", "place"):  # place: a duplicate, or ack accepted
        assert _state(replica) == before, f"a {op!r} request answered {answer} changed the replica"


@given(frames=st.lists(hostile.client_frames, min_size=1, max_size=12))
@example(frames=[raw_map([(pack("v"), deep(DEEP)), (pack("id"), pack(1))])])
@example(frames=[raw_map([(pack("v"), pack(1)), (pack("id"), pack(1)), (pack("op"), deep(DEEP))])])
@example(frames=[pack({"v": 1, "id": 1, "op": "place", "side": [[[]]], "qty": "1", "price": "1"})])
@example(frames=[raw_map([(pack(k), pack(v)) for k, v in {"v": 1, "id": 1, "op": "place", "qty": "1"}.items()]
                         + [(pack("side"), deep(DEEP))])])
@example(frames=[raw_map([(pack(k), pack(v)) for k, v in {"v": 1, "id": 1, "op": "place", "qty": "1",
                                                          "side": "buy"}.items()] + [(pack("tif"), deep(DEEP))])])
def test_client_api_never_raises_and_refusals_change_nothing(frames):
    replica = Replica("a")
    client = api.ClientApi(replica)
    # Something to cancel, look up and cross: two resting orders of its own.
    replica.place(Side.SELL, 10**8, 50_000_00, Tif.GTC)
    replica.place(Side.BUY, 10**8, 40_000_00, Tif.GTC)
    for frame in frames + frames:  # and every frame replayed
        before = _state(replica)
        with production_stack():
            reply = client.handle(b"\x00fuzz", frame)
        _check_reply(frame, reply, replica, before)


def test_client_api_refuses_an_oversized_frame():
    replica = Replica("a")
    for frame in hostile.OVERSIZED:
        answer = wire.unpack(api.ClientApi(replica).handle(b"\x00fuzz", frame))
        assert answer["ok"] is False and answer["error"]["code"] == "malformed" and answer["id"] is None


# --- the replica on hostile peer messages ---------------------------------------------------

peer_inputs = st.one_of(
    st.tuples(st.sampled_from(["b", "c"]), hostile.forged_messages()),
    st.tuples(st.sampled_from(["b", "c"]), st.one_of(hostile.forged_frames, hostile.mutated_frames)),
)


def _snapshot_with_a_deep_cancel_reason() -> bytes:
    order = Event("b", 1, VectorClock({"b": 1}), NewOrder(Side.BUY, 1, 1, Tif.GTC))
    page = messages.SnapshotPage(VectorClock({"b": 1}), 0, 1, ([0, events.to_wire(order), 0, None],), "0" * 32)
    return hostile.pack_with(wire.unpack(messages.encode(page)), (5, 0, 3), deep(DEEP))


@given(inputs=st.lists(peer_inputs, min_size=1, max_size=8))
@example(inputs=[("b", _snapshot_with_a_deep_cancel_reason())])
def test_replica_receive_raises_only_zmqex_errors(inputs):
    replica = Replica("a", peers=["b", "c"])
    replica.place(Side.SELL, 10**8, 50_000_00, Tif.GTC)
    replica.place(Side.BUY, 10**8, 40_000_00, Tif.GTC)
    now = 0
    for sender, item in inputs + inputs:  # every message replayed
        if isinstance(item, bytes):
            try:
                with production_stack():
                    batch = messages.decode_batch(item)
            except DecodeError:
                continue
        else:
            batch = [item]
        for msg in batch:
            now += 7
            try:
                with production_stack():
                    replica.receive(sender, msg, now)
            except (RemoteError, LocalError):
                pass  # refused, as the node does: logged and dropped (an InvariantViolation is a bug: it fails)
        replica.tick(now)
        for out in replica.take_outputs():  # whatever it says next can be said on the wire
            if isinstance(out, (Send, Publish)):
                messages.encode_frames([out.message])
    replica._check()
