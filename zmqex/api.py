"""The client protocol (docs/protocol.md), without sockets.

:class:`ClientApi` turns one request frame into a call on the replica and the
replica's answer into a reply frame, with decimal strings at the edge and
integer cents and satoshis inside.  It never raises on bad input: whatever a
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
import re
from dataclasses import dataclass
from typing import Any

from zmqex.core import money, wire
from zmqex.core.events import Event, Fill, Side, Tif
from zmqex.core.replica import Replica, fill_info
from zmqex.errors import Busy, DecodeError, InvalidRequest, LimitReached, NotOwner, RateLimited, ZmqexError
from zmqex.limits import DEFAULT, Limits

log = logging.getLogger(__name__)

VERSION = 1

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
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
        self._ops = {
            "place": self._place,
            "cancel": self._cancel,
            "order": self._order,
            "book": self._book,
            "status": self._status,
            "fills": self._fills,
            "watch": self._watch,
        }
        self.endpoints: dict[str, str] = {}  # peer -> endpoint, filled in by the node for status

    def handle(self, identity: bytes, frame: bytes, user: str | None = None, now: int = 0) -> bytes | None:
        """Answer one request frame; None when the answer comes later (``place``).

        ``user`` is the principal the node authenticated on this connection (None:
        a node without keys); ``now`` the node's monotonic clock in ms, for the rate limit.
        """
        request_id = None
        try:
            request = wire.unpack(frame)
            if type(request) is not dict:
                raise DecodeError(f"a request must be a msgpack map, got {type(request).__name__}")
            request_id = request.get("id")
            if not (type(request_id) is int and abs(request_id) < 2**63
                    or type(request_id) is str and len(request_id) <= 64):
                request_id = None
                raise DecodeError("request 'id' must be an integer or a string of at most 64 characters")
            caller = self._caller(identity, user, request.get("trader"))
            self._charge(caller.trader, now)
            if request.get("v") != VERSION:
                return error(request_id, "unsupported_version", f"protocol version {wire.brief(request.get('v'), 20)} "
                             f"is not supported; this node speaks {VERSION}")
            op = request.get("op")
            handler = self._ops.get(op) if type(op) is str else None
            if handler is None:
                return error(request_id, "unknown_op", f"unknown op {wire.brief(op, 30)}; one of {sorted(self._ops)}")
            result = handler(caller, request_id, request)
            return None if result is None else ok(request_id, result)
        except ZmqexError as exc:
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
        return identity, ok(request_id, format_order(result))

    def stream_fill(self, event: Event) -> list[tuple[bytes, bytes]]:
        """Frames for every watcher about a newly applied fill."""
        if not self.watchers or not isinstance(event.body, Fill):
            return []
        fill = format_fill(fill_info(event))
        return [
            (identity, wire.pack({"v": VERSION, "id": watch_id, "stream": "fill", "fill": fill}))
            for identity, watch_id in self.watchers.items()
        ]

    # --- who, and how often -------------------------------------------------------------

    def _caller(self, identity: bytes, user: str | None, named: Any) -> Caller:
        if named is not None and not (type(named) is str and _NAME.fullmatch(named)):
            raise InvalidRequest("trader must be 1-32 characters of A-Z a-z 0-9 _ . -")
        if user is None:  # no keys: names are claimed, not proven (loopback only)
            return Caller(identity, named if named is not None else "conn-" + identity.hex())
        kind, _, name = user.partition(":")
        if kind not in ("t", "o") or not _NAME.fullmatch(name):
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

    def _place(self, caller: Caller, request_id: Any, req: dict) -> None:
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
        side = _choice(req.get("side"), Side, "side")
        tif = _choice(req.get("tif", "gtc"), Tif, "tif")
        qty = money.parse_qty(_amount(req.get("qty"), "quantity"))
        price_text = req.get("price")
        price = None if price_text is None else money.parse_price(_amount(price_text, "price"))
        self.replica.place(side, qty, price, tif, token=(caller.identity, request_id, trader), trader=trader)
        self.pending += 1
        self._pending_of[trader] = mine + 1
        return None

    def _cancel(self, caller: Caller, request_id: Any, req: dict) -> dict:
        return format_order(self.replica.cancel(_order_id(req), trader=caller.trader, operator=caller.operator))

    def _order(self, caller: Caller, request_id: Any, req: dict) -> dict:
        oid = _order_id(req)
        out = format_order(self.replica.order_info(oid))
        out["mine"] = self.replica.is_mine(oid, caller.trader, caller.operator)
        return out

    def _book(self, caller: Caller, request_id: Any, req: dict) -> dict:
        depth, most = req.get("depth", 10), self.limits.book_depth
        if type(depth) is not int or not 1 <= depth <= most:
            raise InvalidRequest(f"depth must be an integer 1..{most}")
        return book_view(self.replica, depth)

    def _status(self, caller: Caller, request_id: Any, req: dict) -> dict:
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

    def _fills(self, caller: Caller, request_id: Any, req: dict) -> dict:
        """The most recent ``limits.fills_reply`` fills, oldest first; ``truncated`` if there are more."""
        fills, most = self.replica.ledger.fills, self.limits.fills_reply
        recent = list(itertools.islice(reversed(fills.values()), most))  # O(most), not O(all fills)
        recent.reverse()
        return {"fills": [format_fill(fill_info(e)) for e in recent], "truncated": len(fills) > most}

    def _watch(self, caller: Caller, request_id: Any, req: dict) -> dict:
        self.watchers[caller.identity] = request_id
        return {"watching": True}


# --- formatting: integers inside, decimal strings outside -----------------------------


def format_fill(fill: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": fill["id"],
        "maker": fill["maker"],
        "taker": fill["taker"],
        "price": money.format_price(fill["price"]),
        "qty": money.format_qty(fill["qty"]),
    }


def format_order(info: dict[str, Any]) -> dict[str, Any]:
    out = dict(info)
    out["price"] = None if info["price"] is None else money.format_price(info["price"])
    for key in ("qty", "filled", "open", "pending"):
        out[key] = money.format_qty(info[key])
    out["fills"] = [format_fill(f) for f in info["fills"]]
    return out


def book_view(replica: Replica, depth: int) -> dict[str, Any]:
    """Aggregated levels, best first; orders of down owners listed apart."""
    book = replica.ledger.book
    view: dict[str, Any] = {"unavailable": {"bids": [], "asks": []}}
    everyone_up = (all(peer.up for peer in replica.peers.values())
                   and not replica.removed and not replica.equivocators)
    for side, name in ((Side.BUY, "bids"), (Side.SELL, "asks")):
        if everyone_up:  # the common case costs O(depth)
            levels = book.depth(side, depth)
            view[name] = [[money.format_price(p), money.format_qty(q), n] for p, q, n in levels]
            continue
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
        view[name] = _levels(up)
        view["unavailable"][name] = _levels(down)
    return view


def _levels(levels: dict[int, list[int]]) -> list[list[Any]]:
    # dicts keep insertion order, and orders came best price first
    return [[money.format_price(p), money.format_qty(q), n] for p, (q, n) in levels.items()]


def ok(request_id: Any, result: dict[str, Any]) -> bytes:
    return wire.pack({"v": VERSION, "id": request_id, "ok": True, "result": result})


def error(request_id: Any, code: str, message: str) -> bytes:
    return wire.pack({"v": VERSION, "id": request_id, "ok": False, "error": {"code": code, "message": message}})


def _choice(value: Any, cls: type, what: str) -> Any:
    try:
        if type(value) is str:  # an enum's own ValueError would repr() any value, however deep
            return cls(value)
    except ValueError:
        pass
    raise InvalidRequest(f"{what} {wire.brief(value, 20)} is not one of {[m.value for m in cls]}")


def _amount(value: Any, what: str) -> Any:
    if type(value) is float:
        return value  # money.parse_* refuses it with the right message
    if type(value) not in (str, int):
        raise InvalidRequest(f"{what} must be a decimal string, got {type(value).__name__}")
    return value


def _shown(trader: str) -> str:
    """A trader's name for a message to that trader (a connection's own name is long and says little)."""
    return "this connection" if trader.startswith("conn-") else f"trader {trader}"


def _order_id(req: dict) -> str:
    oid = req.get("order_id")
    if type(oid) is not str or len(oid) > 64:
        raise InvalidRequest("order_id must be a string like 'a:17'")
    return oid
