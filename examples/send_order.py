#!/usr/bin/env python3
"""Send one order to a zmqex node and print what happened to it.

    python examples/send_order.py buy 0.5 50000          # limit order, good till cancelled
    python examples/send_order.py sell 0.1               # market order
    python examples/send_order.py --node 127.0.0.1:7002 buy 1 49999.99 --post-only
    python examples/send_order.py buy 0.5 50000 --ioc --json
    python examples/send_order.py --trader alice sell 1 50100   # alice may cancel it from any connection

Exit status: 0 when the node took the order, 2 on bad input, 1 when the node
could not be reached in time or refused the order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import zmqex  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zmqex import protocol
from zmqex.client import Client
from zmqex.core.events import Tif
from zmqex.errors import InvalidAmount, InvalidRequest, Timeout, ZmqexError
from zmqex.protocol import OrderView

PROG = "send_order"


def keyed(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """The Client's ``secret`` and ``server`` from --keys DIR and --node-id (None, None: no keys)."""
    if not args.keys:
        return None, None
    secrets = sorted(Path(args.keys).glob("*.key_secret"))
    if len(secrets) != 1 or not args.node_id:
        raise SystemExit(f"--keys {args.keys} needs exactly one *.key_secret in it, and --node-id")
    return secrets[0], Path(args.keys) / "members" / f"{args.node_id}.key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Send one order to a zmqex node.")
    parser.add_argument("--node", default="127.0.0.1:7001", help="HOST:PORT of the node (default %(default)s)")
    parser.add_argument("side", choices=protocol.SIDES)
    parser.add_argument("qty", help="quantity in BTC, up to 8 decimals")
    parser.add_argument("price", nargs="?", help="limit price in USD, up to 2 decimals; omit for a market order")
    tif = parser.add_mutually_exclusive_group()
    tif.add_argument("--ioc", dest="tif", action="store_const", const=Tif.IOC.value, help="immediate or cancel")
    tif.add_argument("--post-only", dest="tif", action="store_const", const=Tif.POST_ONLY.value,
                     help="rest only; refused if it would trade")
    parser.add_argument("--json", action="store_true", help="print the node's result as JSON")
    parser.add_argument("--trader", help="the trader the order belongs to (default: this connection alone)")
    parser.add_argument("--keys", metavar="DIR",
                        help="a keyed node: the trader's key directory, holding NAME.key_secret and "
                             "members/NODE.key (as zmqex-keygen --nodes ... --traders NAME writes it)")
    parser.add_argument("--node-id", help="with --keys: the id of the node at --node (picks its key)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the node (default 5)")
    args = parser.parse_args(argv)
    tif_name = args.tif or protocol.DEFAULT_TIF

    try:  # everything that can be wrong with the input, before anything is sent: the client's own checks
        protocol.place_args(args.side, args.qty, args.price, tif_name)
        secret, server = keyed(args)
        client = Client(args.node, timeout=args.timeout, trader=args.trader, secret=secret, server=server)
    except (InvalidAmount, InvalidRequest) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2

    with client:
        try:
            result = client.place(args.side, args.qty, args.price, tif=tif_name)
        except Timeout as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        except ZmqexError as exc:
            print(f"{PROG}: node {args.node} refused the order: {exc.code}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; the order may still have been placed", file=sys.stderr)
            return 130

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(describe(result))
    return 0


def describe(order: OrderView) -> str:
    """A few readable lines about a placed order (the client has checked every field)."""
    at = "at market" if order["price"] is None else f"@ {order['price']}"
    lines = [f"order {order['order_id']}: {order['side']} {btc(order['qty'])} BTC {at} -> {order['status']}"]
    for fill in order["fills"]:
        lines.append(f"  filled {btc(fill['qty'])} BTC @ {fill['price']} from maker {fill['maker']} (fill {fill['id']})")
    if not order["fills"]:
        lines.append("  no fills")
    resting, pending = btc(order["open"]), btc(order["pending"])
    if resting != "0":
        lines.append(f"  rests: {resting} BTC {at} in the book")
    else:
        lines.append(f"  nothing rests (filled {btc(order['filled'])} BTC)")
    if pending != "0":
        lines.append(f"  pending: {pending} BTC still settling with makers")
    return "\n".join(lines)


def btc(text: str) -> str:
    """``"0.50000000"`` -> ``"0.5"``: an amount as a person writes it."""
    return text.rstrip("0").rstrip(".") if "." in text else text


if __name__ == "__main__":
    sys.exit(main())
