"""What a node can tell of each peer's health: up, clock lag, announced state hash.

One definition, read by the ``status`` reply (:mod:`zmqex.api`) and the metrics
(:mod:`zmqex.probe`), so both say the same thing.  Read on the node's loop
thread only: it walks the replica's live state.

**Clock lag** of a peer is the number of events this node has delivered that
the peer's latest heartbeat did not show: ``sum(max(0, ours[o] - theirs[o]))``
over every origin ``o``.  It is 0 when the peer had everything we have (it may
have more).  Heartbeats go out every ``Config.heartbeat_ms``, so under load a
healthy peer lags by about what a heartbeat interval delivers; a lag that only
grows means the peer is not receiving (gossip lost and repair not keeping up),
or is down.  **Ahead** is the other way round: events its heartbeat showed
that we lack (what repair will fetch).

**Hash** is the state hash the peer's latest heartbeat carried, at that
heartbeat's clock; None when it carried none (a peer sends its hash only when
it delivered nothing since its previous heartbeat: while busy, it does not).
So when the peer's lag and ahead are both 0, its clock was ours, and its hash
must be ours too (``counters["state_mismatches"]`` counts heartbeats where it
was not).
"""

from __future__ import annotations

from dataclasses import dataclass

from zmqex.core.clock import Clockish
from zmqex.core.replica import Replica


@dataclass(frozen=True, slots=True)
class PeerHealth:
    up: bool
    lag: int  # events we delivered that its latest heartbeat did not show
    ahead: int  # events its latest heartbeat showed that we lack
    hash: str | None  # the state hash its latest heartbeat carried, if it carried one
    silent_ms: int  # since we last heard from it


def clock_lag(ours: Clockish, theirs: Clockish) -> int:
    """Events in ``ours`` that ``theirs`` does not cover (O(origins))."""
    return sum(n - theirs.get(origin, 0) for origin, n in ours.items() if n > theirs.get(origin, 0))


def peers(replica: Replica) -> dict[str, PeerHealth]:
    """Every peer of ``replica``, sorted by id (O(peers * origins))."""
    ours = replica.clock
    synced = replica.replication.peers
    result: dict[str, PeerHealth] = {}
    for name, peer in sorted(replica.peers.items()):
        sync = synced.get(name)
        theirs = sync.vc if sync is not None else None
        announced = sync.announced if sync is not None else None
        result[name] = PeerHealth(
            up=peer.up,
            lag=clock_lag(ours, theirs) if theirs is not None else sum(ours.values()),
            ahead=clock_lag(theirs, ours) if theirs is not None else 0,
            hash=announced[1] if announced and announced[0] == theirs else None,
            silent_ms=max(0, replica.now - peer.last_seen),
        )
    return result
