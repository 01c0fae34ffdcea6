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
from dataclasses import dataclass

from zmqex.core.messages import Message
from zmqex.core.outputs import Delivered, Output, PeerChanged, Persist, Publish, Record, Reply, Send

_NONE: tuple[Record, ...] = ()

Notice = Delivered | PeerChanged


@dataclass(frozen=True, slots=True)
class Schedule:
    """One drain of outputs, sorted into the steps a host takes (see the module docstring).

    The lists belong to the schedule: a host reads them and does not change them.
    """

    records: list[Record]  # every Persist's record, in output order
    promised: bool  # whether any of them backs a promise
    to_peers: dict[str, list[Message]]
    replies: list[Reply]
    gossip: list[Message]
    notices: list[Notice]

    @property
    def commit_first(self) -> Sequence[Record]:
        """Records to commit before anything is sent: all of them if any is a promise, else none."""
        return self.records if self.promised else _NONE

    @property
    def commit_last(self) -> Sequence[Record]:
        """Records to commit after everything else: all of them if none is a promise, else none."""
        return _NONE if self.promised else self.records


def schedule(outputs: Sequence[Output]) -> Schedule:
    """Sort one drain of ``Replica.take_outputs()`` into the steps a host carries out, in order."""
    # One pass, dispatching on the exact type: cheaper than isinstance (the node calls this
    # once per loop iteration), and mypy narrows on it all the same.  No kind subclasses another.
    records: list[Record] = []
    promised = False
    to_peers: dict[str, list[Message]] = {}
    replies: list[Reply] = []
    gossip: list[Message] = []
    notices: list[Notice] = []
    for out in outputs:
        if type(out) is Persist:  # the most frequent kinds first
            records.append(out.record)
            promised = promised or out.promise
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
        elif type(out) is Delivered or type(out) is PeerChanged:
            notices.append(out)
        else:  # a kind this contract does not know: refuse it rather than drop it silently
            raise TypeError(f"not a replica output: {out!r:.80}")
    return Schedule(records, promised, to_peers, replies, gossip, notices)
