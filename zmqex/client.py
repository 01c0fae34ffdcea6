"""A small blocking client for one zmqex node (the protocol of docs/protocol.md).

    from zmqex.client import Client

    with Client("127.0.0.1:7001", timeout=5.0, trader="alice") as node:
        order = node.place("buy", "0.5", "50000.00", client_order_id="b-1")  # a retry places nothing new
        print(order["order_id"], order["status"], order["fills"])
        node.place("sell", "0.1")                             # market order
        print(node.book(depth=5)["asks"], node.open_orders().items)
        with node.subscribe("trades", timeout=30) as fills:   # fills as they happen
            for fill in fills:
                print(fill["qty"], "BTC @", fill["price"])

What goes on the wire, and what a reply must hold, is :mod:`zmqex.protocol`'s:
a request is checked there before it is sent, and a reply before it is
returned (orders, fills and the book as typed views; anything malformed
raises :class:`~zmqex.errors.DecodeError`).

Amounts go in as ``str``, ``int`` or ``Decimal`` (never ``float``) and come back
as decimal strings.  Every call waits at most ``timeout`` seconds, then raises
:class:`~zmqex.errors.Timeout`; an error reply raises the matching
:class:`~zmqex.errors.ZmqexError`.  A ``place`` that timed out after it was sent
may still execute on the node.  A client is not thread-safe: one per thread.

Streams (``subscribe``) come on a connection of their own each, as iterators
(:class:`Subscription`); ``cancel_on_disconnect`` and ``heartbeat`` are about
this client's own connection.

``trader=NAME`` sends ``"trader": NAME`` with every request: the orders it
places belong to NAME, so another connection naming NAME may cancel them (on a
node without keys the name is taken on trust).  Without it, a node without
keys takes the connection as the trader: its orders cannot be cancelled from
another connection, a reconnect included.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from typing import Any, Self

import zmq
import zmq.auth

from zmqex import accountwire, otcwire, protocol
from zmqex.core import money, wire
from zmqex.core.money import Amount
from zmqex.errors import DecodeError, InvalidRequest, StreamEnded, Timeout
from zmqex.accountwire import BalanceView, CreditView
from zmqex.protocol import BookView, FillView, OrderView, Page

log = logging.getLogger(__name__)

Socket = zmq.Socket[bytes]


class _Connection:
    """Owns one socket: a context manager, closed at most once."""

    _socket: Socket | None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (idempotent); unsent requests are dropped."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None


class Client(_Connection):
    """One DEALER connected to one node's ROUTER; each call waits at most ``timeout`` seconds.

    A keyed node (``zmqex-node --keys``) admits only the keys it lists: give
    ``secret``, the trader's (or operator's) ``NAME.key_secret``, and ``server``,
    the node's public ``ID.key`` (both as ``zmqex-keygen`` writes them).  The
    connection is then encrypted, and the node knows the trader by its key.
    """

    def __init__(self, node: str, timeout: float = 5.0, *, context: zmq.Context[Socket] | None = None,
                 trader: str | None = None, secret: str | os.PathLike[str] | None = None,
                 server: str | os.PathLike[str] | None = None) -> None:
        self.address, self.endpoint = _parse_node(node)
        self.timeout = _seconds(timeout, "timeout")
        if (secret is None) != (server is None):
            raise InvalidRequest("a keyed connection needs both secret (your .key_secret) and server (the node's .key)")
        self._curve: tuple[bytes, bytes, bytes] | None = None
        if secret is not None and server is not None:
            try:
                public, secret_key = zmq.auth.load_certificate(secret)
                node_key, _ = zmq.auth.load_certificate(server)
            except (OSError, ValueError) as exc:
                raise InvalidRequest(f"cannot read the keys: {exc}") from None
            if secret_key is None:
                raise InvalidRequest(f"{secret} holds no secret key")
            self._curve = (public, secret_key, node_key)
        self.trader = None if trader is None else protocol.trader_name(trader)
        self._context = context or zmq.Context.instance()
        self._ids = itertools.count(1)
        self._socket: Socket | None = self._connect()

    # --- the ops of the protocol -------------------------------------------------------

    def place(self, side: str, qty: Amount, price: Amount | None = None, tif: str = protocol.DEFAULT_TIF, *,
              client_order_id: str | None = None, expire_at: int | None = None, ack: str = protocol.DEFAULT_ACK,
              stp: str = protocol.DEFAULT_STP, protection_bps: int | None = None) -> OrderView:
        """Place an order (``price=None``: market); returns it with every fill it got.

        With a ``client_order_id`` a retry is safe: a node that already holds an
        order of this trader under that id answers with it and places nothing
        (after a Timeout, place again with the same id).  ``ack="accepted"``
        returns the order as soon as it is placed, before its matching is done
        (its end comes on an ``orders`` subscription).  ``expire_at`` (epoch ms)
        is for a ``gtd`` order; ``stp`` says what happens if it meets a resting
        order of this trader; ``protection_bps`` bounds how far from the best
        price an ioc or market order may trade.
        """
        args = protocol.place_args(side, qty, price, tif, client_order_id=client_order_id, expire_at=expire_at,
                                   ack=ack, stp=stp, protection_bps=protection_bps)
        return protocol.parse_order(self._request("place", args))

    # --- off the book (docs/protocol.md "Off the book") ---------------------------------------

    def place_directed(self, side: str, qty: Amount, price: Amount, only: list[str], *,
                       expire_at: int | None = None) -> otcwire.OfferView:
        """A directed order: a limit order only the desks ``only`` see and may ``accept``; its offer."""
        tif = protocol.DEFAULT_TIF if expire_at is None else protocol.TIF_EXPIRES
        args = protocol.place_args(side, qty, price, tif, expire_at=expire_at, only=only)
        return otcwire.parse_offer(self._request("place", args))

    def rfq(self, side: str, qty: Amount, *, desks: list[str] | None = None,
            answer_ms: int = 30_000) -> otcwire.RfqView:
        """Ask ``desks`` (default: every desk up) for firm quotes to ``side`` ``qty`` within ``answer_ms``."""
        args: dict[str, Any] = {"side": protocol.side(side).value, "qty": money.format_qty(money.parse_qty(qty)),
                                "answer_ms": otcwire.ms_field(answer_ms, "answer_ms")}
        if desks is not None:
            args["desks"] = list(otcwire.desks_field(list(desks)))
        return otcwire.parse_rfq(self._request("rfq", args))

    def quote(self, rfq_id: str, price: Amount, qty: Amount, valid_ms: int) -> otcwire.OfferView:
        """Answer request for quote ``rfq_id`` with a firm quote, valid for ``valid_ms``."""
        return otcwire.parse_offer(self._request("quote", {
            "rfq_id": otcwire.rfq_id_field(rfq_id), "price": money.format_price(money.parse_price(price)),
            "qty": money.format_qty(money.parse_qty(qty)), "valid_ms": otcwire.ms_field(valid_ms, "valid_ms")}))

    def accept(self, offer_id: str, qty: Amount, *, disclose: bool = False) -> otcwire.AcceptView:
        """Trade exactly ``qty`` of a quote or directed order sent to this desk, or nothing (``reason``)."""
        return otcwire.parse_accept(self._request("accept", {
            "offer_id": otcwire.offer_id_field(offer_id), "qty": money.format_qty(money.parse_qty(qty)),
            "disclose": otcwire.disclose_field(disclose)}))

    def withdraw(self, item_id: str) -> dict[str, Any]:
        """Withdraw an own quote or directed order (what is left of it), or close an own request for quote."""
        return self._request("withdraw", {"item_id": otcwire.item_id_field(item_id)})

    def otc(self) -> dict[str, list[Any]]:
        """The requests for quote and offers this desk holds, and this trader's private trades."""
        return otcwire.parse_otc(self._request("otc"))

    def cancel(self, order_id: str | None = None, *, client_order_id: str | None = None) -> OrderView:
        """Cancel an order this trader placed at this node (by its id, or by its client order id)."""
        return protocol.parse_order(self._request("cancel", _order_ref(order_id, client_order_id)))

    def amend(self, order_id: str | None = None, *, client_order_id: str | None = None, qty: Amount | None = None,
              price: Amount | None = None) -> OrderView:
        """Change an order's total quantity or price; the order after (a new price or more: a new order id)."""
        args = _order_ref(order_id, client_order_id)
        if qty is not None:
            args["qty"] = money.format_qty(money.parse_qty(qty))
        if price is not None:
            args["price"] = money.format_price(money.parse_price(price))
        return protocol.parse_order(self._request("amend", args))

    def cancel_all(self, side: str | None = None) -> list[str]:
        """Cancel every open order of this trader at this node (of one ``side``, if given); their ids."""
        args = {} if side is None else {"side": protocol.side(side).value}
        return protocol.parse_cancelled(self._request("cancel_all", args))

    def order(self, order_id: str | None = None, *, client_order_id: str | None = None) -> OrderView:
        """The order as this node's replica knows it; ``mine``: placed by this trader here."""
        return protocol.parse_order(self._request("order", _order_ref(order_id, client_order_id)))

    def open_orders(self, since: int = 0, limit: int = protocol.DEFAULT_PAGE) -> Page:
        """A page of this trader's open orders at this node, oldest first; pass ``page.next`` as ``since``."""
        return self._page("open_orders", since, limit)

    def my_fills(self, since: int = 0, limit: int = protocol.DEFAULT_PAGE) -> Page:
        """A page of the fills of this trader's orders at this node (MyFillView), in the order it learned them."""
        return self._page("my_fills", since, limit)

    def trades(self, since: int = 0, limit: int = protocol.DEFAULT_PAGE) -> Page:
        """A page of every fill this node knows (FillView), in the order it learned them."""
        return self._page("trades", since, limit)

    def book(self, depth: int = protocol.DEFAULT_DEPTH) -> BookView:
        """Aggregated levels, best first: ``{"bids", "asks", "unavailable"}``."""
        return protocol.parse_book(self._request("book", {"depth": protocol.depth_field(depth)}))

    def status(self) -> dict[str, Any]:
        """The node's id, peers, vector clock, state hash and counts (a map the node may add to: not checked)."""
        return self._request("status")

    def fills(self) -> list[FillView]:
        """The fills this node knows, in the order it learned them: the most recent 1,000 at most."""
        return protocol.parse_fills(self._request("fills"))

    def cancel_on_disconnect(self, timeout_ms: int) -> int:
        """Have this trader's open orders at this node cancelled if this connection is silent for
        ``timeout_ms`` (0: never); keep it alive with any request, ``heartbeat`` if nothing else."""
        return protocol.parse_cod(self._request("cancel_on_disconnect",
                                                {"timeout_ms": protocol.cod_timeout(timeout_ms)}))

    def heartbeat(self) -> int:
        """Tell the node this connection is alive; returns its cancel on disconnect timeout (0: none)."""
        return protocol.parse_cod(self._request("heartbeat"))

    def fund(self, account: str, usd: Amount | None = None, btc: Amount | None = None) -> BalanceView:
        """An operator's: move ``usd`` and ``btc`` into trader ``account``'s balance at this node
        (negative: out of it; the first funding opens the account); returns the balance after."""
        return accountwire.parse_balance(self._request("fund", accountwire.fund_request(account, usd, btc)))

    def balance(self, account: str | None = None) -> BalanceView:
        """This trader's balance at this node (an operator may name any ``account``): for USD and BTC,
        ``total``, what its open orders ``reserved``, and ``available``, the rest."""
        return accountwire.parse_balance(self._request("balance", accountwire.balance_request(account)))

    def subscribe(self, stream: str, depth: int | None = None, timeout: float | None = None) -> Subscription:
        """A stream (``trades``, ``orders`` or ``book``) on a connection of its own; see :class:`Subscription`."""
        return Subscription(self, stream, depth, timeout)

    def watch(self, timeout: float | None = None) -> Subscription:
        """Fills as they happen: a ``trades`` subscription (the op ``watch`` is deprecated)."""
        return Subscription(self, protocol.STREAM_TRADES, None, timeout)

    def set_credit(self, desk: str, limit: Amount | None, daily: Amount | None = None) -> CreditView:
        """Set this node's credit limits for trades with ``desk`` (a node id, or ``*`` for every desk
        without its own): USD of open exposure, and of notional traded a UTC day; None: no such limit
        (both None: the desk's own limits go).  An operator's op (any connection without keys)."""
        return accountwire.parse_credit(self._request("set_credit", accountwire.set_credit_request(desk, limit, daily)))

    def settle(self, desk: str, usd: Amount) -> tuple[str, CreditView]:
        """Mark up to ``usd`` of this node's exposure to ``desk`` settled; (USD it did, the credit after)."""
        return accountwire.parse_settled(self._request("settle", accountwire.settle_request(desk, usd)))

    def credit(self) -> CreditView:
        """This node's credit limits, and per desk its exposure, in flight, today's traded and room (USD)."""
        return accountwire.parse_credit(self._request("credit"))

    def _page(self, op: str, since: int, limit: int) -> Page:
        return protocol.parse_page(op, self._request(op, protocol.page_request(since, limit)))

    # --- requests and replies ----------------------------------------------------------

    def _request(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._socket is None:
            raise InvalidRequest(f"client of node {self.address} is closed")
        return self._call(self._socket, op, args or {})[1]

    def _call(self, socket: Socket, op: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Send one request and wait for the reply with its id; others are stale and dropped."""
        request_id = next(self._ids)
        deadline = time.monotonic() + self.timeout
        frame = wire.pack(protocol.request(request_id, op, args, self.trader))
        if not _send(socket, frame, deadline):
            raise self._timeout(op, sent=False)
        while True:
            reply = self._recv(socket, deadline)
            if reply is None:
                raise self._timeout(op, sent=True)
            if protocol.is_stream(reply):
                continue
            reply_id = reply.get("id")
            if protocol.is_dropped(reply):
                log.debug("node %s dropped replies we no longer wait for (we timed out on them)", self.address)
                continue
            # a null id answers a request the node could not read: ours, as we wait for no other
            if (type(reply_id) is int and reply_id == request_id) or (reply_id is None and reply.get("ok") is False):
                return request_id, protocol.decode_reply(reply)
            log.debug("node %s: a stale reply, id %s, dropped", self.address, wire.brief(reply_id, 20))

    def _recv(self, socket: Socket, deadline: float | None) -> dict[str, Any] | None:
        """The next message as a map, or None at the deadline."""
        if not _ready(socket, zmq.POLLIN, deadline):
            return None
        frames = socket.recv_multipart(zmq.NOBLOCK)
        if len(frames) != 1 or type(message := wire.unpack(frames[0], protocol.MAX_REPLY)) is not dict:
            raise DecodeError(f"node {self.address} sent something that is not one msgpack map")
        return message

    def _connect(self) -> Socket:
        socket: Socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a node that is not connected
        socket.setsockopt(zmq.IPV6, self.endpoint.startswith("tcp://["))
        if self._curve is not None:
            public, secret, server = self._curve
            socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
            socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
            socket.setsockopt(zmq.CURVE_SERVERKEY, server)
        try:
            socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close(linger=0)
            raise InvalidRequest(f"cannot connect to node {self.address}: {exc}") from None
        return socket

    def _timeout(self, op: str, sent: bool) -> Timeout:
        text = f"node {self.address} did not answer {op!r} within {self.timeout:g}s"
        if not sent:
            text += " (no connection; the request was not sent)"
        elif op == "place":
            text += "; the order may still have been placed"
        return Timeout(text)


class Subscription(_Connection):
    """One stream, on a DEALER of its own, as an iterator of what it carries.

    ``trades`` yields fills (FillView); ``orders`` yields OrderEvents (what
    happened to one of this trader's orders, and the order after it); ``book``
    yields the book (BookView) after each snapshot or change, kept up to date
    here (``self.book``).  Subscribed when created (errors raise here; nothing
    after that is missed).  Heartbeats are consumed here.

    Iteration stops after ``timeout`` seconds without an update (None: never);
    ``poll(timeout)`` returns None instead.  Raises StreamEnded when the node
    ends the stream (``slow_reader``, ``stopping``, ``revoked``), when a message
    is missing (``gap``: its seq jumped), or when nothing at all, not even a
    heartbeat, came for ``silence`` seconds (``silent``): subscribe again (and
    catch up with ``my_fills``, ``open_orders`` or ``trades``, which page from a
    cursor).  ``unsubscribe()`` ends it on the node; ``close()`` or ``with``
    drops the connection.
    """

    def __init__(self, client: Client, stream: str, depth: int | None = None, timeout: float | None = None,
                 silence: float = 3 * protocol.HEARTBEAT_MS / 1000) -> None:
        args = protocol.subscribe_request(stream, depth)
        self.stream = stream
        self.timeout = None if timeout is None else _seconds(timeout, "subscription timeout")
        self.silence = _seconds(silence, "silence")
        self.seq = 0
        self.book: BookView | None = None
        self._client = client
        self._socket: Socket | None = client._connect()
        try:
            self.id, result = client._call(self._socket, "subscribe", args)
            protocol.parse_subscribed(result, stream)
        except BaseException:
            self.close()
            raise
        self._heard = time.monotonic()

    @property
    def socket(self) -> Socket | None:
        """The stream's socket (None once closed), for a ``zmq.Poller`` that waits on several streams
        at once; read what it brings with ``poll``, never from the socket."""
        return self._socket

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> Any:
        update = self.poll(self.timeout)
        if update is None:
            self.close()
            raise StopIteration
        return update

    def poll(self, timeout: float | None = None) -> Any:
        """The next update within ``timeout`` seconds (None: however long it takes), or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._socket is not None:
            silent_at = self._heard + self.silence
            wait_until = silent_at if deadline is None else min(deadline, silent_at)
            message = self._client._recv(self._socket, wait_until)
            now = time.monotonic()
            if message is None:
                if now >= silent_at:
                    self.close()
                    raise StreamEnded("silent", f"nothing from node {self._client.address} on the {self.stream} "
                                                f"stream for {self.silence:g}s, not even a heartbeat")
                if deadline is not None and now >= deadline:
                    return None
                continue
            item = protocol.parse_stream(message, self.id)
            if item is None:
                continue
            self._heard = now
            if item.kind == protocol.END:
                self.close()
                raise StreamEnded(*item.value)
            if item.seq != self.seq + (item.kind != protocol.HEARTBEAT):
                self.close()
                raise StreamEnded("gap", f"the {self.stream} stream went from seq {self.seq} to {item.seq}: "
                                         "a message is missing")
            self.seq = item.seq
            if item.kind == protocol.HEARTBEAT:
                continue
            if item.kind == protocol.SNAPSHOT:
                self.book = item.value
                return self.book
            if item.kind == protocol.CHANGES:
                if self.book is None:
                    raise DecodeError("book changes before the book's snapshot")
                protocol.apply_changes(self.book, item.value)
                return self.book
            return item.value
        return None

    def unsubscribe(self) -> None:
        """End the subscription on the node, then close its connection."""
        if self._socket is not None:
            try:
                self._client._call(self._socket, "unsubscribe", {"subscription": self.id})
            finally:
                self.close()


# --- helpers ------------------------------------------------------------------------------


def _ready(socket: Socket, event: int, deadline: float | None) -> bool:
    """Wait until ``socket`` is ready for ``event``, or the deadline passes (None: forever)."""
    poller = zmq.Poller()
    poller.register(socket, event)
    while True:
        wait = None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
        if poller.poll(wait):
            return True
        if wait == 0:
            return False


def _send(socket: Socket, frame: bytes, deadline: float) -> bool:
    while _ready(socket, zmq.POLLOUT, deadline):  # IMMEDIATE: writable only once connected
        try:
            socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:  # the connection went away between poll and send
            continue
        return True
    return False


def _order_ref(order_id: str | None, client_order_id: str | None) -> dict[str, str]:
    """The arguments naming an order: its id or this trader's client order id, one of them."""
    if (order_id is None) == (client_order_id is None):
        raise InvalidRequest("give an order_id or a client_order_id, one of them")
    if order_id is not None:
        return {"order_id": protocol.order_id_field(order_id)}
    return {"client_order_id": protocol.client_order_id_field(client_order_id)}


def _parse_node(node: str) -> tuple[str, str]:
    """``"HOST:PORT"`` or ``"tcp://HOST:PORT"`` -> (``"HOST:PORT"``, ``"tcp://HOST:PORT"``)."""
    address = node.removeprefix("tcp://") if isinstance(node, str) else ""
    host, _, port = address.rpartition(":")
    if not (host and "/" not in host and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise InvalidRequest(f"node address {node!r:.60} is not HOST:PORT")
    return address, "tcp://" + address


def _seconds(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidRequest(f"{what} must be a positive number of seconds, got {value!r:.20}")
    return float(value)
