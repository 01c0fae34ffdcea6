"""Messages between peers, with a strict codec.

The sender of a message is not part of it: the transport says who sent it
(the ROUTER routing id, or the peer whose SUB socket it came in on), and the
replica checks what a message claims against that.

* :class:`Gossip`      - one envelope of events (:mod:`zmqex.core.envelope`), on the fast path (PUB/SUB).
* :class:`Heartbeat`   - "I am alive, this is my clock and state hash".
* :class:`Take`        - a taker's owner asks a maker's owner for a fill.
* :class:`TakeReply`   - the maker's owner answers, with the fill event if any.
* :class:`Hold`, :class:`HoldReply`, :class:`Confirm`, :class:`ConfirmReply`,
  :class:`Inquire` - the hold/confirm exchange of an all-or-nothing trade
  (:mod:`zmqex.core.coordinator` and :mod:`zmqex.core.holds`).
* :class:`Audit`, :class:`AuditReply`, :class:`RecordsRequest`, :class:`Records` -
  comparing states that should be equal, and fetching an origin's own records
  from it when they differ (:mod:`zmqex.core.audit`).
* :class:`Share`, :class:`ShareAck`, :class:`Accept`, :class:`AcceptReply` -
  the OTC exchange between two desks (:mod:`zmqex.core.otcdesk`): a copy of an
  offer or a request for quote for a desk it names, and accepting an offer.
* :class:`SyncRequest` - "send me the events my clock lacks" (repair).
* :class:`SyncReply`   - one page of those events, in the server's delivery order, in their envelopes.
* :class:`SnapshotPage` - the state itself, in pages, when the events are gone (compacted).

A frame holds one message, or several (:func:`encode_batch`): a node sends
what one loop iteration produced for a peer, and publishes its gossip, in as
few frames as :func:`encode_frames` allows (sync and snapshot pages go alone:
they are large), because a ZeroMQ send or receive costs as much as decoding a
small message.  :func:`decode_batch` reads either form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from zmqex.core import wire
from zmqex.core.clock import VectorClock
from zmqex.core.envelope import MAX_EVENTS, Envelope, bundle_from_wire, bundle_to_wire, envelope_from_wire
from zmqex.core.envelope import envelope_to_wire
from zmqex.core.envelope import event_from_wire as from_wire
from zmqex.core.envelope import event_to_wire as to_wire
from zmqex.core.events import Event, clock_from_wire, clock_to_wire, parse_order_id
from zmqex.core.money import MAX_PRICE, MAX_QTY
from zmqex.core.otc import ACCEPT, DIRECTED, QUOTE, RFQ, Offer, Rfq, Trade, offer_from_wire, offer_to_wire, parse_otc_id
from zmqex.core.otc import rfq_from_wire, rfq_to_wire, trade_from_wire, trade_to_wire
from zmqex.errors import DecodeError

#: Most events one sync page may carry.
MAX_PAGE = 2000

#: Most messages one frame may carry (a sender splits longer batches).
MAX_BATCH = 1000


# Gossip, Take and TakeReply, made for every event and take, are values with a written
# __init__ rather than frozen dataclasses, for speed when compiled (see zmqex.core.events).


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Gossip:
    envelope: Envelope

    def __init__(self, envelope: Envelope | Event) -> None:
        # An event alone is an envelope of one (as it travels at light load).
        self.envelope = envelope if isinstance(envelope, Envelope) else Envelope((envelope,), envelope.sig)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    origin: str
    vc: VectorClock
    state_hash: str  # of the sender's state at ``vc``; "" when it was busy and did not compute it


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Take:
    request: str  # unique per taker node, reused on every retry
    maker: str  # order id, owned by the receiver
    taker: Event  # the taker's NewOrder event, so the maker's owner can deliver it first
    qty: int  # what the taker reserved for this request

    def __init__(self, request: str, maker: str, taker: Event, qty: int) -> None:
        self.request = request
        self.maker = maker
        self.taker = taker
        self.qty = qty


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class TakeReply:
    request: str
    maker: str
    granted: int
    reason: str  # "filled" if granted > 0, else why not: closed / busy / invalid / credit (zmqex.core.credit)
    fill: Event | None

    def __init__(self, request: str, maker: str, granted: int, reason: str, fill: Event | None) -> None:
        self.request = request
        self.maker = maker
        self.granted = granted
        self.reason = reason
        self.fill = fill


@dataclass(frozen=True, slots=True)
class Hold:
    """A coordinator asks a maker's owner to hold ``qty`` of its order for an all-or-nothing ``taker``."""

    request: str  # "TAKER:K": the taker's order id and the maker's place in the coordinator's plan
    maker: str  # order id, owned by the receiver
    taker: Event  # the all-or-nothing order's NewOrder event
    qty: int


@dataclass(frozen=True, slots=True)
class HoldReply:
    request: str
    maker: str
    held: int  # 0: nothing held (see reason)
    reason: str  # "held" if held > 0 ("credit": held short for credit), else closed / busy / invalid / credit


@dataclass(frozen=True, slots=True)
class Confirm:
    """The coordinator's decision on one hold: fill ``qty`` of it and release the rest (0: release all)."""

    request: str
    maker: str
    taker: str  # order id
    qty: int


@dataclass(frozen=True, slots=True)
class ConfirmReply:
    request: str
    maker: str
    filled: int
    fill: Event | None  # the fill event when filled > 0


@dataclass(frozen=True, slots=True)
class Inquire:
    """A holder whose hold has waited long asks the coordinator for its decision (answered by a Confirm)."""

    request: str
    maker: str
    taker: str  # order id


@dataclass(frozen=True, slots=True)
class Audit:
    """"Our states differ at clock ``vc``: if you are still there, send your record digests"."""

    vc: VectorClock


@dataclass(frozen=True, slots=True)
class AuditReply:
    vc: VectorClock
    digests: dict[str, dict[int, str]]  # origin -> bucket -> hex digest (zmqex.core.digests)

    __hash__ = None  # type: ignore[assignment]  # holds a dict: compared, never hashed


@dataclass(frozen=True, slots=True)
class RecordsRequest:
    """"Send me your own records in these buckets": asked of their origin only."""

    origin: str
    buckets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Records:
    vc: VectorClock  # the sender's clock when it read them
    origin: str
    buckets: tuple[int, ...]
    items: tuple[Any, ...]  # snapshot items (zmqex.core.digests.records)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    vc: VectorClock  # what the asker has delivered
    limit: int  # most events per page


@dataclass(frozen=True, slots=True)
class SyncReply:
    events: tuple[Event, ...]
    more: bool  # the server had more than one page


@dataclass(frozen=True, slots=True)
class SnapshotPage:
    """Page ``index`` of ``total`` of the sender's ledger at clock ``vc`` (see ledger.export).

    Sent instead of events to a peer that lacks events the sender has pruned.
    """

    vc: VectorClock
    index: int
    total: int
    items: tuple[Any, ...]
    state_hash: str  # of the whole snapshot: the same on every page


@dataclass(frozen=True, slots=True)
class Share:
    """An OTC item's owner sends a desk it names its current version (retried until acknowledged)."""

    item: Offer | Rfq


@dataclass(frozen=True, slots=True)
class ShareAck:
    id: str
    version: int


@dataclass(frozen=True, slots=True)
class Accept:
    """A desk asks an offer's owner for exactly ``qty`` of it at ``price``, or nothing (retried until answered)."""

    request: str
    offer: str
    qty: int
    price: int  # the price the accepting desk saw: an offer's price never changes, so a mismatch is a stale copy
    disclose: bool  # whether the accepting desk allows both desks' names on the public report


@dataclass(frozen=True, slots=True)
class AcceptReply:
    request: str
    offer: str
    reason: str  # "" when traded
    trade: Trade | None


Message = Union[Gossip, Heartbeat, Take, TakeReply, Hold, HoldReply, Confirm, ConfirmReply, Inquire,
                Audit, AuditReply, RecordsRequest, Records, SyncRequest, SyncReply, SnapshotPage,
                Share, ShareAck, Accept, AcceptReply]


def encode(msg: Message) -> bytes:
    return wire.pack(_to_wire(msg))


def _to_wire(msg: Message) -> list[Any]:
    v = wire.VERSION
    if isinstance(msg, Gossip):
        return [v, "gossip", envelope_to_wire(msg.envelope)]
    if isinstance(msg, Heartbeat):
        return [v, "hb", msg.origin, clock_to_wire(msg.vc), msg.state_hash]
    if isinstance(msg, Take):
        return [v, "take", msg.request, msg.maker, to_wire(msg.taker), msg.qty]
    if isinstance(msg, TakeReply):
        fill = None if msg.fill is None else to_wire(msg.fill)
        return [v, "granted", msg.request, msg.maker, msg.granted, msg.reason, fill]
    if isinstance(msg, Hold):
        return [v, "hold", msg.request, msg.maker, to_wire(msg.taker), msg.qty]
    if isinstance(msg, HoldReply):
        return [v, "held", msg.request, msg.maker, msg.held, msg.reason]
    if isinstance(msg, Confirm):
        return [v, "confirm", msg.request, msg.maker, msg.taker, msg.qty]
    if isinstance(msg, ConfirmReply):
        return [v, "confirmed", msg.request, msg.maker, msg.filled, None if msg.fill is None else to_wire(msg.fill)]
    if isinstance(msg, Inquire):
        return [v, "inquire", msg.request, msg.maker, msg.taker]
    if isinstance(msg, Audit):
        return [v, "audit", clock_to_wire(msg.vc)]
    if isinstance(msg, AuditReply):
        # Triples, not a map of maps: peers' msgpack takes only string map keys.
        flat = [[origin, bucket, digest] for origin, buckets in msg.digests.items() for bucket, digest in buckets.items()]
        return [v, "digests", clock_to_wire(msg.vc), flat]
    if isinstance(msg, RecordsRequest):
        return [v, "records?", msg.origin, list(msg.buckets)]
    if isinstance(msg, Records):
        return [v, "records", clock_to_wire(msg.vc), msg.origin, list(msg.buckets), list(msg.items)]
    if isinstance(msg, Share):
        item = msg.item
        return [v, "share", "offer", offer_to_wire(item)] if isinstance(item, Offer) else [v, "share", "rfq", rfq_to_wire(item)]
    if isinstance(msg, ShareAck):
        return [v, "shared", msg.id, msg.version]
    if isinstance(msg, Accept):
        return [v, "accept", msg.request, msg.offer, msg.qty, msg.price, msg.disclose]
    if isinstance(msg, AcceptReply):
        return [v, "accepted", *reply_to_wire(msg)]
    if isinstance(msg, SyncRequest):
        return [v, "sync", clock_to_wire(msg.vc), msg.limit]
    if isinstance(msg, SnapshotPage):
        return [v, "snapshot", clock_to_wire(msg.vc), msg.index, msg.total, list(msg.items), msg.state_hash]
    return [v, "events", bundle_to_wire(msg.events), msg.more]


def encode_batch(msgs: list[Message]) -> bytes:
    """One frame for ``msgs`` (at most MAX_BATCH), in order; a single message is sent as itself."""
    if len(msgs) == 1:
        return encode(msgs[0])
    if not 1 < len(msgs) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} messages, not {len(msgs)}")
    return wire.pack([wire.VERSION, "batch", [_to_wire(m) for m in msgs]])


def encode_frames(msgs: list[Message]) -> list[bytes]:
    """Frames for ``msgs``, in order: small messages batched (at most MAX_BATCH a frame), and
    every sync page or snapshot page in a frame of its own, since each may be hundreds of
    kilobytes and frames are capped at ``wire.MAX_FRAME``."""
    frames: list[bytes] = []
    batch: list[Message] = []
    for msg in msgs:
        if isinstance(msg, (SyncReply, SnapshotPage)):
            if batch:
                frames.append(encode_batch(batch))
                batch = []
            frames.append(encode(msg))
            continue
        batch.append(msg)
        if len(batch) == MAX_BATCH:
            frames.append(encode_batch(batch))
            batch = []
    if batch:
        frames.append(encode_batch(batch))
    return frames


def decode_batch(data: Any) -> list[Message]:  # Any: untrusted, checked by wire.unpack
    """The messages of one frame, in order; DecodeError if any of them is malformed (then none is used)."""
    raw = wire.need_list(wire.unpack(data), "message")
    if len(raw) == 3 and raw[1] == "batch" and raw[0] == wire.VERSION and type(raw[0]) is int:
        items = wire.need_list(raw[2], "batch")
        if not 1 < len(items) <= MAX_BATCH:
            raise DecodeError(f"a batch must hold 2..{MAX_BATCH} messages, holds {len(items)}")
        return [_from_wire(item) for item in items]
    return [_from_wire(raw)]


def decode(data: Any) -> Message:  # Any: untrusted, checked by wire.unpack
    """Decode one peer message; DecodeError on anything malformed."""
    return _from_wire(wire.unpack(data))


def _from_wire(raw: Any) -> Message:
    raw = wire.need_list(raw, "message")
    if len(raw) < 2:
        raise DecodeError("message is too short")
    version, kind, *f = raw
    if type(version) is not int or version != wire.VERSION:
        raise DecodeError(f"protocol version {wire.brief(version, 20)} is not supported (this node speaks {wire.VERSION})")
    if kind == "gossip":
        wire.need_list(f, "gossip", 1)
        return Gossip(envelope_from_wire(f[0]))
    if kind == "hb":
        wire.need_list(f, "heartbeat", 3)
        if type(f[2]) is not str or len(f[2]) > 64:
            raise DecodeError("heartbeat state hash must be a string of at most 64 characters")
        return Heartbeat(wire.need_node_id(f[0]), clock_from_wire(f[1]), f[2])
    if kind == "take":
        wire.need_list(f, "take", 4)
        parse_order_id(f[1], "maker")
        return Take(wire.need_str(f[0], "request id"), f[1], from_wire(f[2]), wire.need_int(f[3], "quantity", 1, MAX_QTY))
    if kind == "granted":
        wire.need_list(f, "take reply", 5)
        parse_order_id(f[1], "maker")
        fill = None if f[4] is None else from_wire(f[4])
        return TakeReply(
            wire.need_str(f[0], "request id"), f[1], wire.need_int(f[2], "granted", 0, MAX_QTY),
            wire.need_str(f[3], "reason", 32), fill,
        )
    if type(kind) is str and kind in _HOLDS:
        return _hold_from_wire(kind, f)
    if type(kind) is str and kind in _AUDITS:
        return _audit_from_wire(kind, f)
    if type(kind) is str and kind in _OTC:
        return _otc_from_wire(kind, f)
    if kind == "sync":
        wire.need_list(f, "sync request", 2)
        return SyncRequest(clock_from_wire(f[0]), wire.need_int(f[1], "page limit", 1, MAX_PAGE))
    if kind == "events":
        wire.need_list(f, "sync reply", 2)
        bundle = wire.need_list(f[0], "events")
        if len(bundle) > MAX_PAGE:
            raise DecodeError(f"sync page of {len(bundle)} envelopes is over {MAX_PAGE}")
        if type(f[1]) is not bool:
            raise DecodeError("sync reply 'more' must be a boolean")
        events = tuple(bundle_from_wire(bundle))
        if len(events) > MAX_PAGE + MAX_EVENTS:  # a page ends with a whole envelope
            raise DecodeError(f"sync page of {len(events)} events is over {MAX_PAGE + MAX_EVENTS}")
        return SyncReply(events, f[1])
    if kind == "snapshot":
        wire.need_list(f, "snapshot page", 5)
        total = wire.need_int(f[2], "page count", 1, 1_000_000)
        items = wire.need_list(f[3], "snapshot items")
        if len(items) > MAX_PAGE:
            raise DecodeError(f"snapshot page of {len(items)} items is over {MAX_PAGE}")
        return SnapshotPage(clock_from_wire(f[0]), wire.need_int(f[1], "page index", 0, total - 1), total, tuple(items),
                            wire.need_str(f[4], "snapshot state hash", 64))
    raise DecodeError(f"unknown message kind {wire.brief(kind, 20)}")


_HOLDS = frozenset(("hold", "held", "confirm", "confirmed", "inquire"))


def _hold_from_wire(kind: str, f: list[Any]) -> Message:
    """The messages of the hold/confirm exchange (see :mod:`zmqex.core.holds`)."""
    wire.need_list(f, kind, 3 if kind == "inquire" else 4)
    request = wire.need_str(f[0], "request id")
    maker = f[1]
    parse_order_id(maker, "maker")
    if kind == "hold":
        return Hold(request, maker, from_wire(f[2]), wire.need_int(f[3], "quantity", 1, MAX_QTY))
    if kind == "held":
        return HoldReply(request, maker, wire.need_int(f[2], "held", 0, MAX_QTY), wire.need_str(f[3], "reason", 32))
    if kind == "confirmed":
        fill = None if f[3] is None else from_wire(f[3])
        return ConfirmReply(request, maker, wire.need_int(f[2], "filled", 0, MAX_QTY), fill)
    parse_order_id(f[2], "taker")
    if kind == "confirm":
        return Confirm(request, maker, f[2], wire.need_int(f[3], "quantity", 0, MAX_QTY))
    return Inquire(request, maker, f[2])


_OTC = frozenset(("share", "shared", "accept", "accepted"))


def _otc_from_wire(kind: str, f: list[Any]) -> Message:
    """The messages between two desks off the book (see :mod:`zmqex.core.otcdesk`)."""
    if kind == "share":
        what, item = wire.need_list(f, kind, 2)
        if what == "offer":
            return Share(offer_from_wire(item))
        if what == "rfq":
            return Share(rfq_from_wire(item))
        raise DecodeError(f"a share holds an offer or an rfq, not {wire.brief(what, 20)}")
    if kind == "shared":
        wire.need_list(f, kind, 2)
        parse_otc_id(f[0], DIRECTED + QUOTE + RFQ, "shared id")
        return ShareAck(f[0], wire.need_int(f[1], "version", 1))
    if kind == "accept":
        request, offer, qty, price, disclose = wire.need_list(f, kind, 5)
        parse_otc_id(request, ACCEPT, "request id")
        parse_otc_id(offer, DIRECTED + QUOTE, "offer id")
        if type(disclose) is not bool:
            raise DecodeError("accept 'disclose' must be a boolean")
        return Accept(request, offer, wire.need_int(qty, "quantity", 1, MAX_QTY),
                      wire.need_int(price, "price", 1, MAX_PRICE), disclose)
    request, offer, reason, trade = wire.need_list(f, kind, 4)
    parse_otc_id(request, ACCEPT, "request id")
    parse_otc_id(offer, DIRECTED + QUOTE, "offer id")
    if type(reason) is not str or len(reason) > 32:
        raise DecodeError("accept reason must be a string of at most 32 characters")
    return AcceptReply(request, offer, reason, None if trade is None else trade_from_wire(trade))


_AUDITS = frozenset(("audit", "digests", "records?", "records"))

#: Most digests one AuditReply may carry, and most buckets one records request may name.
MAX_DIGESTS = 65_536
MAX_BUCKETS = 8  # a bucket holds up to 1024 orders and 1024 fills: 8 stay under a frame


def _audit_from_wire(kind: str, f: list[Any]) -> Message:
    """The messages of an audit (see :mod:`zmqex.core.audit`)."""
    if kind == "audit":
        wire.need_list(f, kind, 1)
        return Audit(clock_from_wire(f[0]))
    if kind == "digests":
        wire.need_list(f, kind, 2)
        flat = wire.need_list(f[1], "digests")
        if len(flat) > MAX_DIGESTS:
            raise DecodeError(f"more than {MAX_DIGESTS} digests")
        digests: dict[str, dict[int, str]] = {}
        for triple in flat:
            origin, bucket, digest = wire.need_list(triple, "digest", 3)
            digests.setdefault(wire.need_node_id(origin, "origin"), {})[
                wire.need_int(bucket, "bucket", 0, 2**50)] = wire.need_str(digest, "digest", 32)
        return AuditReply(clock_from_wire(f[0]), digests)
    buckets_at = 1 if kind == "records?" else 2
    wire.need_list(f, kind, 2 if kind == "records?" else 4)
    raw = wire.need_list(f[buckets_at], "buckets")
    if not 0 < len(raw) <= MAX_BUCKETS:
        raise DecodeError(f"a records request names 1..{MAX_BUCKETS} buckets")
    buckets = tuple(wire.need_int(b, "bucket", 0, 2**50) for b in raw)
    if kind == "records?":
        return RecordsRequest(wire.need_node_id(f[0], "origin"), buckets)
    items = wire.need_list(f[3], "records")
    if len(items) > MAX_BUCKETS * 2 * 1024:
        raise DecodeError("too many records")
    return Records(clock_from_wire(f[0]), wire.need_node_id(f[1], "origin"), buckets, tuple(items))


def reply_to_wire(reply: AcceptReply) -> list[Any]:
    """An accept's answer as a list (in a message, and as an owner keeps it to answer a retry)."""
    return [reply.request, reply.offer, reply.reason, None if reply.trade is None else trade_to_wire(reply.trade)]


def reply_from_wire(raw: list[Any]) -> AcceptReply:
    """Inverse of :func:`reply_to_wire`, for our own records (a peer's message is read by decode)."""
    request, offer, reason, trade = raw
    return AcceptReply(request, offer, reason, None if trade is None else trade_from_wire(trade))
