"""The client protocol (docs/protocol.md), without sockets.

:class:`ClientApi` turns one request frame into a call on the replica and the
replica's answer into a reply frame, with decimal strings at the edge and
integer cents and satoshis inside.  It never raises on bad input: whatever a
client sends, it gets back an error reply, and the replica is not touched.

A ``place`` is answered later, when the replica's taker flow has finished:
``handle`` then returns None and the node calls ``finish`` with the replica's
:class:`~zmqex.core.outputs.Reply`, whose token is ``(identity, request id)``.
"""

from __future__ import annotations

import logging
from typing import Any

from zmqex.core import money, wire
from zmqex.core.events import Event, Fill, Side, Tif
from zmqex.core.replica import Replica, fill_info
from zmqex.errors import Busy, DecodeError, InvalidRequest, ZmqexError

log = logging.getLogger(__name__)

VERSION = 1
MAX_DEPTH = 1000
MAX_PENDING = 10_000  # place requests waiting for their taker flow, per node

Token = tuple[bytes, Any]


class ClientApi:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.pending = 0
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

    def handle(self, identity: bytes, frame: bytes) -> bytes | None:
        """Answer one request frame; None when the answer comes later (``place``)."""
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
            if request.get("v") != VERSION:
                return error(request_id, "unsupported_version", f"protocol version {wire.brief(request.get('v'), 20)} "
                             f"is not supported; this node speaks {VERSION}")
            op = request.get("op")
            handler = self._ops.get(op) if type(op) is str else None
            if handler is None:
                return error(request_id, "unknown_op", f"unknown op {wire.brief(op, 30)}; one of {sorted(self._ops)}")
            result = handler(identity, request_id, request)
            return None if result is None else ok(request_id, result)
        except ZmqexError as exc:
            log.debug("request %r from %r refused: %s", request_id, identity, exc)
            return error(request_id, exc.code, str(exc))

    def finish(self, token: Token, result: dict[str, Any]) -> tuple[bytes, bytes]:
        """The reply to a ``place`` whose flow has ended: (identity, frame)."""
        self.pending -= 1
        identity, request_id = token
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

    # --- ops --------------------------------------------------------------------------

    def _place(self, identity: bytes, request_id: Any, req: dict) -> None:
        if self.pending >= MAX_PENDING:
            raise Busy(f"{self.pending} orders are still matching; try again")
        side = _choice(req.get("side"), Side, "side")
        tif = _choice(req.get("tif", "gtc"), Tif, "tif")
        qty = money.parse_qty(_amount(req.get("qty"), "quantity"))
        price_text = req.get("price")
        price = None if price_text is None else money.parse_price(_amount(price_text, "price"))
        self.replica.place(side, qty, price, tif, token=(identity, request_id))
        self.pending += 1
        return None

    def _cancel(self, identity: bytes, request_id: Any, req: dict) -> dict:
        return format_order(self.replica.cancel(_order_id(req)))

    def _order(self, identity: bytes, request_id: Any, req: dict) -> dict:
        return format_order(self.replica.order_info(_order_id(req)))

    def _book(self, identity: bytes, request_id: Any, req: dict) -> dict:
        depth = req.get("depth", 10)
        if type(depth) is not int or not 1 <= depth <= MAX_DEPTH:
            raise InvalidRequest(f"depth must be an integer 1..{MAX_DEPTH}")
        return book_view(self.replica, depth)

    def _status(self, identity: bytes, request_id: Any, req: dict) -> dict:
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

    def _fills(self, identity: bytes, request_id: Any, req: dict) -> dict:
        return {"fills": [format_fill(fill_info(e)) for e in self.replica.ledger.fills.values()]}

    def _watch(self, identity: bytes, request_id: Any, req: dict) -> dict:
        self.watchers[identity] = request_id
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
    everyone_up = all(peer.up for peer in replica.peers.values())
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


def _order_id(req: dict) -> str:
    oid = req.get("order_id")
    if type(oid) is not str or len(oid) > 64:
        raise InvalidRequest("order_id must be a string like 'a:17'")
    return oid
