"""Envelopes: what one node makes in one loop iteration, as one unit of replication.

Under load a node makes many events per loop iteration (orders placed, fills
granted, cancels).  Each keeps its identity ``origin:seq``, its vector clock
and its place in the book, but together they travel, are signed and are stored
once: as an :class:`Envelope` of consecutive sequence numbers under one clock
(the first event's; the others differ from it only in their own entry, as the
replica seals an envelope before it delivers anyone else's event).  At light
load an envelope holds one event and is encoded exactly as that event alone.

With keys the origin signs an envelope of several events once: its head (origin,
first seq, width, clock, timestamp) and the root of a Merkle tree
(:mod:`zmqex.core.merkle`) over its events' bodies.  So one event can still leave
its envelope and be checked on its own (a snapshot item, an audit record, a
take): it then carries a :class:`Proof`, the signature and its path to the
root; its seq and clock give the head back (``first = seq - index``, the clock
with its own entry at ``first``).

Wire forms (msgpack lists; every decoder is strict and raises DecodeError):

* an envelope of one: the event alone (:func:`zmqex.core.events.to_wire`);
* an envelope of several: ``[version, origin, first, clock of the first, ts,
  "envelope", [[kind, *fields], ...], sig?]``;
* an event with a proof: ``[the event alone, unsigned, sig, width, index, path]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from zmqex.core import merkle, wire
from zmqex.core.events import (
    Event, Seal, body_from_wire, body_to_wire, clock_from_wire, from_wire, need_head, need_signature, signed_bytes,
    to_wire,
)
from zmqex.errors import DecodeError

#: Most events one envelope holds: the replica seals one when it is full.  It bounds what an
#: event travelling alone carries (a path of at most 6 digests) and what a peer must decode at once.
MAX_EVENTS = 64

_ENVELOPE = "envelope"


class Envelope(Seal):
    """Events ``first..last`` of one origin, made in one loop iteration, under one signature.

    Invariants (``_check``): at least one event; consecutive seqs of one origin; one
    timestamp; every clock the first's with only its own entry moved; each event
    sealed by this envelope.
    """

    __slots__ = ("events", "verified", "_tree", "wire")

    def __init__(self, events: tuple[Event, ...], sig: bytes = b"") -> None:
        super().__init__(sig)
        self.events = events
        self.verified = False  # its signature checked once here: its other events need no second check
        self._tree: list[list[bytes]] | None = None
        # Its wire form, once made or read: published, stored and relayed as it is, not built again.
        self.wire: list[Any] | None = None

    @property
    def origin(self) -> str:
        return self.events[0].origin

    @property
    def first(self) -> int:
        return self.events[0].seq

    @property
    def last(self) -> int:
        return self.events[-1].seq

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"Envelope({self.origin}:{self.first}..{self.last})"

    def __eq__(self, other: object) -> bool:
        """By value: the same events under the same signature (how they are checked is not part of it)."""
        return isinstance(other, Envelope) and self.events == other.events and self.sig == other.sig

    def __hash__(self) -> int:
        return hash((self.events, self.sig))

    def signed_bytes(self) -> bytes:
        """What its origin signs: an event alone as such; several by their head and tree's root."""
        if len(self.events) == 1:
            return signed_bytes(self.events[0])
        return _root_message(self.events[0], len(self.events), self.tree()[-1][0])

    def tree(self) -> list[list[bytes]]:
        """The Merkle tree over its events' bodies (computed once)."""
        if self._tree is None:
            self._tree = merkle.levels([_leaf(e) for e in self.events])
        return self._tree

    def _check(self) -> None:
        events = self.events
        assert 1 <= len(events) <= MAX_EVENTS, f"an envelope of {len(events)} events"
        head = events[0]
        for i, event in enumerate(events):
            assert event.seal is self, f"{event.origin}:{event.seq} is not sealed by its envelope"
            assert event.origin == head.origin and event.seq == head.seq + i, "envelope seqs not consecutive"
            assert event.ts == head.ts, "one envelope, one timestamp"
            assert event.vc == head.vc.with_entry(head.origin, event.seq), "envelope clocks differ"


class Proof(Seal):
    """An event's place in its envelope: leaf ``index`` of ``width``, and the path to the signed root."""

    __slots__ = ("width", "index", "path")

    def __init__(self, sig: bytes, width: int, index: int, path: tuple[bytes, ...]) -> None:
        super().__init__(sig)
        self.width = width
        self.index = index
        self.path = path


def seal(events: list[Event], sign: Callable[[bytes], bytes] | None = None) -> Envelope:
    """Seal our own ``events`` (consecutive, made in one iteration) into one envelope, signed if ``sign``."""
    envelope = Envelope(tuple(events))
    if sign is not None:
        envelope.sig = sign(envelope.signed_bytes())
        envelope.verified = True  # ours
    for event in events:
        event.seal = envelope
    return envelope


def vouched(event: Event) -> tuple[bytes, bytes] | None:
    """``(message, signature)``: what ``event``'s signature must verify against; None if nothing can vouch."""
    seal = event.seal
    if seal is None or not seal.sig:
        return None
    if isinstance(seal, Envelope):
        return seal.signed_bytes(), seal.sig
    if isinstance(seal, Proof):
        root = merkle.root_from(_leaf(event), seal.index, seal.width, list(seal.path))
        first = event.seq - seal.index
        if root is None or first < 1:
            return None
        head = Event(event.origin, first, event.vc.with_entry(event.origin, first), event.body, ts=event.ts)
        return _root_message(head, seal.width, root), seal.sig
    return signed_bytes(event), seal.sig


def _leaf(event: Event) -> bytes:
    return merkle.leaf(wire.pack(body_to_wire(event.body)))


def _root_message(head: Event, width: int, root: bytes) -> bytes:
    """What an envelope's origin signs, from its first event (``head``): every event's seq
    is ``first`` + its place, its clock the head's but for its own entry, its body a leaf."""
    # A str first: no event alone (an int first) packs to these bytes.
    return wire.pack([_ENVELOPE, wire.EVENT_VERSION, head.origin, head.seq, width,
                      dict(head.vc.items_sorted()), head.ts, root])


# --- wire forms ----------------------------------------------------------------------------

def envelope_to_wire(envelope: Envelope) -> list[Any]:
    if envelope.wire is not None:
        return envelope.wire
    events = envelope.events
    if len(events) == 1:
        out = to_wire(events[0], signed=False)
    else:
        head = events[0]
        out = [wire.EVENT_VERSION, head.origin, head.seq, dict(head.vc.items_sorted()), head.ts, _ENVELOPE,
               [body_to_wire(e.body) for e in events]]
    if envelope.sig:
        out.append(envelope.sig)
    envelope.wire = out  # sealed: own envelopes are signed before anything encodes them
    return out


def envelope_from_wire(raw: Any) -> Envelope:
    """An envelope (of one or several) from the wire; strict."""
    raw = wire.need_list(raw, "envelope")
    if len(raw) < 6:
        raise DecodeError("envelope is too short")
    if raw[5] != _ENVELOPE:
        event = from_wire(raw)
        envelope = _sealed([event], event.sig)
        envelope.wire = raw  # checked whole: kept to store and relay as it came
        return envelope
    if len(raw) not in (7, 8):
        raise DecodeError(f"an envelope has 7 or 8 fields, not {len(raw)}")
    version, origin, first, vc_raw, ts, _, bodies = raw[:7]
    need_head(version, origin, first, ts)
    sig = need_signature(raw[7]) if len(raw) == 8 else b""
    vc = clock_from_wire(vc_raw)
    if vc.get(origin) != first:
        raise DecodeError(f"envelope clock must have {origin}={first}, has {vc.get(origin)}")
    bodies = wire.need_list(bodies, "envelope events")
    if not 2 <= len(bodies) <= MAX_EVENTS:
        raise DecodeError(f"an envelope holds 2..{MAX_EVENTS} events, not {len(bodies)}")
    if first + len(bodies) - 1 > wire.MAX_INT:
        raise DecodeError("envelope seqs run past the largest integer")
    events = []
    for i, body_raw in enumerate(bodies):
        body_raw = wire.need_list(body_raw, "envelope event")
        if not body_raw:
            raise DecodeError("an envelope event is empty")
        seq = first + i
        event_vc = vc if i == 0 else vc.with_entry(origin, seq)
        events.append(Event(origin, seq, event_vc, body_from_wire(body_raw[0], body_raw[1:]), ts=ts))
    envelope = _sealed(events, sig)
    envelope.wire = raw  # checked whole: kept to store and relay as it came
    return envelope


def _sealed(events: list[Event], sig: bytes) -> Envelope:
    envelope = Envelope(tuple(events), sig)
    for event in events:
        event.seal = envelope
    return envelope


def event_to_wire(event: Event) -> list[Any]:
    """``event`` on its own with what vouches for it: alone, or with its proof if it was made with others."""
    seal = event.seal
    if isinstance(seal, Envelope) and seal.sig and len(seal.events) > 1:
        index = event.seq - seal.first
        return [to_wire(event, signed=False), seal.sig, len(seal.events), index, merkle.path(seal.tree(), index)]
    if isinstance(seal, Proof) and seal.sig:
        return [to_wire(event, signed=False), seal.sig, seal.width, seal.index, list(seal.path)]
    out = to_wire(event, signed=False)
    if seal is not None and seal.sig:
        out.append(seal.sig)
    return out


def event_from_wire(raw: Any) -> Event:
    """Inverse of :func:`event_to_wire`; strict."""
    raw = wire.need_list(raw, "event")
    if not (len(raw) == 5 and type(raw[0]) is list):
        return from_wire(raw)
    alone, sig, width, index, path = raw
    event = from_wire(alone)
    if event.sig:
        raise DecodeError("an event with a proof carries its signature beside it, not in it")
    wire.need_int(width, "envelope width", 2, MAX_EVENTS)
    wire.need_int(index, "envelope index", 0, width - 1)
    path = wire.need_list(path, "proof path")
    if len(path) > merkle.depth(width) or any(type(d) is not bytes or len(d) != merkle.DIGEST_BYTES for d in path):
        raise DecodeError(f"a proof path is at most {merkle.depth(width)} digests of {merkle.DIGEST_BYTES} bytes")
    if event.seq - index < 1:
        raise DecodeError("a proof places its event before seq 1")
    event.seal = Proof(need_signature(sig), width, index, tuple(path))
    return event


def encode_event(event: Event) -> bytes:
    return wire.pack(event_to_wire(event))


def decode_event(data: Any) -> Event:  # Any: untrusted, checked by wire.unpack
    return event_from_wire(wire.unpack(data))


def bundle_to_wire(events: Iterable[Event]) -> list[Any]:
    """``events`` (in order) as the envelopes that hold them, each once; an event held
    by no envelope of its own (a snapshot's) goes with its proof."""
    out: list[Any] = []
    last: Envelope | None = None
    for event in events:
        seal = event.seal
        if isinstance(seal, Envelope):
            if seal is not last:
                out.append(envelope_to_wire(seal))
                last = seal
        else:
            out.append(event_to_wire(event))
            last = None
    return out


def bundle_from_wire(raw: list[Any]) -> Iterator[Event]:
    """Inverse of :func:`bundle_to_wire`: the events, in order."""
    for item in raw:
        if type(item) is list and len(item) == 5 and type(item[0]) is list:
            yield event_from_wire(item)
        else:
            yield from envelope_from_wire(item).events
