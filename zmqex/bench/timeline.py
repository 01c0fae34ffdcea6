"""Where a take's time goes: one IOC take at a time, from a client at node b to a maker at node a.

:func:`bench_timeline` starts two nodes under :mod:`zmqex.bench.traced`, places
one resting ask at a, then ``takes`` IOC bids at b, one after another (10 ms
apart: light load), and cuts each take's round trip at the stages both nodes
recorded: the client's request reaching b, b placing the order and committing
it, b's take leaving once that commit is durable, the hop to a, a granting,
committing and answering, the hop back, b delivering the fill and replying, the
reply reaching the client.  Returns each segment's median and p90 in
microseconds (the wrappers add ~1 us per stage).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import zmq

from zmqex.bench import rawpack
from zmqex.local import LocalNetwork

SEGMENTS = (
    "client -> taker node", "taker: place (api + core)", "taker: until its commit", "taker: commit",
    "taker: commit -> take sent (fsync)", "hop taker -> maker", "maker: grant (core)", "maker: until its commit",
    "maker: commit", "maker: commit -> reply sent (fsync)", "hop maker -> taker", "taker: fill (core)",
    "taker: until the reply is sent", "reply -> client",
)


def bench_timeline(takes: int = 300, sync: str = "full") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zmqex-timeline-") as tmp:
        out = os.path.join(tmp, "marks")
        prefix = (sys.executable, "-m", "zmqex.bench.traced", out, "--")
        args = ["--ephemeral"] if sync == "ephemeral" else ["--sync", sync]
        spans: list[tuple[int, int]] = []
        with LocalNetwork(extra_args=args) as net:
            for node_id in ("a", "b"):
                net.start(node_id, prefix=prefix)
            net.wait_meshed()
            pids = {n: net.nodes[n].proc.pid for n in ("a", "b")}
            ctx = zmq.Context()
            try:
                maker, taker = (ctx.socket(zmq.DEALER) for _ in range(2))
                maker.connect(net.nodes["a"].ready_endpoint)
                taker.connect(net.nodes["b"].ready_endpoint)
                maker.send(rawpack.packb({"v": 1, "id": 1, "op": "place", "side": "sell", "qty": "1000",
                                          "price": "50000", "trader": "maker"}))
                if not maker.poll(10_000) or rawpack.unpackb(maker.recv()).get("ok") is not True:
                    raise RuntimeError("the maker's ask was not placed")
                time.sleep(0.2)  # let the ask reach b: a take at b must find it
                for i in range(takes):
                    frame = rawpack.packb({"v": 1, "id": 100 + i, "op": "place", "side": "buy", "qty": "0.0001",
                                           "price": "50000", "tif": "ioc", "trader": "taker"})
                    start = time.perf_counter_ns()
                    taker.send(frame)
                    if not taker.poll(10_000):
                        raise RuntimeError(f"take {i} got no reply")
                    reply = rawpack.unpackb(taker.recv())
                    spans.append((start, time.perf_counter_ns()))
                    if reply.get("ok") is not True or reply["result"]["status"] != "filled":
                        raise RuntimeError(f"take {i} did not fill: {reply}")
                    time.sleep(0.01)
            finally:
                ctx.destroy(linger=0)
        marks = {}
        for node_id, pid in pids.items():
            with open(f"{out}.{pid}") as f:
                marks[node_id] = json.load(f)
    return {"sync": sync, **_segments(spans, marks)}


def _segments(spans: list[tuple[int, int]], marks: dict[str, list[list[Any]]]) -> dict[str, Any]:
    cut: dict[str, list[float]] = {name: [] for name in (*SEGMENTS, "total")}
    for start, end in spans:
        seen = sorted((t, node, stage, edge) for node, ms in marks.items() for t, stage, edge in ms if start <= t <= end)

        def first(node: str, stage: str, edge: int, after: int | None) -> int | None:
            if after is None:
                return None
            return next((t for t, n, s, e in seen if n == node and s == stage and e == edge and t >= after), None)

        points: list[int | None] = [start]
        for node, stage, edge in (("b", "_client_request", 0), ("b", "_client_request", 1), ("b", "_commit", 0),
                                  ("b", "_commit", 1), ("b", "_effects", 0), ("a", "_peer_message", 0),
                                  ("a", "_peer_message", 1), ("a", "_commit", 0), ("a", "_commit", 1),
                                  ("a", "_effects", 0), ("b", "_peer_message", 0), ("b", "_peer_message", 1),
                                  ("b", "_to_client", 0)):
            points.append(first(node, stage, edge, points[-1]))
        points.append(end)
        found = [p for p in points if p is not None]
        if len(found) < len(points):
            continue  # a stage fell outside this take (a retry, a heartbeat's commit): not cut
        for name, a, b in zip(SEGMENTS, found, found[1:]):
            cut[name].append((b - a) / 1000)
        cut["total"].append((end - start) / 1000)
    out: dict[str, Any] = {"takes": len(cut["total"])}
    for name, values in cut.items():
        values.sort()
        if values:
            out[name] = (statistics.median(values), values[int(len(values) * 0.9)])
    return out


def table(result: dict[str, Any]) -> str:
    lines = [f"take timeline, --sync {result['sync']}, {result['takes']} takes: median / p90 us"]
    for name in (*SEGMENTS, "total"):
        if name in result:
            median, p90 = result[name]
            lines.append(f"  {name:38s} {median:8.0f} {p90:8.0f}")
    return "\n".join(lines)
