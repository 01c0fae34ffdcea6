"""Each origin's records in a ledger, digested in buckets: to find, and replace, what differs.

Two replicas at one clock must hold the same state; when their state hashes
differ, something in one of them is wrong (a store row rewritten on disk, a
bug).  The records that can differ are each *owned* by one origin, the node
whose events made them:

* an order: its order event, its quantity (a reduce) and its cancel, all
  events of its owner; (how much of it filled is not its own: that is the sum
  of fills, kept below);
* a fill: the event of the maker order's owner that granted it;
* a report (a private trade on the tape): the event of the desk that granted it.

So the ledger splits into origins, and each origin's records into buckets of
:data:`BUCKET` consecutive sequence numbers (of the record's own event).
:func:`digests` sums a digest per record into its bucket; two replicas that
compare them learn which buckets of which origin differ, and
:func:`records` and :func:`replace` move just those (:mod:`zmqex.core.audit`).

Costs: :func:`digests` O(orders + fills); :func:`records` and
:func:`replace` O(orders + fills) too (they walk the ledger once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any, Final

from zmqex.core.envelope import event_from_wire as from_wire
from zmqex.core.envelope import event_to_wire as to_wire
from zmqex.core.events import fill_of, signed_bytes
from zmqex.core.ledger import FILL_ITEM, ITEM_KINDS, ORDER_ITEM, REPORT_ITEM, Ledger, OrderState, export, rebuild
from zmqex.errors import BadEvent, DecodeError

#: Sequence numbers per bucket: small enough that a bucket's records fit one message.
BUCKET: Final = 1024

Digests = dict[str, dict[int, str]]  # origin -> bucket -> hex digest


def digests(ledger: Ledger) -> Digests:
    """Per origin, per bucket, the sum of its records' digests (hex)."""
    sums: dict[str, dict[int, int]] = {}
    for state in ledger.orders.values():
        _add(sums, state.owner, state.event.seq, _order_digest(state))
    for tape in (ledger.fills, ledger.reports):
        for event in tape.values():
            _add(sums, event.origin, event.seq, _digest(signed_bytes(event)))
    return {origin: {b: f"{v % 2**128:032x}" for b, v in buckets.items()} for origin, buckets in sums.items()}


def differing(ours: Digests, theirs: Digests, skip: str) -> dict[str, list[int]]:
    """Per origin (but ``skip``), the buckets whose digests differ."""
    out: dict[str, list[int]] = {}
    for origin in sorted((set(ours) | set(theirs)) - {skip}):
        mine, other = ours.get(origin, {}), theirs.get(origin, {})
        buckets = sorted(b for b in set(mine) | set(other) if mine.get(b) != other.get(b))
        if buckets:
            out[origin] = buckets
    return out


def records(ledger: Ledger, origin: str, buckets: Collection[int]) -> list[list[Any]]:
    """``origin``'s records in ``buckets``, as snapshot items (orders first; an order's filled is 0)."""
    wanted = set(buckets)
    items: list[list[Any]] = [
        [ORDER_ITEM, to_wire(s.event), 0, None if s.cancelled is None else s.cancelled.value, s.qty]
        for s in ledger.orders.values() if s.owner == origin and s.event.seq // BUCKET in wanted
    ]
    items.extend([FILL_ITEM, to_wire(e)] for e in ledger.fills.values()
                 if e.origin == origin and e.seq // BUCKET in wanted)
    items.extend([REPORT_ITEM, to_wire(e)] for e in ledger.reports.values()
                 if e.origin == origin and e.seq // BUCKET in wanted)
    return items


def replace(ledger: Ledger, origin: str, buckets: Collection[int], items: list[Any]) -> tuple[Ledger, list[str]]:
    """``ledger`` with ``origin``'s records in ``buckets`` replaced by ``items`` (from :func:`records`).

    Returns the new ledger and the ids of the records that changed.  Every
    order's filled is counted again from the fills.  Raises DecodeError or
    BadEvent (changing nothing) if an item is not ``origin``'s, lies outside
    ``buckets``, or the result is not a sound ledger (a fill of an order it
    lacks, an over-fill).
    """
    wanted = set(buckets)
    theirs_orders: list[list[Any]] = []
    theirs_fills: list[list[Any]] = []
    theirs_reports: list[list[Any]] = []
    for item in items:
        if type(item) is not list or len(item) not in (2, 5) or item[0] not in ITEM_KINDS:
            raise DecodeError("malformed record item")
        event = from_wire(item[1])
        if event.origin != origin or event.seq // BUCKET not in wanted:
            raise BadEvent(f"record {event.origin}:{event.seq} is not one of {origin}'s asked for")
        {ORDER_ITEM: theirs_orders, FILL_ITEM: theirs_fills, REPORT_ITEM: theirs_reports}[item[0]].append(item)

    def mine(item: list[Any]) -> bool:
        event = from_wire(item[1])
        return event.origin == origin and event.seq // BUCKET in wanted

    kept = [item for item in export(ledger) if not mine(item)]
    orders = [i for i in kept if i[0] == ORDER_ITEM] + theirs_orders
    fills = [i for i in kept if i[0] == FILL_ITEM] + theirs_fills
    reports = [i for i in kept if i[0] == REPORT_ITEM] + theirs_reports
    filled: dict[str, int] = {}
    for item in fills:
        fill = fill_of(from_wire(item[1]))
        for oid in (fill.maker, fill.taker):
            filled[oid] = filled.get(oid, 0) + fill.qty
    for item in orders:
        item[2] = filled.get(from_wire(item[1]).order_id, 0)
    new = rebuild(orders + fills + reports)  # raises on a fill of an unknown order, or an over-fill
    return new, _changed(ledger, new, origin, wanted)


def _changed(old: Ledger, new: Ledger, origin: str, wanted: set[int]) -> list[str]:
    out = []
    for oid in sorted(set(old.orders) | set(new.orders)):
        a, b = old.orders.get(oid), new.orders.get(oid)
        state = a or b
        if state is not None and state.owner == origin and state.event.seq // BUCKET in wanted:
            if a is None or b is None or _order_digest(a) != _order_digest(b):
                out.append(oid)
    for fid in sorted(set(old.fills) | set(new.fills)):
        x, y = old.fills.get(fid), new.fills.get(fid)
        if x != y:
            out.append(f"fill {fid[0]}:{fid[1]}")
    for rid in sorted(set(old.reports) | set(new.reports)):
        if old.reports.get(rid) != new.reports.get(rid):
            out.append(f"report {rid[0]}:{rid[1]}")
    return out


def _order_digest(state: OrderState) -> int:
    text = f"{state.qty}|{state.cancelled.value if state.cancelled else ''}|".encode()
    # The event itself, not how it is vouched for: one replica may hold it in its envelope,
    # another with a proof.
    return _digest(text + signed_bytes(state.event))


def _add(sums: dict[str, dict[int, int]], origin: str, seq: int, digest: int) -> None:
    buckets = sums.setdefault(origin, {})
    bucket = seq // BUCKET
    buckets[bucket] = buckets.get(bucket, 0) + digest


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")
