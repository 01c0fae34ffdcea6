"""The core replica against :class:`~zmqex.bench.plain.PlainBook`, in process.

* :func:`bench_core`: orders per second of one :class:`~zmqex.core.replica.Replica`
  (node ``a``, no peers, outputs drained after every call as the node does)
  against the plain book on the same stream; both must produce the same fills.
* :func:`bench_depth`: microseconds per operation, core and plain book, with
  1k, 10k, 100k (and 1M) orders already resting.
* :func:`profile_core`: the core run under cProfile.

Both sides run under the node's garbage-collector policy
(:func:`zmqex.heap.freeze_survivors` once a second), as a node runs its core.
"""

from __future__ import annotations

import cProfile
import gc
import io
import math
import pstats
import random
import time
from collections.abc import Sequence
from typing import Any

from zmqex import heap
from zmqex.bench.plain import PlainBook
from zmqex.bench.stream import BUY, CANCEL, GTC, IOC, MAX_LOT, MID, PLACE, SELL, SPREAD, Op, make_stream, stream_stats
from zmqex.core.events import Fill
from zmqex.core.outputs import Delivered
from zmqex.core.replica import Replica
from zmqex.errors import OrderClosed


class _Pace:
    """Asked every 1024 ops: whether the deadline has passed; and once a second it runs
    the node's garbage-collector policy, so both sides run as a node runs its core."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.next_freeze = time.perf_counter() + 1.0

    def stop(self) -> bool:
        now = time.perf_counter()
        if now >= self.next_freeze:
            heap.freeze_survivors()
            self.next_freeze = now + 1.0
        return now > self.deadline


def run_core(ops: Sequence[Op], replica: Replica | None = None, ids: list[str] | None = None,
             deadline: float = math.inf) -> tuple[float, int, list[tuple[Any, Any, int, int]]]:
    """Feed ``ops`` to a replica, draining outputs after each call, as the node does.

    Returns (seconds, ops done, fills as (maker op index, taker op index, price, qty)).
    ``ids`` maps op index -> order id (extended here); cancels index into it.
    """
    r = replica if replica is not None else Replica("a")
    ids = ids if ids is not None else []
    base = len(ids)
    index_of: dict[str, int] = {}
    fills: list[tuple[Any, Any, int, int]] = []
    place, cancel, take = r.place, r.cancel, r.take_outputs
    done = 0
    clock = time.perf_counter
    pace = _Pace(deadline)
    start = clock()
    for i, op in enumerate(ops):
        if op[0] == CANCEL:
            ids.append("")  # a cancel makes no order, and no cancel names a cancel
            try:
                cancel(ids[op[1]])
            except OrderClosed:
                pass
        else:
            oid = place(op[1], op[2], op[3], op[4], token=i)
            ids.append(oid)
            index_of[oid] = base + i
        for out in take():
            if type(out) is Delivered and type(out.event.body) is Fill:
                body = out.event.body
                fills.append((index_of.get(body.maker, body.maker), index_of.get(body.taker, body.taker),
                              body.price, body.qty))
        done += 1
        if not done & 1023 and pace.stop():
            break
    return clock() - start, done, fills


def run_plain(ops: Sequence[Op], book: PlainBook | None = None, base: int = 0,
              deadline: float = math.inf) -> tuple[float, int, list[tuple[Any, Any, int, int]]]:
    """The same stream on a :class:`PlainBook`; order ids are op indexes (offset by ``base``)."""
    book = book if book is not None else PlainBook()
    place, cancel = book.place, book.cancel
    done = 0
    clock = time.perf_counter
    pace = _Pace(deadline)
    start = clock()
    for i, op in enumerate(ops):
        if op[0] == CANCEL:
            cancel(op[1])
        else:
            place(base + i, op[1], op[2], op[3], op[4])
        done += 1
        if not done & 1023 and pace.stop():
            break
    return clock() - start, done, book.fills


def _settle_heap() -> None:
    gc.collect()
    gc.freeze()  # as a node does after restoring its state


def bench_core(n: int, seed: int = 1, budget_s: float = 60.0, rounds: int = 3) -> dict[str, Any]:
    """Core replica vs plain book on the same ``n``-op stream, each on a fresh book.

    The two take turns, ``rounds`` times, and each keeps its best round: on a
    shared machine a slow moment should not decide the ratio.
    """
    ops = make_stream(n, seed)
    deadline = time.perf_counter() + budget_s
    plain_best = core_best = math.inf
    complete, match = True, True
    for _ in range(rounds):
        _settle_heap()  # neither run pays for garbage made before it
        plain_s, plain_done, plain_fills = run_plain(ops, deadline=deadline)
        _settle_heap()
        core_s, core_done, core_fills = run_core(ops, deadline=deadline)
        if not core_done == plain_done == len(ops):
            complete = False
            break
        match = match and core_fills == plain_fills
        plain_best, core_best = min(plain_best, plain_s), min(core_best, core_s)
    if not complete:  # out of time: report the partial round as it is
        plain_best, core_best = plain_s / max(plain_done, 1) * n, core_s / max(core_done, 1) * n
    return {
        "core_orders_per_s": n / core_best,
        "plain_book_orders_per_s": n / plain_best,
        "core_vs_plain": plain_best / core_best,
        "core_stream": {**stream_stats(ops), "seed": seed, "fills": len(core_fills), "complete": complete,
                        "rounds": rounds},
        "core_plain_fills_match": complete and match,
    }


def _depth_ops(rng: random.Random, count: int, first: int, pool: list[int]) -> list[Op]:
    """Timed ops on a deep book: a passive place and a cancel of a random resting order,
    in pairs, and now and then a small crossing order at the best opposite price, GTC or IOC,
    that fills at once (indexes are absolute, from ``first``)."""
    ops: list[Op] = []
    while len(ops) < count:
        side = BUY if rng.random() < 0.5 else SELL
        ticks = rng.randint(1, SPREAD)
        ops.append((PLACE, side, rng.randint(1, MAX_LOT), MID - ticks if side is BUY else MID + ticks, GTC))
        pool.append(first + len(ops) - 1)
        j = rng.randrange(len(pool))
        pool[j], pool[-1] = pool[-1], pool[j]
        ops.append((CANCEL, pool.pop()))
        if rng.random() < 0.25:  # a small crossing order, limit at the best opposite price, GTC or IOC
            side = BUY if rng.random() < 0.5 else SELL
            best = MID + 1 if side is BUY else MID - 1  # the resting book always has every level
            ops.append((PLACE, side, rng.randint(1, 1000), best, GTC if rng.random() < 0.5 else IOC))
    return ops


def _resting_ops(rng: random.Random, n: int) -> list[Op]:
    ops: list[Op] = []
    for _ in range(n):
        side = BUY if rng.random() < 0.5 else SELL
        ticks = rng.randint(1, SPREAD)
        ops.append((PLACE, side, rng.randint(1, MAX_LOT), MID - ticks if side is BUY else MID + ticks, GTC))
    return ops


def bench_depth(depths: list[int], ops_per_depth: int, seed: int = 2, budget_s: float = 120.0) -> dict[str, Any]:
    """Microseconds per op (core and plain) with ``depth`` orders already resting."""
    core: dict[str, float] = {}
    plain: dict[str, float] = {}
    deadline = time.perf_counter() + budget_s
    for depth in depths:
        rng = random.Random(seed + depth)
        resting = _resting_ops(rng, depth)
        timed = _depth_ops(rng, ops_per_depth, depth, list(range(depth)))
        replica = Replica("a")
        ids: list[str] = []
        run_core(resting, replica, ids)  # not timed
        _settle_heap()  # the build's garbage-collection debt is not the timed ops' cost
        seconds, done, _ = run_core(timed, replica, ids, deadline=deadline)
        core[str(depth)] = seconds / done * 1e6
        book = PlainBook()
        run_plain(resting, book)
        _settle_heap()
        seconds, done, _ = run_plain(timed, book, base=depth)
        plain[str(depth)] = seconds / done * 1e6
        del replica, ids, book
        if time.perf_counter() > deadline:
            break
    values = list(core.values())
    return {
        "core_us_per_op_by_depth": core,
        "plain_us_per_op_by_depth": plain,
        "core_depth_spread": max(values) / min(values) if values else None,
    }


def profile_core(n: int, seed: int = 1, top: int = 15) -> str:
    ops = make_stream(n, seed)
    profiler = cProfile.Profile()
    profiler.enable()
    run_core(ops)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()
