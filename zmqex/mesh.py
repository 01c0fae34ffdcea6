"""The peer mesh: one DEALER and one SUB per peer, and how members find each other.

Each node binds a ROUTER (clients and peers send to it) and a PUB (its gossip).
To every peer it connects a DEALER, with routing id ``N:<own id>`` so the
peer's ROUTER knows who is talking, and a SUB to the peer's PUB.  Direct
messages always travel on the sender's DEALER into the receiver's ROUTER;
nothing is sent to a peer on our own ROUTER, so no reply depends on a peer
being routable from our side.

Members find each other with :class:`Hello` frames, each carrying the sender's
endpoints and every member it knows: a node that hears of a member it has no
link to connects to it and says hello.  Nodes repeat their hello now and then,
so a lost one costs a little time, not a partition.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import zmq

from zmqex.core import wire
from zmqex.errors import DecodeError

log = logging.getLogger(__name__)

PEER_PREFIX = b"N:"  # routing ids of peers' DEALERs; clients get libzmq's (they start with 0)
CORE, MEMBERS = b"c", b"m"  # first frame of a peer message: a core message, or a hello

#: Most members a hello may name.
MAX_MEMBERS = 256


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    router: str  # tcp://host:port, for DEALERs
    pub: str  # tcp://host:port, for SUBs


@dataclass(frozen=True, slots=True)
class Hello:
    sender: Member
    members: tuple[Member, ...]


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
    text = wire.need_str(value, "endpoint", 200)
    match = _ENDPOINT.match(text)
    if match is None or match.group(1) is not None and not 1 <= int(match.group(1)) <= 65535:
        raise DecodeError(f"endpoint {text!r:.60} must be tcp://HOST:PORT or ipc://PATH")
    return text


class Link:
    """Our sockets towards one peer."""

    def __init__(self, ctx: zmq.Context, own_id: str, router: str, *, linger_ms: int, max_frame: int) -> None:
        self.router = router
        self.peer: str | None = None  # known once it says hello
        self.pub: str | None = None
        self.dealer = ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.ROUTING_ID, PEER_PREFIX + own_id.encode())
        self.dealer.setsockopt(zmq.LINGER, linger_ms)
        self.dealer.setsockopt(zmq.SNDHWM, 100_000)
        self.dealer.setsockopt(zmq.MAXMSGSIZE, max_frame)
        self.dealer.connect(router)
        self.sub: zmq.Socket | None = None
        self._ctx, self._linger, self._max_frame = ctx, linger_ms, max_frame

    def subscribe(self, pub: str, rcvhwm: int) -> zmq.Socket:
        """(Re)connect our SUB to the peer's PUB; returns the new socket."""
        self.close_sub()
        sub = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, rcvhwm)
        sub.setsockopt(zmq.MAXMSGSIZE, self._max_frame)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(pub)
        self.sub, self.pub = sub, pub
        return sub

    def send(self, kind: bytes, data: bytes) -> bool:
        """Queue a message for the peer; False if its queue is full (the core will retry)."""
        try:
            self.dealer.send_multipart([kind, data], zmq.NOBLOCK)
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
