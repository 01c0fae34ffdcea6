"""The peer mesh: one DEALER and one SUB per peer, and how members find each other.

Each node binds a ROUTER (clients and peers send to it) and a PUB (its gossip).
To every peer it connects a DEALER and a SUB to the peer's PUB.  Direct
messages always travel on the sender's DEALER into the receiver's ROUTER;
nothing is sent to a peer on our own ROUTER, so no reply depends on a peer
being routable from our side, and routing ids mean nothing to a node: the
ROUTER assigns them (no ``ROUTER_HANDOVER``), so no connection can take over
another's.

A peer message is three frames, ``[kind, tag, data]``.  The tag is
``ID/INCARNATION``: who sends (with keys, the node also checks it against the
key the connection authenticated with) and which run of that node (a random
name each process picks at start).  A node accepts one incarnation of each
member at a time: a second one that speaks while the first is still heard
from is a second process with the same id, and is refused and logged; one
that speaks after the first fell silent for :data:`RESTART_AFTER_MS` is the
member restarted.  The tag travels in every message, not only in hellos,
because a DEALER that reconnects gets a new routing id without saying hello
again.

Members find each other with :class:`Hello` frames, each carrying the sender's
endpoints and every member it knows: a node that hears of a member it has no
link to connects to it and says hello.  Nodes repeat their hello now and then,
so a lost one costs a little time, not a partition.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any

import zmq

from zmqex import auth
from zmqex.core import wire
from zmqex.errors import DecodeError
from zmqex.keys import PublicKey, SecretKey

log = logging.getLogger(__name__)

CORE, MEMBERS = b"c", b"m"  # first frame of a peer message: a core message, or a hello

#: A member silent this long may come back as a new incarnation (it restarted); sooner, a
#: second incarnation is a second process claiming its id.
RESTART_AFTER_MS = 5_000

#: Most node ids whose incarnation a node remembers at once (see Incarnations).
MAX_NODES = 1_024

#: Most members a hello may name.
MAX_MEMBERS = 256

#: Messages queued towards one connected peer before sends fail (the core retries what matters).
#: Nothing is queued for a peer that is not connected (IMMEDIATE), and repair is rate-limited
#: per peer, so this bounds what a peer that stopped reading costs us.
SNDHWM = 1_000


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    router: str  # tcp://host:port, for DEALERs
    pub: str  # tcp://host:port, for SUBs


@dataclass(frozen=True, slots=True)
class Hello:
    sender: Member
    members: tuple[Member, ...]


def tag(node_id: str, incarnation: str) -> bytes:
    return f"{node_id}/{incarnation}".encode()


def parse_tag(data: bytes) -> tuple[str, str]:
    """``(node id, incarnation)`` from a peer message's tag frame; DecodeError if it is not one."""
    try:
        node, slash, incarnation = data.decode().partition("/")
    except UnicodeDecodeError:
        raise DecodeError("peer tag is not text") from None
    if not (slash and wire.is_node_id(node) and 1 <= len(incarnation) <= 32 and incarnation.isascii()
            and incarnation.isalnum()):
        raise DecodeError(f"peer tag {data[:60]!r} is not ID/INCARNATION")
    return node, incarnation


def encode_hello(hello: Hello) -> bytes:
    return wire.pack([wire.VERSION, _member_to_wire(hello.sender), [_member_to_wire(m) for m in hello.members]])


def decode_hello(data: bytes) -> Hello:
    raw = wire.need_list(wire.unpack(data), "hello", 3)
    if raw[0] != wire.VERSION:
        raise DecodeError(f"hello version {wire.brief(raw[0], 20)} is not supported")
    members = wire.need_list(raw[2], "members")
    if len(members) > MAX_MEMBERS:
        raise DecodeError(f"hello names {len(members)} members, more than {MAX_MEMBERS}")
    return Hello(_member_from_wire(raw[1]), tuple(_member_from_wire(m) for m in members))


class Incarnations:
    """Which run of each member this node listens to (see the module docstring).

    ``heard(node, incarnation, now)`` says whether a message tagged so is to be
    used.  Invariant: one accepted incarnation per member; it changes only
    after :data:`RESTART_AFTER_MS` of silence.  At most :data:`MAX_NODES` ids
    are remembered (without keys anyone may send tags): when full, ids silent
    for :data:`RESTART_AFTER_MS` are forgotten, and a new id is refused if none
    is.  O(1) per message, O(n) when full.
    """

    def __init__(self) -> None:
        self.accepted: dict[str, tuple[str, int]] = {}  # node -> (incarnation, last heard)
        self.refused: dict[str, str] = {}  # node -> the latest incarnation refused (for the log)

    def heard(self, node: str, incarnation: str, now: int) -> bool:
        current = self.accepted.get(node)
        if current is None and len(self.accepted) >= MAX_NODES:
            self.accepted = {n: a for n, a in self.accepted.items() if now - a[1] < RESTART_AFTER_MS}
            self.refused = {n: i for n, i in self.refused.items() if n in self.accepted}
            if len(self.accepted) >= MAX_NODES:
                return False
        if current is None or current[0] == incarnation or now - current[1] >= RESTART_AFTER_MS:
            if current is not None and current[0] != incarnation:
                log.info("peer %s restarted (incarnation %s, was %s)", node, incarnation, current[0])
            self.accepted[node] = (incarnation, now)
            return True
        if self.refused.get(node) != incarnation:
            self.refused[node] = incarnation
            log.error("a second node claims to be %s (incarnation %s) while %s is running: refused; "
                      "two nodes must not share an id or a key", node, incarnation, current[0])
        return False

    def forget(self, node: str) -> None:
        self.accepted.pop(node, None)
        self.refused.pop(node, None)


def _member_to_wire(m: Member) -> list[str]:
    return [m.id, m.router, m.pub]


def _member_from_wire(raw: object) -> Member:
    node, router, pub = wire.need_list(raw, "member", 3)
    return Member(wire.need_node_id(node), _endpoint(router), _endpoint(pub))


# What a DEALER and a SUB can connect to: zmq_connect raises at once on "tcp://x", "ipc://@",
# "tcp://\u00e9:5" ..., and a node connects to every member a hello names.
_ENDPOINT = re.compile(r"tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,190}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})\Z"
                       r"|ipc://(?!@?\Z)[!-~]{1,100}\Z")


def _endpoint(value: object) -> str:
    """An endpoint a hello may name: ``tcp://IP:PORT`` or ``ipc://PATH``.

    An IP, not a host name: a node announces the address it bound, and a name would
    have libzmq resolve it on its I/O thread, which a peer could stall with a slow name.
    """
    text = wire.need_str(value, "endpoint", 200)
    match = _ENDPOINT.match(text)
    if match is None or match.group(1) is not None and not 1 <= int(match.group(1)) <= 65535:
        raise DecodeError(f"endpoint {text!r:.60} must be tcp://IP:PORT or ipc://PATH")
    if match.group(1) is not None:
        host = text[len("tcp://"):text.rindex(":")].strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise DecodeError(f"endpoint {text!r:.60} must name an IP address, not a host name") from None
    return text


class Link:
    """Our sockets towards one peer.

    With keys (``own`` and ``server`` given) both sockets are CURVE clients
    that accept only ``server``'s key: a link to an endpoint reaches the
    member it was made for, or nobody.
    """

    def __init__(self, ctx: zmq.Context[Any], tag: bytes, router: str, *, linger_ms: int, max_frame: int,
                 own: SecretKey | None = None, server: PublicKey | None = None, peer: str | None = None) -> None:
        self.router = router
        self.peer = peer  # known at once with keys, else once it says hello
        self.pub: str | None = None
        self._tag = tag
        self._own, self._server = own, server
        self.dealer = ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, linger_ms)
        self.dealer.setsockopt(zmq.SNDHWM, SNDHWM)
        self.dealer.setsockopt(zmq.IMMEDIATE, 1)
        self.dealer.setsockopt(zmq.MAXMSGSIZE, max_frame)
        if own is not None and server is not None:
            auth.connect_to(self.dealer, own, server)
        try:
            self.dealer.connect(router)
        except zmq.ZMQError:
            self.dealer.close(0)
            raise
        self.sub: zmq.Socket[Any] | None = None
        self._ctx, self._linger, self._max_frame = ctx, linger_ms, max_frame

    def subscribe(self, pub: str, rcvhwm: int) -> zmq.Socket[Any]:
        """(Re)connect our SUB to the peer's PUB; returns the new socket."""
        self.close_sub()
        sub: zmq.Socket[Any] = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, rcvhwm)
        sub.setsockopt(zmq.MAXMSGSIZE, self._max_frame)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        if self._own is not None and self._server is not None:
            auth.connect_to(sub, self._own, self._server)
        try:
            sub.connect(pub)
        except zmq.ZMQError:
            sub.close(0)
            raise
        self.sub, self.pub = sub, pub
        return sub

    def send(self, kind: bytes, data: bytes) -> bool:
        """Queue a message for the peer; False if its queue is full (the core will retry)."""
        try:
            self.dealer.send_multipart([kind, self._tag, data], zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def close_sub(self) -> None:
        if self.sub is not None:
            self.sub.close(0)
            self.sub = None

    def close(self) -> None:
        self.close_sub()
        self.dealer.close(self._linger)
