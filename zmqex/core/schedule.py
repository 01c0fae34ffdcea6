"""The order in which a host carries out the replica's outputs: one contract, for every host.

The replica performs no I/O: each call appends :mod:`zmqex.core.outputs`, and
the host (the ZeroMQ node, :mod:`zmqex.node`; the deterministic simulator,
:mod:`zmqex.sim`) drains them with ``Replica.take_outputs()``.  :func:`schedule`
sorts what one drain holds into the steps a host takes, in this order:

1. ``commit_first``: when any record is a promise (``Persist.promise``), every
   record of the drain, committed as one transaction before anything leaves.
   A promise is durable before anyone hears of it: a client told "placed", or a
   peer granted a fill, can count on it across a crash of this node.  The whole
   drain, not only the promises, because a promise may depend on the records
   before it (a fill on an event delivered in the same iteration), and restore
   replays the store in the order it was written.
2. ``to_peers``: direct messages, grouped per peer (in the order each peer was
   first addressed, each peer's messages in the order the replica made them),
   so a host sends each peer one frame; take requests and their answers are
   what a peer is waiting on.
3. ``replies``: the answers to clients' ``place`` requests, also waited on.
4. ``gossip``: the messages for every peer, in order: one frame, on the lossy
   fast path, which repair backs up; nobody waits on a particular one.
5. ``notices``: :class:`Delivered` and :class:`PeerChanged`, for logs and fill
   streams; they change nothing anyone depends on.
6. ``commit_last``: when no record is a promise, every record of the drain,
   committed last, off every waiting path (and not fsynced by the node).  A
   crash before this step loses them, which is safe: they back no promise,
   and what they hold (a peer's event, the answer to our own take, a
   checkpoint) is fetched again by repair or a retry after restart.

Exactly one of ``commit_first`` and ``commit_last`` holds the records (both
are empty when there are none); nothing else is reordered across kinds that
share a step.  The function is pure: a host that crashes between steps has
carried out a prefix of this order, which is what the simulator's
``crash_before_send`` reproduces (step 1, then nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from zmqex.core.messages import Message
from zmqex.core.outputs import (
    Delivered, OtcChanged, Output, PeerChanged, Persist, Publish, Record, Repaired, Reply, Send,
)

Notice = Delivered | PeerChanged | Repaired | OtcChanged

_NONE: tuple[Record, ...] = ()


class Schedule(NamedTuple):
    """One drain of outputs, sorted into the steps a host takes, in the order it takes them.

    A NamedTuple, built by ``tuple.__new__``: immutable, without a dict, and the cheapest
    record to build (the node builds one per loop iteration; a frozen dataclass's
    ``__init__`` alone cost as much as the old inline dispatch it replaces).  The lists
    belong to the schedule: a host reads them and does not change them.
    """

    commit_first: Sequence[Record]  # every record of the drain if one is a promise, else none
    to_peers: dict[str, list[Message]]  # peer -> its messages; peers in the order first addressed
    replies: list[Reply]
    gossip: list[Message]
    notices: list[Notice]
    commit_last: Sequence[Record]  # every record of the drain if none is a promise, else none

    @property
    def promised(self) -> bool:
        """Whether a record backs a promise (and so all are committed first)."""
        return bool(self.commit_first)

    @property
    def records(self) -> Sequence[Record]:
        """Every record of the drain, in order (committed first or last, as one batch)."""
        return self.commit_first or self.commit_last


def schedule(outputs: Sequence[Output]) -> Schedule:
    """Sort one drain of ``Replica.take_outputs()`` into the steps a host carries out, in order."""
    # The node calls this once per loop iteration, so it is written for speed: one pass,
    # dispatching on the exact type (cheaper than isinstance; mypy narrows on it all the
    # same; no kind subclasses another), the most frequent kinds first.
    records: list[Record] = []
    promised = False
    to_peers: dict[str, list[Message]] = {}
    replies: list[Reply] = []
    gossip: list[Message] = []
    notices: list[Notice] = []
    for out in outputs:
        if type(out) is Persist:
            records.append(out.record)
            promised = promised or out.promise
        elif type(out) is Delivered:
            notices.append(out)
        elif type(out) is Publish:
            gossip.append(out.message)
        elif type(out) is Send:
            queue = to_peers.get(out.to)
            if queue is None:
                to_peers[out.to] = [out.message]
            else:
                queue.append(out.message)
        elif type(out) is Reply:
            replies.append(out)
        elif type(out) is PeerChanged or type(out) is Repaired or type(out) is OtcChanged:
            notices.append(out)
        else:  # a kind this contract does not know: refuse it rather than drop it silently
            raise TypeError(f"not a replica output: {out!r:.80}")
    # tuple.__new__ directly: a NamedTuple's own __new__ is Python code, and costs a third of the rest.
    if promised:
        return _new(Schedule, (records, to_peers, replies, gossip, notices, _NONE))
    return _new(Schedule, (_NONE, to_peers, replies, gossip, notices, records))


_new = tuple.__new__
