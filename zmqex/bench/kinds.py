"""What each kind of order costs, beside a plain limit order, in one process.

:func:`bench_kinds` runs a whole network in the simulator (every replica, and
the encoding and decoding of every message between them, in this process; no
sockets), so the figure is the CPU all the nodes together spend on one order
and everything it causes, until the network is quiet again:

* **limit**: a crossing limit order (GTC) at node ``a`` that fills from
  ``makers`` resting orders, one on each of the other nodes (a take each);
* **fok**: the same order as fill or kill (a hold and a confirm each, and the
  coordinator's decision);
* **amend, lower**: lowering a resting order's quantity (one event);
* **amend, price**: moving a resting order to a new price (a cancel and a new
  order, in one step).

Each kind is timed over the same number of rounds, taking turns, so a slow
moment of the machine falls on all of them alike; the report gives each as a
ratio of the limit order's cost.
"""

from __future__ import annotations

import time
from typing import Any

from zmqex import heap
from zmqex.bench.stream import BUY, GTC, MID, SELL
from zmqex.core.config import Config
from zmqex.core.events import Tif
from zmqex.sim import Network

NODES = ["a", "b", "c", "d"]


def _crossing(net: Network, tif: Tif, makers: int, lot: int) -> float:
    """Rest one maker on each of ``makers`` other nodes, then time a crossing order for all of them."""
    for node in NODES[1:1 + makers]:
        net.place(node, SELL, lot, MID)
    net.drain()
    t0 = time.perf_counter()
    oid = net.place("a", BUY, lot * makers, MID, tif)
    net.drain()
    elapsed = time.perf_counter() - t0
    state = net.replica("a").ledger.orders[oid]
    if state.filled != state.qty:
        raise RuntimeError(f"a {tif.value} order for {makers} makers did not fill: {state.filled} of {state.qty}")
    return elapsed


def _amend(net: Network, lot: int, **change: int) -> float:
    oid = net.place("a", SELL, lot * 2, MID + 1_000)
    net.drain()
    t0 = time.perf_counter()
    net.amend("a", oid, **change)
    net.drain()
    return time.perf_counter() - t0


def bench_kinds(rounds: int, makers: int = 3, budget_s: float = 60.0) -> dict[str, Any]:
    """Microseconds of CPU per order, all nodes together, for each kind (see the module docstring)."""
    if not 1 <= makers < len(NODES):
        raise ValueError(f"makers must be 1..{len(NODES) - 1}")
    net = Network(NODES, Config())
    lot = 100_000
    spent = {"limit": 0.0, "fok": 0.0, "amend_lower": 0.0, "amend_price": 0.0}
    done = 0
    deadline = time.perf_counter() + budget_s
    price = MID + 2_000
    warmup = min(20, rounds // 10)  # first rounds fill caches and grow dicts: not counted
    while done < rounds and time.perf_counter() < deadline:
        if warmup:
            warmup -= 1
            _crossing(net, GTC, makers, lot)
            _crossing(net, Tif.FOK, makers, lot)
            continue
        spent["limit"] += _crossing(net, GTC, makers, lot)
        spent["fok"] += _crossing(net, Tif.FOK, makers, lot)
        spent["amend_lower"] += _amend(net, lot, qty=lot)
        price += 1  # a new price each round, so every move is one
        spent["amend_price"] += _amend(net, lot, price=price)
        done += 1
        if done % 256 == 0:
            heap.freeze_survivors()  # the node's garbage-collector policy
    if not done:
        raise RuntimeError("no round finished within the budget")
    us = {kind: total / done * 1e6 for kind, total in spent.items()}
    return {
        "kinds_rounds": done,
        "kinds_makers": makers,
        "limit_us_per_order": us["limit"],
        "fok_us_per_order": us["fok"],
        "amend_lower_us": us["amend_lower"],
        "amend_price_us": us["amend_price"],
        "fok_vs_limit": us["fok"] / us["limit"],
        "amend_lower_vs_limit": us["amend_lower"] / us["limit"],
        "amend_price_vs_limit": us["amend_price"] / us["limit"],
    }
