"""Hypothesis strategies for hostile wire input (a helper for the fuzz tests, not a test file).

Every ``*_frames`` strategy gives ``bytes``: one frame as it could arrive on a
socket.  They are built from the real encoders (events, peer messages, hellos,
client requests as in docs/protocol.md) and then broken on purpose:

* random bytes, and msgpack values of every wrong shape;
* each field position of each real message kind replaced by a hostile value
  (wrong type, huge or negative integer, float for money, over-long or
  non-UTF-8 string, nesting deeper than any decoder walks), an element
  dropped or one too many;
* byte mutations of valid frames (a flipped byte, a truncation, an insertion);
* msgpack that ``msgpack.packb`` would never write: integers in 64-bit form
  at the edges of their range, strings that are not UTF-8, lying length
  headers, nesting deeper than msgpack unpacks.

Integers above 2**64 cannot be written in msgpack at all: the largest the
wire can carry is ``0xcf ff..ff`` (2**64 - 1), which is what ``uint64`` gives.

``*_messages`` / ``*_events`` strategies give valid values (for round trips,
and as the base of the mutations); ``forged_messages`` gives messages that
decode but lie: origins that are not the sender, sequence gaps, replays,
unrequested sync and snapshot pages with a huge ``total``.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st

from zmqex import mesh
from zmqex.core import events, messages, wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Reduce, Side, Tif
from zmqex.core.money import MAX_PRICE, MAX_QTY

pack = wire.pack

# --- raw msgpack: what msgpack.packb will not write ------------------------------------------


def raw_array(parts: list[bytes]) -> bytes:
    """A msgpack array whose elements are the already-encoded ``parts``."""
    n = len(parts)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n) if n < 2**16 else b"\xdd" + struct.pack(">I", n)
    return head + b"".join(parts)


def raw_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n) if n < 2**16 else b"\xdf" + struct.pack(">I", n)
    return head + b"".join(k + v for k, v in pairs)


def raw_str(data: bytes) -> bytes:
    """A msgpack *str* holding ``data`` as is (not necessarily UTF-8)."""
    n = len(data)
    head = bytes([0xA0 | n]) if n < 32 else b"\xd9" + bytes([n]) if n < 256 else b"\xda" + struct.pack(">H", n)
    return head + data


def uint64(n: int) -> bytes:
    return b"\xcf" + struct.pack(">Q", n)


def int64(n: int) -> bytes:
    return b"\xd3" + struct.pack(">q", n)


def deep(depth: int, kind: str = "list") -> bytes:
    """A value nested ``depth`` levels: a list in a list ..., or a map in a map ..."""
    return (b"\x91" if kind == "list" else b"\x81\xa1k") * depth + b"\xc0"


#: Nesting deep enough that a repr() of it raises RecursionError (msgpack unpacks up to 1024).
DEEP = 1000

# Lying headers: a length far longer than the frame, with nothing (or little) after it.
LIARS = [
    b"\xdd\xff\xff\xff\xff",  # array of 4G elements
    b"\xdf\xff\xff\xff\xff",  # map of 4G pairs
    b"\xdb\xff\xff\xff\xff",  # str of 4 GB
    b"\xc6\xff\xff\xff\xff",  # bin of 4 GB
    b"\xc9\xff\xff\xff\xff\x01",  # ext of 4 GB
    b"\xdc\xff\xff\xc0\xc0",  # array of 65535 with 2 elements
    b"\xd7\xff\x00\x00\x00\x00\xff\xff\xff\xff",  # timestamp ext with an invalid nanosecond field
    b"\xc1",  # the one byte msgpack never uses
]

#: Integers at every edge that matters: the int64 / uint64 ends, MAX_INT, money bounds.
EDGE_INTS = [0, 1, -1, 2**31, 2**32, 2**53 + 1, wire.MAX_INT, wire.MAX_INT + 1, 2**64 - 1, -(2**63),
             MAX_QTY, MAX_QTY + 1, MAX_PRICE, MAX_PRICE + 1, 10**18, 10**18 - 1]

long_strings = st.sampled_from([33, 65, 129, 201, 1_000, 100_000]).flatmap(
    lambda n: st.sampled_from(["a" * n, "9" * n, "a:" + "1" * n, "\u00e9" * n, "tcp://" + "x" * n]))

huge_ints = st.sampled_from(EDGE_INTS) | st.integers(-(2**63), 2**64 - 1)

money_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.5, 1e308, -0.0, 50000.0])

scalars = st.one_of(
    st.none(), st.booleans(), huge_ints, money_floats,
    st.text(max_size=12), st.binary(max_size=12), long_strings,
    st.sampled_from(["a", "a:1", "buy", "sell", "gtc", "ioc", "post_only", "user", "order", "fill", "cancel",
                     "batch", "gossip", "hb", "take", "granted", "sync", "events", "snapshot", ""]),
)

#: Any msgpack value (packable): scalars, lists and maps of them.
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=6), kids, max_size=5),
    max_leaves=20,
)

#: One encoded msgpack value that is wrong for almost any field.
hostile_fragments = st.one_of(
    values.map(pack),
    st.sampled_from(EDGE_INTS).map(lambda n: uint64(n) if n >= 0 else int64(n)),
    st.binary(min_size=1, max_size=8).map(lambda b: raw_str(b"\xff" + b)),  # not UTF-8
    st.sampled_from([raw_str(b"a\xff"), raw_str(b"\xc3("), raw_str(b"\xed\xa0\x80")]),  # invalid, surrogate
    st.sampled_from([deep(DEEP), deep(DEEP, "map"), deep(10), deep(1023)]),
    st.sampled_from(LIARS),
)

# --- valid values, from the real types ------------------------------------------------------

node_ids = st.sampled_from(["a", "b", "c", "d"]) | st.from_regex(r"[A-Za-z0-9_.\-]{1,32}", fullmatch=True)
clock_entries = st.integers(1, wire.MAX_INT)
order_ids = st.builds(events.order_id, node_ids, st.integers(1, 10**18 - 1))
request_ids = st.text(min_size=1, max_size=128)
prices = st.integers(1, MAX_PRICE)
qtys = st.integers(1, MAX_QTY)


@st.composite
def clocks(draw, must: dict[str, int] | None = None) -> VectorClock:
    entries = draw(st.dictionaries(node_ids, clock_entries, max_size=4))
    return VectorClock({**entries, **(must or {})})


@st.composite
def new_orders(draw) -> NewOrder:
    tif = draw(st.sampled_from(Tif))
    price = None if tif is Tif.IOC and draw(st.booleans()) else draw(prices)
    expire_at = draw(st.integers(0, wire.MAX_INT)) if tif is Tif.GTD else None
    return NewOrder(draw(st.sampled_from(Side)), price, draw(qtys), tif, expire_at)


bodies = st.one_of(
    new_orders(),
    st.builds(Cancel, order_ids, st.sampled_from(CancelReason)),
    st.builds(Reduce, order_ids, qtys),
    st.builds(Fill, order_ids, order_ids, prices, qtys, request_ids),
)


@st.composite
def valid_events(draw, origins=node_ids, seqs=st.integers(1, wire.MAX_INT), body=bodies) -> Event:
    origin, seq = draw(origins), draw(seqs)
    return Event(origin, seq, draw(clocks({origin: seq})), draw(body))


#: Anything msgpack gives back as it was given (lists, str-keyed maps, no NaN): snapshot items.
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8)
    | st.floats(allow_nan=False),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
)


hashes = st.text("0123456789abcdef", min_size=1, max_size=64)


@st.composite
def snapshot_pages(draw) -> messages.SnapshotPage:
    total = draw(st.integers(1, 1_000_000))
    index = draw(st.integers(0, total - 1))
    items = draw(st.lists(st.lists(plain_values, max_size=4), max_size=4))
    return messages.SnapshotPage(draw(clocks()), index, total, tuple(items), draw(hashes))


valid_messages = st.one_of(
    st.builds(messages.Gossip, valid_events()),
    st.builds(messages.Heartbeat, node_ids, clocks(), st.text(max_size=64)),
    st.builds(messages.Take, request_ids, order_ids, valid_events(), qtys),
    st.builds(messages.TakeReply, request_ids, order_ids, st.integers(0, MAX_QTY), st.text(min_size=1, max_size=32),
              st.none() | valid_events()),
    st.builds(messages.SyncRequest, clocks(), st.integers(1, messages.MAX_PAGE)),
    st.builds(messages.SyncReply, st.lists(valid_events(), max_size=3).map(tuple), st.booleans()),
    snapshot_pages(),
)

endpoints = st.one_of(
    st.builds("tcp://{}:{}".format, st.sampled_from(["127.0.0.1", "10.1.2.3", "[::1]", "[fe80::1]"]),
              st.integers(1, 65535)),
    st.from_regex(r"ipc://[!-~]{2,30}", fullmatch=True),
)
#: Endpoints a hello could name where no node can listen (zmq_connect raises EINVAL on most).
BAD_ENDPOINTS = ["tcp://x", "ipc://", "ipc://@", "tcp://:::", "tcp://\u00e9:5", "tcp://a:0", "tcp://a:65536",
                 "tcp:// a:1", "tcp://a:b", "udp://a:1",
                 "tcp://localhost:1", "tcp://node-7.example:7001"]  # names: resolving them would stall libzmq
members = st.builds(mesh.Member, node_ids, endpoints, endpoints)
valid_hellos = st.builds(mesh.Hello, members, st.lists(members, max_size=4).map(tuple))

OPS = ["place", "cancel", "cancel_all", "order", "open_orders", "my_fills", "trades", "book", "status", "fills",
       "subscribe", "unsubscribe", "watch", "cancel_on_disconnect", "heartbeat", "set_credit", "settle", "credit"]
CODES = {"malformed", "unsupported_version", "unknown_op", "invalid_amount", "invalid_request",
         "unknown_order", "not_owner", "order_closed", "rejected", "busy", "limit", "credit"}


@st.composite
def valid_requests(draw) -> dict[str, Any]:
    """A request as docs/protocol.md describes it (a place may still be refused: a post-only, say)."""
    op = draw(st.sampled_from(OPS))
    req: dict[str, Any] = {"v": 1, "id": draw(st.integers(-(2**63) + 1, 2**63 - 1) | st.text(max_size=64)), "op": op}
    if op == "place":
        req["side"] = draw(st.sampled_from(["buy", "sell"]))
        req["qty"] = draw(st.sampled_from(["1", "0.5", "0.00000001", "21000000"]) | qtys.map(str))
        tif = draw(st.sampled_from(["gtc", "ioc", "post_only", "gtd", None]))
        if tif:
            req["tif"] = tif
        if tif == "gtd":
            req["expire_at"] = draw(st.integers(1, 2**63 - 1))
        if tif != "ioc" or draw(st.booleans()):
            req["price"] = draw(st.sampled_from(["50000", "50000.00", "0.01", "10000000"]))
        if draw(st.booleans()):
            req["client_order_id"] = draw(st.sampled_from(["c1", "c2", "x" * 36]))
        if draw(st.booleans()):
            req["ack"] = draw(st.sampled_from(["done", "accepted"]))
    elif op in ("cancel", "order"):
        if draw(st.booleans()):
            req["order_id"] = draw(order_ids | st.sampled_from(["a:1", "b:1"]))
        else:
            req["client_order_id"] = draw(st.sampled_from(["c1", "c2"]))
    elif op == "cancel_all" and draw(st.booleans()):
        req["side"] = draw(st.sampled_from(["buy", "sell"]))
    elif op in ("open_orders", "my_fills", "trades"):
        req["since"] = draw(st.integers(0, 3))
        req["limit"] = draw(st.integers(1, 1000))
    elif op == "book" and draw(st.booleans()):
        req["depth"] = draw(st.integers(1, 1000))
    elif op == "subscribe":
        req["stream"] = draw(st.sampled_from(["trades", "orders", "book"]))
        if req["stream"] == "book" and draw(st.booleans()):
            req["depth"] = draw(st.integers(1, 100))
    elif op == "unsubscribe":
        req["subscription"] = draw(st.integers(0, 3))
    elif op == "cancel_on_disconnect":
        req["timeout_ms"] = draw(st.sampled_from([0, 500, 600_000]))
    elif op == "set_credit":  # credit (zmqex.core.credit): "*" is every desk; "b" may be no member there
        req["desk"] = draw(st.sampled_from(["*", "b"]))
        req["limit"] = draw(st.sampled_from(["0", "150.50", None]))
        if draw(st.booleans()):
            req["daily"] = draw(st.sampled_from(["0", "10", None]))
    elif op == "settle":
        req["desk"] = draw(st.sampled_from(["b", "c"]))
        req["usd"] = draw(st.sampled_from(["1", "0.01", "9999999999999999.99"]))
    return req


# --- mutations ------------------------------------------------------------------------------


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every position in a nested list/map structure (the root included)."""
    out = [prefix]
    if type(value) is list:
        for i, item in enumerate(value):
            out += paths(item, prefix + (i,))
    elif type(value) is dict:
        for key, item in value.items():
            out += paths(item, prefix + (key,))
    return out


def pack_with(value: Any, path: tuple, fragment: bytes | None, extra: bytes | None = None) -> bytes:
    """``value`` encoded with the element at ``path`` replaced by ``fragment`` (dropped if None);
    ``extra``, if given, is appended to the list (or map, as a value of key ``"x"``) at ``path``."""
    if not path:
        if extra is not None:
            if type(value) is list:
                return raw_array([pack(v) for v in value] + [extra])
            if type(value) is dict:
                return raw_map([(pack(k), pack(v)) for k, v in value.items()] + [(pack("x"), extra)])
        return pack(value) if fragment is None else fragment
    step, rest = path[0], path[1:]
    if type(value) is list:
        parts = []
        for i, item in enumerate(value):
            if i != step:
                parts.append(pack(item))
            elif rest or extra is not None or fragment is not None:
                parts.append(pack_with(item, rest, fragment, extra))
        return raw_array(parts)
    pairs = []
    for key, item in value.items():
        if key != step:
            pairs.append((pack(key), pack(item)))
        elif rest or extra is not None or fragment is not None:
            pairs.append((pack(key), pack_with(item, rest, fragment, extra)))
    return raw_map(pairs)


@st.composite
def field_mutations(draw, structures) -> bytes:
    """A real structure with one position replaced by a hostile value, dropped, or one element too many."""
    value = draw(structures)
    path = draw(st.sampled_from(paths(value)))
    how = draw(st.sampled_from(["replace", "replace", "replace", "drop", "extra"]))
    if how == "replace" or not path and how == "drop":
        return pack_with(value, path, draw(hostile_fragments))
    if how == "drop":
        return pack_with(value, path, None)
    return pack_with(value, path, None, extra=draw(hostile_fragments))


@st.composite
def byte_mutations(draw, frames) -> bytes:
    """A valid frame with bytes flipped, cut, inserted or repeated."""
    data = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "set", "truncate", "insert", "repeat"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if how == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and data:
            data[i] = draw(st.sampled_from([0x00, 0xC0, 0xC1, 0xFF, 0xDD, 0xCF, 0x91, 0x7F]))
        elif how == "truncate":
            del data[i:]
        elif how == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        else:
            data += data[i:]
    return bytes(data)


# --- the frame strategies -------------------------------------------------------------------

event_frames = valid_events().map(events.encode)
message_frames = valid_messages.map(messages.encode)
batch_frames = st.lists(valid_messages, min_size=1, max_size=4).map(messages.encode_batch)
hello_frames = valid_hellos.map(mesh.encode_hello)
request_frames = valid_requests().map(pack)
valid_frames = st.one_of(event_frames, message_frames, batch_frames, hello_frames, request_frames)


def _structures(frames):
    return frames.map(wire.unpack)


random_frames = st.binary(max_size=300)
shape_frames = values.map(pack)  # valid msgpack, any shape
raw_frames = st.one_of(  # what packb never writes, alone or as the whole frame
    hostile_fragments,
    st.lists(hostile_fragments, max_size=6).map(raw_array),
    st.tuples(st.sampled_from([1, 0, 2, -1]), st.sampled_from(["batch", "gossip", "hb", "take", "granted", "sync",
                                                              "events", "snapshot"]), hostile_fragments)
    .map(lambda t: raw_array([pack(t[0]), pack(t[1]), t[2]])),
)
#: Frames just over the limit every decoder and socket enforces.
OVERSIZED = [b"\x00" * (wire.MAX_FRAME + 1), b"\xc6" + struct.pack(">I", wire.MAX_FRAME) + b"\x00" * wire.MAX_FRAME]

mutated_frames = st.one_of(
    field_mutations(_structures(event_frames)),
    field_mutations(_structures(message_frames)),
    field_mutations(_structures(batch_frames)),
    field_mutations(_structures(hello_frames)),
    byte_mutations(valid_frames),
)

#: Everything hostile, one frame each (not the oversized ones: they are large, test them alone).
hostile_frames = st.one_of(random_frames, shape_frames, raw_frames, mutated_frames)

#: Client request frames: hostile, or a real request with one field broken.
request_mutations = st.one_of(
    field_mutations(valid_requests()),
    byte_mutations(request_frames),
    st.builds(lambda req, key, frag: pack_with(req, (key,), frag), valid_requests(),
              st.sampled_from(["v", "id", "op", "side", "qty", "price", "tif", "order_id", "depth", "client_order_id",
                               "expire_at", "ack", "since", "limit", "stream", "subscription", "timeout_ms"]),
              hostile_fragments),
)
client_frames = st.one_of(hostile_frames, request_mutations, request_frames)


# --- messages that decode but lie -------------------------------------------------------------


@st.composite
def forged_messages(draw, me: str = "a", sender: str = "b") -> messages.Message:
    """Messages a hostile (or confused) peer ``sender`` could send to ``me``; each decodes."""
    others = st.sampled_from([me, "c", "zed"])  # origins that are not the sender
    small = st.integers(1, 5)
    far = st.sampled_from([10**6, 2**40, wire.MAX_INT])
    kind = draw(st.sampled_from(["forged", "gap", "own", "take", "reply", "sync", "snapshot", "hb", "ask"]))
    if kind == "forged":  # gossip of an event whose origin is another node
        return messages.Gossip(draw(valid_events(origins=others, seqs=small)))
    if kind == "gap":  # the sender's own events, far ahead of anything we have
        return messages.Gossip(draw(valid_events(origins=st.just(sender), seqs=far)))
    if kind == "own":  # our own future events, from someone else
        return messages.Gossip(draw(valid_events(origins=st.just(me), seqs=small | far)))
    if kind == "take":  # a take on an order of ours that may not exist, for a taker from anyone
        maker = draw(st.builds(events.order_id, st.just(me), small) | order_ids)
        taker = draw(valid_events(origins=others | st.just(sender), seqs=small | far, body=new_orders()))
        return messages.Take(draw(request_ids), maker, taker, draw(qtys))
    if kind == "reply":  # an answer to a take nobody asked for, with a fill from anyone
        fill = draw(st.none() | valid_events(origins=others | st.just(sender), seqs=small))
        return messages.TakeReply(draw(request_ids), draw(order_ids), draw(st.integers(0, MAX_QTY)),
                                  draw(st.sampled_from(["filled", "closed", "busy", "invalid", "?"])), fill)
    if kind == "sync":  # an unrequested sync page
        return messages.SyncReply(tuple(draw(st.lists(valid_events(seqs=small), max_size=4))), draw(st.booleans()))
    if kind == "snapshot":  # an unrequested snapshot page: huge total, junk or real-looking items
        total = draw(st.sampled_from([1, 2, 1_000_000]))
        item = st.one_of(
            st.lists(plain_values, max_size=4),
            st.builds(lambda e, f, c: [0, events.to_wire(e), f, c],
                      valid_events(seqs=small, body=new_orders()), st.integers(-1, MAX_QTY) | plain_values,
                      st.sampled_from([None, "user", "expired", "would_cross", "?"]) | plain_values),
            st.builds(lambda e: [1, events.to_wire(e)], valid_events(seqs=small)),
        )
        return messages.SnapshotPage(draw(clocks()), draw(st.integers(0, total - 1)), total,
                                     tuple(draw(st.lists(item, max_size=4))), draw(hashes))
    if kind == "hb":  # a heartbeat naming anyone, claiming any clock (our own events included)
        return messages.Heartbeat(draw(st.sampled_from([sender, me, "c"])),
                                  draw(clocks()) if draw(st.booleans()) else VectorClock({me: draw(small | far)}),
                                  draw(st.text(max_size=64)))
    # a sync request: the asker claims any clock; we answer it (nothing changes here)
    return messages.SyncRequest(draw(clocks()), draw(st.integers(1, messages.MAX_PAGE)))


#: Lies, encoded, and lies with one field broken (a snapshot item's cancel reason nested 1000 deep...).
forged_frames = st.one_of(
    forged_messages().map(messages.encode),
    field_mutations(forged_messages().map(lambda m: wire.unpack(messages.encode(m)))),
)
