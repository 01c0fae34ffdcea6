"""The workload: order streams shared by the core, depth and mesh benchmarks.

An operation (:data:`Op`) is a place or a cancel; :func:`make_stream` mixes
passive orders, crossing orders (GTC and IOC) and cancels of resting orders.
Prices are integer cents around :data:`MID`, quantities integer satoshis.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Final, Literal

from zmqex.bench.plain import PlainBook
from zmqex.core.events import Side, Tif

MID = 5_000_000  # 50,000.00 USD in cents
SPREAD = 50  # prices within MID +- SPREAD ticks
MAX_LOT = 100_000  # quantities 1..MAX_LOT satoshis

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC = Tif.GTC, Tif.IOC
PLACE: Final = "p"
CANCEL: Final = "c"

#: A place: (PLACE, side, qty, price, tif).
PlaceOp = tuple[Literal["p"], Side, int, int, Tif]
#: A cancel: (CANCEL, index of the place it cancels).
CancelOp = tuple[Literal["c"], int]
#: An operation; ``op[0] == CANCEL`` tells them apart (and narrows the type).
Op = PlaceOp | CancelOp


def make_stream(n: int, seed: int = 1, cancel_frac: float = 0.10, cross_frac: float = 0.30) -> list[Op]:
    """``n`` operations: passive limit orders, crossing limit orders, cancels of resting orders.

    Generated against a :class:`PlainBook` so passive orders really are passive
    and cancels hit orders that are resting at that point (for any correct book).
    Crossing orders are priced a few ticks through the best opposite price, half
    GTC (the rest rests) and half IOC.
    """
    rng = random.Random(seed)
    book = PlainBook()
    ops: list[Op] = []
    live: list[int] = []  # candidates for a cancel (lazily pruned)
    for i in range(n):
        roll = rng.random()
        if roll < cancel_frac:
            target = None
            while live:
                j = rng.randrange(len(live))
                candidate = live[j]
                live[j] = live[-1]
                live.pop()
                if candidate in book.index:
                    target = candidate
                    break
            if target is not None:
                ops.append((CANCEL, target))
                book.cancel(target)
                continue
            roll = 1.0  # nothing rests: place a passive order instead
        side = BUY if rng.random() < 0.5 else SELL
        qty = rng.randint(1, MAX_LOT)
        best_opposite = book.best(side.opposite)
        if roll < cancel_frac + cross_frac and best_opposite is not None:
            ticks = rng.randint(0, 5)
            if side is BUY:
                price = max(best_opposite, min(best_opposite + ticks, MID + SPREAD))
            else:
                price = min(best_opposite, max(best_opposite - ticks, MID - SPREAD))
            tif = IOC if rng.random() < 0.5 else GTC
        else:
            ticks = rng.randint(1, SPREAD)
            if side is BUY:
                price = MID - ticks
                if best_opposite is not None and price >= best_opposite:
                    price = best_opposite - 1
            else:
                price = MID + ticks
                if best_opposite is not None and price <= best_opposite:
                    price = best_opposite + 1
            tif = GTC
        op: PlaceOp = (PLACE, side, qty, price, tif)
        ops.append(op)
        book.place(i, side, qty, price, tif)
        if tif is GTC and i in book.index:
            live.append(i)
    return ops


def places(ops: Sequence[Op]) -> list[PlaceOp]:
    """``ops``, which must all be places (a stream made with ``cancel_frac=0``)."""
    out = [op for op in ops if op[0] == PLACE]
    if len(out) != len(ops):
        raise ValueError("expected places only: make the stream with cancel_frac=0")
    return out


def stream_stats(ops: Sequence[Op]) -> dict[str, int]:
    counts = Counter("cancel" if op[0] == CANCEL else ("ioc" if op[4] is IOC else "gtc") for op in ops)
    return {"ops": len(ops), "gtc": counts["gtc"], "ioc": counts["ioc"], "cancels": counts["cancel"]}
