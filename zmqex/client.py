"""A small blocking client for one zmqex node (the protocol of docs/protocol.md).

    from zmqex.client import Client

    with Client("127.0.0.1:7001", timeout=5.0) as node:
        order = node.place("buy", "0.5", "50000.00")         # limit order, good till cancelled
        print(order["order_id"], order["status"], order["fills"])
        node.place("sell", "0.1")                             # market order
        print(node.book(depth=5)["asks"])
        with node.watch(timeout=30) as fills:                 # fills as they happen
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

from zmqex import protocol
from zmqex.core import wire
from zmqex.core.money import Amount
from zmqex.errors import DecodeError, InvalidRequest, Timeout
from zmqex.protocol import BookView, FillView, OrderView

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

    def place(self, side: str, qty: Amount, price: Amount | None = None,
              tif: str = protocol.DEFAULT_TIF, expire_at: int | None = None) -> OrderView:
        """Place an order (``price=None``: market; ``expire_at``, epoch ms, for ``gtd``); returns it with every fill it got."""
        return protocol.parse_order(self._request("place", protocol.place_args(side, qty, price, tif, expire_at)))

    def cancel(self, order_id: str) -> OrderView:
        """Cancel an order this trader placed at this node; returns the order after the cancel."""
        args = {"order_id": protocol.order_id_field(order_id, empty=False)}
        return protocol.parse_order(self._request("cancel", args))

    def order(self, order_id: str) -> OrderView:
        """The order as this node's replica knows it; ``mine``: placed by this trader here."""
        args = {"order_id": protocol.order_id_field(order_id, empty=False)}
        return protocol.parse_order(self._request("order", args))

    def book(self, depth: int = protocol.DEFAULT_DEPTH) -> BookView:
        """Aggregated levels, best first: ``{"bids", "asks", "unavailable"}``."""
        return protocol.parse_book(self._request("book", {"depth": protocol.depth_field(depth)}))

    def status(self) -> dict[str, Any]:
        """The node's id, peers, vector clock, state hash and counts (a map the node may add to: not checked)."""
        return self._request("status")

    def fills(self) -> list[FillView]:
        """The fills this node knows, in the order it learned them: the most recent 1,000 at most."""
        return protocol.parse_fills(self._request("fills"))

    def watch(self, timeout: float | None = None) -> Watch:
        """Fills as they happen, on a connection of their own; see :class:`Watch`."""
        return Watch(self, timeout)

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


class Watch(_Connection):
    """An iterator of fills as the node applies them, on a DEALER of its own.

    Registered when created (so no later fill is missed, and errors raise here);
    stops after ``timeout`` seconds without a fill; ``close()`` or ``with`` ends it.
    """

    def __init__(self, client: Client, timeout: float | None = None) -> None:
        self.timeout = None if timeout is None else _seconds(timeout, "watch timeout")
        self._client = client
        self._socket: Socket | None = client._connect()
        try:
            self.id = client._call(self._socket, "watch", {})[0]
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> FillView:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while self._socket is not None:
            message = self._client._recv(self._socket, deadline)
            if message is None:
                break
            fill = protocol.stream_fill(message, self.id)
            if fill is not None:
                return fill
        self.close()
        raise StopIteration


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
