"""Events: every change to the replicated book, with one canonical encoding.

An :class:`Event` is ``(origin, seq, vc, body)``.  ``origin`` is the node that
created it, ``seq`` its per-origin counter and ``vc`` a vector clock with
``vc[origin] == seq``; ``(origin, seq)`` is the event's identity.  The body is
one of:

* :class:`NewOrder` - an order placed at ``origin``, which owns it;
* :class:`Cancel`   - its owner closes an order (user cancel, IOC expiry,
  post-only that would cross);
* :class:`Fill`     - the owner of the ``maker`` order grants ``qty`` of it to
  the ``taker`` order at the maker's price;
* :class:`Report`   - a private trade (a quote accepted, a directed order
  taken: :mod:`zmqex.core.otc`) on the public tape: price, quantity and the
  taker's side, the desks only if both allowed it, no order ids.

What one node makes in one loop iteration travels, is signed and is stored
as one :class:`~zmqex.core.envelope.Envelope`; each event in it keeps its own
identity, clock and place in the book.  An event's :class:`Seal` says how its
origin vouches for it.  With keys, an event made alone is signed alone: its
origin's Ed25519 signature of :func:`signed_bytes` (the canonical encoding
without the signature).  Ed25519 is deterministic, so one event has one
signature and one byte form: a second event with the same id and other bytes is
a different event.  Without keys ``sig`` is empty and not encoded at all.

This module encodes an event alone; ``encode`` and ``decode`` are exact
inverses, and ``decode`` raises :class:`~zmqex.errors.DecodeError` on anything
that is not an event this version could have produced.  Events that travel or
rest with their seals use :mod:`zmqex.core.envelope`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final, Union

from zmqex.core import wire
from zmqex.core.clock import VectorClock
from zmqex.core.money import MAX_PRICE, MAX_QTY
from zmqex.core.tif import EXPIRY, MARKET
from zmqex.core.tif import Tif as Tif  # part of the event vocabulary: NewOrder.tif
from zmqex.errors import DecodeError, InvalidAmount, InvalidRequest

#: Most nodes a clock may name; more is a malformed (or hostile) event.
MAX_NODES = 256


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class CancelReason(str, enum.Enum):
    USER = "user"  # its trader (or an operator) cancelled it
    EXPIRED = "expired"  # the remainder of an order that does not rest, or a GTD at its expire_at
    WOULD_CROSS = "would_cross"  # a post-only order found a concurrent crossing order
    SELF_TRADE = "self_trade"  # it met an order of the same trader (self-trade prevention)
    DISCONNECT = "disconnect"  # its trader asked for cancel on disconnect, then fell silent
    PRICE_PROTECTION = "price_protection"  # what is left lies beyond its price band
    AMENDED = "amended"  # replaced by a new order (a new price, or more quantity) by its trader
    KILLED = "killed"  # a fill-or-kill order that could not fill whole: nothing of it traded
    CREDIT = "credit"  # an order that does not rest stopped short of a maker beyond credit (zmqex.core.credit)


# Values: events, and the messages and outputs that carry them, never change once made.
# Those made on the hot path (several per order) are dataclasses with a written
# ``__init__`` (``init=False``) rather than frozen ones: the dataclass still gives
# equality, hashing (``unsafe_hash``: by value, as when frozen) and repr, but compiled
# with mypyc a frozen dataclass's generated ``__init__`` costs ~15x a written one
# (~0.6 us against ~0.04 us; ~4x in pure Python), a tenth of a compiled core's work.
# The price: assigning to a field no longer raises at run time; nothing does.


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value: see above
class NewOrder:
    side: Side
    price: int | None  # cents; None for a market order (see zmqex.core.tif)
    qty: int  # satoshis
    tif: Tif
    expire_at: int | None  # epoch ms, for a tif with an expiry (zmqex.core.tif); else None

    def __init__(self, side: Side, price: int | None, qty: int, tif: Tif, expire_at: int | None = None) -> None:
        if price is None and tif is not MARKET:
            raise InvalidAmount(f"a market order (no price) must be {MARKET.value}")
        if (expire_at is not None) != EXPIRY[tif]:
            raise InvalidRequest(f"a {tif.value} order {'needs' if EXPIRY[tif] else 'takes no'} expire_at")
        self.side = side
        self.price = price
        self.qty = qty
        self.tif = tif
        self.expire_at = expire_at


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value: see above
class Cancel:
    order_id: str
    reason: CancelReason

    def __init__(self, order_id: str, reason: CancelReason = CancelReason.USER) -> None:
        self.order_id = order_id
        self.reason = reason


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value: see above
class Reduce:
    """Its owner lowers an order's quantity to ``qty``; the order keeps its place in the book.

    The owner sends one only while ``qty`` exceeds what is filled and reserved
    there, so on every replica, whichever fills arrive before or after it,
    ``filled <= qty`` holds.
    """

    order_id: str
    qty: int  # the order's new total quantity, satoshis

    def __init__(self, order_id: str, qty: int) -> None:
        self.order_id = order_id
        self.qty = qty


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value: see above
class Fill:
    maker: str  # order id; its owner is the fill event's origin
    taker: str  # order id
    price: int  # the maker's price, cents
    qty: int  # satoshis
    request: str  # the take request this fill answers (idempotency key)

    def __init__(self, maker: str, taker: str, price: int, qty: int, request: str) -> None:
        self.maker = maker
        self.taker = taker
        self.price = price
        self.qty = qty
        self.request = request


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value: see above
class Report:
    """A private trade, as every replica records it: the maker's desk (the event's origin) granted it.

    ``ref`` is a digest of the accept's request id, so that a desk that lost its
    store can still answer a retried accept from the public tape; it names
    neither desk.  ``maker_desk`` and ``taker_desk`` are "" unless both desks
    allowed their names on the tape.
    """

    price: int  # cents
    qty: int  # satoshis
    side: Side  # the taker's side: what the one who accepted did
    ref: str
    maker_desk: str
    taker_desk: str

    def __init__(self, price: int, qty: int, side: Side, ref: str, maker_desk: str = "", taker_desk: str = "") -> None:
        self.price = price
        self.qty = qty
        self.side = side
        self.ref = ref
        self.maker_desk = maker_desk
        self.taker_desk = taker_desk


Body = Union[NewOrder, Cancel, Reduce, Fill, Report]


class Seal:
    """How an event's origin vouches for it: here, a signature of the event alone.

    An event signed alone carries this; one created in an envelope with others
    carries the :class:`~zmqex.core.envelope.Envelope` itself, or, when it travels
    without its siblings (a snapshot item, a take), a
    :class:`~zmqex.core.envelope.Proof` of its place in it.  ``sig`` is b"" on a
    mesh without keys.
    """

    __slots__ = ("sig",)

    def __init__(self, sig: bytes) -> None:
        self.sig = sig


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value: see above
class Event:
    origin: str
    seq: int
    vc: VectorClock
    body: Body
    ts: int  # epoch ms on its origin's clock when it made the event: for people to read, never for ordering
    # How its origin vouches for it (a signature, an envelope, a proof).  Not part of the
    # event's value: one event may be held with its envelope here and with a proof there.
    # Set once: when decoded, or, for our own event, when its envelope is sealed (the end
    # of the loop iteration that made it, before anything about it leaves the core).
    seal: Seal | None = field(init=False, compare=False, repr=False)

    def __init__(self, origin: str, seq: int, vc: VectorClock, body: Body, sig: bytes = b"", ts: int = 0) -> None:
        self.origin = origin
        self.seq = seq
        self.vc = vc
        self.body = body
        self.ts = ts
        self.seal = Seal(sig) if sig else None

    @property
    def sig(self) -> bytes:
        """Its origin's signature: of the event alone, or of its envelope (b"" without keys)."""
        seal = self.seal
        return b"" if seal is None else seal.sig

    @property
    def id(self) -> tuple[str, int]:
        return (self.origin, self.seq)

    @property
    def key(self) -> tuple[int, str, int]:
        """Book priority: a linear extension of causality every replica computes alike."""
        return (self.vc.total, self.origin, self.seq)

    @property
    def order_id(self) -> str:
        """The id of the order a :class:`NewOrder` event creates."""
        return order_id(self.origin, self.seq)


def order_id(origin: str, seq: int) -> str:
    return f"{origin}:{seq}"


def parse_order_id(value: object, what: str = "order id") -> tuple[str, int]:
    """Split ``"origin:seq"``; raise DecodeError if it is not one."""
    if type(value) is str:
        origin, colon, seq = value.partition(":")
        if (colon and wire.is_node_id(origin) and seq.isascii() and seq.isdigit()
                and not seq.startswith("0") and len(seq) <= 18):
            return origin, int(seq)
    raise DecodeError(f"{what} must look like NODE:SEQ, got {wire.brief(value, 60)}")


def fill_of(event: Event) -> Fill:
    """The body of a fill event; a TypeError (our own bug) for any other event."""
    body = event.body
    if type(body) is not Fill:
        raise TypeError(f"event {event.origin}:{event.seq} is not a fill")
    return body


def owner_of(order: str) -> str:
    return order.partition(":")[0]


# --- canonical encoding ---------------------------------------------------------

_ORDER, _CANCEL, _REDUCE, _FILL, _REPORT = "order", "cancel", "reduce", "fill", "report"


#: Fields after the kind, per kind; a signed event has one more (the signature).
_FIELDS: Final = {_ORDER: 5, _CANCEL: 2, _REDUCE: 2, _FILL: 5, _REPORT: 6}  # Final: see core/tif.py
SIGNATURE_BYTES = 64


def body_to_wire(body: Body) -> list[Any]:
    """``[kind, *fields]``: the body as it follows an event's head (alone or in an envelope)."""
    # _value_: the same str as .value, without a Python-level property call (see queries.order_info).
    if isinstance(body, NewOrder):
        return [_ORDER, body.side._value_, body.price, body.qty, body.tif._value_, body.expire_at]
    if isinstance(body, Cancel):
        return [_CANCEL, body.order_id, body.reason._value_]
    if isinstance(body, Reduce):
        return [_REDUCE, body.order_id, body.qty]
    if isinstance(body, Fill):
        return [_FILL, body.maker, body.taker, body.price, body.qty, body.request]
    return [_REPORT, body.price, body.qty, body.side._value_, body.ref, body.maker_desk, body.taker_desk]


def to_wire(event: Event, *, signed: bool = True) -> list[Any]:
    """The event alone as a msgpack-ready list; ``signed=False`` leaves out the signature.

    Only a signature of the event alone is written: one made in an envelope with
    others travels in :func:`zmqex.core.envelope.event_to_wire`'s form.
    """
    out = [wire.EVENT_VERSION, event.origin, event.seq, dict(event.vc.items_sorted()), event.ts]
    out += body_to_wire(event.body)
    seal = event.seal
    if signed and type(seal) is Seal and seal.sig:
        out.append(seal.sig)
    return out


def signed_bytes(event: Event) -> bytes:
    """What the origin signs for an event alone: its canonical encoding without the signature."""
    return wire.pack(to_wire(event, signed=False))


def need_head(version: Any, origin: Any, seq: Any, ts: Any) -> None:
    """Check the head every event and envelope starts with; raise DecodeError."""
    if type(version) is not int or version != wire.EVENT_VERSION:
        raise DecodeError(f"event version {wire.brief(version, 20)} is not supported "
                          f"(this node speaks {wire.EVENT_VERSION})")
    wire.need_node_id(origin, "event origin")
    wire.need_int(seq, "event seq", 1)
    wire.need_int(ts, "event timestamp", 0)


def need_signature(sig: Any) -> bytes:
    if type(sig) is not bytes or len(sig) != SIGNATURE_BYTES:
        raise DecodeError(f"event signature must be {SIGNATURE_BYTES} bytes")
    return sig


def from_wire(raw: Any) -> Event:
    """Inverse of :func:`to_wire`; strict."""
    raw = wire.need_list(raw, "event")
    if len(raw) < 6:
        raise DecodeError("event is too short")
    version, origin, seq, vc_raw, ts, kind, *fields = raw
    need_head(version, origin, seq, ts)
    vc = clock_from_wire(vc_raw)
    if vc.get(origin) != seq:
        raise DecodeError(f"event clock must have {origin}={seq}, has {vc.get(origin)}")
    sig = b""
    if type(kind) is str and len(fields) == _FIELDS.get(kind, -2) + 1:
        sig = need_signature(fields.pop())
    return Event(origin, seq, vc, body_from_wire(kind, fields), sig, ts)


def body_from_wire(kind: Any, fields: list[Any]) -> Body:
    """Inverse of :func:`body_to_wire` (``kind`` and the fields after it); strict."""
    if kind == _ORDER:
        wire.need_list(fields, "order fields", 5)
        side, price, qty, tif_raw, expire_at = fields
        if price is None and tif_raw != MARKET.value:
            raise DecodeError(f"a market order (no price) must be {MARKET.value}")
        tif: Tif = _enum(Tif, tif_raw, "tif")
        if (expire_at is not None) != EXPIRY[tif]:
            raise DecodeError(f"a {tif.value} order {'needs' if EXPIRY[tif] else 'takes no'} expire_at")
        return NewOrder(
            _enum(Side, side, "side"),
            None if price is None else wire.need_int(price, "price", 1, MAX_PRICE),
            wire.need_int(qty, "quantity", 1, MAX_QTY),
            tif,
            None if expire_at is None else wire.need_int(expire_at, "expire_at", 0),
        )
    if kind == _CANCEL:
        wire.need_list(fields, "cancel fields", 2)
        target, reason = fields
        parse_order_id(target)
        return Cancel(target, _enum(CancelReason, reason, "cancel reason"))
    if kind == _REDUCE:
        wire.need_list(fields, "reduce fields", 2)
        target, qty = fields
        parse_order_id(target)
        return Reduce(target, wire.need_int(qty, "quantity", 1, MAX_QTY))
    if kind == _FILL:
        wire.need_list(fields, "fill fields", 5)
        maker, taker, price, qty, request = fields
        parse_order_id(maker, "maker")
        parse_order_id(taker, "taker")
        return Fill(
            maker,
            taker,
            wire.need_int(price, "price", 1, MAX_PRICE),
            wire.need_int(qty, "quantity", 1, MAX_QTY),
            wire.need_str(request, "request id"),
        )
    if kind == _REPORT:
        wire.need_list(fields, "report fields", 6)
        price, qty, side, ref, maker_desk, taker_desk = fields
        for desk in (maker_desk, taker_desk):
            if desk != "":
                wire.need_node_id(desk, "report desk")
        return Report(
            wire.need_int(price, "price", 1, MAX_PRICE),
            wire.need_int(qty, "quantity", 1, MAX_QTY),
            _enum(Side, side, "side"),
            wire.need_str(ref, "report ref", 64),
            maker_desk,
            taker_desk,
        )
    raise DecodeError(f"unknown event kind {wire.brief(kind, 20)}")


def encode(event: Event) -> bytes:
    """The canonical bytes of ``event``: equal events give equal bytes."""
    return wire.pack(to_wire(event))


def decode(data: Any) -> Event:  # Any: untrusted, checked by wire.unpack (see there)
    return from_wire(wire.unpack(data))


def clock_to_wire(vc: VectorClock) -> dict[str, int]:
    return dict(vc.items_sorted())


def clock_from_wire(raw: Any) -> VectorClock:
    """Decode a vector clock (inside an event, or on its own in heartbeats and sync requests)."""
    if type(raw) is not dict:
        raise DecodeError(f"vector clock must be a map, got {type(raw).__name__}")
    if len(raw) > MAX_NODES:
        raise DecodeError(f"vector clock names {len(raw)} nodes, more than {MAX_NODES}")
    is_node_id, top = wire.is_node_id, wire.MAX_INT
    for node, n in raw.items():
        if not (is_node_id(node) and type(n) is int and 1 <= n <= top):
            wire.need_node_id(node, "vector clock node")  # one of these raises, naming the fault
            wire.need_int(n, f"vector clock entry {node}", 1)
    return VectorClock._trusted(raw, sum(raw.values()))  # raw is a fresh dict from the decoder: ours


def _enum(cls: type[enum.Enum], value: Any, what: str) -> Any:
    member = _MEMBERS[cls].get(value) if type(value) is str else None
    if member is None:
        raise DecodeError(f"{what} {wire.brief(value, 20)} is not one of {[m.value for m in cls]}")
    return member


_MEMBERS: Final[dict[type[enum.Enum], dict[str, enum.Enum]]] = {
    cls: {m.value: m for m in cls} for cls in (Side, Tif, CancelReason)
}
