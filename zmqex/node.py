"""The node: the replica core wrapped in ZeroMQ sockets, timers and logs.

One thread, one ``zmq.Poller`` loop.  A poller rather than ``zmq.asyncio``:
the loop has exactly one job (read what is ready, feed the core, carry out its
outputs) and needs control of batching, which an event loop would hide behind
its scheduler; and a plain loop is cheaper per message and easier to reason
about.  No other thread ever touches the replica.

Each iteration:

1. wait until a socket is readable or the next timer tick is due;
2. read what is ready (a bounded batch per socket) and feed it to the core;
3. run the timers if due (the core's tick, hellos, :func:`zmqex.heap.freeze_survivors`);
4. carry out the core's outputs (:meth:`Node._carry_out`): commit the
   records that back promises, as one transaction; send to peers, in as few
   frames as possible; reply to clients; publish the gossip in one frame;
   then log, and commit the records that back no promise.  Nothing leaves the
   node before the records that back it are committed.

(The store's WAL checkpoints run on a thread of their own, in
:mod:`zmqex.store`; it never touches the replica.)
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable

import zmq

from zmqex import api, heap, mesh
from zmqex.core import messages, wire
from zmqex.core.events import Cancel, Event, Fill, NewOrder
from zmqex.core.money import format_price, format_qty
from zmqex.core.outputs import Delivered, PeerChanged, Persist, Publish, Record, Reply, Send
from zmqex.core.replica import Config, Replica
from zmqex.errors import ZmqexError
from zmqex.store import MemoryStore, SqliteStore

Store = SqliteStore | MemoryStore

log = logging.getLogger(__name__)

TICK_MS = 50
GC_FREEZE_EVERY_MS = 1000  # see zmqex.heap
BATCH = 512  # most messages read from one socket per iteration, so no socket starves the others
HELLO_EVERY_MS = 2000
LINGER_MS = 200


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Node:
    """A running zmqex node.  ``run()`` blocks until ``stop()`` (or a signal handler calls it)."""

    def __init__(self, node_id: str, *, host: str = "127.0.0.1", port: int = 0, join: Iterable[str] = (),
                 store: Store | None = None, config: Config = Config(),
                 sub_hwm: int = 100_000, drop_gossip: int = 0) -> None:
        self.store: Store = store or MemoryStore()
        members = self.store.members()
        self.replica = Replica.restore(node_id, self.store.records(), peers=[m[0] for m in members],
                                       now=now_ms(), config=config)
        self.id = node_id
        self.config = config
        self.ctx = zmq.Context()
        self.api = api.ClientApi(self.replica)
        self.sub_hwm = sub_hwm
        self._drop_gossip = drop_gossip  # fault injection for tests: lose every Nth gossip message
        self._gossip_seen = 0
        self._amnesia_logged = False
        self._mismatches_logged = 0
        self._stopping = False

        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished client raises, not silence
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted peer takes its routing id back
        self.router.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME)
        self.router.setsockopt(zmq.LINGER, LINGER_MS)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.setsockopt(zmq.RCVHWM, 100_000)
        self.router.bind(f"tcp://{host}:{port}")
        self.endpoint = self.router.getsockopt(zmq.LAST_ENDPOINT).decode()

        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, LINGER_MS)
        self.pub.setsockopt(zmq.SNDHWM, 100_000)
        self.pub.bind(f"tcp://{host}:0")
        self.pub_endpoint = self.pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.me = mesh.Member(self.id, self.endpoint, self.pub_endpoint)

        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)
        self.links: dict[str, mesh.Link] = {}  # by router endpoint
        self.peer_links: dict[str, mesh.Link] = {}  # by peer id, once it said hello
        self._sub_peer: dict[zmq.Socket, str] = {}
        self._next_hello = 0
        if self.replica.clock:
            log.info("node %s restored from its store: %d events, %d open orders", self.id,
                     sum(self.replica.clock.values()), len(self.replica.ledger.book))
        seeds = [*join, *(router for member, router, _ in members if member != self.id)]
        if seeds and not self.replica.clock:
            self.replica.awaiting_peers = True  # see Replica.awaiting_peers
        for seed in seeds:
            self._link(seed if "://" in seed else f"tcp://{seed}")
        log.info("node %s ready: clients and peers at %s, gossip at %s", self.id, self.endpoint, self.pub_endpoint)

    # --- running ----------------------------------------------------------------------

    def run(self) -> None:
        gc.collect()  # what restore left behind, once
        gc.freeze()
        next_tick = next_freeze = now_ms()
        try:
            while not self._stopping:
                timeout = max(0, next_tick - now_ms())
                ready = dict(self.poller.poll(timeout))
                for sock in ready:
                    if sock is self.router:
                        self._read_router()
                    else:
                        self._read_sub(sock)
                now = now_ms()
                if now >= next_tick:
                    self.replica.tick(now)
                    if now >= self._next_hello:
                        self._say_hello()
                        self._next_hello = now + HELLO_EVERY_MS
                    if now >= next_freeze:
                        heap.freeze_survivors()
                        next_freeze = now + GC_FREEZE_EVERY_MS
                    next_tick = now + TICK_MS
                self._carry_out()
        finally:
            self.close()

    def stop(self) -> None:
        """Ask the loop to finish its iteration and close (safe from a signal handler)."""
        self._stopping = True

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        self.router.close(LINGER_MS)
        self.pub.close(LINGER_MS)
        self.ctx.term()
        self.store.close()
        log.info("node %s stopped", self.id)

    # --- input --------------------------------------------------------------------------

    def _read_router(self) -> None:
        for _ in range(BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[0]
            if len(frames) == 2:
                self._client_request(identity, frames[1])
            elif len(frames) == 3 and identity.startswith(mesh.PEER_PREFIX):
                self._peer_message(identity[len(mesh.PEER_PREFIX):], frames[1], frames[2])
            else:
                log.warning("dropped a %d-frame message from %r: not a client request or peer message",
                            len(frames), identity[:40])

    def _client_request(self, identity: bytes, frame: bytes) -> None:
        try:
            reply = self.api.handle(identity, frame, user=None, now=now_ms())
        except ZmqexError as exc:  # an invariant the core refused: log it, keep serving
            log.error("request from %r failed: %s", identity[:40], exc)
            reply = api.error(None, exc.code, str(exc))
        if reply is not None:
            self._to_client(identity, reply)

    def _peer_message(self, raw_sender: bytes, kind: bytes, data: bytes) -> None:
        try:
            sender = raw_sender.decode()
        except UnicodeDecodeError:
            log.warning("dropped a peer message: routing id is not text")
            return
        if not wire.is_node_id(sender):
            log.warning("dropped a peer message from an invalid node id %r", sender[:40])
            return
        try:
            if kind == mesh.CORE:
                if sender not in self.peer_links:
                    log.warning("dropped a message from %s: not a member (no hello yet)", sender)
                    return
                self._receive(sender, messages.decode_batch(data), "message")
            elif kind == mesh.MEMBERS:
                self._on_hello(sender, mesh.decode_hello(data))
            else:
                log.warning("dropped a peer message of unknown kind %r from %s", kind[:10], sender)
        except ZmqexError as exc:
            log.warning("rejected a message from %s: %s", sender, exc)

    def _read_sub(self, sock: zmq.Socket) -> None:
        sender = self._sub_peer.get(sock)
        for _ in range(BATCH):
            try:
                data = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if sender is None:
                continue
            try:
                batch = messages.decode_batch(data)
            except ZmqexError as exc:
                log.warning("rejected gossip from %s: %s", sender, exc)
                continue
            if self._drop_gossip:
                batch = [m for m in batch if self._keep_gossip()]
            self._receive(sender, batch, "gossip")

    def _receive(self, sender: str, batch: list[messages.Message], what: str) -> None:
        """Feed one frame's messages to the core; one that it refuses does not stop the rest."""
        now = now_ms()
        for msg in batch:
            try:
                self.replica.receive(sender, msg, now)
            except ZmqexError as exc:
                log.warning("rejected %s from %s: %s", what, sender, exc)

    def _keep_gossip(self) -> bool:
        self._gossip_seen += 1
        return self._gossip_seen % self._drop_gossip != 0

    # --- membership ---------------------------------------------------------------------

    def _link(self, router: str) -> mesh.Link:
        link = self.links.get(router)
        if link is None:
            link = self.links[router] = mesh.Link(self.ctx, self.id, router, linger_ms=LINGER_MS,
                                                  max_frame=wire.MAX_FRAME)
            link.send(mesh.MEMBERS, mesh.encode_hello(self._hello()))
        return link

    def _hello(self) -> mesh.Hello:
        members = [self.me] + [
            mesh.Member(link.peer, link.router, link.pub)
            for link in self.peer_links.values() if link.peer and link.pub
        ]
        return mesh.Hello(self.me, tuple(members))

    def _say_hello(self) -> None:
        data = mesh.encode_hello(self._hello())
        for link in self.links.values():
            link.send(mesh.MEMBERS, data)

    def _on_hello(self, sender: str, hello: mesh.Hello) -> None:
        if hello.sender.id != sender:
            log.warning("dropped a hello from %s that claims to be %s", sender, hello.sender.id)
            return
        for member in (hello.sender, *hello.members):
            if member.id == self.id:
                continue
            known = self.peer_links.get(member.id)
            if known is not None and member.id != sender:
                continue  # only a member itself may tell us it moved
            if known is not None and known.router != member.router:
                log.info("peer %s moved from %s to %s", member.id, known.router, member.router)
                self._drop_link(known)
                known = None
                self.api.endpoints.pop(member.id, None)
            link = known or self._link(member.router)
            if link.peer is None:
                link.peer = member.id
                self.peer_links[member.id] = link
                self.replica.add_peer(member.id)
                self.api.endpoints[member.id] = member.router
                log.info("joined %s at %s", member.id, member.router)
            if link.pub != member.pub or link.router != member.router:
                self.store.save_member(member.id, member.router, member.pub)
            if link.pub != member.pub:
                if link.sub is not None:
                    self.poller.unregister(link.sub)
                    self._sub_peer.pop(link.sub, None)
                sub = link.subscribe(member.pub, self.sub_hwm)
                self.poller.register(sub, zmq.POLLIN)
                self._sub_peer[sub] = member.id

    def _drop_link(self, link: mesh.Link) -> None:
        if link.sub is not None:
            self.poller.unregister(link.sub)
            self._sub_peer.pop(link.sub, None)
        self.links.pop(link.router, None)
        if link.peer:
            self.peer_links.pop(link.peer, None)
        link.close()

    # --- output -------------------------------------------------------------------------

    def _carry_out(self) -> None:
        """Carry out the core's outputs, in the order that keeps promises and latency low.

        Records that back a promise are committed before anything leaves the node.
        Then what someone is waiting on goes first (requests and answers to peers,
        replies to clients), one frame per peer; then the gossip, one frame; then
        the logs and fill streams; and last the commit of records that back no
        promise, off every waiting path.
        """
        if self.replica.amnesia and not self._amnesia_logged:
            self._amnesia_logged = True
            log.error("%s; it refuses orders, cancels and grants until then", self.replica.amnesia)
        mismatches = self.replica.counters["state_mismatches"]
        if mismatches > self._mismatches_logged:
            self._mismatches_logged = mismatches
            log.error("a peer at the same clock as this node holds a different state (%d times so far): "
                      "a replica is wrong; compare the peers' status and logs", mismatches)
        outputs = self.replica.take_outputs()
        if not outputs:
            return
        records: list[Record] = []
        promised = False
        to_peers: dict[str, list[messages.Message]] = {}
        gossip: list[messages.Message] = []
        later: list[Delivered | PeerChanged] = []
        for out in outputs:
            kind = type(out)
            if kind is Persist:
                records.append(out.record)
                promised = promised or out.promise
            elif kind is Publish:
                gossip.append(out.message)
            elif kind is Send:
                to_peers.setdefault(out.to, []).append(out.message)
            elif kind is Reply:
                pass  # after the commit, below
            else:
                later.append(out)
        if promised:
            self.store.commit(records)  # one transaction for the whole iteration: group commit
        for peer, msgs in to_peers.items():
            link = self.peer_links.get(peer)
            for frame in messages.encode_frames(msgs):
                if link is None or not link.send(mesh.CORE, frame):
                    log.debug("could not send to %s now; the core will retry", peer)
        for out in outputs:
            if type(out) is Reply:
                self._to_client(*self.api.finish(out.token, out.result))
        for frame in messages.encode_frames(gossip):
            self.pub.send(frame)
        for out in later:
            if type(out) is Delivered:
                self._on_delivered(out.event)
            elif type(out) is PeerChanged:
                log.info("peer %s is %s", out.peer, "up" if out.up else "down: its orders are unavailable")
        if records and not promised:
            self.store.commit(records, promise=False)  # off the replies' path, and not fsynced

    def _to_client(self, identity: bytes, frame: bytes) -> None:
        try:
            self.router.send_multipart([identity, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # gone (EHOSTUNREACH) or not reading (EAGAIN)
            if self.api.watchers.pop(identity, None) is not None:
                log.info("fill stream to %r ended: %s", identity[:40], exc.strerror)
            else:
                log.debug("reply to %r dropped: %s", identity[:40], exc.strerror)

    def _on_delivered(self, event: Event) -> None:
        body = event.body
        if isinstance(body, Fill):
            whose = "granted" if event.origin == self.id else f"granted by {event.origin}"
            log.info("fill %s:%d %s %s @ %s (maker %s, taker %s)", event.origin, event.seq, whose,
                     format_qty(body.qty), format_price(body.price), body.maker, body.taker)
            for identity, frame in self.api.stream_fill(event):
                self._to_client(identity, frame)
        elif event.origin != self.id:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("event %s:%d from %s: %s", event.origin, event.seq, event.origin, body)
        elif isinstance(body, NewOrder):
            price = "market" if body.price is None else format_price(body.price)
            log.info("order %s placed: %s %s @ %s %s", event.order_id, body.side.value, format_qty(body.qty),
                     price, body.tif.value)
        elif isinstance(body, Cancel):
            log.info("order %s closed: %s", body.order_id, body.reason.value)
