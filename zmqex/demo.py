"""``zmqex-demo``: a local network doing its job, in one command.

Starts three nodes on loopback, lets several traders send a stream of orders to
different nodes at the same time, prints every order's outcome as it happens,
then shows that every replica holds the same book and the same fills.  Stops
by itself, or on Ctrl-C.

With ``--keys`` the network runs keyed end to end: keys for every node and
every trader are written under the network's working directory
(:func:`zmqex.keys.make_network`), each node runs with ``--keys`` (CURVE on
every connection, events signed by their origin), and each trader connects
with its own key, so the node knows it by that key.

With ``--top`` the traders take their time (``--pace``) and ``zmqex-top``
shows node a while they trade (its book, the trades, trader t0's open orders,
the peers); ``q`` leaves it for the summary.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from zmqex.client import Client
from zmqex.errors import LocalError, RemoteError
from zmqex.local import LocalNetwork, NodeProcess
from zmqex.protocol import OrderView
from zmqex.top import app as top
from zmqex.top.view import View

MID = Decimal("50000.00")


def connect(node: NodeProcess, name: str, timeout: float) -> Client:
    """A client acting for trader ``name``: with keys, the node knows it by its key; without, by its name."""
    return node.client(timeout=timeout, as_=name) if node.keys_dir else Client(node.address, timeout, trader=name)


def trader(name: str, node: NodeProcess, orders: int, seed: int, lock: threading.Lock, stop: threading.Event,
           pace: float = 0.0, out: TextIO | None = None) -> None:
    rng = random.Random(seed)
    with connect(node, name, 10.0) as client:
        for _ in range(orders):
            if stop.wait(pace) if pace else stop.is_set():
                return
            side = rng.choice(["buy", "sell"])
            qty = Decimal(rng.randint(1, 50)) / 100
            offset = Decimal(rng.randint(-5, 5)) * 10
            price = MID + offset if side == "buy" else MID - offset
            kind = rng.random()
            try:
                if kind < 0.1:
                    result = client.place(side, qty)  # market
                elif kind < 0.2:
                    result = client.place(side, qty, price, tif="ioc")
                else:
                    result = client.place(side, qty, price)
            except (LocalError, RemoteError) as exc:  # refused, or the node did not answer
                with lock:
                    print(f"  {name}@{node.id}: {side} {qty} refused: {exc}", file=out or sys.stdout, flush=True)
                continue
            with lock:
                print(f"  {name}@{node.id}: {describe(side, qty, price if kind >= 0.1 else None, result)}",
                      file=out or sys.stdout, flush=True)


def describe(side: str, qty: Decimal, price: Decimal | None, result: OrderView) -> str:
    at = f"@ {price}" if price is not None else "@ market"
    text = f"{result['order_id']:>6} {side:4} {qty} {at:<12} -> {result['status']}"
    if result["status"] == "cancelled" and result.get("reason") not in (None, "user"):
        text += f" ({result.get('reason')})"  # self_trade, expired, price_protection, ...
    for fill in result["fills"]:
        text += f"; filled {Decimal(fill['qty'])} @ {fill['price']} from {fill['maker']}"
    if result["status"] in ("open", "partial"):
        text += f"; rests {Decimal(result['open'])}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zmqex-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--orders", type=int, default=25, help="orders per trader")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keys", action="store_true",
                        help="run keyed: a key per node and per trader, CURVE on every connection, signed events")
    parser.add_argument("--top", action="store_true",
                        help="watch it in zmqex-top (node a, as trader t0) while the traders trade; q goes on "
                             "to the summary")
    parser.add_argument("--pace", type=float, help="seconds each trader waits before each order "
                        "(default 0; 0.3 with --top, so there is something to watch)")
    args = parser.parse_args(argv)
    pace = args.pace if args.pace is not None else (0.3 if args.top else 0.0)
    ids = [chr(ord("a") + i) for i in range(args.nodes)]
    names = [f"t{i}" for i in range(args.traders)]
    stop = threading.Event()
    with LocalNetwork(keyed=ids if args.keys else None, traders=names if args.keys else []) as net:
        try:
            if net.keys_dir is not None:
                print(f"keyed: every node and trader has its own key, under {net.keys_dir} (removed at the end)")
                print(f"  nodes {', '.join(ids)} (--keys {net.keys_dir}/ID), traders {', '.join(names)} "
                      f"({net.keys_dir}/NAME/NAME.key_secret); CURVE on every connection, events signed")
            print(f"starting {args.nodes} {'keyed ' if args.keys else ''}nodes on 127.0.0.1 ...")
            net.start_mesh(ids)
            for node in net.nodes.values():
                print(f"  node {node.id} at {node.address} (log: {node.log_path})")
            print(f"{args.traders} traders send {args.orders} orders each, to different nodes at once:")
            lock = threading.Lock()
            nodes = list(net.nodes.values())
            out = open(net.workdir / "traders.log", "w") if args.top else None  # the screen is zmqex-top's
            threads = [
                threading.Thread(target=trader, args=(name, nodes[i % len(nodes)], args.orders,
                                                      args.seed * 1000 + i, lock, stop, pace, out))
                for i, name in enumerate(names)
            ]
            started = time.monotonic()
            quit_early = False
            for t in threads:
                t.start()
            if args.top:
                with connect(nodes[0], names[0], 3.0) as client:
                    top.run(client, View(client.address, names[0]))
                quit_early = any(t.is_alive() for t in threads)
                stop.set()  # q before the traders were done: they stop too
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
            elapsed = time.monotonic() - started
            if out is not None:  # what they would have printed, now that the screen is the demo's again
                out.close()
                print(Path(out.name).read_text(), end="")
            statuses = net.wait_converged()
            done = "the traders stopped (q)" if args.top and quit_early else "all orders done"
            print(f"\n{done} after {elapsed:.1f}s; every replica converged:")
            for node in nodes:
                s = statuses[node.id]
                print(f"  {node.id}: hash {s['hash']}  orders {s['orders']}  fills {s['fills']}  resting {s['open_orders']}")
            with nodes[0].client() as client:
                book = client.book(depth=5)
            print("\nthe book (the same on every node), best 5 levels:")
            print(f"  {'bids':>28}   | {'asks':<28}")
            for i in range(max(len(book["bids"]), len(book["asks"]))):
                bid = book["bids"][i] if i < len(book["bids"]) else None
                ask = book["asks"][i] if i < len(book["asks"]) else None
                left = f"{bid[1]} BTC @ {bid[0]}" if bid else ""
                right = f"{ask[0]} @ {ask[1]} BTC" if ask else ""
                print(f"  {left:>28}   | {right:<28}")
        except KeyboardInterrupt:
            stop.set()
            print("\ninterrupted; stopping the nodes")
    print("nodes stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
