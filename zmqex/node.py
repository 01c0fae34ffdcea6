"""The node: the replica core wrapped in ZeroMQ sockets, timers and logs.

One thread, one ``zmq.Poller`` loop.  A poller rather than ``zmq.asyncio``:
the loop has exactly one job (read what is ready, feed the core, carry out its
outputs) and needs control of batching, which an event loop would hide behind
its scheduler; and a plain loop is cheaper per message and easier to reason
about.  No other thread ever touches the replica.

Each iteration:

1. wait until a socket is readable or the next timer tick is due;
2. read what is ready (a bounded batch per socket) and feed it to the core;
3. run the timers if due (the core's tick, health logs, hellos, :func:`zmqex.heap.freeze_survivors`);
4. carry out the core's outputs (:meth:`Node._carry_out`, in the order of
   :mod:`zmqex.core.schedule`): commit the records that back promises, as one
   transaction; send to peers, in as few frames as possible; reply to clients;
   publish the gossip in one frame; then log, and commit the records that back
   no promise.  Nothing leaves the node before the records that back it are
   committed.

Who sent a message is never what the message says.  With keys (``--keys``,
:mod:`zmqex.auth`) it is the key its connection authenticated with, read from
every frame (the ZAP user id): a trader's or operator's key may send client
requests, a member's key peer messages, and a peer message's tag
(``ID/INCARNATION``, :mod:`zmqex.mesh`) must name the key's member.  Without
keys (loopback only) the tag alone names a peer.  Links to peers, and which
run of each member is heard, belong to :class:`~zmqex.peers.Peers`.

Two guards stand before the loop's outward effects.  A node that joins with an
empty store takes no work until the mesh accepts this process as its id
(:mod:`zmqex.claim`), and stops, saying so, if a peer shows that another live
process holds it.  A commit that fails (a full disk) stalls the node rather
than stopping it (:mod:`zmqex.stall`): nothing of it leaves, clients' writes
are refused, and it resumes when the commit goes through.

(The store's WAL checkpoints run on a thread of their own, in
:mod:`zmqex.store`; it never touches the replica; nor does pyzmq's ZAP thread.)
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import zmq

from zmqex import api, auth, heap, keys, mesh, protocol
from zmqex.auth import Authenticator
from zmqex.claim import Claim
from zmqex.core import messages, wire
from zmqex.core.events import Cancel, Event, Fill, NewOrder, Report
from zmqex.core.money import format_price, format_qty
from zmqex.core.outputs import Delivered, OtcChanged, PeerChanged, Record, Repaired
from zmqex.core.replica import Config, Replica
from zmqex.core.schedule import Notice, Schedule, schedule
from zmqex.gate import Gate
from zmqex.errors import Busy, DecodeError, KeyFileError, LocalError, RemoteError, StoreError, StoreUnavailable
from zmqex.keys import Keyring
from zmqex.peers import Peers
from zmqex.probe import Probe
from zmqex.stall import LOG_EVERY_MS, RETRY_MS, Stall
from zmqex.store import MemoryStore, SqliteStore

Store = SqliteStore | MemoryStore

log = logging.getLogger(__name__)

TICK_MS = 50
GC_FREEZE_EVERY_MS = 1000  # see zmqex.heap
BATCH = 512  # most messages read from one socket per iteration, so no socket starves the others
HELLO_EVERY_MS = 2000
LINGER_MS = 200
CLIENT_SNDHWM = 256
MAX_SLOW_READERS = 10_000  # clients whose dropped replies we count, to tell them
PEER_KINDS = (mesh.CORE, mesh.MEMBERS, mesh.PROBE)

#: What input from a peer or a client may raise: logged and dropped, and the node carries on
#: (nothing was changed: zmqex.errors, and docs/design.md, "Errors").  Anything else is a
#: bug, and stops the node (run).
REFUSED = (RemoteError, LocalError)


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Node:
    """A running zmqex node.  ``run()`` blocks until ``stop()`` (or a signal handler calls it)."""

    def __init__(self, node_id: str, *, host: str = "127.0.0.1", port: int = 0, join: Iterable[str] = (),
                 store: Store | None = None, config: Config = Config(), keys_dir: str | os.PathLike[str] | None = None,
                 sub_hwm: int = 100_000, drop_gossip: int = 0) -> None:
        self.keys_dir = keys_dir
        self.keyring = keyring = None if keys_dir is None else Keyring.load(keys_dir, node_id)
        self._principals = set() if keyring is None else set(keyring.principals.values())
        self.store: Store = store or MemoryStore()
        members = self.store.members()
        now = now_ms()
        # Timers run on the monotonic clock; event timestamps and expiry times on the wall clock.
        epoch = time.time_ns() // 1_000_000 - now
        self.replica = Replica.restore(node_id, self.store.records(), peers=[m[0] for m in members],
                                       now=now, config=config, epoch=epoch,
                                       signer=keyring.own.signer() if keyring else None,
                                       verifier=keyring.verify if keyring else None,
                                       members=set(keyring.members) if keyring else None)
        self.id = node_id
        self.config = config
        self.ctx = zmq.Context()
        self.api = api.ClientApi(self.replica, kept=self.store)
        self._drop_gossip = drop_gossip  # fault injection for tests: lose every Nth gossip message
        self._gossip_seen = 0
        self._amnesia_logged: str | None = None  # the replica's amnesia when last logged
        self._mismatches_logged = 0
        self._next_mismatch_log = 0
        self._stopping = False
        self._reload_requested = False
        # A new name for every run of this process: peers tell a restart from a second
        # process claiming our id by it (mesh.Incarnations).
        self.incarnation = secrets.token_hex(8)
        self._refused_logged: set[str] = set()  # principals whose refused messages were logged once
        # client -> [messages dropped since it last got one, the end messages owed to it] (see _to_client)
        self._owed: dict[bytes, list[Any]] = {}
        self._answers: list[tuple[bytes, bytes]] = []  # replies of this iteration, sent after its commit
        self._gate = Gate()  # what waits for its commit's fsync (zmqex.gate)
        self._releasing = False  # while the gate lets frames through (see _to_client)
        self.auth = None if keyring is None else Authenticator(self.ctx, keyring)
        self.probe: Probe | None = None  # set before run() to record metrics (zmqex.probe; --metrics)
        self._stall: Stall | None = None  # while the store refuses commits (zmqex.stall)
        self._failure = ""  # why the latest commit failed
        self._next_stall_log = 0  # when a stall may be logged again (see _stall_on)
        self._stalls_unlogged = 0
        self._unsaved: dict[str, mesh.Member] = {}  # members whose endpoints the store refused
        # Why this node stops: a peer showed that another live process holds our id before we took
        # any work (zmqex.claim); zmqex-node then exits with its own code.  "" once a serving node
        # was told so (it carries on).
        self.duplicate: str | None = None

        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished client raises, not silence
        # No ROUTER_HANDOVER: a routing id is whatever a connection claims, so it must never
        # let one connection take another's pipe (peers are named by tag and key instead).
        self.router.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME)
        self.router.setsockopt(zmq.LINGER, LINGER_MS)
        # Replies queued per client connection (never to peers: they hear from us on our DEALERs).
        # A client that does not read loses the rest, and is told (_to_client): with frames of at
        # most ~128 KiB (book depth 1000, 1000 fills) a slow reader costs at most ~32 MiB.
        self.router.setsockopt(zmq.SNDHWM, CLIENT_SNDHWM)
        self.router.setsockopt(zmq.RCVHWM, 100_000)
        if keyring is not None:
            auth.serve(self.router, keyring.own, keys.ROUTER_DOMAIN)
        self.router.bind(f"tcp://{host}:{port}")
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)

        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, LINGER_MS)
        self.pub.setsockopt(zmq.SNDHWM, 100_000)
        if keyring is not None:
            auth.serve(self.pub, keyring.own, keys.GOSSIP_DOMAIN)
        self.pub.bind(f"tcp://{host}:0")
        self.pub_endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.me = mesh.Member(self.id, self.endpoint, self.pub_endpoint)

        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)
        sync = self.store.walsync if isinstance(self.store, SqliteStore) else None
        self._synced_fd = -1 if sync is None else sync.ready_fd  # readable when an fsync finished
        if sync is not None:
            self.poller.register(sync.ready_fd, zmq.POLLIN)
        self.peers = Peers(self.ctx, self.me, self.incarnation, keyring, self.poller, sub_hwm=sub_hwm,
                           linger_ms=LINGER_MS)
        self._next_hello = 0
        if self.replica.clock:
            log.info("node %s restored from its store: %d events, %d open orders", self.id,
                     sum(self.replica.clock.values()), len(self.replica.ledger.book))
        seeds = [*join, *(f"{member}@{router}" for member, router, _ in members if member != self.id)]
        joining = bool(seeds) and not self.replica.clock
        if joining:
            self.replica.recover("it starts with an empty store")  # its peers may hold events of its past
        # Joining with nothing of its own, it may be a second process under a member's id (zmqex.claim).
        self.claim = Claim(self.incarnation, confirmed=not joining)
        self._refuse_writes()
        for seed in seeds:
            peer, at, address = seed.rpartition("@")
            self.peers.link(address if "://" in address else f"tcp://{address}", peer or None)
        log.info("node %s ready: clients and peers at %s, gossip at %s%s", self.id, self.endpoint, self.pub_endpoint,
                 f", keyed ({len(keyring.members)} members, {len(keyring.traders)} traders)" if keyring
                 else ", without keys (loopback only)")

    @property
    def slow_readers(self) -> int:
        """Clients owed notices of messages they were too slow to get (zmqex.probe reads it)."""
        return len(self._owed)

    # --- running ----------------------------------------------------------------------

    def run(self) -> None:
        gc.collect()  # what restore left behind, once
        gc.freeze()
        next_tick = next_freeze = now_ms()
        probe = self.probe
        try:
            while not self._stopping:
                if self._reload_requested:
                    self._reload_keys()
                timeout = max(0, next_tick - now_ms())
                ready = dict(self.poller.poll(timeout))
                busy_from = time.perf_counter_ns() if probe is not None else 0
                for sock in ready:
                    if sock == self._synced_fd:
                        self._release()
                    elif sock is self.router:
                        self._read_router()
                    elif (link := self.peers.link_of(sock)) is not None:
                        self._read_dealer(link)
                    else:
                        self._read_sub(sock)
                now = now_ms()
                if now >= next_tick:
                    if self._stall is None:
                        self.replica.tick(now)
                    elif now >= self._stall.next_try:
                        self._retry(now)
                    if not self.claim.confirmed:
                        self._check_claim(now)
                    for identity, frame in self.api.tick(now):  # cancel on disconnect, stream heartbeats
                        self._to_client(identity, frame)
                    for identity in list(self._owed):
                        self._pay(identity)
                    self._log_health()
                    if now >= self._next_hello:
                        self.peers.say_hello()
                        self._next_hello = now + HELLO_EVERY_MS
                        if self._unsaved and self._stall is None:
                            self._save_members(list(self._unsaved.values()))
                    else:
                        self.peers.say_hello(unanswered_only=True)
                    if now >= next_freeze:
                        heap.freeze_survivors()
                        next_freeze = now + GC_FREEZE_EVERY_MS
                    next_tick = now + TICK_MS
                self._carry_out()
                if probe is not None:
                    probe.iteration(self, busy_from)
        except Exception:
            # A bug: an InvariantViolation from a _check(), or an exception that no input is
            # meant to raise (what a peer or client sends raises RemoteError or LocalError,
            # dropped where it is read); or the store failing under us.  The node stops
            # rather than carry on: whatever raised may have left the replica half-changed
            # (an event in the book but not in the clock, outputs queued for a change that
            # did not finish), and carrying on would commit that and tell peers of it, so
            # the bug would spread to every replica.  Stopping breaks no promise: this
            # iteration's outputs are not carried out, so nothing uncommitted has left the
            # node, and a restart rebuilds the replica from the store, where every promise
            # was committed before anyone heard of it.  Peers retry and repair meanwhile.
            log.exception("node %s stops: an unexpected error (a bug, or its store failed); its store holds "
                          "every promise it made, and a restart restores from it", self.id)
            raise
        finally:
            self.close()

    def stop(self) -> None:
        """Ask the loop to finish its iteration and close (safe from a signal handler)."""
        self._stopping = True

    def request_reload(self) -> None:
        """Reload the key directory at the next iteration (safe from a signal handler: SIGHUP)."""
        self._reload_requested = True

    def _reload_keys(self) -> None:
        """Take the key directory as it is now: new members, traders and operators are admitted;
        removed ones lose their links and their messages are refused, even on open connections;
        a removed member's orders are unavailable here and compaction stops waiting for it."""
        self._reload_requested = False
        if self.keys_dir is None or self.keyring is None or self.auth is None:
            return
        try:
            keyring = Keyring.load(self.keys_dir, self.id)
        except KeyFileError as exc:
            log.error("keys not reloaded, the old ones stay in force: %s", exc)
            return
        removed = set(self.keyring.members) - set(keyring.members)
        self.keyring = keyring
        self._principals = set(keyring.principals.values())
        self.auth.reload(keyring)
        self.peers.set_keyring(keyring)
        self.replica.set_keys(keyring.verify, keyring.members)
        for identity, frame in self.api.streams.end_where(
                lambda sub: (sub.trader if sub.operator else keys.TRADER + sub.trader) not in self._principals,
                protocol.END_REVOKED, "this connection's key was removed from the node's keys"):
            self._to_client(identity, frame)
        for member in sorted(removed):
            self.peers.remove(member)
            self.api.endpoints.pop(member, None)
            log.warning("member %s removed: its links are closed and its orders unavailable", member)
        log.info("keys reloaded: %d members, %d traders, %d operators", len(keyring.members),
                 len(keyring.traders), len(keyring.operators))

    def close(self) -> None:
        try:
            self._release(wait=True)  # what waited for its fsync is durable now: let it go
        except StoreError as exc:
            log.error("node %s stops without sending what waited for its store: %s", self.id, exc)
        if self._stall is not None:
            log.warning("node %s stops with %d records its store refused: nothing they back left the node, and "
                        "a restart restores all it acknowledged", self.id, len(self._stall.records))
        for identity, frame in self.api.streams.end_all(protocol.END_STOPPING, "the node is stopping"):
            try:  # best effort: the socket's linger gives them a moment to leave
                self.router.send_multipart([identity, frame], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        if self.auth is not None:
            self.auth.stop()
        self.peers.close()
        self.router.close(LINGER_MS)
        self.pub.close(LINGER_MS)
        self.ctx.term()
        self.store.close()
        log.info("node %s stopped", self.id)

    # --- input --------------------------------------------------------------------------

    def _read_router(self) -> None:
        keyed = self.keyring is not None
        frames: list[bytes]
        user: str | None = None
        for _ in range(BATCH):
            try:
                if keyed:  # who sent it is the key its connection authenticated with, nothing else
                    parts = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
                    got = parts[-1].get("User-Id")
                    user = got if isinstance(got, str) else ""  # always text under ZAP; "" is nobody
                    frames = [part.bytes for part in parts]
                else:
                    frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[0]
            if len(frames) == 2:
                self._client_request(identity, frames[1], user)
            elif len(frames) == 4 and frames[1] in PEER_KINDS:  # a peer's, or one claiming to be (refused there)
                self._peer_message(identity, user, frames[1], frames[2], frames[3])
            elif user is None or self._is_client(user):  # a client's request in several frames: answered
                self._to_client(identity, self.api.handle_parts(identity, len(frames) - 1, frames[1], now_ms()))
            else:
                self._refuse(user or identity.hex(), f"a {len(frames) - 1}-frame message: not a client request "
                                                     "or peer message")

    def _refuse(self, who: str, why: str) -> None:
        """Log a refused message: the first from each sender as a warning, the rest at debug level."""
        if who not in self._refused_logged and len(self._refused_logged) < 10_000:
            self._refused_logged.add(who)
            log.warning("refused %s from %s (further refusals from it are logged with -v)", why, who)
        else:
            log.debug("refused %s from %s", why, who)

    def _is_client(self, user: str) -> bool:
        return user in self._principals and user.startswith((keys.TRADER, keys.OPERATOR))

    def _client_request(self, identity: bytes, frame: bytes, user: str | None = None) -> None:
        if user is not None and not self._is_client(user):
            self._refuse(user or identity.hex(), "a client request: the key is not a trader's or operator's")
            return
        # No except here: handle answers every refusal with an error reply itself, so what
        # it raises is a bug, for run() to stop on.  Once a request changed the replica, replies
        # wait for this iteration's commit (_carry_out): a cancel's event is durable before
        # anyone hears of it.  Until then a reply goes at once, not behind the whole batch.
        reply = self.api.handle(identity, frame, user=user, now=now_ms())
        if reply is None:
            return
        if self.api.changed:
            self._answers.append((identity, reply))
        else:
            self._to_client(identity, reply)

    def _peer_message(self, identity: bytes, user: str | None, kind: bytes, tag: bytes, data: bytes) -> None:
        try:
            sender, incarnation = mesh.parse_tag(tag)
        except RemoteError as exc:
            self._refuse(user or "a connection", f"a peer message: {exc}")
            return
        if user is not None and (user != keys.MEMBER + sender or user not in self._principals):
            # A key may speak only for the member it belongs to (a trader's key for nobody).
            self._refuse(user or "an unknown key", f"a peer message claiming to be {sender}")
            return
        now = now_ms()
        heard = self.peers.incarnations.heard(sender, incarnation, now)
        try:
            hello = mesh.decode_hello(data) if kind == mesh.MEMBERS else None
        except REFUSED as exc:
            log.warning("rejected a message from %s: %s", sender, exc)
            return
        if hello is not None and hello.sender.id == sender:  # a valid hello gets a verdict, refused or not
            self._tell(identity, sender, incarnation, now)
        if not heard:
            self.replica.counters["duplicate_ids"] += 1
            return
        try:
            if kind == mesh.CORE:
                if sender not in self.peers.by_id:
                    self._refuse(sender, "a message before its hello")
                    return
                batch = messages.decode_batch(data)
                if self._stall is not None:  # only repair is served meanwhile (zmqex.stall)
                    batch = [msg for msg in batch if type(msg) is messages.SyncRequest]
                self._receive(sender, batch, "message")
            elif hello is not None:
                self._on_hello(sender, hello)
            elif kind == mesh.PROBE:  # is this process alive: the echo says so, on the same connection
                self._send_back(identity, mesh.PROBE, mesh.encode_probe(mesh.decode_probe(data)))
            else:
                self._refuse(sender, f"a peer message of unknown kind {kind[:10]!r}")
        except REFUSED as exc:
            log.warning("rejected a message from %s: %s", sender, exc)

    def _read_sub(self, sock: zmq.Socket[Any]) -> None:
        sender = self.peers.sender_of(sock)
        for _ in range(BATCH):
            try:
                data = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if sender is None or self._stall is not None:  # stalled: repair brings it later (zmqex.stall)
                continue
            try:
                batch = messages.decode_batch(data)
            except RemoteError as exc:
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
            except REFUSED as exc:
                log.warning("rejected %s from %s: %s", what, sender, exc)

    def _keep_gossip(self) -> bool:
        self._gossip_seen += 1
        return self._gossip_seen % self._drop_gossip != 0

    # --- membership ---------------------------------------------------------------------

    def _on_hello(self, sender: str, hello: mesh.Hello) -> None:
        if hello.sender.id != sender:
            self._refuse(sender, f"a hello that claims to be {hello.sender.id}")
            return
        outcome = self.peers.on_hello(sender, hello)
        for member in outcome.joined:
            self.replica.add_peer(member.id)
            self.api.endpoints[member.id] = member.router
            log.info("joined %s at %s", member.id, member.router)
        self._save_members(outcome.to_save)
        if not self.claim.confirmed:  # a peer that accepted us, now greeted: links to its members exist
            self._check_claim(now_ms())

    def _save_members(self, members: list[mesh.Member]) -> None:
        for member in members:
            try:
                self.store.save_member(member.id, member.router, member.pub)
                self._unsaved.pop(member.id, None)
            except StoreUnavailable as exc:  # kept for later: a restart without it asks the others
                if member.id not in self._unsaved:
                    log.warning("member %s not saved, tried again later: %s", member.id, exc)
                self._unsaved[member.id] = member

    def _tell(self, identity: bytes, sender: str, incarnation: str, now: int) -> None:
        """Answer a hello with our verdict on its incarnation; while we refuse it, probe the one we
        hear for that id, whose echo shows it alive and this one a second process (zmqex.mesh)."""
        incarnations = self.peers.incarnations
        verdict = incarnations.verdict(sender, incarnation)
        if verdict.verdict == mesh.REFUSED:
            nonce = incarnations.probe(sender, now)
            if nonce is not None:
                self.peers.send(sender, mesh.PROBE, mesh.encode_probe(nonce))
        if incarnations.should_tell(sender, verdict, now):
            self._send_back(identity, mesh.VERDICT, mesh.encode_verdict(verdict))

    def _send_back(self, identity: bytes, kind: bytes, data: bytes) -> None:
        """Send a peer message on our ROUTER, to the connection ``identity`` (zmqex.mesh: verdicts, echoes)."""
        try:
            self.router.send_multipart([identity, kind, self.peers.tag, data], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # gone, or not reading: it says hello again
            log.debug("%r to %r not sent: %s", kind, identity[:40], exc.strerror)

    def _read_dealer(self, link: mesh.Link) -> None:
        """What a peer sends back on our link to it: its verdicts on our hellos, echoes of our probes."""
        for _ in range(BATCH):
            try:
                frames = link.dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                if len(frames) != 3:
                    raise DecodeError(f"a {len(frames)}-frame message on our link")
                sender, incarnation = mesh.parse_tag(frames[1])
                if link.peer is not None and sender != link.peer:
                    raise DecodeError(f"a message tagged {sender} on our link to {link.peer}")
                if frames[0] == mesh.VERDICT:
                    self._on_verdict(link, sender, mesh.decode_verdict(frames[2]))
                elif frames[0] == mesh.PROBE:
                    for other in self.peers.incarnations.echoed(sender, incarnation, mesh.decode_probe(frames[2]),
                                                                now_ms()):
                        log.error("a second node claims to be %s (incarnation %s): %s (incarnation %s) is alive; "
                                  "the second one is told to stop", sender, other, sender, incarnation)
                else:
                    raise DecodeError(f"a message of kind {frames[0][:10]!r} on our link")
            except RemoteError as exc:
                log.warning("rejected a message on our link to %s: %s", link.peer or link.router, exc)

    def _on_verdict(self, link: mesh.Link, sender: str, verdict: mesh.Verdict) -> None:
        self.claim.on_verdict(link, sender, verdict, now_ms())
        if self.claim.duplicate is None:
            if not self.claim.confirmed:
                self._check_claim(now_ms())
            return
        peer, holder = self.claim.duplicate
        self.claim.duplicate = None
        if self.claim.confirmed:
            # Serving already (it started from its own store, or was accepted): one member's word
            # must not stop it, and the mesh listens to the process that came first.  Said once.
            if self.duplicate is None:
                self.duplicate = ""
                log.error("%s says another process is running as %s (incarnation %s; this one is %s): stop one of "
                          "them; two processes must never share a node id", peer, self.id, holder, self.incarnation)
            return
        self.duplicate = (f"node {self.id} stops: another process is running as {self.id} ({peer} hears it, "
                          f"incarnation {holder}; this one is {self.incarnation}); two processes must never "
                          "share a node id: this one took no orders")
        log.error("%s", self.duplicate)
        self.stop()

    def _check_claim(self, now: int) -> None:
        if self.claim.check(self.peers.links.values(), self.peers.by_id, now):
            log.info("the mesh accepts this process as node %s (accepted by %s): it takes orders now", self.id,
                     ", ".join(sorted(self.claim.accepted_by)))
            self._refuse_writes()

    def _refuse_writes(self) -> None:
        """What the api answers writes with now: a store that refuses commits, a claim not yet accepted."""
        if self._stall is not None:
            self.api.refusal = (StoreUnavailable, f"node {self.id} cannot write its store ({self._stall.reason}); "
                                                  "it takes no new work until it can; queries still work")
        elif not self.claim.confirmed:
            self.api.refusal = (Busy, f"node {self.id} is joining: no peer has accepted this process as {self.id} "
                                      "yet; try again in a moment")
        else:
            self.api.refusal = None

    # --- output -------------------------------------------------------------------------

    def _carry_out(self) -> None:
        """Carry out the core's outputs in the order of :mod:`zmqex.core.schedule`.

        Records that back a promise are committed before anything leaves the node,
        as one transaction (group commit); then what someone waits on (messages
        to peers, one frame per peer; replies to clients); then the gossip, one
        frame; then logs and fill streams; last the commit of records that back
        no promise, off every waiting path.
        """
        outputs = self.replica.take_outputs()
        self.api.changed = False  # what changed is in these outputs, committed below before any reply
        if self._stall is not None:
            self._hold(outputs)
            return
        if not outputs:
            if self._answers:
                self._answer()
            for identity, frame in self.api.flush(now_ms()):  # a book subscription's first snapshot
                self._to_client(identity, frame)
            return
        plan = schedule(outputs)
        ticket = 0
        if plan.commit_first:
            # With more requests waiting (clients' or peers', on the ROUTER), the fsync runs on the
            # sync thread while the loop takes them (zmqex.walsync); with none, the commit syncs
            # itself: a hand-over only adds latency.  One getsockopt, not a poll of every socket
            # (that cost ~30 us a commit).
            busy = bool(self._gate) or bool(cast(int, self.router.getsockopt(zmq.EVENTS)) & zmq.POLLIN)
            committed = self._commit(plan.commit_first, True, wait=not busy)
            if committed is None:
                self._stall_on(plan.commit_first, plan)  # nothing of it leaves before its records are durable
                return
            ticket = committed
        if self._gate or not self.store.durable(ticket):
            # Its fsync runs while the loop goes on (zmqex.walsync); it leaves once that is done.
            answers, self._answers = self._answers, []
            self._gate.hold(ticket, plan, answers)
        else:
            self._effects(plan)
        if plan.commit_last and self._commit(plan.commit_last, False) is None:  # not fsynced: see SqliteStore.commit
            self._stall_on(plan.commit_last, None)  # its effects went or wait (they need no record); the records wait

    def _release(self, wait: bool = False) -> None:
        """Carry out, in order, what waited for commits now on disk (all of it, with ``wait``)."""
        store = self.store
        if isinstance(store, SqliteStore) and store.walsync is not None:
            store.walsync.drain_wakeups()
        if wait and self._gate:
            store.wait(self._gate.last_ticket)
        self._releasing = True
        try:
            for held in self._gate.ready(store.durable):
                if held.plan is not None:
                    self._effects(held.plan, held.answers)
                else:
                    self._answer_now(held.answers)
                self._answer_now(held.frames)
        finally:
            self._releasing = False

    def _effects(self, plan: Schedule, answers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Carry out what one drain of outputs does outside the node, once its records are committed."""
        for peer, msgs in plan.to_peers.items():
            for frame in messages.encode_frames(msgs):
                if not self.peers.send(peer, mesh.CORE, frame):
                    log.debug("could not send to %s now; the core will retry", peer)
        for reply in plan.replies:
            answer = self.api.finish(reply.token, reply.result)
            if answer is not None:
                self._to_client(*answer)
        if answers is not None:
            self._answer_now(answers)
        elif self._answers:
            self._answer()
        for frame in messages.encode_frames(plan.gossip):
            self.pub.send(frame)
        delivered = [notice.event for notice in plan.notices if type(notice) is Delivered]
        for identity, frame in self.api.on_delivered(delivered):  # stream messages, in the order of events
            self._to_client(identity, frame)
        for notice in plan.notices:
            if type(notice) is Delivered:
                self._on_delivered(notice.event)
            else:
                self._notice(notice)
        for identity, frame in self.api.flush(now_ms()):
            self._to_client(identity, frame)

    def _notice(self, notice: Notice) -> None:
        """Log a notice other than Delivered (which the streams and _on_delivered take)."""
        if type(notice) is PeerChanged:
            log.info("peer %s is %s", notice.peer, "up" if notice.up else "down: its orders are unavailable")
            self.api.streams.peers_changed()
        elif type(notice) is OtcChanged:
            for identity, frame in self.api.streams.on_otc(notice.item):
                self._to_client(identity, frame)
        elif type(notice) is Repaired:
            self.api.streams.peers_changed()  # the book may have changed under its streams
            log.warning("records of %s here differed from %s's own and were replaced by them: %s%s",
                        notice.origin, notice.origin, ", ".join(notice.changed[:10]),
                        f" and {len(notice.changed) - 10} more" if len(notice.changed) > 10 else "")

    def _commit(self, records: Sequence[Record], promise: bool, wait: bool = True) -> int | None:
        """Commit ``records``: the ticket their durability waits for (0: none, or ``wait``: durable
        now); None if the store refused them (rolled back whole: they may come again)."""
        try:
            if self.probe is None:
                return self.store.commit(records, promise=promise, wait=wait)
            started = time.perf_counter_ns()
            ticket = self.store.commit(records, promise=promise, wait=wait)
            self.probe.committed(records, promise, started)
            return ticket
        except StoreUnavailable as exc:
            self._failure = str(exc)
            return None

    # --- a store that refuses commits (zmqex.stall) --------------------------------------

    def _stall_on(self, records: Sequence[Record], plan: Schedule | None) -> None:
        self._release(wait=True)  # what was committed before goes first: the stall holds what comes after
        answers, self._answers = self._answers, []
        now = now_ms()
        self._stall = Stall(self.id, self._failure, now)
        self._stall.hold(list(records), plan, answers if plan is not None else [])
        if plan is None:
            self._answer_now(answers)
        self._refuse_writes()
        # A nearly full disk can take one commit and refuse the next (SQLite reuses its WAL's room):
        # a line when it starts, and then at most one a minute with how often, however it flaps.
        if now < self._next_stall_log:
            self._stalls_unlogged += 1
            log.debug("node %s cannot write its store: %s", self.id, self._failure)
            return
        self._stall.logged = True
        self._next_stall_log = now + LOG_EVERY_MS
        again = f" ({self._stalls_unlogged} more times since the last such line)" if self._stalls_unlogged else ""
        self._stalls_unlogged = 0
        log.error("node %s cannot write its store: %s; it takes no new work (store_unavailable) and tries again "
                  "every %.1f s; queries and peers' repair go on%s", self.id, self._failure, RETRY_MS / 1000, again)

    def _hold(self, outputs: list[Any]) -> None:
        """Stalled: hold this iteration's outputs behind the failed commit, but answer repair now
        with what is durable, and log peers going up or down."""
        stall = self._stall
        assert stall is not None
        answers, self._answers = self._answers, []  # none: writes are refused; kept in order all the same
        if not outputs:
            if answers:
                stall.hold([], None, answers)
            return
        plan = schedule(outputs)
        later: dict[str, list[messages.Message]] = {}
        for peer, msgs in plan.to_peers.items():
            for frame in messages.encode_frames([msg for msg in msgs if stall.may_send(msg)]):
                self.peers.send(peer, mesh.CORE, frame)
            rest = [msg for msg in msgs if not stall.may_send(msg)]
            if rest:
                later[peer] = rest
        for notice in plan.notices:  # logs and stream ends: nothing that promises anything
            if type(notice) is not Delivered and type(notice) is not OtcChanged:  # streams wait for the commit
                self._notice(notice)
        stall.hold(list(plan.records), plan._replace(to_peers=later), answers)

    def _retry(self, now: int) -> None:
        """Try the stalled commit again; once it goes through, carry out what waited on it, in order."""
        stall = self._stall
        assert stall is not None
        ticket = self._commit(stall.records, True)
        if ticket is None:
            if stall.failed(self._failure, now):
                log.error("node %s still cannot write its store after %.0f s: %s", self.id,
                          (now - stall.since) / 1000, self._failure)
            return
        self.store.wait(ticket)  # 0: it synced itself
        self._stall = None
        self._refuse_writes()
        delivered: list[Event] = []
        for held in stall.held:
            for peer, msgs in held.to_peers.items():
                for frame in messages.encode_frames(msgs):
                    self.peers.send(peer, mesh.CORE, frame)
            for reply in held.replies:
                answer = self.api.finish(reply.token, reply.result)
                if answer is not None:
                    self._to_client(*answer)
            self._answer_now(held.answers)
            for frame in messages.encode_frames(held.gossip):
                self.pub.send(frame)
            delivered += [notice.event for notice in held.delivered]
        for identity, frame in self.api.on_delivered(delivered):
            self._to_client(identity, frame)
        for event in delivered:
            self._on_delivered(event)
        for identity, frame in self.api.flush(now):
            self._to_client(identity, frame)
        if self._unsaved:
            self._save_members(list(self._unsaved.values()))
        log.log(logging.WARNING if stall.logged else logging.DEBUG,
                "node %s writes its store again after %.1f s (%d records were waiting): it takes new work again",
                self.id, (now - stall.since) / 1000, len(stall.records))

    def _answer_now(self, answers: list[tuple[bytes, bytes]]) -> None:
        for identity, frame in answers:
            self._to_client(identity, frame)

    def _answer(self) -> None:
        """Send the replies ``handle`` gave this iteration (after its commit: see _client_request)."""
        answers, self._answers = self._answers, []
        for identity, frame in answers:
            self._to_client(identity, frame)

    def _log_health(self) -> None:
        """Say once that this node lost its history, and now and then that a replica disagrees.

        On the timer, not every iteration: reading an absent counter alone costs as much
        as sorting an iteration's outputs, and these logs can wait a tick.
        """
        replica = self.replica
        if replica.amnesia != self._amnesia_logged:
            if replica.recovery is not None:
                waiting = replica.recovering_from
                log.warning("%s; it answers orders, cancels and takes busy until then%s", replica.amnesia,
                            f" (waiting to hear from {', '.join(waiting)})" if waiting else "")
            elif replica.amnesia:
                log.error("%s; it refuses orders, cancels and grants until then", replica.amnesia)
            else:
                log.info("node %s has its history back from its peers (%d events of its own): ready", self.id,
                         replica.clock.get(self.id))
            self._amnesia_logged = replica.amnesia
        mismatches = self.replica.counters["state_mismatches"]
        if mismatches > self._mismatches_logged and now_ms() >= self._next_mismatch_log:
            # At most every 10 s: a member that keeps claiming our clock with another hash
            # must not be able to fill the log (status counts every one).
            self._mismatches_logged = mismatches
            self._next_mismatch_log = now_ms() + 10_000
            log.error("a peer at the same clock as this node holds a different state (%d times so far): "
                      "a replica is wrong; compare the peers' status and logs", mismatches)

    def _to_client(self, identity: bytes, frame: bytes) -> None:
        """Send a reply or stream message; if the client does not read, drop it and say so later.

        While something waits for its commit's fsync (zmqex.gate), the frame waits behind it.

        A client whose queue is full (CLIENT_SNDHWM messages it has not read) loses the
        message, and its subscriptions end: each owes it an ``end`` (slow_reader).  The
        first message that gets through after that is preceded by an error ``dropped``
        (id null) that says how many were lost, then by those ends; the timer tries to
        deliver what is owed too, so a client that only listens learns of it as soon
        as it reads again.  A client that is gone (no route) loses its subscriptions.
        """
        if self._gate and not self._releasing:
            self._gate.later((identity, frame))
            return
        if identity in self._owed and not self._pay(identity):
            self._dropped_one(identity)
            return
        try:
            self.router.send_multipart([identity, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # gone (EHOSTUNREACH) or not reading (EAGAIN)
            if exc.errno == zmq.EAGAIN:
                self._dropped_one(identity)
                log.debug("reply to %r dropped: %s", identity[:40], exc.strerror)
            else:
                self._owed.pop(identity, None)
                self.api.forget(identity)
                log.debug("reply to %r dropped: %s", identity[:40], exc.strerror)

    def _dropped_one(self, identity: bytes) -> None:
        """Count a message a slow reader lost, and end its subscriptions (ends owed to it)."""
        owed = self._owed.get(identity)
        if owed is None:
            if len(self._owed) >= MAX_SLOW_READERS:  # too many to remember: it is not told
                self.api.streams.end(identity, protocol.END_SLOW, "")
                return
            owed = self._owed[identity] = [0, []]
        owed[0] += 1
        owed[1] += [frame for _, frame in self.api.streams.end(identity, protocol.END_SLOW, (
            f"this connection did not read fast enough ({CLIENT_SNDHWM} messages may wait); subscribe again"))]

    def _pay(self, identity: bytes) -> bool:
        """Send what is owed to ``identity`` (a ``dropped`` notice, then ends); whether all of it went."""
        owed = self._owed[identity]
        try:
            if owed[0]:
                self.router.send_multipart([identity, wire.pack(protocol.dropped_reply(owed[0], (
                    f"{owed[0]} replies or stream messages to this connection were dropped: it did not read "
                    f"them fast enough ({CLIENT_SNDHWM} may wait)")))], zmq.NOBLOCK)
                owed[0] = 0
            while owed[1]:
                self.router.send_multipart([identity, owed[1][0]], zmq.NOBLOCK)
                owed[1].pop(0)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EAGAIN:  # gone: nobody left to tell
                del self._owed[identity]
                self.api.forget(identity)
            return False
        del self._owed[identity]
        return True

    def _on_delivered(self, event: Event) -> None:
        body = event.body
        if isinstance(body, Fill):
            whose = "granted" if event.origin == self.id else f"granted by {event.origin}"
            log.info("fill %s:%d %s %s @ %s (maker %s, taker %s)", event.origin, event.seq, whose,
                     format_qty(body.qty), format_price(body.price), body.maker, body.taker)
        elif isinstance(body, Report):
            log.info("private trade %s:%d on the tape: %s %s @ %s", event.origin, event.seq, body.side.value,
                     format_qty(body.qty), format_price(body.price))
        elif event.origin != self.id:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("event %s:%d from %s: %s", event.origin, event.seq, event.origin, body)
        elif isinstance(body, NewOrder):
            price = "market" if body.price is None else format_price(body.price)
            trader = self.replica.traders.of.get(event.order_id)
            log.info("order %s placed: %s %s @ %s %s%s", event.order_id, body.side.value, format_qty(body.qty),
                     price, body.tif.value, f" by {trader}" if trader else "")
        elif isinstance(body, Cancel):
            log.info("order %s closed: %s", body.order_id, body.reason.value)
