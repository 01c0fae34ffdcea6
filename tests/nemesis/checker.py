"""What must hold at the end of a run, judged from the history and every replica.

``read`` takes what each replica holds (its status, every fill, and every order
the history or any replica's fills names); ``check`` is pure, and says what is
wrong, one line per finding:

* every acknowledged order is on every replica, as it was placed, with at least
  the fills its reply named; retries of one client order id named one order;
* an acknowledged cancel is final: the order stays cancelled, with what it had filled
  and at most what was then pending to makers;
* on every replica each order's ``filled`` is the sum of its fills and at most its
  quantity; each fill has one buyer and one seller, at the maker's price, within
  the taker's limit; so what was bought equals what was sold;
* all replicas are identical (state hash and clock), ready, quiet and uncrossed;
* every error a client got is one the protocol names (zmqex.protocol), or a timeout.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from zmqex import protocol
from zmqex.client import Client
from zmqex.errors import UnknownOrder, ZmqexError

from tests.nemesis.history import FAIL, INFO, OK, Op

#: Codes a client may get: the node's error codes, and the client's own timeout.
NAMED_ERRORS = frozenset(protocol.ERROR_CODES) | {"timeout"}
PAGE = 1_000


@dataclass
class Replica:
    node: str
    status: dict[str, Any] | None = None
    fills: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # None: unknown here
    error: str = ""  # why it could not be read in full


@dataclass
class Result:
    problems: list[str]
    acked: int  # orders acknowledged
    checked: int  # (order, replica) pairs checked
    fills: int
    errors: Counter[str]  # client errors by code


def read(nodes: list[str], connect: Callable[[str], Client], acked: set[str]) -> dict[str, Replica]:
    """Every replica's status, fills, and the orders named by ``acked`` or by any replica's fills."""
    replicas = {node: Replica(node) for node in nodes}
    _each(nodes, lambda node: _read_fills(replicas[node], connect))
    wanted = set(acked)
    for replica in replicas.values():
        for fill in replica.fills:
            wanted.update((fill["maker"], fill["taker"]))
    _each(nodes, lambda node: _read_orders(replicas[node], connect, sorted(wanted)))
    return replicas


def _each(nodes: list[str], job: Callable[[str], None]) -> None:
    """Run ``job`` for every node at once (one thread each: the nodes answer in parallel)."""
    threads = [threading.Thread(target=job, args=(node,), daemon=True) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)


def _read_fills(replica: Replica, connect: Callable[[str], Client]) -> None:
    try:
        with connect(replica.node) as client:
            replica.status = client.status()
            since = 0
            for _ in range(100_000):  # bounded: a page is 1,000 fills
                page = client.trades(since=since, limit=PAGE)
                replica.fills.extend(page.items)
                if not page.more:
                    break
                since = page.next
    except ZmqexError as exc:
        replica.error = f"cannot read fills: {exc}"


def _read_orders(replica: Replica, connect: Callable[[str], Client], wanted: list[str]) -> None:
    try:
        with connect(replica.node) as client:
            for oid in wanted:
                try:
                    replica.orders[oid] = dict(client.order(oid))
                except UnknownOrder:
                    replica.orders[oid] = None
    except ZmqexError as exc:
        replica.error = f"cannot read orders: {exc}"


# --- the checks ------------------------------------------------------------------------------


class Findings:
    """Problems grouped by kind, so that one broken replica gives a few lines, not thousands."""

    SHOWN = 3

    def __init__(self) -> None:
        self._groups: dict[str, list[str]] = {}

    def add(self, kind: str, text: str) -> None:
        self._groups.setdefault(kind, []).append(text)

    def lines(self) -> list[str]:
        out = []
        for kind, texts in self._groups.items():
            out += texts[:self.SHOWN]
            if len(texts) > self.SHOWN:
                out.append(f"... and {len(texts) - self.SHOWN} more: {kind}")
        return out


def check(ops: list[Op], replicas: dict[str, Replica]) -> Result:
    problems = Findings()
    acked = _acknowledged(ops, problems)
    cancels = {op.result["order_id"]: op.result for op in ops
               if op.op == "cancel" and op.outcome == OK and op.result is not None}
    checked = 0
    for node, replica in sorted(replicas.items()):
        if replica.error:
            problems.add(f"{node}: unreadable", f"{node}: {replica.error}")
            continue
        checked += _check_replica(replica, acked, cancels, problems)
    _check_identical(replicas, problems)
    errors = _check_errors(ops, problems)
    fills = max((len(r.fills) for r in replicas.values()), default=0)
    return Result(problems.lines(), len(acked), checked, fills, errors)


def _acknowledged(ops: list[Op], problems: Findings) -> dict[str, tuple[Op, dict[str, Any]]]:
    """Order id -> the ok place that acknowledged it (its latest reply); retries must agree."""
    acked: dict[str, tuple[Op, dict[str, Any]]] = {}
    by_coid: dict[tuple[str, str], str] = {}
    for op in ops:
        if op.op != "place" or op.outcome != OK or op.result is None:
            continue
        oid, key = op.result["order_id"], (op.trader, op.args["client_order_id"])
        if by_coid.setdefault(key, oid) != oid:
            problems.add("acknowledged twice", f"client order id {key[1]} of {key[0]} at {op.node} acknowledged "
                                               f"as two orders: {by_coid[key]} and {oid} (a retry placed twice)")
        acked[oid] = (op, op.result)
    return acked


def _check_replica(replica: Replica, acked: dict[str, tuple[Op, dict[str, Any]]],
                   cancels: dict[str, dict[str, Any]], problems: Findings) -> int:
    """The checks on one replica's fills and orders; how many acknowledged orders it checked."""
    node, orders = replica.node, replica.orders

    def bad(kind: str, text: str) -> None:
        problems.add(f"{node}: {kind}", f"{node}: {text}")

    fill_ids = set()
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for fill in replica.fills:
        fid, price = fill["id"], fill["price"]
        fill_ids.add(fid)
        filled[fill["maker"]] += Decimal(fill["qty"])
        filled[fill["taker"]] += Decimal(fill["qty"])
        maker, taker = orders.get(fill["maker"]), orders.get(fill["taker"])
        if maker is None or taker is None:
            bad("fills name unknown orders",
                f"fill {fid} names an order it does not hold ({fill['maker'] if maker is None else fill['taker']})")
            continue
        if maker["side"] == taker["side"]:
            bad("fills with two sides alike", f"fill {fid} has two {maker['side']} sides")
        if price != maker["price"]:
            bad("fills not at the maker's price", f"fill {fid} at {price}, not its maker's price {maker['price']}")
        if taker["price"] is not None and _worse(Decimal(price), Decimal(taker["price"]), taker["side"]):
            bad("fills beyond the taker's limit", f"fill {fid} at {price} beyond its taker's limit {taker['price']}")
    bought = sold = Decimal(0)
    for oid, order in orders.items():
        if order is None:
            continue
        got = Decimal(order["filled"])
        if got != filled.get(oid, Decimal(0)):
            bad("filled is not the sum of fills", f"order {oid} says filled {order['filled']}, "
                                                  f"its fills sum to {filled.get(oid, 0)}")
        if got > Decimal(order["qty"]):
            bad("over-filled", f"order {oid} over-filled: {order['filled']} of {order['qty']}")
        if order["side"] == "buy":
            bought += got
        else:
            sold += got
    if bought != sold:
        bad("bought is not sold", f"bought {bought} but sold {sold}")
    for oid, (op, reply) in acked.items():
        order = orders.get(oid)
        if order is None:
            bad("acknowledged orders missing", f"acknowledged order {oid} is missing (placed by {op.trader} at "
                                               f"{op.node} at {op.start:.1f}s as {op.args['client_order_id']})")
            continue
        for key in ("side", "price", "qty"):
            if order[key] != reply[key]:
                bad("orders not as acknowledged", f"order {oid} has {key} {order[key]}, acknowledged {reply[key]}")
        if Decimal(order["filled"]) < Decimal(reply["filled"]):
            bad("filled less than acknowledged",
                f"order {oid} filled {order['filled']}, less than the {reply['filled']} its reply acknowledged")
        lost = [f for f in reply["fills"] if f not in fill_ids]
        if lost:
            bad("acknowledged fills missing", f"fills {lost} acknowledged to the taker of {oid} are missing")
    for oid, reply in cancels.items():
        # A cancel closes what rests; what was in flight to makers (``pending``) settles later
        # (docs/protocol.md, cancel), and may fill the order after all.  Nothing more may fill.
        order = orders.get(oid)
        if order is None or reply["status"] != "cancelled":
            continue
        got, least = Decimal(order["filled"]), Decimal(reply["filled"])
        most = least + Decimal(reply["pending"])
        if not least <= got <= most or order["status"] != ("filled" if got == Decimal(order["qty"]) else "cancelled"):
            bad("cancels not final", f"order {oid} was acknowledged cancelled with {reply['filled']} filled and "
                                     f"{reply['pending']} pending, but is {order['status']}, {order['filled']} filled")
    return len(acked)


def _worse(price: Decimal, limit: Decimal, side: str) -> bool:
    return price > limit if side == "buy" else price < limit


def _check_identical(replicas: dict[str, Replica], problems: Findings) -> None:
    states = {}
    for node, replica in sorted(replicas.items()):
        status = replica.status
        if status is None:
            problems.add("no status", f"{node}: no status")
            continue
        states[node] = (status["hash"], tuple(sorted(status["vc"].items())))
        if not status["ready"]:
            problems.add("not ready", f"{node}: not ready at the end")
        if status["crossed"]:
            problems.add("crossed", f"{node}: book crossed at the end")
        if status["in_flight"]:
            problems.add("in flight", f"{node}: {status['in_flight']} takes still in flight at the end")
    if len(set(states.values())) > 1:
        problems.add("differ", "replicas differ: " + "; ".join(f"{node} hash {state[:12]} vc {dict(vc)}"
                                                               for node, (state, vc) in states.items()))


def _check_errors(ops: list[Op], problems: Findings) -> Counter[str]:
    """Client errors by code; each code the protocol does not name is a problem."""
    errors: Counter[str] = Counter()
    unnamed: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.outcome in (FAIL, INFO) and op.error is not None:
            code = op.error["code"] or op.error["type"]
            errors[code] += 1
            if op.error.get("unexpected") or code not in NAMED_ERRORS:
                unnamed[code].append(op)
    for code, found in sorted(unnamed.items()):
        op, error = found[0], found[0].error or {}
        problems.add("unnamed errors", f"{len(found)} client errors {code!r} are none the protocol names, e.g. "
                                       f"{op.op} at {op.node} at {op.start:.1f}s: {error['type']}: {error['message']}")
    return errors
