"""The mesh: real ``zmqex-node`` processes on loopback, measured from outside.

:func:`bench_mesh` starts a mesh (sqlite store with ``--sync full`` or ``normal``, or
``--ephemeral``; with ``keyed``, every node runs with ``--keys`` and every
client connects with a trader's key of its own) and measures
take round trips and fill convergence (:func:`take_latency`; comparator: the
raw DEALER->ROUTER round trip of :mod:`zmqex.bench.raw`), then orders per
second over pipelined clients (:func:`pipelined_places`; comparator: raw
PUB->SUB messages per second), then waits until every replica has converged.

:func:`bench_keyed` runs the same mesh with keys and without at the same time,
taking turns on the same streams: the cost of keys as a ratio, which a run of
each after the other would leave to the noise of a shared machine.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
import zmq.auth

from zmqex import protocol
from zmqex.bench import rawpack
from zmqex.bench.raw import percentile
from zmqex.bench.stream import BUY, GTC, IOC, MID, PLACE, SELL, PlaceOp, make_stream, places, stream_stats
from zmqex.core import money
from zmqex.core.events import Side, Tif

if TYPE_CHECKING:  # imported when used: the node processes' harness is not needed to import the benchmark
    from zmqex.local import LocalNetwork


#: How the nodes keep their state: the store options each mode passes to zmqex-node.
STORES = {
    "full": ("sqlite (synchronous=FULL, the default)", ["--sync", "full"]),
    "normal": ("sqlite (synchronous=NORMAL)", ["--sync", "normal"]),
    "ephemeral": ("memory (--ephemeral)", ["--ephemeral"]),
}


#: A client's CURVE keys towards one node: (its public key, its secret key, the node's public key), Z85.
Curve = tuple[bytes, bytes, bytes]
#: Gives the keys a client named TRADER connects to ENDPOINT with; None: no keys (a mesh without keys).
Keys = Callable[[str, str], "Curve | None"]


def _no_keys(endpoint: str, trader: str) -> None:
    return None


def _network(store: str, keyed: list[str] | None = None, traders: Sequence[str] = ()) -> LocalNetwork:
    from zmqex.local import LocalNetwork

    return LocalNetwork(extra_args=STORES[store][1], keyed=keyed, traders=list(traders))


def trader_keys(keys_dir: Path, node_of: dict[str, str]) -> Keys:
    """:data:`Keys` from a keyed network's key directory (:func:`zmqex.keys.make_network`):
    the trader's own secret, and the public key of the node at the endpoint (``node_of``: endpoint -> id)."""
    cache: dict[tuple[str, str], Curve] = {}

    def keys(endpoint: str, trader: str) -> Curve:
        if (endpoint, trader) not in cache:
            public, secret = zmq.auth.load_certificate(keys_dir / trader / f"{trader}.key_secret")
            server, _ = zmq.auth.load_certificate(keys_dir / trader / "members" / f"{node_of[endpoint]}.key")
            assert secret is not None
            cache[endpoint, trader] = (public, secret, server)
        return cache[endpoint, trader]

    return keys


def load_traders(phase: str, nodes: int, clients_per_node: int) -> list[str]:
    """The trader names of one :func:`pipelined_places` phase: one per client."""
    return [f"{phase}{k}" for k in range(nodes * clients_per_node)]


def _place_frame(request_id: int, side: Side, qty: int, price: int | None, tif: Tif) -> bytes:
    req: dict[str, Any] = {"v": 1, "id": request_id, "op": "place", "side": side.value,
                           "qty": money.format_qty(qty), "tif": tif.value}
    if price is not None:
        req["price"] = money.format_price(price)
    return rawpack.packb(req)


def _dealer(ctx: zmq.Context[Any], endpoint: str, curve: Curve | None = None) -> zmq.Socket[Any]:
    sock: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    if curve is not None:
        sock.setsockopt(zmq.CURVE_PUBLICKEY, curve[0])
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve[1])
        sock.setsockopt(zmq.CURVE_SERVERKEY, curve[2])
    sock.connect(endpoint)
    return sock


def _call(sock: zmq.Socket[Any], frame: bytes, request_id: int, deadline: float) -> dict[str, Any]:
    """Send one request and wait for its reply (stream messages are skipped)."""
    sock.send(frame)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(max(1, int(left * 1000))):
            raise TimeoutError(f"no reply to request {request_id}")
        reply = rawpack.unpackb(sock.recv())
        if reply.get("id") == request_id and "stream" not in reply:
            if reply.get("ok") is not True:
                raise RuntimeError(f"request {request_id} failed: {reply.get('error')}")
            result: dict[str, Any] = reply["result"]  # an ok reply's result is a map (docs/protocol.md)
            return result


def pipelined_places(endpoints: list[str], ops: Sequence[PlaceOp], clients_per_node: int, window: int,
                     budget_s: float, keys: Keys = _no_keys, phase: str = "load") -> dict[str, Any]:
    """Send every op as a ``place`` over pipelined DEALERs spread over the nodes; count ok replies.

    With ``keys``, client k connects as trader ``PHASE{k}`` (see :func:`load_traders`).
    """
    ctx = zmq.Context()
    try:
        targets = [ep for ep in endpoints for _ in range(clients_per_node)]
        traders = load_traders(phase, len(endpoints), clients_per_node)
        socks = [_dealer(ctx, ep, keys(ep, trader)) for ep, trader in zip(targets, traders)]
        queues: list[deque[bytes]] = [deque() for _ in socks]
        for i, op in enumerate(ops):
            queues[i % len(socks)].append(_place_frame(i + 1, op[1], op[2], op[3], op[4]))
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        outstanding = {sock: 0 for sock in socks}
        by_sock = dict(zip(socks, queues))
        ok = 0
        errors: Counter[str] = Counter()
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
                    reply = rawpack.unpackb(data)
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


#: The traders :func:`take_latency` connects as, with keys.
TAKE_TRADERS = ["maker", "taker", "watcher"]


def take_latency(makers_at: str, takers_at: list[str], watch_at: list[str], takes: int,
                 budget_s: float, keys: Keys = _no_keys, tif: Tif = IOC) -> dict[str, Any]:
    """Round trip of small IOC takes (or ``tif``: FOK) at ``takers_at`` filling a maker at
    ``makers_at``, one at a time; and for each fill, last minus first arrival on the ``trades``
    streams of every node.  With ``keys``, the clients connect as the traders of :data:`TAKE_TRADERS`."""
    take_qty = 100_000  # 0.001 BTC
    price = MID
    ctx = zmq.Context()
    deadline = time.monotonic() + budget_s
    try:
        maker_sock = _dealer(ctx, makers_at, keys(makers_at, "maker"))
        maker = _call(maker_sock, _place_frame(1, SELL, take_qty * takes, price, GTC), 1, deadline)
        maker_id = maker["order_id"]
        watchers = []
        for n, ep in enumerate(watch_at):
            sock = _dealer(ctx, ep, keys(ep, "watcher"))
            _call(sock, rawpack.packb({"v": 1, "id": 7, "op": "subscribe", "stream": protocol.STREAM_TRADES}), 7,
                  deadline)
            watchers.append(sock)
        taker_socks = [_dealer(ctx, ep, keys(ep, "taker")) for ep in takers_at]
        for sock in taker_socks:  # until each taker's node knows the maker
            while True:
                sock.send(rawpack.packb({"v": 1, "id": 2, "op": "order", "order_id": maker_id}))
                if not sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                    raise TimeoutError("a node did not learn of the maker order")
                if rawpack.unpackb(sock.recv()).get("ok") is True:
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
            sock.send(_place_frame(request_id, BUY, take_qty, price, tif))
            fill_ids: list[str] | None = None
            while time.monotonic() < deadline:
                for ready, _ in poller.poll(50):
                    while True:
                        try:
                            msg = rawpack.unpackb(ready.recv(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                        now = time.perf_counter()
                        if ready in watchers and msg.get("stream") == protocol.STREAM_TRADES and protocol.TRADE in msg:
                            arrivals.setdefault(msg[protocol.TRADE]["id"], {})[watchers.index(ready)] = now
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


def _shift(ops: Sequence[PlaceOp], ticks: int) -> list[PlaceOp]:
    """The same places, bids ``ticks`` lower and asks ``ticks`` higher (a band of their own)."""
    return [(PLACE, op[1], op[2], op[3] - ticks if op[1] is BUY else op[3] + ticks, op[4]) for op in ops]


def sealed(net: LocalNetwork) -> tuple[int, int]:
    """Events and envelopes every node of ``net`` has sealed so far (their status counters)."""
    from zmqex.local import _status

    events = envelopes = 0
    for node in net.nodes.values():
        counters = (_status(node) or {}).get("counters", {})
        events += counters.get("events_sealed", 0)
        envelopes += counters.get("envelopes_sealed", 0)
    return events, envelopes


def per_envelope(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Events per envelope between two :func:`sealed` readings (None if none was sealed)."""
    envelopes = after[1] - before[1]
    return (after[0] - before[0]) / envelopes if envelopes > 0 else None


def bench_mesh(nodes: int, orders: int, *, store: str = "full", takes: int = 0, passive: int = 0,
               clients_per_node: int = 1, window: int = 64, seed: int = 4, budget_s: float = 60.0,
               converge_s: float = 30.0, keyed: bool = False) -> dict[str, Any]:
    """Start ``nodes`` node processes on loopback; measure, in this order:

    1. ``takes`` single IOC takes at node b against a maker at node a, with a
       ``trades`` subscription open on every node (take round trip, fill convergence),
       and as many FOK ones (hold and confirm);
    2. ``passive`` orders that never cross (bids 1000 ticks below the mid, asks
       1000 above): replication and persistence alone;
    3. ``orders`` of the mixed stream (passive, crossing GTC and IOC) over
       pipelined clients: the headline figure;

    then wait until every replica has converged (same clock, same state hash, quiet).

    ``keyed``: every node runs with ``--keys`` (CURVE on every connection, events
    signed by their origin), and each client connects with a trader key of its own.
    """
    from zmqex.local import _status

    ids = [chr(ord("a") + i) for i in range(nodes)]
    result: dict[str, Any] = {"nodes": nodes, "store": STORES[store][0], "keyed": keyed}
    traders = [*TAKE_TRADERS, *load_traders("passive", nodes, clients_per_node),
               *load_traders("mixed", nodes, clients_per_node)]
    started = time.monotonic()
    with _network(store, ids if keyed else None, traders if keyed else []) as net:
        net.start_mesh(ids, timeout=20)
        result["startup_s"] = time.monotonic() - started
        endpoints = [net.nodes[i].ready_endpoint for i in ids]
        keys = _no_keys if net.keys_dir is None else trader_keys(net.keys_dir, dict(zip(endpoints, ids)))
        if takes:
            before = sealed(net)
            # Round trips with nothing else going on; then again with a watch stream on every node,
            # for convergence (the streams cost the nodes work, so they would skew the first figure).
            plain = take_latency(endpoints[0], endpoints[1:2], [], takes, budget_s=min(30.0, budget_s / 2), keys=keys)
            watched = take_latency(endpoints[0], endpoints[1:2], endpoints, takes, budget_s=min(30.0, budget_s / 2),
                                   keys=keys)
            result.update({k: v for k, v in plain.items() if k.startswith("take_")})
            result.update({k: v for k, v in watched.items() if k.startswith("converge_")})
            result.update({k.replace("take_", "take_watched_"): v for k, v in watched.items()
                           if k.startswith("take_")})
            # The same as fill or kill: a hold and a confirm (and the coordinator's decision) per take.
            fok = take_latency(endpoints[0], endpoints[1:2], [], takes, budget_s=min(30.0, budget_s / 2), keys=keys,
                               tif=Tif.FOK)
            result.update({"fok_" + k: v for k, v in fok.items() if k.startswith("take_")})
            result["takes_events_per_envelope"] = per_envelope(before, sealed(net))
        if passive:
            passive_ops = _shift(places(make_stream(passive, seed + 1, cancel_frac=0.0, cross_frac=0.0)), 1000)
            before = sealed(net)
            result["passive"] = pipelined_places(endpoints, passive_ops, clients_per_node, window, budget_s, keys,
                                                 "passive")
            result["passive"]["events_per_envelope"] = per_envelope(before, sealed(net))
        ops = places(make_stream(orders, seed, cancel_frac=0.0))
        before = sealed(net)
        result["mixed"] = pipelined_places(endpoints, ops, clients_per_node, window, budget_s, keys, "mixed")
        result["mixed"]["events_per_envelope"] = per_envelope(before, sealed(net))
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


def bench_keyed(nodes: int, orders: int, *, store: str = "full", passive: int = 0, takes: int = 0, rounds: int = 2,
                clients_per_node: int = 1, window: int = 64, seed: int = 4, budget_s: float = 60.0,
                converge_s: float = 30.0) -> dict[str, Any]:
    """The same mesh with keys and without, side by side: both networks run at once
    (the idle one only heartbeats), and take turns on the same streams, ``rounds`` times
    (passive then mixed, as :func:`bench_mesh`); each keeps its best round, so a slow
    moment of a shared machine does not decide the ratio.  Then ``takes`` on the keyed
    one; then both must converge.  ``budget_s`` bounds each phase, as in :func:`bench_mesh`.
    Returns ``{"unkeyed": {...}, "keyed": {...}}``.
    """
    from zmqex.local import _status

    ids = [chr(ord("a") + i) for i in range(nodes)]
    traders = [*TAKE_TRADERS, *(t for r in range(rounds) for phase in ("passive", "mixed")
                                for t in load_traders(f"{phase}{r}-", nodes, clients_per_node))]
    started = time.monotonic()
    out: dict[str, dict[str, Any]] = {}
    with _network(store) as plain_net, _network(store, ids, traders) as keyed_net:
        nets = {"unkeyed": plain_net, "keyed": keyed_net}
        for name, net in nets.items():
            net.start_mesh(ids, timeout=20)
            out[name] = {"nodes": nodes, "store": STORES[store][0], "keyed": name == "keyed", "rounds": []}
        endpoints = {name: [net.nodes[i].ready_endpoint for i in ids] for name, net in nets.items()}
        assert keyed_net.keys_dir is not None  # made with keys: it wrote them
        keys = {"unkeyed": _no_keys, "keyed": trader_keys(keyed_net.keys_dir, dict(zip(endpoints["keyed"], ids)))}
        for r in range(rounds):
            streams = {"passive": _shift(places(make_stream(passive, seed + 1 + 2 * r, cancel_frac=0.0,
                                                            cross_frac=0.0)), 1000) if passive else [],
                       "mixed": places(make_stream(orders, seed + 2 * r, cancel_frac=0.0))}
            done: dict[str, dict[str, Any]] = {name: {} for name in nets}
            for phase, ops in streams.items():
                for name in (("unkeyed", "keyed") if r % 2 == 0 else ("keyed", "unkeyed")):
                    if ops:
                        before = sealed(nets[name])
                        done[name][phase] = pipelined_places(endpoints[name], ops, clients_per_node, window,
                                                             budget_s, keys[name], f"{phase}{r}-")
                        done[name][phase]["events_per_envelope"] = per_envelope(before, sealed(nets[name]))
            for name in nets:
                out[name]["rounds"].append(done[name])
        for name in nets:
            for phase in ("passive", "mixed"):
                runs = [d[phase] for d in out[name]["rounds"] if phase in d]
                if runs:
                    out[name][phase] = max(runs, key=lambda x: x["orders_per_s"])
        if takes:
            out["keyed"].update(take_latency(endpoints["keyed"][0], endpoints["keyed"][1:2], [], takes,
                                             budget_s=min(30.0, budget_s / 2), keys=keys["keyed"]))
        for name, net in nets.items():
            try:
                statuses = net.wait_converged(timeout=converge_s)
                out[name]["converged"] = len(statuses) == nodes and len({s["hash"] for s in statuses.values()}) == 1
            except TimeoutError:
                statuses = {n: s for n, s in ((n, _status(node)) for n, node in net.nodes.items()) if s}
                out[name]["converged"] = False
            out[name]["replicas"] = {n: {k: s.get(k) for k in ("hash", "vc", "orders", "fills", "open_orders")}
                                     for n, s in statuses.items()}
    for m in out.values():
        m["total_s"] = time.monotonic() - started
    return out
