"""A deterministic network of replicas, for tests, the benchmark and the docs.

Nothing here is random and nothing happens on its own: the caller (usually a
hypothesis state machine) chooses every step.  Each directed link holds a
queue of encoded messages; a step delivers, drops, duplicates or delays one
of them, cuts or heals links, crashes or restarts a node, or advances time.

A crashed node loses everything but its store: the records its replica asked
to persist, in order.  ``restart`` rebuilds it with ``Replica.restore``, which
is exactly what a real node does from its on-disk store.

Messages are encoded to bytes and decoded on delivery, so the simulator runs
the same codec as the wire.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from zmqex import keys
from zmqex.core import messages
from zmqex.core.balances import Balance
from zmqex.core.events import Side, Tif
from zmqex.core.outputs import Output, Record
from zmqex.core.replica import Config, Replica
from zmqex.core.schedule import schedule


@dataclass
class SimNode:
    id: str
    replica: Replica | None
    store: list[Record] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.replica is not None


class Network:
    """Replicas joined by lossy links; with ``keyed`` (every id that may ever be a member), they sign
    and verify events as keyed nodes do, each with a key made from its name (deterministic)."""

    def __init__(self, ids: Iterable[str], config: Config = Config(), *, keyed: Iterable[str] | None = None) -> None:
        self.ids = list(ids)
        self.config = config
        self.now = 0
        self.keyring: dict[str, keys.SecretKey] | None = None
        self.verifier: keys.Verifier | None = None
        if keyed is not None:
            self.keyring = {m: keys.secret_from_seed(hashlib.sha256(m.encode()).digest()) for m in keyed}
            self.verifier = keys.Verifier({m: k.public for m, k in self.keyring.items()})
        self.nodes = {i: SimNode(i, self._new_replica(i, [p for p in self.ids if p != i])) for i in self.ids}
        self.links: dict[tuple[str, str], list[bytes]] = {
            (a, b): [] for a in self.ids for b in self.ids if a != b
        }
        self.cut: set[frozenset[str]] = set()
        self.replies: dict[Any, dict[str, Any]] = {}
        self.acknowledged: set[str] = set()
        self.steps = 0
        self._iterating: str | None = None  # the node inside one loop iteration (see iteration)

    # --- inspection -----------------------------------------------------------------

    def replica(self, node: str) -> Replica:
        replica = self.nodes[node].replica
        if replica is None:
            raise LookupError(f"{node} is down")
        return replica

    def live(self) -> list[Replica]:
        return [n.replica for n in self.nodes.values() if n.replica is not None]

    def busy_links(self) -> list[tuple[str, str]]:
        return [link for link, queue in self.links.items() if queue and frozenset(link) not in self.cut]

    def in_flight(self) -> int:
        return sum(len(q) for q in self.links.values())

    # --- client commands ----------------------------------------------------------------

    def place(self, node: str, side: Side | str, qty: int, price: int | None, tif: Tif | str = Tif.GTC,
              token: Any = None, trader: str = "", **options: Any) -> str:
        """``Replica.place`` at ``node``; ``options`` are its keyword arguments (client_order_id, stp, ...)."""
        replica = self.replica(node)
        try:
            oid = replica.place(Side(side), qty, price, Tif(tif), token=token, trader=trader, **options)
        finally:
            self._done(node, replica)
        if not options.get("only"):  # a directed order is an offer, off the book
            self.acknowledged.add(oid)  # persisted before the client could have heard of it
        return oid

    def cancel(self, node: str, oid: str, trader: str = "", operator: bool = False) -> dict[str, Any]:
        replica = self.replica(node)
        try:
            return replica.cancel(oid, trader=trader, operator=operator)
        finally:
            self._done(node, replica)

    def amend(self, node: str, oid: str, **options: Any) -> str:
        replica = self.replica(node)
        try:
            return replica.amend(oid, **options)
        finally:
            self._done(node, replica)

    def cancel_all(self, node: str, trader: str, **options: Any) -> list[str]:
        replica = self.replica(node)
        try:
            return replica.cancel_all(trader, **options)
        finally:
            self._done(node, replica)

    def act(self, node: str, method: str, *args: Any, **options: Any) -> Any:
        """Any other client command, ``Replica.<method>(*args, **options)`` at ``node`` (rfq, quote, accept ...)."""
        replica = self.replica(node)
        try:
            return getattr(replica, method)(*args, **options)
        finally:
            self._done(node, replica)

    def fund(self, node: str, trader: str, usd: int = 0, btc: int = 0) -> Balance:
        """``Replica.fund`` at ``node`` (an operator's): cents and satoshis, negative to withdraw."""
        replica = self.replica(node)
        try:
            return replica.fund(trader, usd, btc)
        finally:
            self._done(node, replica)

    def set_credit(self, node: str, desk: str, limit: int | None, daily: int | None = None) -> None:
        """``Replica.set_credit`` at ``node``: its credit limits (cents) for trades with ``desk``."""
        replica = self.replica(node)
        try:
            replica.set_credit(desk, limit, daily)
        finally:
            self._done(node, replica)

    def settle_credit(self, node: str, desk: str, cents: int) -> int:
        """``Replica.settle`` at ``node``: how much of its exposure to ``desk`` it marked settled."""
        replica = self.replica(node)
        try:
            return replica.settle(desk, cents)
        finally:
            self._done(node, replica)

    # --- network steps -------------------------------------------------------------------

    @contextmanager
    def iteration(self, node: str) -> Iterator[None]:
        """Commands at ``node`` and messages delivered to it inside, as one loop iteration of a
        loaded node: its outputs are carried out once, at the end, so what it made inside
        leaves in one envelope (:mod:`zmqex.core.envelope`)."""
        if self._iterating is not None:
            raise RuntimeError(f"{self._iterating} is already inside an iteration")
        self._iterating = node
        try:
            yield
        finally:
            self._iterating = None
            replica = self.nodes[node].replica
            if replica is not None:
                self._carry_out(node, replica.take_outputs())

    def _done(self, node: str, replica: Replica) -> None:
        """A command at ``node`` is done: carry out its outputs, unless ``node`` is inside an iteration."""
        if node != self._iterating:
            self._carry_out(node, replica.take_outputs())

    def deliver(self, src: str, dst: str, index: int = 0, crash_before_send: bool = False) -> bool:
        """Deliver the message at ``index`` on link src->dst (index > 0 reorders).

        With ``crash_before_send``, ``dst`` dies right after persisting what the
        message made it do, before anything it would send leaves it.
        """
        queue = self.links[(src, dst)]
        if not queue or frozenset((src, dst)) in self.cut:
            return False
        data = queue.pop(min(index, len(queue) - 1))
        self.steps += 1
        replica = self.nodes[dst].replica
        if replica is None:
            return True  # sent to a dead process: gone
        replica.receive(src, messages.decode(data), self.now)
        if dst == self._iterating and not crash_before_send:
            return True  # its outputs wait for the end of the iteration
        outputs = replica.take_outputs()
        if crash_before_send:
            # What a node has done when it dies just before its first send: the first step
            # of the schedule (the records, if one is a promise), and nothing else.
            self.nodes[dst].store.extend(schedule(outputs).commit_first)
            self.crash(dst)
        else:
            self._carry_out(dst, outputs)
        return True

    def drop(self, src: str, dst: str, index: int = 0) -> None:
        queue = self.links[(src, dst)]
        if queue:
            queue.pop(min(index, len(queue) - 1))

    def duplicate(self, src: str, dst: str, index: int = 0) -> None:
        queue = self.links[(src, dst)]
        if queue:
            queue.append(queue[min(index, len(queue) - 1)])

    def delay(self, src: str, dst: str, index: int = 0) -> None:
        """Move one message to the back of its link's queue."""
        queue = self.links[(src, dst)]
        if queue:
            queue.append(queue.pop(min(index, len(queue) - 1)))

    def add_node(self, node: str) -> None:
        """A new, empty member joins: every live replica learns of it; it catches up by repair."""
        if node in self.nodes:
            raise ValueError(f"{node} is already a member")
        others = list(self.ids)
        self.ids.append(node)
        self.nodes[node] = SimNode(node, self._new_replica(node, others))
        for other in others:
            self.links[(node, other)] = []
            self.links[(other, node)] = []
            replica = self.nodes[other].replica
            if replica is not None:
                replica.add_peer(node)

    def partition(self, group: Iterable[str]) -> None:
        """Cut every link between ``group`` and the other nodes (both ways)."""
        inside = set(group)
        for a in inside:
            for b in self.ids:
                if b not in inside:
                    self.cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, node: str) -> None:
        """The process dies: volatile state is gone, the store stays."""
        self.nodes[node].replica = None

    def restart(self, node: str) -> None:
        """Restart a crashed node from its store; one whose store is empty gets its history back from
        its peers first, as the node does (``Replica.recover``)."""
        sim = self.nodes[node]
        if sim.replica is None:
            peers = [p for p in self.ids if p != node]
            sim.replica = Replica.restore(node, sim.store, peers=peers, now=self.now, config=self.config,
                                          **self._keys_of(node))
            if not sim.store:
                sim.replica.recover("it starts with an empty store")

    def wipe(self, node: str) -> None:
        """The node dies and its disk with it: the store is gone too."""
        self.crash(node)
        self.nodes[node].store.clear()

    def _new_replica(self, node: str, peers: list[str]) -> Replica:
        return Replica(node, peers=peers, now=self.now, config=self.config, **self._keys_of(node))

    def _keys_of(self, node: str) -> dict[str, Any]:
        if self.keyring is None:
            return {}
        return {"signer": self.keyring[node].signer(), "verifier": self.verifier, "members": list(self.keyring)}

    def tick(self, advance: int = 0) -> None:
        """Advance time by ``advance`` ms and run every live node's timers."""
        self.now += advance
        for node in self.ids:
            replica = self.nodes[node].replica
            if replica is not None:
                replica.tick(self.now)
                self._carry_out(node, replica.take_outputs())

    def drain(self, max_steps: int = 200_000) -> int:
        """Deliver every deliverable message, oldest link-queue head first, round robin."""
        delivered = 0
        while delivered < max_steps:
            links = self.busy_links()
            if not links:
                return delivered
            for src, dst in links:
                self.deliver(src, dst)
                delivered += 1
        raise RuntimeError(f"network did not drain within {max_steps} deliveries")

    def settle(self, max_rounds: int = 100) -> None:
        """Heal, restart, and run until every replica is quiet and has every event."""
        self.heal()
        for node in self.ids:
            self.restart(node)
        for _ in range(max_rounds):
            self.drain()
            replicas = self.live()
            if all(r.quiet for r in replicas) and len({r.clock for r in replicas}) == 1:
                self.tick(self.config.heartbeat_ms)  # one more heartbeat round proves it
                self.drain()
                if all(r.quiet for r in replicas) and len({r.clock for r in replicas}) == 1:
                    return
            self.tick(self.config.heartbeat_ms)
        raise RuntimeError(f"network did not settle in {max_rounds} rounds")

    # --- outputs ---------------------------------------------------------------------------

    def _carry_out(self, node: str, outputs: list[Output]) -> None:
        """Carry out ``outputs`` in the order a node does (:mod:`zmqex.core.schedule`).

        Messages to one peer and the gossip share that peer's link queue here (a node
        sends them on two sockets); the schedule puts the direct ones first, as a node
        sends them.  Notices (delivered events, peers up or down) have no effect here.
        """
        plan = schedule(outputs)
        store = self.nodes[node].store
        store.extend(plan.commit_first)
        for peer, msgs in plan.to_peers.items():
            for msg in msgs:
                self._enqueue(node, peer, messages.encode(msg))
        for reply in plan.replies:
            self.replies[reply.token] = reply.result
        for msg in plan.gossip:
            data = messages.encode(msg)
            for peer in self.ids:
                if peer != node:
                    self._enqueue(node, peer, data)
        store.extend(plan.commit_last)

    def _enqueue(self, src: str, dst: str, data: bytes) -> None:
        if frozenset((src, dst)) in self.cut:
            return  # the partition eats it
        self.links[(src, dst)].append(data)
