"""Benchmarks: how fast zmqex is, each figure beside a plain comparator measured in the same run.

    bin/zmqex-bench [--quick] [--json FILE] [--nodes N] [--profile-core]

Sections (one progress line each on stderr, a table on stdout at the end):

* **core**: one :class:`~zmqex.core.replica.Replica` (node ``a``, no peers) fed a
  generated stream through ``place``/``cancel``, outputs drained after every
  call as the node does, against :class:`PlainBook`, a minimal price-time book
  on ``SortedDict`` with no replication, on the same stream; both must produce
  the same fills.
* **depth**: cost per operation with 1k, 10k, 100k (and 1M) orders resting.
* **wire**: ``events.encode`` + ``events.decode`` against msgpack of plain dicts.
* **raw**: plain pyzmq PUB->SUB and DEALER->ROUTER echo between processes.
* **mesh**: real ``zmqex-node`` processes on loopback (persistent and
  ``--ephemeral``), pipelined clients, take latency and fill convergence.

Money is integers (cents, satoshis) or decimal strings; floats are timings only.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import operator
import os
import platform
import pstats
import random
import selectors
import subprocess
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import msgpack
import zmq
from sortedcontainers import SortedDict

from zmqex.core import events, money
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Side, Tif
from zmqex.core.outputs import Delivered
from zmqex.core.replica import Replica
from zmqex.errors import OrderClosed

MID = 5_000_000  # 50,000.00 USD in cents
SPREAD = 50  # prices within MID +- SPREAD ticks
MAX_LOT = 100_000  # quantities 1..MAX_LOT satoshis

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC = Tif.GTC, Tif.IOC
PLACE, CANCEL = "p", "c"

#: An operation: (PLACE, side, qty, price, tif) or (CANCEL, index of the place it cancels).
Op = tuple

ROOT = Path(__file__).resolve().parent.parent  # the directory holding the zmqex package


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the comparator: a minimal price-time book ---------------------------------------------


class PlainBook:
    """Price-time priority, matching at the maker's price, no replication.

    ``bids``/``asks``: SortedDict price -> [deque of orders, live count];
    an order is ``[open qty, id, side, price]``; ``index`` id -> order for O(1)
    cancel (a cancelled order is zeroed and skipped when it reaches the front).
    """

    __slots__ = ("bids", "asks", "index", "fills")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict(operator.neg)
        self.asks: SortedDict = SortedDict()
        self.index: dict[Any, list] = {}
        self.fills: list[tuple[Any, Any, int, int]] = []  # (maker, taker, price, qty)

    def best(self, side: Side) -> int | None:
        levels = self.bids if side is BUY else self.asks
        return levels.peekitem(0)[0] if levels else None

    def place(self, oid: Any, side: Side, qty: int, price: int, tif: Tif) -> None:
        buy = side is BUY
        opposite = self.asks if buy else self.bids
        index, fills = self.index, self.fills
        while qty and opposite:
            level_price, level = opposite.peekitem(0)
            if (level_price > price) if buy else (level_price < price):
                break
            queue = level[0]
            while qty and queue:
                maker = queue[0]
                if maker[0] == 0:  # cancelled
                    queue.popleft()
                    continue
                traded = maker[0] if maker[0] < qty else qty
                fills.append((maker[1], oid, level_price, traded))
                maker[0] -= traded
                qty -= traded
                if maker[0] == 0:
                    queue.popleft()
                    del index[maker[1]]
                    level[1] -= 1
            if level[1] == 0:
                del opposite[level_price]
        if qty and tif is not IOC:
            levels = self.bids if buy else self.asks
            level = levels.get(price)
            if level is None:
                level = levels[price] = [deque(), 0]
            order = [qty, oid, side, price]
            level[0].append(order)
            level[1] += 1
            index[oid] = order

    def cancel(self, oid: Any) -> bool:
        order = self.index.pop(oid, None)
        if order is None:
            return False
        order[0] = 0
        levels = self.bids if order[2] is BUY else self.asks
        level = levels[order[3]]
        level[1] -= 1
        if level[1] == 0:
            del levels[order[3]]
        return True

    def __len__(self) -> int:
        return len(self.index)


# --- streams -----------------------------------------------------------------------------


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
        op = (PLACE, side, qty, price, tif)
        ops.append(op)
        book.place(i, side, qty, price, tif)
        if tif is GTC and i in book.index:
            live.append(i)
    return ops


def stream_stats(ops: list[Op]) -> dict[str, int]:
    counts = Counter("cancel" if op[0] == CANCEL else ("ioc" if op[4] is IOC else "gtc") for op in ops)
    return {"ops": len(ops), "gtc": counts["gtc"], "ioc": counts["ioc"], "cancels": counts["cancel"]}


# --- running a stream ----------------------------------------------------------------------


def run_core(ops: list[Op], replica: Replica | None = None, ids: list | None = None,
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
    start = clock()
    for i, op in enumerate(ops):
        if op[0] == CANCEL:
            ids.append(None)
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
        if not done & 1023 and clock() > deadline:
            break
    return clock() - start, done, fills


def run_plain(ops: list[Op], book: PlainBook | None = None, base: int = 0,
              deadline: float = math.inf) -> tuple[float, int, list[tuple[Any, Any, int, int]]]:
    """The same stream on a :class:`PlainBook`; order ids are op indexes (offset by ``base``)."""
    book = book if book is not None else PlainBook()
    place, cancel = book.place, book.cancel
    done = 0
    clock = time.perf_counter
    start = clock()
    for i, op in enumerate(ops):
        if op[0] == CANCEL:
            cancel(op[1])
        else:
            place(base + i, op[1], op[2], op[3], op[4])
        done += 1
        if not done & 1023 and clock() > deadline:
            break
    return clock() - start, done, book.fills


def bench_core(n: int, seed: int = 1, budget_s: float = 60.0) -> dict[str, Any]:
    """Core replica vs plain book on the same ``n``-op stream."""
    ops = make_stream(n, seed)
    deadline = time.perf_counter() + budget_s
    gc.collect()  # neither run pays for garbage made before it
    plain_s, plain_done, plain_fills = run_plain(ops, deadline=deadline)
    gc.collect()
    core_s, core_done, core_fills = run_core(ops, deadline=deadline)
    complete = core_done == plain_done == len(ops)
    return {
        "core_orders_per_s": core_done / core_s,
        "plain_book_orders_per_s": plain_done / plain_s,
        "core_vs_plain": (core_done / core_s) / (plain_done / plain_s),
        "core_stream": {**stream_stats(ops), "seed": seed, "fills": len(core_fills), "complete": complete},
        "core_plain_fills_match": complete and core_fills == plain_fills,
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
    ops = []
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
        replica, ids = Replica("a"), []
        run_core(resting, replica, ids)  # not timed
        gc.collect()  # the build's garbage-collection debt is not the timed ops' cost
        seconds, done, _ = run_core(timed, replica, ids, deadline=deadline)
        core[str(depth)] = seconds / done * 1e6
        book = PlainBook()
        run_plain(resting, book)
        gc.collect()
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


# --- wire ----------------------------------------------------------------------------------


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
    packb, unpackb = msgpack.packb, msgpack.unpackb
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


# --- raw ZeroMQ comparators (helper processes) ------------------------------------------------


def _worker_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "PYTHONUNBUFFERED": "1"}


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from zmqex.bench import worker; sys.exit(worker(sys.argv[1:]))", *args],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_worker_env(),
    )


def _read_json_line(proc: subprocess.Popen, deadline: float) -> dict[str, Any]:
    """The next line a helper prints, as JSON; raises at the deadline or if it exits."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("a benchmark helper process did not answer in time")
            if sel.select(left):
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"a benchmark helper process exited with {proc.wait(5)}")
                return json.loads(line)


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _event_like(seq: int) -> list[Any]:
    """A msgpack-ready list shaped like an encoded order event (about the same size)."""
    return [1, "a", seq, {"a": seq, "b": 412_345, "c": 398_765}, "order", "buy", MID - 7, 54_321, "gtc"]


def worker(argv: list[str]) -> int:
    """Helper processes for the raw comparators: ``sub COUNT SECONDS``, ``pub ENDPOINT COUNT``, ``echo SECONDS``."""
    role = argv[0]
    ctx = zmq.Context()
    try:
        if role == "sub":
            count, seconds = int(argv[1]), float(argv[2])
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.bind("tcp://127.0.0.1:0")
            _say({"endpoint": sock.getsockopt(zmq.LAST_ENDPOINT).decode()})
            deadline = time.monotonic() + seconds
            received, first, last = 0, None, None
            unpackb = msgpack.unpackb
            while received < count:
                if not sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                    break
                while received < count:
                    try:
                        data = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    unpackb(data)
                    received += 1
                last = time.monotonic()
                first = first or last
            _say({"received": received, "last": last})
        elif role == "pub":
            endpoint, count = argv[1], int(argv[2])
            sock = ctx.socket(zmq.XPUB)  # XPUB: we see the subscription arrive, so no slow joiner
            sock.setsockopt(zmq.LINGER, 5000)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(endpoint)
            if not sock.poll(10_000):
                _say({"error": "no subscription within 10 s"})
                return 1
            sock.recv()
            packb, send = msgpack.packb, sock.send
            start = time.monotonic()
            for seq in range(1, count + 1):
                send(packb(_event_like(seq)))
            _say({"start": start, "sent": count, "end": time.monotonic()})
        elif role == "echo":
            seconds = float(argv[1])
            sock = ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind("tcp://127.0.0.1:0")
            _say({"endpoint": sock.getsockopt(zmq.LAST_ENDPOINT).decode()})
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if sock.poll(100):
                    frames = sock.recv_multipart()
                    if frames[-1] == b"stop":
                        break
                    sock.send_multipart(frames)
        else:
            return 2
        return 0
    finally:
        ctx.destroy(linger=0)


def bench_raw_pubsub(count: int, budget_s: float = 20.0) -> dict[str, Any]:
    """PUB->SUB of msgpack events, publisher and subscriber in two processes."""
    deadline = time.monotonic() + budget_s
    sub = _spawn("sub", str(count), str(budget_s))
    pub = None
    try:
        endpoint = _read_json_line(sub, deadline)["endpoint"]
        pub = _spawn("pub", endpoint, str(count))
        started = _read_json_line(pub, deadline)
        if "error" in started:
            raise RuntimeError(started["error"])
        result = _read_json_line(sub, deadline + 5)
    finally:
        for proc in (sub, pub):
            if proc is not None:
                _end(proc)
    received = result["received"]
    seconds = (result["last"] or started["end"]) - started["start"]
    return {
        "raw_pubsub_msgs_per_s": received / seconds if received else 0.0,
        "raw_pubsub_received": received,
        "raw_pubsub_sent": count,
        "raw_pubsub_bytes": len(msgpack.packb(_event_like(123_456))),
    }


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def bench_raw_rtt(count: int, budget_s: float = 20.0) -> dict[str, Any]:
    """DEALER->ROUTER round trips to a trivial echo ROUTER in another process, one at a time."""
    deadline = time.monotonic() + budget_s
    echo = _spawn("echo", str(budget_s + 5))
    ctx = zmq.Context()
    try:
        endpoint = _read_json_line(echo, deadline)["endpoint"]
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        frame = msgpack.packb({"v": 1, "id": 0, "op": "place", "side": "buy", "qty": "0.00100000",
                               "price": "50000.00", "tif": "ioc"})
        samples: list[float] = []
        for i in range(count + 50):
            t0 = time.perf_counter()
            sock.send(frame)
            if not sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                raise TimeoutError("echo helper did not answer")
            msgpack.unpackb(sock.recv())
            if i >= 50:  # warm-up
                samples.append((time.perf_counter() - t0) * 1000)
        sock.send(b"stop")
    finally:
        ctx.destroy(linger=0)
        _end(echo)
    return {"raw_rtt_p50_ms": percentile(samples, 50), "raw_rtt_p99_ms": percentile(samples, 99),
            "raw_rtt_samples": len(samples)}


# --- the mesh --------------------------------------------------------------------------------


def _network(ephemeral: bool):
    from zmqex.local import LocalNetwork

    return LocalNetwork(extra_args=["--ephemeral"] if ephemeral else [])


def _place_frame(request_id: int, side: Side, qty: int, price: int | None, tif: Tif) -> bytes:
    req: dict[str, Any] = {"v": 1, "id": request_id, "op": "place", "side": side.value,
                           "qty": money.format_qty(qty), "tif": tif.value}
    if price is not None:
        req["price"] = money.format_price(price)
    return msgpack.packb(req)


def _dealer(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    return sock


def _call(sock: zmq.Socket, frame: bytes, request_id: int, deadline: float) -> dict[str, Any]:
    """Send one request and wait for its reply (stream messages are skipped)."""
    sock.send(frame)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(max(1, int(left * 1000))):
            raise TimeoutError(f"no reply to request {request_id}")
        reply = msgpack.unpackb(sock.recv())
        if reply.get("id") == request_id and "stream" not in reply:
            if reply.get("ok") is not True:
                raise RuntimeError(f"request {request_id} failed: {reply.get('error')}")
            return reply["result"]


def pipelined_places(endpoints: list[str], ops: list[Op], clients_per_node: int, window: int,
                     budget_s: float) -> dict[str, Any]:
    """Send every op as a ``place`` over pipelined DEALERs spread over the nodes; count ok replies."""
    ctx = zmq.Context()
    try:
        socks = [_dealer(ctx, ep) for ep in endpoints for _ in range(clients_per_node)]
        queues: list[deque[bytes]] = [deque() for _ in socks]
        for i, op in enumerate(ops):
            queues[i % len(socks)].append(_place_frame(i + 1, op[1], op[2], op[3], op[4]))
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        outstanding = {sock: 0 for sock in socks}
        by_sock = dict(zip(socks, queues))
        ok, errors = 0, Counter()
        start = time.perf_counter()
        deadline = start + budget_s
        last = start
        for sock, queue in by_sock.items():
            while queue and outstanding[sock] < window:
                sock.send(queue.popleft())
                outstanding[sock] += 1
        pending = sum(outstanding.values())
        while pending and time.perf_counter() < deadline:
            for sock, _ in poller.poll(100):
                queue = by_sock[sock]
                while True:
                    try:
                        data = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    reply = msgpack.unpackb(data)
                    if reply.get("ok") is True:
                        ok += 1
                    else:
                        errors[str((reply.get("error") or {}).get("code"))] += 1
                    outstanding[sock] -= 1
                    pending -= 1
                    if queue:
                        sock.send(queue.popleft())
                        outstanding[sock] += 1
                        pending += 1
                last = time.perf_counter()
        seconds = last - start
    finally:
        ctx.destroy(linger=0)
    return {"orders": len(ops), "accepted": ok, "errors": dict(errors), "unanswered": pending,
            "complete": ok == len(ops),
            "seconds": seconds, "orders_per_s": ok / seconds if seconds > 0 else 0.0,
            "clients": len(socks), "window": window}


def take_latency(makers_at: str, takers_at: list[str], watch_at: list[str], takes: int,
                 budget_s: float) -> dict[str, Any]:
    """Round trip of small IOC takes at ``takers_at`` filling a maker at ``makers_at``, one at a
    time; and for each fill, last minus first arrival on the ``watch`` streams of every node."""
    take_qty = 100_000  # 0.001 BTC
    price = MID
    ctx = zmq.Context()
    deadline = time.monotonic() + budget_s
    try:
        maker_sock = _dealer(ctx, makers_at)
        maker = _call(maker_sock, _place_frame(1, SELL, take_qty * takes, price, GTC), 1, deadline)
        maker_id = maker["order_id"]
        watchers = []
        for n, ep in enumerate(watch_at):
            sock = _dealer(ctx, ep)
            _call(sock, msgpack.packb({"v": 1, "id": 7, "op": "watch"}), 7, deadline)
            watchers.append(sock)
        taker_socks = [_dealer(ctx, ep) for ep in takers_at]
        for sock in taker_socks:  # until each taker's node knows the maker
            while True:
                sock.send(msgpack.packb({"v": 1, "id": 2, "op": "order", "order_id": maker_id}))
                if not sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                    raise TimeoutError("a node did not learn of the maker order")
                if msgpack.unpackb(sock.recv()).get("ok") is True:
                    break
                time.sleep(0.01)
        poller = zmq.Poller()
        for sock in [*taker_socks, *watchers]:
            poller.register(sock, zmq.POLLIN)
        rtts: list[float] = []
        spreads: list[float] = []
        misses = 0
        for i in range(takes):
            if time.monotonic() > deadline:
                break
            sock = taker_socks[i % len(taker_socks)]
            request_id = 100 + i
            arrivals: dict[str, dict[int, float]] = {}  # fill id -> watcher -> time
            t0 = time.perf_counter()
            sock.send(_place_frame(request_id, BUY, take_qty, price, IOC))
            fill_ids: list[str] | None = None
            while time.monotonic() < deadline:
                for ready, _ in poller.poll(50):
                    while True:
                        try:
                            msg = msgpack.unpackb(ready.recv(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                        now = time.perf_counter()
                        if ready in watchers and msg.get("stream") == "fill":
                            arrivals.setdefault(msg["fill"]["id"], {})[watchers.index(ready)] = now
                        elif ready is sock and msg.get("id") == request_id:
                            rtts.append((now - t0) * 1000)
                            if msg.get("ok") is not True or msg["result"]["status"] != "filled":
                                misses += 1
                            fill_ids = [f["id"] for f in msg.get("result", {}).get("fills", [])]
                if fill_ids is not None and all(len(arrivals.get(f, ())) == len(watchers) for f in fill_ids):
                    break
            for f in (fill_ids or ()) if watchers else ():
                seen = arrivals.get(f, {})
                if len(seen) == len(watchers):
                    spreads.append((max(seen.values()) - min(seen.values())) * 1000)
                else:
                    misses += 1
    finally:
        ctx.destroy(linger=0)
    out: dict[str, Any] = {
        "take_p50_ms": percentile(rtts, 50) if rtts else None,
        "take_p99_ms": percentile(rtts, 99) if rtts else None,
        "take_samples": len(rtts),
        "take_misses": misses,
    }
    if watch_at:
        out["converge_p50_ms"] = percentile(spreads, 50) if spreads else None
        out["converge_p99_ms"] = percentile(spreads, 99) if spreads else None
        out["converge_samples"] = len(spreads)
    return out


def _shift(ops: list[Op], ticks: int) -> list[Op]:
    """The same places, bids ``ticks`` lower and asks ``ticks`` higher (a band of their own)."""
    return [(PLACE, op[1], op[2], op[3] - ticks if op[1] is BUY else op[3] + ticks, op[4]) for op in ops]


def bench_mesh(nodes: int, orders: int, *, ephemeral: bool = False, takes: int = 0, passive: int = 0,
               clients_per_node: int = 1, window: int = 64, seed: int = 4, budget_s: float = 60.0,
               converge_s: float = 30.0) -> dict[str, Any]:
    """Start ``nodes`` node processes on loopback; measure, in this order:

    1. ``takes`` single IOC takes at node b against a maker at node a, with a
       ``watch`` stream open on every node (take round trip, fill convergence);
    2. ``passive`` orders that never cross (bids 1000 ticks below the mid, asks
       1000 above): replication and persistence alone;
    3. ``orders`` of the mixed stream (passive, crossing GTC and IOC) over
       pipelined clients: the headline figure;

    then wait until every replica has converged (same clock, same state hash, quiet).
    """
    from zmqex.local import _status

    ids = [chr(ord("a") + i) for i in range(nodes)]
    result: dict[str, Any] = {"nodes": nodes, "store": "memory (--ephemeral)" if ephemeral else
                              "sqlite (synchronous=FULL)"}
    started = time.monotonic()
    with _network(ephemeral) as net:
        net.start_mesh(ids, timeout=20)
        result["startup_s"] = time.monotonic() - started
        endpoints = [net.nodes[i].endpoint for i in ids]
        if takes:
            # Round trips with nothing else going on; then again with a watch stream on every node,
            # for convergence (the streams cost the nodes work, so they would skew the first figure).
            plain = take_latency(endpoints[0], endpoints[1:2], [], takes, budget_s=min(30.0, budget_s / 2))
            watched = take_latency(endpoints[0], endpoints[1:2], endpoints, takes, budget_s=min(30.0, budget_s / 2))
            result.update({k: v for k, v in plain.items() if k.startswith("take_")})
            result.update({k: v for k, v in watched.items() if k.startswith("converge_")})
            result.update({k.replace("take_", "take_watched_"): v for k, v in watched.items()
                           if k.startswith("take_")})
        if passive:
            ops = _shift(make_stream(passive, seed + 1, cancel_frac=0.0, cross_frac=0.0), 1000)
            result["passive"] = pipelined_places(endpoints, ops, clients_per_node, window, budget_s)
        ops = make_stream(orders, seed, cancel_frac=0.0)
        result["mixed"] = pipelined_places(endpoints, ops, clients_per_node, window, budget_s)
        result["mixed"]["stream"] = stream_stats(ops)
        t0 = time.monotonic()
        try:
            statuses = net.wait_converged(timeout=converge_s)
            hashes = {s["hash"] for s in statuses.values()}
            result["converged"] = len(statuses) == nodes and len(hashes) == 1
            result["converge_wait_s"] = time.monotonic() - t0
        except TimeoutError:
            statuses = {n: s for n, s in ((n, _status(node)) for n, node in net.nodes.items()) if s}
            result["converged"] = False
        result["replicas"] = {
            n: {k: s.get(k) for k in ("hash", "vc", "orders", "fills", "open_orders", "in_flight", "crossed",
                                      "repaired")}
            for n, s in statuses.items()
        }
    result["total_s"] = time.monotonic() - started
    return result


# --- profile -----------------------------------------------------------------------------------


def profile_core(n: int, seed: int = 1, top: int = 15) -> str:
    ops = make_stream(n, seed)
    profiler = cProfile.Profile()
    profiler.enable()
    run_core(ops)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the command line -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, msgpack.version)),
        "platform": platform.platform(),
    }


QUICK_LIMIT_S = 54  # --quick aims to be done by then (the mesh sections share what is left)

TARGETS = [
    # (name, value key, comparison, threshold)
    ("core >= 0.35x plain book", "core_vs_plain", ">=", 0.35),
    ("mesh >= 0.05x raw pub/sub", "mesh_vs_raw_pubsub", ">=", 0.05),
    ("take p99 <= 2 ms", "take_p99_ms", "<=", 2.0),
    ("converge p99 <= 10 ms", "converge_p99_ms", "<=", 10.0),
    ("cost/op flat within 2x, 1k..100k", "core_depth_spread_1k_100k", "<=", 2.0),
]


def _targets(r: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, key, cmp, limit in TARGETS:
        value = r.get(key)
        ok = None if value is None else (value >= limit if cmp == ">=" else value <= limit)
        out[name] = {"key": key, "value": value, "target": f"{cmp} {limit}", "met": ok}
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = f"{value:,.0f}" if value >= 1000 else f"{value:.3g}" if value < 10 else f"{value:,.1f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".rstrip()


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, key: str, unit: str, comparator: str = "", comp_key: str | None = None,
            ratio: float | None = None) -> None:
        if key not in r:
            return
        comp = "" if comp_key is None else f"{comparator} {_fmt(r.get(comp_key), unit)}"
        rows.append((name, _fmt(r[key], unit), comp, "" if ratio is None else f"{ratio:.3f}x"))

    def ratio(a: str, b: str) -> float | None:
        x, y = r.get(a), r.get(b)
        return x / y if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else None

    row("core replica", "core_orders_per_s", "ops/s", "plain book", "plain_book_orders_per_s", r.get("core_vs_plain"))
    if "core_plain_fills_match" in r:
        rows.append(("  same fills as plain book", _fmt(r["core_plain_fills_match"]), "", ""))
    core_depth = r.get("core_us_per_op_by_depth", {})
    plain_depth = r.get("plain_us_per_op_by_depth", {})
    base = core_depth.get("1000")
    for depth, us in core_depth.items():
        plain = plain_depth.get(depth)
        rows.append((f"core cost/op, {int(depth):,} resting", _fmt(us, "us"),
                     f"plain {_fmt(plain, 'us')}" if plain else "",
                     f"{us / base:.2f}x of 1k; {us / plain:.0f}x plain" if base and plain else ""))
    row("wire encode+decode", "wire_events_per_s", "ev/s", "plain msgpack", "plain_msgpack_per_s",
        ratio("wire_events_per_s", "plain_msgpack_per_s"))
    row("mesh orders (sqlite)", "mesh_orders_per_s", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        r.get("mesh_vs_raw_pubsub"))
    row("mesh orders (ephemeral)", "mesh_orders_per_s_ephemeral", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        ratio("mesh_orders_per_s_ephemeral", "raw_pubsub_msgs_per_s"))
    row("mesh passive-only (sqlite)", "mesh_passive_orders_per_s", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        ratio("mesh_passive_orders_per_s", "raw_pubsub_msgs_per_s"))
    row("mesh passive-only (ephemeral)", "mesh_passive_orders_per_s_ephemeral", "ord/s", "raw pub/sub",
        "raw_pubsub_msgs_per_s", ratio("mesh_passive_orders_per_s_ephemeral", "raw_pubsub_msgs_per_s"))
    if "persistence_ratio" in r:
        rows.append(("persistence ratio (sqlite/ephemeral)", _fmt(r["persistence_ratio"]), "passive-only",
                     _fmt(r.get("persistence_ratio_passive"))))
    by_nodes = r.get("mesh_orders_per_s_by_nodes") or {}
    for n, v in by_nodes.items() if len(by_nodes) > 1 else ():
        rows.append((f"mesh orders, {n} nodes", _fmt(v, "ord/s"), "raw pub/sub",
                     f"{v / r['raw_pubsub_msgs_per_s']:.3f}x" if r.get("raw_pubsub_msgs_per_s") else ""))
    row("take p50 (fill on other node)", "take_p50_ms", "ms", "raw rtt p50", "raw_rtt_p50_ms",
        ratio("take_p50_ms", "raw_rtt_p50_ms"))
    row("take p99", "take_p99_ms", "ms", "raw rtt p99", "raw_rtt_p99_ms", ratio("take_p99_ms", "raw_rtt_p99_ms"))
    row("take p99 (ephemeral)", "take_p99_ms_ephemeral", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("take_p99_ms_ephemeral", "raw_rtt_p99_ms"))
    row("converge p50 (first->last replica)", "converge_p50_ms", "ms", "raw rtt p50", "raw_rtt_p50_ms",
        ratio("converge_p50_ms", "raw_rtt_p50_ms"))
    row("converge p99", "converge_p99_ms", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("converge_p99_ms", "raw_rtt_p99_ms"))
    row("converge p99 (ephemeral)", "converge_p99_ms_ephemeral", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("converge_p99_ms_ephemeral", "raw_rtt_p99_ms"))
    if "converged" in r:
        rows.append(("every replica converged", _fmt(r["converged"]), "", ""))
    widths = [max(len(x[i]) for x in rows + [("figure", "value", "comparator", "ratio")]) for i in range(4)]
    lines = []
    for i, cols in enumerate([("figure", "value", "comparator", "ratio"), *rows]):
        lines.append("  ".join(c.ljust(w) if j in (0, 2) else c.rjust(w) for j, (c, w) in enumerate(zip(cols, widths)))
                     .rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("targets:")
    for name, t in r.get("targets", {}).items():
        mark = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"  {name:<34} {_fmt(t['value']):>10}  {mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zmqex-bench", description="Benchmark zmqex against plain comparators.")
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute on 2 cores")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE (default: stdout)")
    parser.add_argument("--nodes", type=int, default=3, metavar="N", help="nodes in the main mesh (default 3)")
    parser.add_argument("--profile-core", action="store_true",
                        help="also run the core section under cProfile and print the top 15 by tottime")
    args = parser.parse_args(argv)
    if not 2 <= args.nodes <= 26:
        parser.error("--nodes must be 2..26")
    # node processes run `python -m zmqex.cli`: make sure they find this zmqex
    os.environ["PYTHONPATH"] = _worker_env()["PYTHONPATH"]
    quick = args.quick
    sizes: dict[str, Any] = {
        "core_ops": 10_000 if quick else 100_000,
        "depths": [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000],
        "depth_ops": 5_000 if quick else 20_000,
        "wire": 10_000 if quick else 100_000,
        "pubsub": 100_000 if quick else 500_000,
        "rtt": 1_000 if quick else 5_000,
        "takes": 200 if quick else 1_000,
        "mesh_passive": 2_000 if quick else 10_000,
        "mesh_orders": 800 if quick else 3_000,
        "mesh_budget_s": 12 if quick else 90,
        "converge_wait_s": 10 if quick else 60,
        "clients_per_node": 1,
        "window": 64,
        "by_nodes_orders": 1_500,
    }
    started = time.perf_counter()
    r: dict[str, Any] = {"command": " ".join([os.path.basename(sys.argv[0]), *(argv if argv is not None else
                                                                              sys.argv[1:])]),
                         "quick": quick, "machine": machine(), "sizes": sizes}

    def section(name: str, fn, *a, **kw) -> dict[str, Any]:
        t0 = time.perf_counter()
        log(f"{name} ...")
        out = fn(*a, **kw)
        r.update(out)
        summary = ", ".join(f"{k}={_fmt(v)}" for k, v in out.items() if isinstance(v, (int, float)) and
                            not isinstance(v, bool))[:240]
        log(f"{name}: {time.perf_counter() - t0:.1f}s: {summary}")
        return out

    def mesh(n: int, ephemeral: bool, suffix: str, takes: int, passive: int, orders: int,
             meshes_left: int = 1) -> dict[str, Any]:
        budget_s, converge_s = sizes["mesh_budget_s"], sizes["converge_wait_s"]
        if quick:  # stay under a minute even when the mesh is slow: share what is left
            per_mesh = (started + QUICK_LIMIT_S - time.perf_counter()) / meshes_left
            budget_s = max(2.0, min(budget_s, per_mesh - 8))
            converge_s = max(3.0, min(converge_s, per_mesh / 2))
        m = bench_mesh(n, orders, ephemeral=ephemeral, takes=takes, passive=passive,
                       clients_per_node=sizes["clients_per_node"], window=sizes["window"],
                       budget_s=budget_s, converge_s=converge_s)
        out = {f"mesh_orders_per_s{suffix}": m["mixed"]["orders_per_s"]}
        if "passive" in m:
            out[f"mesh_passive_orders_per_s{suffix}"] = m["passive"]["orders_per_s"]
        for key in ("take_p50_ms", "take_p99_ms", "converge_p50_ms", "converge_p99_ms"):
            if key in m:
                out[key + suffix] = m[key]
        out[f"converged{suffix}"] = m["converged"]
        out[f"mesh_detail{suffix}"] = m
        return out

    try:
        section("core vs plain book", bench_core, sizes["core_ops"])
        section("cost per op by depth", bench_depth, sizes["depths"], sizes["depth_ops"])
        spread = [r["core_us_per_op_by_depth"].get(str(d)) for d in (1_000, 10_000, 100_000)]
        if all(spread):
            r["core_depth_spread_1k_100k"] = max(spread) / min(spread)
        section("wire codec vs msgpack", bench_wire, sizes["wire"])
        section("raw pub/sub", bench_raw_pubsub, sizes["pubsub"])
        section("raw DEALER->ROUTER rtt", bench_raw_rtt, sizes["rtt"])
        section(f"mesh, {args.nodes} nodes, sqlite store", mesh, args.nodes, False, "", sizes["takes"],
                sizes["mesh_passive"], sizes["mesh_orders"], 2)
        section(f"mesh, {args.nodes} nodes, ephemeral", mesh, args.nodes, True, "_ephemeral", sizes["takes"],
                sizes["mesh_passive"], sizes["mesh_orders"])
        r["converged"] = bool(r["converged"] and r["converged_ephemeral"])
        if r.get("mesh_orders_per_s_ephemeral"):
            r["persistence_ratio"] = r["mesh_orders_per_s"] / r["mesh_orders_per_s_ephemeral"]
        if r.get("mesh_passive_orders_per_s_ephemeral"):
            r["persistence_ratio_passive"] = (r["mesh_passive_orders_per_s"]
                                              / r["mesh_passive_orders_per_s_ephemeral"])
        if r.get("raw_pubsub_msgs_per_s"):
            r["mesh_vs_raw_pubsub"] = r["mesh_orders_per_s"] / r["raw_pubsub_msgs_per_s"]
        by_nodes = {str(args.nodes): r["mesh_orders_per_s"]}
        if not quick:  # every size with the same number of orders (the main run's may differ)
            by_nodes = {}
            for n in (2, 3, 5, 8):
                out = section(f"mesh, {n} nodes, sqlite store", mesh, n, False, f"_{n}_nodes", 0, 0,
                              sizes["by_nodes_orders"])
                by_nodes[str(n)] = out[f"mesh_orders_per_s_{n}_nodes"]
                r["converged"] = r["converged"] and out[f"converged_{n}_nodes"]
        r["mesh_orders_per_s_by_nodes"] = by_nodes
    except Exception as exc:  # still report what was measured
        log(f"FAILED: {exc.__class__.__name__}: {exc}")
        r["error"] = f"{exc.__class__.__name__}: {exc}"
        r["converged"] = False
    r["targets"] = _targets(r)
    r["seconds_total"] = time.perf_counter() - started
    if args.profile_core:
        log("profiling the core section ...")
        print(profile_core(sizes["core_ops"]), file=sys.stderr)
    print(table(r))
    text = json.dumps(r, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
        log(f"wrote {args.json} ({time.perf_counter() - started:.1f}s in all)")
    else:
        print(text)
    return 0 if r["converged"] and "error" not in r else 1


if __name__ == "__main__":
    sys.exit(main())
