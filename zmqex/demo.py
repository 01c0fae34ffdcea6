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
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from decimal import Decimal

from zmqex.errors import LocalError, RemoteError
from zmqex.local import LocalNetwork, NodeProcess
from zmqex.protocol import OrderView

MID = Decimal("50000.00")


def trader(name: str, node: NodeProcess, orders: int, seed: int, lock: threading.Lock, stop: threading.Event) -> None:
    rng = random.Random(seed)
    with node.client(timeout=10.0, as_=name) as client:  # with keys, the node knows the trader by its key
        for _ in range(orders):
            if stop.is_set():
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
                    print(f"  {name}@{node.id}: {side} {qty} refused: {exc}")
                continue
            with lock:
                print(f"  {name}@{node.id}: {describe(side, qty, price if kind >= 0.1 else None, result)}")


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
    args = parser.parse_args(argv)
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
            threads = [
                threading.Thread(target=trader, args=(name, nodes[i % len(nodes)], args.orders,
                                                      args.seed * 1000 + i, lock, stop))
                for i, name in enumerate(names)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
            elapsed = time.monotonic() - started
            statuses = net.wait_converged()
            print(f"\nall orders done in {elapsed:.1f}s; every replica converged:")
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
