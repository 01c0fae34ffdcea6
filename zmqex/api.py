"""The node's side of the client protocol, without sockets.

What goes on the wire (ops, fields, limits, replies, error codes, the views
of an order and a fill) is :mod:`zmqex.protocol`'s, described in
docs/protocol.md; this module only serves it.  :class:`ClientApi` turns one
request frame into a call on the replica and the replica's answer into a
reply frame, with decimal strings at the edge and integer cents and satoshis
inside.  It never raises on bad input: whatever a
client sends, it gets back an error reply, and the replica is not touched.

A ``place`` is answered later, when the replica's taker flow has finished:
``handle`` then returns None and the node calls ``finish`` with the replica's
:class:`~zmqex.core.outputs.Reply`, whose token is ``(identity, request id, trader)``.

Traders.  Every request acts for one trader, who owns the orders it places
(only they, or an operator, may cancel them).  The node says who is on a
connection (``user``, read from ZAP): ``"t:NAME"`` is trader NAME, ``"o:NAME"``
an operator (may cancel any order of this node; every own order is "mine" to
it), and a request's ``trader`` field must then be that NAME.  ``None`` means
the node runs without keys: the trader is whatever the request's ``trader``
field says (unauthenticated), or, without one, the connection itself
(``"conn-" + identity.hex()``, so it loses its orders' ownership when it
reconnects).  Operators' orders are kept under ``"o:NAME"``, which no trader's
name can equal.

Limits (:mod:`zmqex.limits`): per trader first, so one trader's flood is
refused before it reaches what the node keeps for the others.  Costs per
request: O(1) (a dict entry per trader with places in flight, per trader with
a bucket not yet full; idle buckets are swept, amortised O(1)).  ``fills`` is
O(limit), ``book`` O(depth).  ``now`` (integer ms, monotonic) comes from the
node: the api reads no clock.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zmqex import protocol
from zmqex.core import wire
from zmqex.core.events import Event, Fill, Side
from zmqex.core.queries import fill_info
from zmqex.core.replica import Replica
from zmqex.errors import Busy, DecodeError, LimitReached, LocalError, NotOwner, RateLimited, RemoteError
from zmqex.limits import DEFAULT, Limits
from zmqex.protocol import VERSION as VERSION  # re-exported: node.py reads api.VERSION

log = logging.getLogger(__name__)

_TOKEN = 1000  # what one request costs, in thousandths of a token: buckets count integers
_SWEEP_MIN = 1024  # buckets kept before the first sweep of idle ones

Token = tuple[bytes, Any, str]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the connection, the trader it acts for, and whether an operator."""

    identity: bytes
    trader: str
    operator: bool = False


class ClientApi:
    def __init__(self, replica: Replica, limits: Limits = DEFAULT) -> None:
        self.replica = replica
        self.limits = limits
        self.pending = 0  # place requests awaiting their flow, all traders
        self._pending_of: dict[str, int] = {}  # trader -> its places awaiting their flow (no zeros)
        self._buckets: dict[str, list[int]] = {}  # trader -> [thousandths of a token, at ms]
        self._sweep_at = _SWEEP_MIN
        self.watchers: dict[bytes, Any] = {}  # client identity -> its watch request id
        # one handler per op of the protocol, named after it: no op is listed here
        self._ops: dict[str, Callable[[Caller, Any, dict[str, Any]], Mapping[str, Any] | None]] = {
            op: getattr(self, "_" + op) for op in protocol.OPS}
        self.endpoints: dict[str, str] = {}  # peer -> endpoint, filled in by the node for status

    def handle(self, identity: bytes, frame: bytes, user: str | None = None, now: int = 0) -> bytes | None:
        """Answer one request frame; None when the answer comes later (``place``).

        ``user`` is the principal the node authenticated on this connection (None:
        a node without keys); ``now`` the node's monotonic clock in ms, for the rate limit.
        """
        request_id = None
        try:
            request = wire.unpack(frame, protocol.MAX_REQUEST)
            if type(request) is not dict:
                raise DecodeError(f"a request must be a msgpack map, got {type(request).__name__}")
            request_id = protocol.request_id(request.get("id"))
            caller = self._caller(identity, user, request.get("trader"))
            self._charge(caller.trader, now)
            if request.get("v") != VERSION:
                return error(request_id, protocol.UNSUPPORTED_VERSION, f"protocol version "
                             f"{wire.brief(request.get('v'), 20)} is not supported; this node speaks {VERSION}")
            op = request.get("op")
            handler = self._ops.get(op) if type(op) is str else None
            if handler is None:
                return error(request_id, protocol.UNKNOWN_OP,
                             f"unknown op {wire.brief(op, 30)}; one of {sorted(protocol.OPS)}")
            result = handler(caller, request_id, request)
            return None if result is None else wire.pack(protocol.ok_reply(request_id, result))
        except (LocalError, RemoteError) as exc:  # an InvariantViolation is our bug: it is not answered away
            log.debug("request %r from %r refused: %s", request_id, identity, exc)
            return error(request_id, exc.code, str(exc))

    def finish(self, token: Token, result: dict[str, Any]) -> tuple[bytes, bytes]:
        """The reply to a ``place`` whose flow has ended: (identity, frame)."""
        identity, request_id, trader = token
        self.pending -= 1
        left = self._pending_of[trader] - 1
        if left:
            self._pending_of[trader] = left
        else:
            del self._pending_of[trader]
        return identity, wire.pack(protocol.ok_reply(request_id, protocol.order_view(result)))

    def stream_fill(self, event: Event) -> list[tuple[bytes, bytes]]:
        """Frames for every watcher about a newly applied fill."""
        if not self.watchers or not isinstance(event.body, Fill):
            return []
        fill = protocol.fill_view(fill_info(event, self.replica.ledger))
        return [(identity, wire.pack(protocol.fill_message(watch_id, fill)))
                for identity, watch_id in self.watchers.items()]

    # --- who, and how often -------------------------------------------------------------

    def _caller(self, identity: bytes, user: str | None, named: Any) -> Caller:
        if named is not None:
            protocol.trader_name(named)
        if user is None:  # no keys: names are claimed, not proven (loopback only)
            return Caller(identity, named if named is not None else "conn-" + identity.hex())
        kind, _, name = user.partition(":")
        if kind not in ("t", "o") or not protocol.is_trader_name(name):
            log.warning("connection %r authenticated as %r: neither t:NAME nor o:NAME", identity[:40], user[:80])
            raise NotOwner("this connection is authenticated as neither a trader nor an operator")
        if named is not None and named != name:
            raise NotOwner(f"this connection is authenticated as {name}; it may not act as another trader")
        return Caller(identity, name, False) if kind == "t" else Caller(identity, user, True)

    def _charge(self, trader: str, now: int) -> None:
        """Take one token from ``trader``'s bucket, or refuse the request (RateLimited)."""
        limits = self.limits
        full = limits.burst * _TOKEN
        bucket = self._buckets.get(trader)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            bucket = self._buckets[trader] = [full, now]
        elif now > bucket[1]:
            # rate_per_s tokens a second is rate_per_s thousandths of a token a millisecond
            bucket[0] = min(full, bucket[0] + (now - bucket[1]) * limits.rate_per_s)
            bucket[1] = now
        if bucket[0] < _TOKEN:
            raise RateLimited(f"more than {limits.rate_per_s} requests a second (bursts of {limits.burst}) "
                              f"from {_shown(trader)}; slow down")
        bucket[0] -= _TOKEN

    def _sweep(self, now: int) -> None:
        """Forget buckets that have refilled: a full bucket and none are the same (amortised O(1))."""
        full, rate = self.limits.burst * _TOKEN, self.limits.rate_per_s
        self._buckets = {t: b for t, b in self._buckets.items() if b[0] + max(0, now - b[1]) * rate < full}
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._buckets))

    # --- ops --------------------------------------------------------------------------

    def _place(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> None:
        limits, trader = self.limits, caller.trader
        mine = self._pending_of.get(trader, 0)
        if mine >= limits.pending_per_trader:
            raise Busy(f"{mine} orders of {_shown(trader)} are still matching; try again")
        if self.pending >= limits.pending_per_node:
            raise Busy(f"{self.pending} orders are still matching; try again")
        if (n := self.replica.open_orders(trader)) >= limits.open_per_trader:
            raise LimitReached(f"{_shown(trader)} has {n} open orders, the most this node allows; "
                               "cancel some first")
        if (n := self.replica.open_orders()) >= limits.open_per_node:
            raise LimitReached(f"this node holds {n} open orders of its traders, the most it allows; try later")
        side, qty, price, tif, expire_at = protocol.parse_place(req)
        self.replica.place(side, qty, price, tif, token=(caller.identity, request_id, trader), trader=trader,
                           expire_at=expire_at)
        self.pending += 1
        self._pending_of[trader] = mine + 1
        return None

    def _cancel(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> protocol.OrderView:
        oid = protocol.order_id_field(req.get("order_id"))
        return protocol.order_view(self.replica.cancel(oid, trader=caller.trader, operator=caller.operator))

    def _order(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> protocol.OrderView:
        oid = protocol.order_id_field(req.get("order_id"))
        info = self.replica.order_info(oid)
        return protocol.order_view(info, mine=self.replica.is_mine(oid, caller.trader, caller.operator))

    def _book(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> protocol.BookView:
        return book_view(self.replica, protocol.depth_field(req.get("depth", protocol.DEFAULT_DEPTH),
                                                            self.limits.book_depth))

    def _status(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        r = self.replica
        orders = r.ledger.orders.values()
        return {
            "node": r.id,
            "ready": not (r.awaiting_peers or r.amnesia),
            "peers": {p: {"up": info.up, "endpoint": self.endpoints.get(p)} for p, info in sorted(r.peers.items())},
            "vc": dict(r.clock.items_sorted()),
            "hash": r.ledger.state_hash(),
            "open_orders": len(r.ledger.book),
            "orders": len(orders),
            "fills": len(r.ledger.fills),
            "repaired": r.repaired,
            "in_flight": r.in_flight,
            "compacted": r.compacted,
            "counters": dict(r.counters),
            "crossed": r.ledger.book.crossed(),
        }

    def _fills(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        """The most recent ``limits.fills_reply`` fills, oldest first; ``truncated`` if there are more."""
        fills, most = self.replica.ledger.fills, self.limits.fills_reply
        recent = list(itertools.islice(reversed(fills.values()), most))  # O(most), not O(all fills)
        recent.reverse()
        return {"fills": [protocol.fill_view(fill_info(e, self.replica.ledger)) for e in recent], "truncated": len(fills) > most}

    def _watch(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        self.watchers[caller.identity] = request_id
        return {"watching": True}


# --- the book: integers inside, decimal strings outside ------------------------------------


def book_view(replica: Replica, depth: int) -> protocol.BookView:
    """Aggregated levels, best first; orders of down owners listed apart."""
    everyone_up = (all(peer.up for peer in replica.peers.values())
                   and not replica.removed and not replica.equivocators)
    bids, bids_down = _side_levels(replica, Side.BUY, depth, everyone_up)
    asks, asks_down = _side_levels(replica, Side.SELL, depth, everyone_up)
    return {"unavailable": {"bids": bids_down, "asks": asks_down}, "bids": bids, "asks": asks}


def _side_levels(replica: Replica, side: Side, depth: int,
                 everyone_up: bool) -> tuple[list[protocol.Level], list[protocol.Level]]:
    """(levels of owners up, levels of owners down) of one side, ``depth`` of each at most."""
    book = replica.ledger.book
    if everyone_up:  # the common case costs O(depth)
        return [protocol.level(p, q, n) for p, q, n in book.depth(side, depth)], []
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    for order in book.orders(side):
        target = up if replica.is_up(order.order_id.partition(":")[0]) else down
        if order.price not in target and len(target) >= depth:
            if len(up) >= depth and len(down) >= depth:
                break
            continue
        level = target.setdefault(order.price, [0, 0])
        level[0] += order.qty
        level[1] += 1
    return _levels(up), _levels(down)


def _levels(levels: dict[int, list[int]]) -> list[protocol.Level]:
    # dicts keep insertion order, and orders came best price first
    return [protocol.level(p, q, n) for p, (q, n) in levels.items()]


def error(request_id: Any, code: str, message: str) -> bytes:
    """An error reply frame (node.py answers with it when the api itself fails)."""
    return wire.pack(protocol.error_reply(request_id, code, message))


def _shown(trader: str) -> str:
    """A trader's name for a message to that trader (a connection's own name is long and says little)."""
    return "this connection" if trader.startswith("conn-") else f"trader {trader}"
