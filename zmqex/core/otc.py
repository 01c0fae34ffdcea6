"""The OTC vocabulary: firm offers, requests for quote and private trades, with their wire forms.

Off the public book, desks (nodes) trade with named counterparties:

* An :class:`Offer` is a firm, private offer owned by one desk: a **directed
  order** (a trader's order that names the desks, ``only``, that may trade with
  it) or a **quote** (an answer to a request for quote: ``only`` is the
  requester, ``rfq`` its id, ``valid_until`` when it lapses).  Its owner alone
  grants trades against it, never more than ``qty - filled``, and only to a desk
  in ``only``.  Copies travel only to those desks.
* An :class:`Rfq` is a request for quote: a trader wants to ``side`` ``qty``
  and asks ``desks`` to answer by ``answer_by``.
* An :class:`Accepting` is an accept of ours waiting for its answer.
* A :class:`Trade` is a private trade: ``qty`` of an offer at its price, known
  in full to its two desks; every replica records only its public
  :class:`~zmqex.core.events.Report`.

Each is a value with a version: its owner makes a new one on every change
(``version + 1``), and a copy holder keeps the highest version it was sent.
Nothing here changes state; :mod:`zmqex.core.otcdesk` does.  ``*_from_wire``
is strict: anything off raises DecodeError.

Ids: ``DESK:dN`` a directed order, ``DESK:qN`` a quote, ``DESK:rN`` a request
for quote, ``DESK.aN`` an accept's request id (the prefix is the desk that
sent it, as for takes).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, replace
from typing import Any, Final

from zmqex.core import wire
from zmqex.core.events import Side
from zmqex.core.money import MAX_PRICE, MAX_QTY
from zmqex.errors import DecodeError

#: Most desks one directed order or request for quote may name.
MAX_DESKS: Final = 16

DIRECTED, QUOTE, RFQ, ACCEPT = "d", "q", "r", "a"


class Status(str, enum.Enum):
    OPEN = "open"
    FILLED = "filled"  # an offer traded whole; a request for quote answered for all its quantity
    WITHDRAWN = "withdrawn"  # its owner took it back (a cancel)
    EXPIRED = "expired"  # valid_until (an offer) or answer_by (a request) passed

    @property
    def closed(self) -> bool:
        return self is not Status.OPEN


_STATUSES: Final = {s.value: s for s in Status}
_SIDES: Final = {s.value: s for s in Side}


def otc_id(desk: str, kind: str, n: int) -> str:
    return f"{desk}.{kind}{n}" if kind == ACCEPT else f"{desk}:{kind}{n}"


def parse_otc_id(value: Any, kinds: str, what: str = "id") -> tuple[str, str, int]:
    """``(desk, kind, n)`` of an OTC id whose kind is one of ``kinds``; DecodeError otherwise."""
    if type(value) is not str or len(value) > 64:
        raise DecodeError(f"{what} must be a string of at most 64 characters")
    sep = "." if kinds == ACCEPT else ":"
    desk, found, rest = value.rpartition(sep)
    if not found or not rest[:1] or rest[0] not in kinds or not rest[1:].isdecimal() or not wire.is_node_id(desk):
        raise DecodeError(f"{what} {wire.brief(value, 30)} is not an OTC id like 'a{sep}{kinds[0]}7'")
    return desk, rest[0], int(rest[1:])


def is_otc_id(value: object, kinds: str = DIRECTED + QUOTE + RFQ) -> bool:
    """Whether ``value`` is an OTC id of one of ``kinds`` (not an order id of the public book)."""
    try:
        parse_otc_id(value, kinds)
    except DecodeError:
        return False
    return True


def ref_of(request: str) -> str:
    """The public reference of an accept: a digest that names neither desk (see Report.ref)."""
    return hashlib.blake2b(request.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    owner: str
    side: Side  # the owner's side
    price: int  # cents
    qty: int  # satoshis
    filled: int
    only: tuple[str, ...]  # the desks that may trade with it (sorted)
    valid_until: int | None  # epoch ms; None: until withdrawn
    rfq: str  # the request a quote answers; "" for a directed order
    status: Status
    version: int
    created: int  # epoch ms at the owner

    @property
    def open(self) -> int:
        return self.qty - self.filled if self.status is Status.OPEN else 0

    @property
    def kind(self) -> str:
        return QUOTE if self.rfq else DIRECTED

    def changed(self, **fields: Any) -> Offer:
        return replace(self, version=self.version + 1, **fields)


@dataclass(frozen=True, slots=True)
class Rfq:
    id: str
    owner: str
    side: Side  # what the requester wants to do
    qty: int
    desks: tuple[str, ...]  # asked (sorted)
    answer_by: int  # epoch ms
    accepted: int  # traded so far on its quotes
    status: Status
    version: int
    created: int

    def changed(self, **fields: Any) -> Rfq:
        return replace(self, version=self.version + 1, **fields)


@dataclass(frozen=True, slots=True)
class Trade:
    """A private trade, as its two desks keep it."""

    request: str  # the accept's request id
    offer: str
    maker: str  # the offer's desk
    taker: str  # the accepting desk
    side: Side  # the taker's side
    price: int
    qty: int
    ts: int  # epoch ms at the maker when granted
    report: str  # the public report's event id, "origin:seq"


# --- wire forms --------------------------------------------------------------------------


def offer_to_wire(offer: Offer) -> list[Any]:
    return [offer.id, offer.owner, offer.side.value, offer.price, offer.qty, offer.filled, list(offer.only),
            offer.valid_until, offer.rfq, offer.status.value, offer.version, offer.created]


def offer_from_wire(raw: Any) -> Offer:
    f = wire.need_list(raw, "offer", 12)
    oid, owner, side, price, qty, filled, only, valid_until, rfq, status, version, created = f
    desk, kind, _ = parse_otc_id(oid, DIRECTED + QUOTE, "offer id")
    if owner != desk:
        raise DecodeError(f"offer {oid} is not owned by {wire.brief(owner, 32)}")
    if (kind == QUOTE) != (rfq != ""):
        raise DecodeError(f"offer {oid}: a quote, and only a quote, answers a request for quote")
    if rfq:
        parse_otc_id(rfq, RFQ, "request for quote id")
    qty = wire.need_int(qty, "quantity", 1, MAX_QTY)
    return Offer(oid, owner, _enum(_SIDES, side, "side"), wire.need_int(price, "price", 1, MAX_PRICE), qty,
                 wire.need_int(filled, "filled", 0, qty), desks_from_wire(only),
                 None if valid_until is None else wire.need_int(valid_until, "valid_until", 0),
                 rfq, _enum(_STATUSES, status, "status"), wire.need_int(version, "version", 1),
                 wire.need_int(created, "created", 0))


def rfq_to_wire(rfq: Rfq) -> list[Any]:
    return [rfq.id, rfq.owner, rfq.side.value, rfq.qty, list(rfq.desks), rfq.answer_by, rfq.accepted,
            rfq.status.value, rfq.version, rfq.created]


def rfq_from_wire(raw: Any) -> Rfq:
    f = wire.need_list(raw, "request for quote", 10)
    rid, owner, side, qty, desks, answer_by, accepted, status, version, created = f
    desk, _, _ = parse_otc_id(rid, RFQ, "request for quote id")
    if owner != desk:
        raise DecodeError(f"request for quote {rid} is not owned by {wire.brief(owner, 32)}")
    qty = wire.need_int(qty, "quantity", 1, MAX_QTY)
    return Rfq(rid, owner, _enum(_SIDES, side, "side"), qty, desks_from_wire(desks),
               wire.need_int(answer_by, "answer_by", 0), wire.need_int(accepted, "accepted", 0, qty),
               _enum(_STATUSES, status, "status"), wire.need_int(version, "version", 1),
               wire.need_int(created, "created", 0))


def trade_to_wire(trade: Trade) -> list[Any]:
    return [trade.request, trade.offer, trade.maker, trade.taker, trade.side.value, trade.price, trade.qty,
            trade.ts, trade.report]


def trade_from_wire(raw: Any) -> Trade:
    f = wire.need_list(raw, "trade", 9)
    request, offer, maker, taker, side, price, qty, ts, report = f
    parse_otc_id(request, ACCEPT, "request id")
    parse_otc_id(offer, DIRECTED + QUOTE, "offer id")
    return Trade(request, offer, wire.need_node_id(maker, "maker desk"), wire.need_node_id(taker, "taker desk"),
                 _enum(_SIDES, side, "side"), wire.need_int(price, "price", 1, MAX_PRICE),
                 wire.need_int(qty, "quantity", 1, MAX_QTY), wire.need_int(ts, "ts", 0),
                 wire.need_str(report, "report id", 64))


def desks_from_wire(raw: Any) -> tuple[str, ...]:
    desks = wire.need_list(raw, "desks")
    if not 0 < len(desks) <= MAX_DESKS:
        raise DecodeError(f"an OTC item names 1..{MAX_DESKS} desks, not {len(desks)}")
    out = tuple(sorted({wire.need_node_id(d, "desk") for d in desks}))
    if len(out) != len(desks):
        raise DecodeError("an OTC item names a desk twice")
    return out


def _enum(members: dict[str, Any], value: Any, what: str) -> Any:
    member = members.get(value) if type(value) is str else None
    if member is None:
        raise DecodeError(f"{what} {wire.brief(value, 20)} is not one of {sorted(members)}")
    return member


@dataclass(frozen=True, slots=True)
class Accepting:
    """An accept of ours waiting for the offer owner's answer (durable)."""

    request: str
    offer: str
    owner: str
    side: Side  # ours
    price: int
    qty: int
    trader: str
    disclose: bool

    def to_wire(self) -> list[Any]:
        return [self.request, self.offer, self.owner, self.side.value, self.price, self.qty, self.trader,
                self.disclose]

    @classmethod
    def from_wire(cls, raw: list[Any]) -> Accepting:
        request, offer, owner, side, price, qty, trader, disclose = raw
        return cls(request, offer, owner, Side(side), price, qty, trader, disclose)
