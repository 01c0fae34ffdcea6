"""A node's peers: its links to them, which run of each it listens to, and hellos.

:class:`Peers` owns every socket this node has towards other members (a
:class:`~zmqex.mesh.Link` each: a DEALER and a SUB), found by endpoint and by
member id, and the :class:`~zmqex.mesh.Incarnations` that say which process of
each member is heard.  What a hello changes comes back from :meth:`Peers.on_hello`
as a :class:`HelloOutcome` for the node to pass on (to the replica, the API's
status, the store): this class writes nobody else's state.

Invariants:

* A link is in ``by_id`` only once its member said hello on it (with keys: the
  link was made for that member's key); ``links`` also holds links still waiting.
* Only a member itself may move itself to other endpoints; with keys, only
  members on the allow-list get links.
* Every SUB is registered with the node's poller exactly while it is a link's SUB, and
  every DEALER while its link is open (a peer answers our hellos on it: mesh.Verdict).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import zmq

from zmqex import mesh
from zmqex.core import wire
from zmqex.keys import Keyring

log = logging.getLogger(__name__)


@dataclass(slots=True)
class HelloOutcome:
    joined: list[mesh.Member] = field(default_factory=list)  # new peers, or peers that moved
    to_save: list[mesh.Member] = field(default_factory=list)  # members whose endpoints are new to us


class Peers:
    def __init__(self, ctx: zmq.Context[Any], me: mesh.Member, incarnation: str, keyring: Keyring | None,
                 poller: zmq.Poller, *, sub_hwm: int, linger_ms: int) -> None:
        self.me = me
        self.keyring = keyring
        self.links: dict[str, mesh.Link] = {}  # by router endpoint
        self.by_id: dict[str, mesh.Link] = {}  # by member id, once it said hello
        self.incarnations = mesh.Incarnations()
        self._subs: dict[zmq.Socket[Any], str] = {}  # SUB -> the member it listens to
        self._dealers: dict[zmq.Socket[Any], mesh.Link] = {}  # DEALER -> its link
        self._ctx, self._poller, self._sub_hwm, self._linger = ctx, poller, sub_hwm, linger_ms
        self.tag = self._tag = mesh.tag(me.id, incarnation)

    def sender_of(self, sub: zmq.Socket[Any]) -> str | None:
        return self._subs.get(sub)

    def link_of(self, dealer: zmq.Socket[Any]) -> mesh.Link | None:
        """The link whose DEALER ``dealer`` is (what a peer answers our hellos on), or None."""
        return self._dealers.get(dealer)

    def send(self, peer: str, kind: bytes, frame: bytes) -> bool:
        """Queue a frame for ``peer``; False if there is no link to it or its queue is full."""
        link = self.by_id.get(peer)
        return link is not None and link.send(kind, frame)

    def link(self, router: str, peer: str | None = None) -> mesh.Link | None:
        """Our link to the node at ``router`` (with keys, ``peer`` names whose key to expect there)."""
        link = self.links.get(router)
        if link is not None:
            return link
        server = None
        if self.keyring is not None:
            server = self.keyring.members.get(peer or "")
            if server is None:
                log.warning("not linking to %s at %s: %s", peer or "a node", router,
                            "no member key for it" if peer else "with keys, join as ID@HOST:PORT")
                return None
        try:
            link = mesh.Link(self._ctx, self._tag, router, linger_ms=self._linger, max_frame=wire.MAX_FRAME,
                             own=self.keyring.own if self.keyring else None, server=server)
        except zmq.ZMQError as exc:  # an endpoint libzmq cannot connect to: not a reason to stop
            log.warning("not linking to %s at %s: %s", peer or "a node", router, exc)
            return None
        self.links[router] = link
        self._dealers[link.dealer] = link
        self._poller.register(link.dealer, zmq.POLLIN)
        link.send(mesh.MEMBERS, mesh.encode_hello(self.hello()))
        return link

    def hello(self) -> mesh.Hello:
        members = [self.me] + [
            mesh.Member(link.peer, link.router, link.pub) for link in self.by_id.values() if link.peer and link.pub
        ]
        return mesh.Hello(self.me, tuple(members))

    def say_hello(self, unanswered_only: bool = False) -> None:
        """Hello to every link; or, every tick, to the links whose peer has not answered our hello
        yet, with its own or with a verdict (a DEALER drops what it sends before its connection is
        up: IMMEDIATE, see mesh.Link).  Until the verdict, the peer may not have heard this process
        itself (only of it, from another member), and would take a second process for us."""
        links = [link for link in self.links.values()
                 if not unanswered_only or link.peer is None or link.peer not in self.by_id or link.verdict is None]
        if links:
            data = mesh.encode_hello(self.hello())
            for link in links:
                link.send(mesh.MEMBERS, data)

    def on_hello(self, sender: str, hello: mesh.Hello) -> HelloOutcome:
        """Link to the members ``sender`` (already checked to be who it says) tells us of."""
        outcome = HelloOutcome()
        for member in (hello.sender, *hello.members):
            if member.id == self.me.id:
                continue
            if self.keyring is not None and member.id not in self.keyring.members:
                continue  # with keys, only the allow-list makes members
            known = self.by_id.get(member.id)
            if known is not None and member.id != sender:
                continue  # only a member itself may tell us it moved
            if known is not None and known.router != member.router:
                log.info("peer %s moved from %s to %s", member.id, known.router, member.router)
                self._close(known)
                known = None
            link = known or self.link(member.router, member.id)
            if link is None or (link.peer is not None and link.peer != member.id):
                continue  # no link, or that endpoint is another member's (with keys, fixed by its key)
            if self.by_id.get(member.id) is not link:
                link.peer = member.id
                self.by_id[member.id] = link
                outcome.joined.append(member)
            if link.pub != member.pub or link.router != member.router:
                outcome.to_save.append(member)
            if link.pub != member.pub:
                self._subscribe(link, member)
        return outcome

    def _subscribe(self, link: mesh.Link, member: mesh.Member) -> None:
        if link.sub is not None:
            self._poller.unregister(link.sub)
            self._subs.pop(link.sub, None)
        try:
            sub = link.subscribe(member.pub, self._sub_hwm)
        except zmq.ZMQError as exc:
            log.warning("cannot subscribe to %s at %s: %s", member.id, member.pub, exc)
            return
        self._poller.register(sub, zmq.POLLIN)
        self._subs[sub] = member.id

    def remove(self, member: str) -> None:
        """A member taken off the allow-list: close our links to it and forget which run it was."""
        link = self.by_id.get(member)
        if link is not None:
            self._close(link)
        self.incarnations.forget(member)

    def set_keyring(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def _close(self, link: mesh.Link) -> None:
        if link.sub is not None:
            self._poller.unregister(link.sub)
            self._subs.pop(link.sub, None)
        if self._dealers.pop(link.dealer, None) is not None:
            self._poller.unregister(link.dealer)
        self.links.pop(link.router, None)
        if link.peer and self.by_id.get(link.peer) is link:
            del self.by_id[link.peer]
        link.close()

    def close(self) -> None:
        for link in list(self.links.values()):
            link.close()
        self.links.clear()
        self.by_id.clear()
