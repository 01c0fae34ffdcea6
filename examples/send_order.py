#!/usr/bin/env python3
"""Send one order to a zmqex node and print what happened to it; or cancel, list, or watch.

    python examples/send_order.py buy 0.5 50000          # limit order, good till cancelled
    python examples/send_order.py sell 0.1               # market order
    python examples/send_order.py --node 127.0.0.1:7002 buy 1 49999.99 --post-only
    python examples/send_order.py buy 0.5 50000 --ioc --json
    python examples/send_order.py buy 2 50010 --fok
    python examples/send_order.py --trader alice sell 1 50100 --client-order-id a-1   # safe to send again
    python examples/send_order.py --trader alice cancel --client-order-id a-1
    python examples/send_order.py --trader alice cancel a:7
    python examples/send_order.py --trader alice amend --client-order-id a-1 --qty 0.5   # keeps its place
    python examples/send_order.py --trader alice amend a:7 --price 50050                # a new place
    python examples/send_order.py --trader alice cancel-all --side buy
    python examples/send_order.py --trader alice open-orders
    python examples/send_order.py --trader alice my-fills --since 40
    python examples/send_order.py trades --all
    python examples/send_order.py --trader alice watch orders --cod 5000   # alice's orders go if this stops
    python examples/send_order.py watch book --depth 5 --for 30

Exit status: 0 when the node did what was asked, 2 on bad input, 1 when the node
could not be reached in time or refused, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

try:
    import zmqex  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zmqex import protocol
from zmqex.client import Client
from zmqex.core.events import Tif
from zmqex.errors import InvalidAmount, InvalidRequest, StreamEnded, Timeout, ZmqexError
from zmqex.protocol import FillView, MyFillView, OrderView

PROG = "send_order"
COMMANDS = ("cancel", "amend", "cancel-all", "open-orders", "my-fills", "trades", "watch")


def keyed(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """The Client's ``secret`` and ``server`` from --keys DIR and --node-id (None, None: no keys)."""
    if not args.keys:
        return None, None
    secrets = sorted(Path(args.keys).glob("*.key_secret"))
    if len(secrets) != 1 or not args.node_id:
        raise SystemExit(f"--keys {args.keys} needs exactly one *.key_secret in it, and --node-id")
    return secrets[0], Path(args.keys) / "members" / f"{args.node_id}.key"


def common() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--node", default="127.0.0.1:7001", help="HOST:PORT of the node (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the node's result as JSON")
    parser.add_argument("--trader", help="the trader the order belongs to (default: this connection alone)")
    parser.add_argument("--keys", metavar="DIR",
                        help="a keyed node: the trader's key directory, holding NAME.key_secret and "
                             "members/NODE.key (as zmqex-keygen --nodes ... --traders NAME writes it)")
    parser.add_argument("--node-id", help="with --keys: the id of the node at --node (picks its key)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the node (default 5)")
    return parser


def place_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, parents=[common()], description="Send one order to a zmqex node "
                                     f"(or run one of: {', '.join(COMMANDS)}; COMMAND --help says more).")
    parser.add_argument("side", choices=protocol.SIDES)
    parser.add_argument("qty", help="quantity in BTC, up to 8 decimals")
    parser.add_argument("price", nargs="?", help="limit price in USD, up to 2 decimals; omit for a market order")
    tif = parser.add_mutually_exclusive_group()
    tif.add_argument("--ioc", dest="tif", action="store_const", const=Tif.IOC.value, help="immediate or cancel")
    tif.add_argument("--post-only", dest="tif", action="store_const", const=Tif.POST_ONLY.value,
                     help="rest only; refused if it would trade")
    tif.add_argument("--fok", dest="tif", action="store_const", const=Tif.FOK.value,
                     help="fill or kill: all of it at once (from any number of makers) or nothing")
    tif.add_argument("--gtd", dest="expire_at", type=int, metavar="EPOCH_MS",
                     help="good till date: expires at EPOCH_MS (milliseconds since 1970)")
    parser.add_argument("--client-order-id", metavar="ID", help=f"your id for the order ({protocol.CLIENT_ORDER_ID_RULE}): "
                                                                "sent again, it places nothing new")
    parser.add_argument("--stp", choices=protocol.STPS, default=protocol.DEFAULT_STP,
                        help="if it meets a resting order of the same trader (default %(default)s)")
    parser.add_argument("--protection-bps", type=int, metavar="BPS",
                        help="an ioc, fok or market order trades within BPS basis points of the best price "
                             f"(default {protocol.DEFAULT_PROTECTION_BPS})")
    parser.add_argument("--accepted", action="store_true",
                        help="answer as soon as the order is placed, before its matching is done")
    return parser


def command_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} {command}", parents=[common()])
    parser.add_argument("command", choices=[command])
    if command in ("cancel", "amend"):
        parser.add_argument("order_id", nargs="?", help="the order's id, like a:17")
        parser.add_argument("--client-order-id", metavar="ID", help="or your id for it")
    if command == "amend":
        parser.add_argument("--qty", help="the new total quantity in BTC (lower: the order keeps its place)")
        parser.add_argument("--price", help="the new price in USD (a new place in the book, a new order id)")
    elif command == "cancel-all":
        parser.add_argument("--side", choices=protocol.SIDES, help="only this side (default both)")
    elif command == "watch":
        parser.add_argument("stream", choices=protocol.STREAMS)
        parser.add_argument("--depth", type=int, help=f"book levels per side (default {protocol.DEFAULT_DEPTH})")
        parser.add_argument("--for", dest="seconds", type=float, help="stop after this many seconds")
        parser.add_argument("--cod", type=int, metavar="MS",
                            help="cancel this trader's orders at the node if this program is silent for MS "
                                 "milliseconds (it sends a heartbeat every second)")
    else:
        parser.add_argument("--since", type=int, default=0, help="the cursor to start after (a page's next)")
        parser.add_argument("--limit", type=int, default=protocol.DEFAULT_PAGE, help="items per page")
        parser.add_argument("--all", action="store_true", help="every page, not just the first")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _, rest = common().parse_known_args(argv)
    command = rest[0] if rest and rest[0] in COMMANDS else None
    args = (command_parser(command) if command else place_parser()).parse_args(argv)

    try:  # everything that can be wrong with the input, before anything is sent: the client's own checks
        if command is None:
            tif = args.tif or ("gtd" if args.expire_at is not None else protocol.DEFAULT_TIF)
            order = protocol.place_args(args.side, args.qty, args.price, tif, client_order_id=args.client_order_id,
                                        expire_at=args.expire_at, ack="accepted" if args.accepted else "done",
                                        stp=args.stp, protection_bps=args.protection_bps)
        secret, server = keyed(args)
        client = Client(args.node, timeout=args.timeout, trader=args.trader, secret=secret, server=server)
    except (InvalidAmount, InvalidRequest) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2

    with client:
        try:
            if command is None:
                result = client.place(order["side"], order["qty"], order.get("price"), order["tif"],
                                      client_order_id=order.get("client_order_id"),
                                      expire_at=order.get("expire_at"), ack=order.get("ack", protocol.DEFAULT_ACK),
                                      stp=args.stp, protection_bps=args.protection_bps)
                print(json.dumps(result, indent=2) if args.json else describe(result))
            elif command == "watch":
                watch(client, args)
            else:
                run(client, command, args)
        except (InvalidAmount, InvalidRequest) as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 2
        except Timeout as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        except StreamEnded as exc:
            print(f"{PROG}: the stream ended: {exc.code}: {exc}", file=sys.stderr)
            return 1
        except ZmqexError as exc:
            print(f"{PROG}: node {args.node} refused: {exc.code}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            if command is None:
                print(f"{PROG}: interrupted; the order may still have been placed", file=sys.stderr)
            return 130
    return 0


def run(client: Client, command: str, args: argparse.Namespace) -> None:
    """cancel, cancel-all and the paged queries: print what the node answered."""
    if command == "cancel":
        order = client.cancel(args.order_id, client_order_id=args.client_order_id)
        print(json.dumps(order, indent=2) if args.json else describe(order))
    elif command == "amend":
        order = client.amend(args.order_id, client_order_id=args.client_order_id, qty=args.qty, price=args.price)
        print(json.dumps(order, indent=2) if args.json else describe(order))
    elif command == "cancel-all":
        cancelled = client.cancel_all(args.side)
        print(json.dumps(cancelled) if args.json else f"cancelled {len(cancelled)}: {' '.join(cancelled)}".strip())
    else:
        query = {"open-orders": client.open_orders, "my-fills": client.my_fills, "trades": client.trades}[command]
        since = args.since
        while True:
            page = query(since, args.limit)
            for item in page.items:
                print(json.dumps(item) if args.json else line(item))
            since = page.next
            if not (args.all and page.more):
                break
        if not args.json:
            print(f"next: {since}{' (more after it)' if page.more else ''}")


def watch(client: Client, args: argparse.Namespace) -> None:
    """Print a stream's updates until --for seconds have passed (or forever), keeping --cod alive."""
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    with client.subscribe(args.stream, args.depth) as subscription:
        if args.cod:
            client.cancel_on_disconnect(args.cod)
        while deadline is None or time.monotonic() < deadline:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            update = subscription.poll(wait)
            if args.cod:
                client.heartbeat()
            if update is not None:
                print(json.dumps(update) if args.json else line(update), flush=True)


def describe(order: OrderView) -> str:
    """A few readable lines about a placed order (the client has checked every field)."""
    at = "at market" if order["price"] is None else f"@ {order['price']}"
    named = f" ({order['client_order_id']})" if order["client_order_id"] else ""
    lines = [f"order {order['order_id']}{named}: {order['side']} {btc(order['qty'])} BTC {at} -> {order['status']}"
             + (f" ({order['reason']})" if order["reason"] and order["status"] != "filled" else "")]
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


def line(item: Any) -> str:
    """One line about an order, a fill, an order's change or the book."""
    if "bids" in item:  # the book
        bid = item["bids"][0][:2] if item["bids"] else ["-", "-"]
        ask = item["asks"][0][:2] if item["asks"] else ["-", "-"]
        return f"bid {btc(str(bid[1]))} @ {bid[0]}   ask {btc(str(ask[1]))} @ {ask[0]}"
    if "event" in item:  # a change to one of the trader's orders
        order = item["order"]
        return f"{item['event']:6} {order['order_id']} {order['status']} filled {btc(order['filled'])}" + (
            f" ({order['reason']})" if order["reason"] else "")
    if "maker" in item:
        return fill_line(item)
    return describe_open(item)


def fill_line(fill: FillView | MyFillView) -> str:
    mine = ""
    if "liquidity" in fill:  # a fill of the trader's own order (my_fills): a TypedDict union does not narrow on "in"
        own = cast(MyFillView, fill)
        mine = f" {own['liquidity']} {own['side']} {own['order_id']}"
    return f"fill {fill['id']}: {btc(fill['qty'])} BTC @ {fill['price']}, taker {fill['taker_side']}{mine}"


def describe_open(order: OrderView) -> str:
    named = f" ({order['client_order_id']})" if order["client_order_id"] else ""
    return (f"{order['order_id']}{named}: {order['side']} {btc(order['open'])} of {btc(order['qty'])} BTC "
            f"@ {order['price']} {order['status']}")


def btc(text: str) -> str:
    """``"0.50000000"`` -> ``"0.5"``: an amount as a person writes it."""
    return text.rstrip("0").rstrip(".") if "." in text else text


if __name__ == "__main__":
    sys.exit(main())
