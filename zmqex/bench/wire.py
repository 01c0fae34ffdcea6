"""The wire codec: ``events.encode`` + ``events.decode`` against msgpack of plain dicts.

:func:`bench_wire` round-trips events shaped like a 3-node mesh's
(:func:`sample_events`) through the codec, and the same information as plain
maps (:func:`plain_dict`, what a naive protocol would send) through msgpack.
"""

from __future__ import annotations

import random
import time
from typing import Any

from zmqex.bench import rawpack
from zmqex.bench.stream import BUY, GTC, IOC, MAX_LOT, MID, SELL, SPREAD
from zmqex.core import events
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Reduce, Report


def sample_events(n: int, seed: int = 3) -> list[Event]:
    """Events as a 3-node mesh produces them: orders, fills, cancels, clocks in the thousands."""
    rng = random.Random(seed)
    nodes = ("a", "b", "c")
    seqs = {node: rng.randint(10_000, 900_000) for node in nodes}
    out: list[Event] = []
    for _ in range(n):
        origin = rng.choice(nodes)
        seqs[origin] += 1
        for node in nodes:
            if node != origin and rng.random() < 0.5:
                seqs[node] += 1
        vc = VectorClock(dict(seqs))
        roll = rng.random()
        side = BUY if rng.random() < 0.5 else SELL
        price = MID + rng.randint(-SPREAD, SPREAD)
        if roll < 0.5:
            body: Any = NewOrder(side, price, rng.randint(1, MAX_LOT), GTC if rng.random() < 0.8 else IOC)
        elif roll < 0.8:
            maker = f"{origin}:{rng.randint(1, seqs[origin])}"
            taker_node = rng.choice(nodes)
            taker = f"{taker_node}:{rng.randint(1, seqs[taker_node])}"
            body = Fill(maker, taker, price, rng.randint(1, MAX_LOT), f"{taker_node}.{rng.randint(1, 500_000)}")
        else:
            body = Cancel(f"{origin}:{rng.randint(1, seqs[origin])}", CancelReason.USER)
        out.append(Event(origin, seqs[origin], vc, body))
    return out


def plain_dict(event: Event) -> dict[str, Any]:
    """The same information as a plain map (what a naive protocol would send)."""
    d: dict[str, Any] = {"v": 1, "origin": event.origin, "seq": event.seq, "vc": dict(event.vc.items_sorted())}
    body = event.body
    if isinstance(body, NewOrder):
        d.update(kind="order", side=body.side.value, price=body.price, qty=body.qty, tif=body.tif.value)
    elif isinstance(body, Cancel):
        d.update(kind="cancel", order_id=body.order_id, reason=body.reason.value)
    elif isinstance(body, Reduce):
        d.update(kind="reduce", order_id=body.order_id, qty=body.qty)
    elif isinstance(body, Report):
        d.update(kind="report", price=body.price, qty=body.qty, side=body.side.value, ref=body.ref)
    else:
        d.update(kind="fill", maker=body.maker, taker=body.taker, price=body.price, qty=body.qty,
                 request=body.request)
    return d


def bench_wire(n: int, seed: int = 3) -> dict[str, Any]:
    evs = sample_events(n, seed)
    dicts = [plain_dict(e) for e in evs]
    encode, decode = events.encode, events.decode
    start = time.perf_counter()
    for e in evs:
        decode(encode(e))
    wire_s = time.perf_counter() - start
    packb, unpackb = rawpack.packb, rawpack.unpackb
    start = time.perf_counter()
    for d in dicts:
        unpackb(packb(d))
    plain_s = time.perf_counter() - start
    assert all(decode(encode(e)) == e for e in evs[:100])
    return {
        "wire_events_per_s": n / wire_s,
        "plain_msgpack_per_s": n / plain_s,
        "wire_vs_plain": plain_s / wire_s,
        "wire_event_bytes": sum(len(encode(e)) for e in evs) // n,
        "plain_dict_bytes": sum(len(packb(d)) for d in dicts) // n,
    }
