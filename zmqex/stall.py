"""What a node holds back while its store refuses commits (a full disk, an I/O error).

The replica has already changed in memory when its records fail to commit,
and what it asked the node to send depends on them: a client's "placed", a
fill granted to a peer, gossip of our own events.  None of that may leave
until the records are durable, and none of the records may be dropped (later
records depend on them: restore replays the store in order).  So the node
*stalls*: it keeps the failed records and every outward effect behind them
in a :class:`Stall`, tries the same commit again every :data:`RETRY_MS`, and
carries the effects out, in their order, once it succeeds.  Meanwhile it
changes the replica as little as it can: it refuses clients' writes
(``store_unavailable``), does not tick the replica, drops peers' gossip and
direct messages (they retry, and repair recovers gossip), and feeds it only
peers' sync requests, so that it still serves their repair, as long as what it
sends them is durable (:meth:`Stall.may_send`).  Queries are answered from
memory, which may show the changes of the commit being retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zmqex.core.messages import Message, SnapshotPage, SyncReply
from zmqex.core.outputs import Delivered, EventRecord, Record, Reply
from zmqex.core.schedule import Schedule

#: How often a stalled node tries its commit again.
RETRY_MS = 500
#: How often it says again that it is still stalled.
LOG_EVERY_MS = 60_000


@dataclass(slots=True)
class Held:
    """One iteration's outward effects, held until the records before them are committed."""

    to_peers: dict[str, list[Message]]
    replies: list[Reply]  # places, answered once durable
    answers: list[tuple[bytes, bytes]]  # replies to requests that changed the replica (node._answers)
    gossip: list[Message]
    delivered: list[Delivered]


@dataclass(slots=True)
class Stall:
    me: str
    reason: str
    since: int
    records: list[Record] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    next_try: int = 0
    next_log: int = 0
    attempts: int = 0
    logged: bool = False  # whether the node said it stalled (then it says it resumed, too)
    own_from: int | None = None  # the lowest seq of our own events not yet durable

    def __post_init__(self) -> None:
        self.next_try = self.since + RETRY_MS
        self.next_log = self.since + LOG_EVERY_MS

    def hold(self, records: list[Record] | tuple[Record, ...], plan: Schedule | None,
             answers: list[tuple[bytes, bytes]]) -> None:
        """Keep ``records`` for the next commit, and ``plan``'s effects (None: already carried out)."""
        for record in records:
            if type(record) is EventRecord and record.event.origin == self.me and self.own_from is None:
                self.own_from = record.event.seq
        self.records.extend(records)
        if plan is not None:
            self.held.append(Held(plan.to_peers, list(plan.replies), answers, plan.gossip,
                                  [n for n in plan.notices if type(n) is Delivered]))
        elif answers:
            self.held.append(Held({}, [], answers, [], []))

    def may_send(self, message: Message) -> bool:
        """Whether ``message`` answers a peer's sync request with nothing that is not durable here:
        a page of events without one of ours still waiting, or a snapshot while none waits
        (others' events are durable at their origin before anyone hears of them)."""
        if type(message) is SyncReply:
            return self.own_from is None or not any(
                e.origin == self.me and e.seq >= self.own_from for e in message.events)
        return type(message) is SnapshotPage and self.own_from is None

    def failed(self, reason: str, now: int) -> bool:
        """Another try failed; whether to say so again now."""
        self.reason = reason
        self.attempts += 1
        self.next_try = now + RETRY_MS
        if now >= self.next_log:
            self.next_log = now + LOG_EVERY_MS
            return True
        return False
