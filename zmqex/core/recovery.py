"""Catching up with our own history: a node that lost it gets it back from its peers.

A node that starts with an empty store among peers, or learns from a peer
that it lost events of its own (a store restored from a backup, or one whose
last commits a power cut took), must not create an event until it can be sure
that no id it would use was used before: its next sequence number must be
above every one of its own events that any member holds.  Until then it is
*recovering*: it delivers its own events, signed by itself, from its peers
like anyone else's (by gossip, sync pages or a snapshot), and refuses to
place, cancel, grant or take (clients get ``busy``).

It is done when every member it knows of has told it, by a heartbeat sent
since recovery began, how many of its events it holds, and it holds at least
the most any of them does.  A member that is down keeps it waiting:
recovering without it could reuse an id that member holds, which every node
would take as proof that we sign two events with one id.  (Promises that
lived only in the lost store, the answers kept for retries and the holds,
are rebuilt from the ledger where the ledger shows them, and are otherwise
gone: the README says what a lost store costs.)

Costs: O(origins in a heartbeat) per heartbeat; ``waiting_for`` is O(peers).
"""

from __future__ import annotations

from collections.abc import Iterable

from zmqex.core.clock import VectorClock


class Recovery:
    """What a recovering node has heard: how many of its events each peer holds."""

    __slots__ = ("me", "reason", "known", "origins")

    def __init__(self, me: str, reason: str) -> None:
        self.me = me
        self.reason = reason  # why we are recovering, for operators
        self.known: dict[str, int] = {}  # peer -> how many of our events its latest heartbeat showed
        self.origins: set[str] = set()  # every other origin those heartbeats named: members all

    def heard(self, peer: str, vc: VectorClock) -> None:
        """Peer ``peer``'s heartbeat, with its clock: it holds ``vc[me]`` of our events."""
        self.known[peer] = vc.get(self.me)
        self.origins.update(o for o in vc if o != self.me)

    @property
    def wanted(self) -> int:
        """The most of our own events any peer heard from holds: we need them all."""
        return max(self.known.values(), default=0)

    def waiting_for(self, peers: Iterable[str], gone: set[str]) -> list[str]:
        """Members not heard from yet (``gone``: removed members, never waited for)."""
        return sorted((set(peers) | self.origins) - set(self.known) - gone - {self.me})

    def done(self, own: int, peers: Iterable[str], gone: set[str]) -> bool:
        """Whether we may create events again, holding ``own`` of our own."""
        return bool(self.known) and own >= self.wanted and not self.waiting_for(peers, gone)
