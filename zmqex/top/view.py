"""What ``zmqex-top`` shows, as a value, and how each thing the node says changes it.

A :class:`View` holds the latest book (from the ``book`` stream), the trade
tape (the newest ``trades`` page, then the ``trades`` stream), the trader's
open orders (an ``open_orders`` page, then the ``orders`` stream), and the
node's ``status`` (its peers, clock and state hash).  Its methods take what
the client returned (already checked by :mod:`zmqex.protocol`) and change the
view; they do no I/O and read no clock (``now`` comes in), so a test can
drive a view with made-up messages and look at it through
:func:`zmqex.top.render.screen`.

Order changes may arrive around the page that lists the open orders (the
stream starts first, so none is missed): a change is taken only if it is not
older than what the view holds (``filled`` only grows, and a closed order
stays closed), so the view settles on the latest state either way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zmqex.core import money
from zmqex.protocol import BookView, FillView, OrderEvent, OrderUpdate

TAPE = 50  # trades kept (the screen shows what fits)
CLOSED = ("filled", "cancelled", "expired")  # statuses after which an order leaves "my orders"
CLOSED_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class PeerLine:
    """One peer, as the node's ``status`` tells of it."""

    name: str
    up: bool
    lag: int | None  # events of ours its latest heartbeat did not show (None: the node does not say)
    ahead: int | None  # events its latest heartbeat showed that the node lacks
    hash: str | None  # the state hash its latest heartbeat carried (None: it was busy, or the node does not say)


@dataclass
class View:
    address: str  # the node's HOST:PORT
    trader: str | None = None  # whose orders are "mine" (None: none are shown)
    node: str = ""  # the node's id, once its status came
    ready: bool | None = None
    hash: str = ""
    events: int = 0  # delivered at the node: the sum of its vector clock
    open_orders: int = 0  # resting in the node's book, every owner's
    book: BookView | None = None
    trades: deque[FillView] = field(default_factory=lambda: deque(maxlen=TAPE))  # newest first
    orders: dict[str, OrderUpdate] = field(default_factory=dict)  # my open orders, by id
    # Orders seen closed, newest last (a dict as an ordered set, at most CLOSED_KEPT): a change
    # older than the close (its "placed", after the page) must not bring one back.
    closed: dict[str, None] = field(default_factory=dict)
    peers: list[PeerLine] = field(default_factory=list)
    problem: str = ""  # what is wrong with the connection now, "" if nothing
    updated: int = 0  # wall clock (epoch ms) of the latest change, for the footer

    # --- what the node says -------------------------------------------------------------

    def on_book(self, book: BookView, now: int) -> None:
        self.book = book
        self.updated = now

    def on_trades(self, fills: Iterable[FillView], now: int) -> None:
        """Fills in the order the node learned them (a page, or one from the stream)."""
        known = {fill["id"] for fill in self.trades}
        for fill in fills:
            if fill["id"] not in known:
                self.trades.appendleft(fill)
                known.add(fill["id"])
        self.updated = now

    def on_open_orders(self, orders: Iterable[OrderUpdate], now: int) -> None:
        """A listing of the trader's open orders: each is taken unless the view knows it newer."""
        for order in orders:
            self._take(order)
        self.updated = now

    def on_order_event(self, change: OrderEvent, now: int) -> None:
        self._take(change["order"])
        self.updated = now

    def on_status(self, status: dict[str, Any], now: int) -> None:
        """The node's ``status`` reply (a map the node may add to: read with care)."""
        self.node = str(status.get("node", ""))
        self.ready = bool(status.get("ready"))
        self.hash = str(status.get("hash", ""))
        vc = status.get("vc")
        self.events = sum(n for n in vc.values() if type(n) is int) if isinstance(vc, dict) else 0
        self.open_orders = int(status.get("open_orders", 0))
        peers = status.get("peers")
        self.peers = [
            PeerLine(str(name), bool(info.get("up")), _count(info.get("lag")), _count(info.get("ahead")),
                     info.get("hash") if isinstance(info.get("hash"), str) else None)
            for name, info in sorted(peers.items()) if isinstance(info, dict)
        ] if isinstance(peers, dict) else []
        self.updated = now

    def on_problem(self, text: str) -> None:
        """Something is wrong with the connection (the streams resubscribe); "" once it is fine again."""
        self.problem = text

    def reset_streams(self) -> None:
        """The streams are starting over: what they fed is re-read from their first messages."""
        self.book = None
        self.orders.clear()

    # --- inside -------------------------------------------------------------------------

    def _take(self, order: OrderUpdate) -> None:
        oid = order["order_id"]
        held = self.orders.get(oid)
        if held is not None and _sats(order["filled"]) < _sats(held["filled"]):
            return  # older than what we hold
        if order["status"] in CLOSED:
            self.orders.pop(oid, None)
            self.closed[oid] = None
            if len(self.closed) > CLOSED_KEPT:
                del self.closed[next(iter(self.closed))]
        elif oid not in self.closed:
            self.orders[oid] = order


def _sats(qty: str) -> int:
    """A quantity the node sent, in satoshis; zero too (``money.parse_qty`` takes an order's, never zero)."""
    return 0 if not qty.strip("0.") else money.parse_qty(qty)


def _count(value: object) -> int | None:
    return value if type(value) is int else None
