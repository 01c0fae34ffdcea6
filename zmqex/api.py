"""The node's side of the client protocol, without sockets.

What goes on the wire (ops, fields, limits, replies, error codes, the views
of an order and a fill) is :mod:`zmqex.protocol`'s, described in
docs/protocol.md; this module only serves it.  :class:`ClientApi` turns one
request frame into a call on the replica and the replica's answer into a
reply frame, with decimal strings at the edge and integer cents and satoshis
inside.  It never raises on bad input: whatever a client sends, it gets back
an error reply, and the replica is not touched.  Subscriptions are
:mod:`zmqex.streams`'s, the fill positions that page ``trades`` and
``my_fills`` :mod:`zmqex.history`'s.

A reply that tells of a change (a cancel's order, say) is sent by the node
after the records of its iteration are committed: what a client is told
survives a crash.  Once a request changed the replica (``changed``), every
reply waits for that commit, since a query could show the change too; before
that, replies go out at once, so a cheap query does not wait behind a batch
of expensive ones.
A ``place`` is answered later, when the replica's taker flow has finished:
``handle`` then returns None and the node calls ``finish`` with the replica's
:class:`~zmqex.core.outputs.Reply`, whose token is a :class:`Token`.  With
``"ack": "accepted"`` it is answered at once instead, and ``finish`` says nothing.

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

Cancel on disconnect.  A connection that asked for it (``cancel_on_disconnect``)
and then sends nothing for its timeout has its trader's open orders at this node
cancelled (reason ``disconnect``) by :meth:`ClientApi.tick`, the node's timer.
It is kept (:class:`CodKeeper`, the node's store) per trader, so it outlives a
restart of the node: a trader armed then has, after the restart, its timeout to
send any request, on any connection; if it does not, its orders go just the same.

Limits (:mod:`zmqex.limits`): per trader first, so one trader's flood is
refused before it reaches what the node keeps for the others.  Costs per
request: O(1) (a dict entry per trader with places in flight, per trader with
a bucket not yet full; idle buckets are swept, amortised O(1)).  ``fills`` is
O(limit), ``book`` O(depth), the paged queries O(limit) (``open_orders``
O(the trader's open orders)); ``tick`` O(connections with cancel on disconnect
+ subscriptions).  ``now`` (integer ms, monotonic) comes from the node: the
api reads no clock.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from zmqex import accountwire, health, protocol
from zmqex.core import wire
from zmqex.core.events import CancelReason, Event, parse_order_id
from zmqex.core.queries import fill_info
from zmqex.core.replica import Replica
from zmqex.errors import (Busy, DecodeError, LimitReached, LocalError, NotOwner, RateLimited, RemoteError,
                          UnknownOrder)
from zmqex.history import History
from zmqex.limits import DEFAULT, Limits
from zmqex.core.otc import is_otc_id
from zmqex.otcapi import AcceptToken, OtcOps
from zmqex.protocol import VERSION as VERSION  # re-exported: node.py reads api.VERSION
from zmqex.streams import Frames, Streams, book_view

log = logging.getLogger(__name__)

_TOKEN = 1000  # what one request costs, in thousandths of a token: buckets count integers
_SWEEP_MIN = 1024  # buckets kept before the first sweep of idle ones
_ACCEPTED = protocol.ACKS[1]
OK = "ok"  # the code under which ``requests`` counts a request answered without an error
NO_OP = "none"  # the op under which it counts a request that named no op of the protocol


_OTC_WRITES = frozenset(("rfq", "quote", "accept", "withdraw"))


class Token(NamedTuple):
    """What the replica hands back with a ``place``'s Reply: whom to answer, and whether it was answered."""

    identity: bytes
    request_id: Any
    trader: str
    answered: bool  # "ack": "accepted": the reply went out when the order was placed


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the connection, the trader it acts for, and whether an operator."""

    identity: bytes
    trader: str
    operator: bool = False
    keyed: bool = False  # the node has keys: the connection's key says who it is (else names are claimed)


@dataclass(slots=True)
class Cod:
    """A connection's cancel on disconnect: its trader's orders go if it is silent past ``deadline``."""

    timeout_ms: int
    deadline: int
    trader: str


class CodKeeper(Protocol):
    """Where the traders with cancel on disconnect armed are kept across restarts (the node's store)."""

    def cod_armed(self) -> list[tuple[str, int]]: ...

    def arm_cod(self, trader: str, timeout_ms: int) -> None: ...

    def disarm_cod(self, trader: str) -> None: ...


class ClientApi:
    def __init__(self, replica: Replica, limits: Limits = DEFAULT, kept: CodKeeper | None = None) -> None:
        self.replica = replica
        self.limits = limits
        self.now = 0  # the node's clock at the latest request or tick (monotonic ms)
        # A request changed the replica since the node last committed: until it commits again, replies
        # wait (node.py), so none tells of a change a crash could still undo.
        self.changed = False
        self.pending = 0  # place requests awaiting their flow, all traders
        self._pending_of: dict[str, int] = {}  # trader -> its places awaiting their flow (no zeros)
        self._buckets: dict[str, list[int]] = {}  # trader -> [thousandths of a token, at ms]
        self._sweep_at = _SWEEP_MIN
        self.streams = Streams(replica, limits)
        self.history = History(replica)
        self.cod: dict[bytes, Cod] = {}  # connection -> its cancel on disconnect
        self._kept = kept
        # Traders armed before a restart -> their timeout; made Cods (deadline from the first tick)
        # until the trader sends anything.
        self._restored: dict[str, Cod | int] = dict(kept.cod_armed()) if kept is not None else {}
        self.otc = OtcOps(replica)
        # one handler per op of the protocol, named after it (the OTC ones in zmqex.otcapi): no op is listed here
        self._ops: dict[str, Callable[[Caller, Any, dict[str, Any]], Mapping[str, Any] | None]] = {
            op: getattr(self, "_" + op, None) or getattr(self.otc, "_" + op) for op in protocol.OPS}
        self.endpoints: dict[str, str] = {}  # peer -> endpoint, filled in by the node for status
        # Why the node refuses every op of protocol.WRITES now, if it does: set and cleared by the node
        # (its store cannot be written; its claim to its id is not yet accepted).  Status says not ready.
        self.refusal: tuple[type[LocalError], str] | None = None
        # (op, "ok" or the error code) -> requests answered so: for the metrics (zmqex.probe).  An op
        # that is not one of the protocol's counts as NO_OP, so a client cannot make up labels.
        self.requests: Counter[tuple[str, str]] = Counter()

    def handle(self, identity: bytes, frame: bytes, user: str | None = None, now: int = 0) -> bytes | None:
        """Answer one request frame; None when the answer comes later (``place``).

        ``user`` is the principal the node authenticated on this connection (None:
        a node without keys); ``now`` the node's monotonic clock in ms, for the
        rate limit and cancel on disconnect.
        """
        request_id: Any = None
        op: Any = None
        code = OK
        self.now = self.streams.now = now
        self._touch(identity, now)  # whatever it sends, the connection is alive
        try:
            request = wire.unpack(frame, protocol.MAX_REQUEST)
            if type(request) is not dict:
                raise DecodeError(f"a request must be a msgpack map, got {type(request).__name__}")
            op = request.get("op")  # read first, so a refusal is counted under it too
            request_id = protocol.request_id(request.get("id"))
            caller = self._caller(identity, user, request)
            if self._restored and self._restored.pop(caller.trader, None) is not None:
                self._keep(caller.trader)  # back after a restart: only its connections' arming counts now
            self._charge(caller.trader, now)
            if not protocol.version(request.get("v")):
                code = protocol.UNSUPPORTED_VERSION
                return error(request_id, protocol.UNSUPPORTED_VERSION, f"protocol version "
                             f"{wire.brief(request.get('v'), 20)} is not supported; this node speaks {VERSION} "
                             "(the integer)")
            if type(op) is not str or op not in self._ops:
                code = protocol.UNKNOWN_OP
                return error(request_id, protocol.UNKNOWN_OP,
                             f"unknown op {wire.brief(op, 30)}; one of {sorted(protocol.OPS)}")
            protocol.check_fields(request, op)
            if self.refusal is not None and op in protocol.WRITES:
                raise self.refusal[0](self.refusal[1])
            if op in protocol.OPERATOR_OPS and caller.keyed and not caller.operator:
                # Without keys every name is only claimed: any connection may (docs/protocol.md).
                raise NotOwner(f"only an operator of this node may send {op}")
            result = self._ops[op](caller, request_id, request)
            if op in _OTC_WRITES:  # its records are committed before the reply (or before the accept leaves)
                self.changed = True
            return None if result is None else wire.pack(protocol.ok_reply(request_id, result))
        except (LocalError, RemoteError) as exc:  # an InvariantViolation is our bug: it is not answered away
            log.debug("request %r from %r refused: %s", request_id, identity, exc)
            code = exc.code
            return error(request_id, exc.code, str(exc))
        finally:
            self.requests[op if type(op) is str and op in self._ops else NO_OP, code] += 1

    def handle_parts(self, identity: bytes, parts: int, first: bytes, now: int = 0) -> bytes:
        """Answer a request sent in ``parts`` frames (a request is one): ``malformed``, under the id
        of the first frame when it is a map with a valid one, else null.  Nothing is charged."""
        self._touch(identity, now)
        self.requests[NO_OP, DecodeError.code] += 1
        request_id = None
        try:
            request = wire.unpack(first, protocol.MAX_REQUEST)
            if type(request) is dict:
                request_id = protocol.request_id(request.get("id"))
        except DecodeError:
            pass
        return error(request_id, DecodeError.code, f"a request is one frame, not {parts}")

    def finish(self, token: Token | AcceptToken, result: dict[str, Any]) -> tuple[bytes, bytes] | None:
        """The reply to a ``place`` whose flow has ended, or to an ``accept`` its offer's owner answered:
        (identity, frame); None if it was answered at once."""
        if type(token) is AcceptToken:
            return token.identity, wire.pack(protocol.ok_reply(token.request_id, self.otc.accepted(result)))
        assert type(token) is Token
        self.pending -= 1
        left = self._pending_of[token.trader] - 1
        if left:
            self._pending_of[token.trader] = left
        else:
            del self._pending_of[token.trader]
        if token.answered:
            return None
        return token.identity, wire.pack(protocol.ok_reply(token.request_id, protocol.order_view(result)))

    def on_delivered(self, events: list[Event]) -> Frames:
        """Stream messages about the events the replica applied in one iteration (their records committed)."""
        return self.streams.on_delivered(events)

    def flush(self, now: int) -> Frames:
        """What the streams owe at the end of an iteration: the book's changes, new snapshots."""
        return self.streams.flush(now)

    @property
    def ready(self) -> bool:
        """Whether the node takes new work: not while it lost its history (and gets it back from
        its peers, or for good), nor while it refuses writes (``refusal``)."""
        return not (self.replica.amnesia or self.refusal)

    def tick(self, now: int) -> Frames:
        """The node's timer: cancel on disconnect for connections silent too long; stream heartbeats.

        While the node refuses writes (``refusal``) only the heartbeats: a cancel on disconnect
        that falls due then fires on the first tick after it takes writes again.
        """
        self.now = now
        if self.refusal is not None:
            return self.streams.tick(now)
        for identity in [i for i, cod in self.cod.items() if now >= cod.deadline]:
            self._disconnected(identity, self.cod.pop(identity))
        for trader, restored in list(self._restored.items()):
            if isinstance(restored, int):  # the first tick after a restart: its timeout starts now
                self._restored[trader] = Cod(restored, now + restored, trader)
            elif now >= restored.deadline:
                del self._restored[trader]
                self._disconnected(b"(before the restart)", restored)
        return self.streams.tick(now)

    # --- who, and how often -------------------------------------------------------------

    def _caller(self, identity: bytes, user: str | None, request: dict[str, Any]) -> Caller:
        named = request.get("trader")
        if "trader" in request:
            protocol.trader_name(named)
        if user is None:  # no keys: names are claimed, not proven (loopback only)
            return Caller(identity, named if named is not None else "conn-" + identity.hex(), keyed=False)
        kind, _, name = user.partition(":")
        if kind not in ("t", "o") or not protocol.is_trader_name(name):
            log.warning("connection %r authenticated as %r: neither t:NAME nor o:NAME", identity[:40], user[:80])
            raise NotOwner("this connection is authenticated as neither a trader nor an operator")
        if named is not None and named != name:
            raise NotOwner(f"this connection is authenticated as {name}; it may not act as another trader")
        return Caller(identity, name, False, True) if kind == "t" else Caller(identity, user, True, True)

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

    def _touch(self, identity: bytes, now: int) -> None:
        cod = self.cod.get(identity)
        if cod is not None:
            cod.deadline = now + cod.timeout_ms

    def _keep(self, trader: str) -> None:
        """Keep ``trader``'s cancel on disconnect as its connections now have it: the longest timeout, or none."""
        if self._kept is None:
            return
        timeouts = [c.timeout_ms for c in self.cod.values() if c.trader == trader]
        try:
            if timeouts:
                self._kept.arm_cod(trader, max(timeouts))
            else:
                self._kept.disarm_cod(trader)
        except LocalError as exc:  # the store cannot be written: it holds for this run, not past a restart
            log.warning("cancel on disconnect of %s not kept for after a restart: %s", _shown(trader), exc)

    def _disconnected(self, identity: bytes, cod: Cod) -> None:
        """Cancel the open orders of a silent connection's trader (it asked for it)."""
        self._keep(cod.trader)
        try:
            cancelled = self.replica.cancel_all(cod.trader, reason=CancelReason.DISCONNECT)
        except LocalError as exc:  # the node may not cancel now (it lost its history, or awaits its peers)
            log.warning("cancel on disconnect: the orders of %s were not cancelled: %s", _shown(cod.trader), exc)
            return
        log.info("cancel on disconnect: %s silent for %d ms; %d open orders of %s cancelled", identity[:40].hex(),
                 cod.timeout_ms, len(cancelled), _shown(cod.trader))

    # --- ops --------------------------------------------------------------------------

    def _place(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> Mapping[str, Any] | None:
        limits, trader, replica = self.limits, caller.trader, self.replica
        order = protocol.parse_place(req)
        if order.only:
            self.changed = True
            return self.otc.place_directed(caller, order)
        if order.client_order_id:  # a retry: the order it placed, whatever became of it, and nothing new
            existing = replica.client_order(trader, order.client_order_id)
            if existing is not None:
                return protocol.order_view(replica.order_info(existing))
        mine = self._pending_of.get(trader, 0)
        if mine >= limits.pending_per_trader:
            raise Busy(f"{mine} orders of {_shown(trader)} are still matching; try again")
        if self.pending >= limits.pending_per_node:
            raise Busy(f"{self.pending} orders are still matching; try again")
        if (n := replica.open_orders(trader)) >= limits.open_per_trader:
            raise LimitReached(f"{_shown(trader)} has {n} open orders, the most this node allows; "
                               "cancel some first")
        if (n := replica.open_orders()) >= limits.open_per_node:
            raise LimitReached(f"this node holds {n} open orders of its traders, the most it allows; try later")
        at_once = order.ack == _ACCEPTED
        self.changed = True
        oid = replica.place(order.side, order.qty, order.price, order.tif,
                            token=Token(caller.identity, request_id, trader, at_once), trader=trader,
                            client_order_id=order.client_order_id, expire_at=order.expire_at, stp=order.stp,
                            protection_bps=order.protection_bps)
        self.pending += 1
        self._pending_of[trader] = mine + 1
        return protocol.order_view(replica.order_info(oid)) if at_once else None

    def _resolve(self, caller: Caller, req: dict[str, Any]) -> str:
        """The order a ``cancel`` or ``order`` names, by its id or by the trader's client order id."""
        oid, coid = protocol.order_ref(req)
        if oid:
            return oid
        found = self.replica.client_order(caller.trader, coid)
        if found is None:
            raise UnknownOrder(f"no order with client_order_id {coid} of {_shown(caller.trader)} at this node")
        return found

    def _cancel(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> Mapping[str, Any]:
        if is_otc_id(req.get("order_id")):  # a quote, directed order or request for quote: withdrawn
            self.changed = True
            return self.otc.withdraw_view(caller, req["order_id"])
        oid = self._resolve(caller, req)
        info = self.replica.cancel(oid, trader=caller.trader, operator=caller.operator)
        self.changed = True
        return protocol.order_view(info)

    def _amend(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> protocol.OrderView:
        oid = self._resolve(caller, req)
        qty, price = protocol.amend_args(req)
        after = self.replica.amend(oid, qty=qty, price=price, trader=caller.trader, operator=caller.operator)
        self.changed = True
        return protocol.order_view(self.replica.order_info(after))

    def _cancel_all(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        side = protocol.optional_side(req)
        cancelled = self.replica.cancel_all(caller.trader, side=side, operator=caller.operator)
        self.changed = self.changed or bool(cancelled)
        return protocol.cancelled(cancelled)

    def _order(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> protocol.OrderView:
        oid = self._resolve(caller, req)
        info = self.replica.order_info(oid)
        mine = self.replica.is_mine(oid, caller.trader, caller.operator)
        return protocol.order_view(info, mine=mine, private=mine)

    def _open_orders(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        """The caller's open orders at this node, oldest first; the cursor is an order's sequence number."""
        since, limit = protocol.page_args(req, self.limits.page)
        seqs = sorted(seq for seq in (parse_order_id(oid)[1] for oid in
                                      self.replica.own_open_orders(None if caller.operator else caller.trader))
                      if seq > since)
        shown = seqs[:limit]
        me = self.replica.id
        orders = [protocol.order_view(self.replica.order_info(f"{me}:{seq}")) for seq in shown]
        return protocol.page("open_orders", orders, shown[-1] if shown else since, len(seqs) > limit)

    def _my_fills(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        """Fills of the caller's orders at this node, by position (History); one item per own order filled."""
        since, limit = protocol.page_args(req, self.limits.page)
        self.history.sync()
        shares, next_, more = self.history.shares(caller.trader, caller.operator, since, limit)
        items = []
        for share in shares:
            fill = protocol.fill_view(fill_info(self.history.event(share.position), self.replica.ledger))
            items.append(protocol.my_fill_view(fill, self.replica.order_info(share.order_id), share.liquidity))
        return protocol.page("my_fills", items, next_, more)

    def _trades(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        since, limit = protocol.page_args(req, self.limits.page)
        self.history.sync()
        events, next_, more = self.history.trades(since, limit)
        ledger = self.replica.ledger
        return protocol.page("trades", [protocol.fill_view(fill_info(e, ledger)) for e in events], next_, more)

    def _book(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> protocol.BookView:
        return book_view(self.replica, protocol.depth_field(req.get("depth", protocol.DEFAULT_DEPTH),
                                                            self.limits.book_depth))

    def _status(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        r = self.replica
        orders = r.ledger.orders.values()
        return {
            "node": r.id,
            "ready": self.ready,
            "peers": {p: {"up": h.up, "endpoint": self.endpoints.get(p), "lag": h.lag, "ahead": h.ahead,
                          "hash": h.hash} for p, h in health.peers(r).items()},
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
        ledger = self.replica.ledger
        return {"fills": [protocol.fill_view(fill_info(e, ledger)) for e in recent], "truncated": len(fills) > most}

    def _subscribe(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        stream, depth = protocol.subscribe_args(req, self.limits.stream_depth)
        self.streams.subscribe(caller.identity, request_id, stream, depth, caller.trader, caller.operator,
                               self.now)
        return protocol.subscribed(stream)

    def _unsubscribe(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        sub_id = protocol.subscription_field(req.get("subscription"))
        self.streams.unsubscribe(caller.identity, sub_id)
        return protocol.unsubscribed(sub_id)

    def _watch(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        """Deprecated: a ``trades`` subscription under another name (docs/protocol.md)."""
        self.streams.subscribe(caller.identity, request_id, protocol.STREAM_TRADES, 0, caller.trader,
                               caller.operator, self.now)
        return protocol.watching()

    def _cancel_on_disconnect(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        timeout = protocol.cod_timeout(req.get("timeout_ms"))
        if not timeout:
            self.cod.pop(caller.identity, None)
        elif caller.identity in self.cod or len(self.cod) < self.limits.cod_per_node:
            self.cod[caller.identity] = Cod(timeout, self.now + timeout, caller.trader)
        else:
            raise LimitReached(f"{len(self.cod)} connections have cancel on disconnect, the most this node allows")
        self._keep(caller.trader)
        return protocol.cod(timeout)

    def _heartbeat(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        cod = self.cod.get(caller.identity)
        return protocol.cod(0 if cod is None else cod.timeout_ms)

    def _fund(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> accountwire.BalanceView:
        """An operator's (without keys, anyone's: names are only claimed there): fund a trader's account."""
        if caller.keyed and not caller.operator:
            raise NotOwner("only an operator may fund a trader")
        account, usd, btc = accountwire.fund_args(req)
        balance = self.replica.fund(account, usd, btc)
        self.changed = True  # the reply waits for the funding's commit
        return accountwire.balance_view(balance)

    def _balance(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> accountwire.BalanceView:
        """A trader's own account; an operator (without keys, anyone) may name any trader's."""
        account = accountwire.balance_args(req)
        if account is None:
            account = caller.trader
        elif account != caller.trader and caller.keyed and not caller.operator:
            raise NotOwner("only an operator may see another trader's balance")
        return accountwire.balance_view(self.replica.balance(account))
    # --- credit (zmqex.core.credit): operators' ops (protocol.OPERATOR_OPS, checked in handle) ------

    def _set_credit(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> accountwire.CreditView:
        desk, limit, daily = accountwire.credit_args(req)
        self.replica.set_credit(desk, limit, daily)
        self.changed = True
        self.streams.peers_changed()  # what of each level this desk may trade against moved with it
        return accountwire.credit_view(self.replica.credit_view())

    def _settle(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> dict[str, Any]:
        desk, cents = accountwire.settle_args(req)
        done = self.replica.settle(desk, cents)
        if done:
            self.changed = True
            self.streams.peers_changed()
        return accountwire.settled(done, accountwire.credit_view(self.replica.credit_view()))

    def _credit(self, caller: Caller, request_id: Any, req: dict[str, Any]) -> accountwire.CreditView:
        return accountwire.credit_view(self.replica.credit_view())

    def forget(self, identity: bytes) -> None:
        """A connection is gone (the node can no longer route to it): its subscriptions end unsaid.
        Its cancel on disconnect stays armed: silence is what fires it."""
        if self.streams.forget(identity):
            log.info("streams to %r ended: the connection is gone", identity[:40])


def error(request_id: Any, code: str, message: str) -> bytes:
    """An error reply frame (node.py answers with it when the api itself fails)."""
    return wire.pack(protocol.error_reply(request_id, code, message))


def _shown(trader: str) -> str:
    """A trader's name for a message to that trader (a connection's own name is long and says little)."""
    return "this connection" if trader.startswith("conn-") else f"trader {trader}"
