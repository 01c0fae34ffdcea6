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

A second process must learn that it is one, and stop before it acknowledges
anything: a node answers every hello with a :class:`Verdict`, sent back on
its ROUTER to the connection the hello came in on (the one thing a node sends
on its ROUTER to a peer, because the refused process may be reachable no
other way, and no link of ours is made for it): ``accepted``, ``refused``
(another incarnation holds the id; the sender waits: it may be that one
restarted), or ``duplicate``.  ``duplicate`` needs proof that the holder is
alive now, not only lately heard: the node sends the holder a :data:`PROBE`
with a fresh nonce on its link, and the holder echoes it on the same path;
an echo proves the holder alive after the probe left, so every incarnation
refused before that is a second process (a stale message from a holder that
died cannot echo a nonce made after it died).  A node acts on verdicts about
its own incarnation (:mod:`zmqex.claim`).

Members find each other with :class:`Hello` frames, each carrying the sender's
endpoints and every member it knows: a node that hears of a member it has no
link to connects to it and says hello.  Nodes repeat their hello now and then,
so a lost one costs a little time, not a partition.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

import zmq

from zmqex import auth
from zmqex.core import wire
from zmqex.errors import DecodeError
from zmqex.keys import PublicKey, SecretKey

log = logging.getLogger(__name__)

CORE, MEMBERS = b"c", b"m"  # first frame of a peer message: a core message, or a hello
#: First frame of a verdict on a hello, and of a probe and its echo (see the module docstring).
VERDICT, PROBE = b"v", b"p"

#: What a node answers a hello with, about the sender's incarnation.
VERDICTS = ("accepted", "refused", "duplicate")
ACCEPTED, REFUSED, DUPLICATE = VERDICTS

#: Least time between two verdicts of one kind to one incarnation, and between two probes of
#: one holder: a refused process says hello on every tick.
TELL_EVERY_MS = 1_000

#: Refused incarnations remembered per member, the oldest forgotten first.
MAX_CONTESTED = 16

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


@dataclass(frozen=True, slots=True)
class Verdict:
    """A peer's answer to our hello: ``verdict`` (one of :data:`VERDICTS`) on ``incarnation``
    (ours, as the peer heard it), and ``holder``, the incarnation it listens to for our id."""

    verdict: str
    incarnation: str
    holder: str


def encode_verdict(verdict: Verdict) -> bytes:
    return wire.pack([wire.VERSION, verdict.verdict, verdict.incarnation, verdict.holder])


def decode_verdict(data: bytes) -> Verdict:
    raw = wire.need_list(wire.unpack(data), "verdict", 4)
    if raw[0] != wire.VERSION:
        raise DecodeError(f"verdict version {wire.brief(raw[0], 20)} is not supported")
    verdict = wire.need_str(raw[1], "verdict", 16)
    if verdict not in VERDICTS:
        raise DecodeError(f"verdict {verdict!r} is not one of {VERDICTS}")
    return Verdict(verdict, wire.need_str(raw[2], "incarnation", 32), wire.need_str(raw[3], "holder", 32))


def encode_probe(nonce: str) -> bytes:
    return wire.pack([wire.VERSION, nonce])


def decode_probe(data: bytes) -> str:
    raw = wire.need_list(wire.unpack(data), "probe", 2)
    if raw[0] != wire.VERSION:
        raise DecodeError(f"probe version {wire.brief(raw[0], 20)} is not supported")
    return wire.need_str(raw[1], "nonce", 32)


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
    """Which run of each member this node listens to, and what it tells the others (module docstring).

    ``heard(node, incarnation, now)`` says whether a message tagged so is to be
    used.  Invariant: one accepted incarnation per member; it changes only
    after :data:`RESTART_AFTER_MS` of silence.  At most :data:`MAX_NODES` ids
    are remembered (without keys anyone may send tags): when full, ids silent
    for :data:`RESTART_AFTER_MS` are forgotten, and a new id is refused if none
    is.  Refused incarnations are kept per member (at most :data:`MAX_CONTESTED`)
    with when each was first refused, until a probe's echo shows the holder alive
    after that: then each is a ``duplicate``.  O(1) per message, O(n) when full.
    """

    def __init__(self) -> None:
        self.accepted: dict[str, tuple[str, int]] = {}  # node -> (incarnation, last heard)
        self.refused: dict[str, str] = {}  # node -> the latest incarnation refused (for the log)
        # node -> {incarnation refused: [first refused at, shown to be a second process]}, while the holder holds
        self.contested: dict[str, dict[str, list[Any]]] = {}
        self.probes: dict[str, tuple[str, str, int]] = {}  # node -> (nonce, holder probed, sent at)
        self._told: dict[tuple[str, str], tuple[str, int]] = {}  # (node, incarnation) -> (verdict, at)

    def heard(self, node: str, incarnation: str, now: int) -> bool:
        current = self.accepted.get(node)
        if current is None and len(self.accepted) >= MAX_NODES:
            self.accepted = {n: a for n, a in self.accepted.items() if now - a[1] < RESTART_AFTER_MS}
            self.refused = {n: i for n, i in self.refused.items() if n in self.accepted}
            self.contested = {n: c for n, c in self.contested.items() if n in self.accepted}
            self.probes = {n: p for n, p in self.probes.items() if n in self.accepted}
            if len(self.accepted) >= MAX_NODES:
                return False
        if current is None or current[0] == incarnation or now - current[1] >= RESTART_AFTER_MS:
            if current is not None and current[0] != incarnation:
                log.info("peer %s restarted (incarnation %s, was %s)", node, incarnation, current[0])
                self.contested.pop(node, None)  # refused while another held the id: judged afresh
                self.probes.pop(node, None)
            self.accepted[node] = (incarnation, now)
            return True
        contested = self.contested.setdefault(node, {})
        if incarnation not in contested:
            if len(contested) >= MAX_CONTESTED:
                del contested[next(iter(contested))]
            contested[incarnation] = [now, False]
        if self.refused.get(node) != incarnation:
            self.refused[node] = incarnation
            log.error("a second node claims to be %s (incarnation %s) while %s is running: refused; "
                      "two nodes must not share an id or a key", node, incarnation, current[0])
        return False

    def verdict(self, node: str, incarnation: str) -> Verdict:
        """What to tell ``incarnation`` of ``node`` about its claim, once it said hello (after ``heard``)."""
        holder = self.accepted.get(node, ("", 0))[0]
        if holder == incarnation:
            return Verdict(ACCEPTED, incarnation, holder)
        shown = self.contested.get(node, {}).get(incarnation, [0, False])[1]
        return Verdict(DUPLICATE if shown else REFUSED, incarnation, holder)

    def should_tell(self, node: str, verdict: Verdict, now: int) -> bool:
        """Whether to send ``verdict`` now: a new one at once, the same one at most every TELL_EVERY_MS."""
        key = (node, verdict.incarnation)
        told = self._told.get(key)
        if told is not None and told[0] == verdict.verdict and now - told[1] < TELL_EVERY_MS:
            return False
        if len(self._told) >= 4 * MAX_NODES:
            self._told.clear()  # forgetting only makes a verdict go out again
        self._told[key] = (verdict.verdict, now)
        return True

    def probe(self, node: str, now: int) -> str | None:
        """A fresh nonce to send ``node``'s holder, if an incarnation refused for it is not yet shown to
        be a second process and no probe went in the last TELL_EVERY_MS; else None."""
        contested, current = self.contested.get(node), self.accepted.get(node)
        if not contested or current is None or all(shown for _, shown in contested.values()):
            return None
        sent = self.probes.get(node)
        if sent is not None and now - sent[2] < TELL_EVERY_MS:
            return None
        nonce = secrets.token_hex(8)
        self.probes[node] = (nonce, current[0], now)
        return nonce

    def echoed(self, node: str, incarnation: str, nonce: str, now: int) -> list[str]:
        """A probe's echo from ``node``'s ``incarnation``: the incarnations it shows to be second
        processes (refused before the probe left, while the holder was alive after it)."""
        sent = self.probes.get(node)
        current = self.accepted.get(node)
        if sent is None or sent[0] != nonce or sent[1] != incarnation or current is None or current[0] != incarnation:
            return []
        del self.probes[node]
        self.accepted[node] = (incarnation, max(current[1], now))
        shown = []
        for other, state in self.contested.get(node, {}).items():
            if not state[1] and state[0] <= sent[2]:
                state[1] = True
                shown.append(other)
        return shown

    def forget(self, node: str) -> None:
        self.accepted.pop(node, None)
        self.refused.pop(node, None)
        self.contested.pop(node, None)
        self.probes.pop(node, None)


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
        self.verdict: Verdict | None = None  # the peer's latest verdict on our hello (see zmqex.claim)
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
