"""What the replica asks its host to do, and what it asks it to keep.

The replica never performs I/O.  Each input call appends outputs, and the host
(the ZeroMQ node, or the simulator) drains them with ``Replica.take_outputs()``
and carries them out in the order :func:`zmqex.core.schedule.schedule` gives:
the records first if any of them backs a promise, then what others wait on,
and the records that back no promise last.  That ordering is what makes a
promise durable before anyone hears of it.

Records are the durable state.  Folding a node's records
(:mod:`zmqex.core.restore`) rebuilds everything it ever promised
(``Replica.restore``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from zmqex.core.clock import VectorClock
from zmqex.core.events import Event
from zmqex.core.messages import Message, TakeReply

# --- durable records ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event this node delivered (its own, or a peer's), in delivery order."""

    event: Event


@dataclass(frozen=True, slots=True)
class TakeSent:
    """This node reserved ``qty`` of ``order`` and asked ``maker``'s owner for it."""

    request: str
    order: str
    maker: str
    qty: int


@dataclass(frozen=True, slots=True)
class TakeSettled:
    """The maker's owner answered ``request`` with ``granted``."""

    request: str
    granted: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """This node answered ``sender``'s take ``reply.request`` so; a retry gets the same."""

    sender: str
    reply: TakeReply


@dataclass(frozen=True, slots=True)
class OrderTrader:
    """Own order ``order`` was placed by ``trader`` (a name local to this node, never replicated).

    With the trader's own id for it (``client_order_id``, "" if none) and its
    self-trade prevention mode (``stp``, a :class:`~zmqex.core.traders.Stp`
    value).  Persisted as a promise in the batch of the order's event, so an
    order is never known outside the node before whose it is is durable, and
    a place retried with the same client order id finds it after a restart.
    """

    order: str
    trader: str
    client_order_id: str = ""
    stp: str = "cancel_newest"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The ledger at clock ``vc`` (ledger.export items); events at or below ``base`` may go.

    ``base`` is the causally stable clock when this node compacted (every member
    had delivered everything up to it, so nobody will ask for those events
    again), or the clock of a snapshot it installed.  Restore starts from the
    snapshot and replays only the events after ``vc``.
    """

    vc: VectorClock
    base: VectorClock
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two events, both signed by ``ours.origin``, with one id: it equivocated (or ran twice)."""

    ours: Event
    theirs: Event


Record = Union[EventRecord, TakeSent, TakeSettled, Outcome, OrderTrader, Checkpoint, Evidence]

# --- outputs ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persist:
    """Keep ``record``.  ``promise``: others will act on it, so it is durable before anything is sent.

    Records that are not promises (a peer's event, the answer to our own take, a
    checkpoint) can be fetched or asked for again after a crash.  A host commits
    a batch that holds a promise before it sends anything; a batch with none it
    may commit after sending, which takes a commit off the reply's path.  A batch
    is always committed whole and in order: a promise may depend on the records
    before it.
    """

    record: Record
    promise: bool = True


@dataclass(frozen=True, slots=True)
class Send:
    """A direct message to one peer (DEALER -> its ROUTER, or the reply back)."""

    to: str
    message: Message


@dataclass(frozen=True, slots=True)
class Publish:
    """A message for every peer (PUB/SUB: fast, may be lost)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Reply:
    """A client's ``place`` has finished its taker flow; ``result`` is the order's state."""

    token: Any
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivered:
    """An event was applied to this replica (for logs and fill streams)."""

    event: Event


@dataclass(frozen=True, slots=True)
class PeerChanged:
    peer: str
    up: bool


Output = Union[Persist, Send, Publish, Reply, Delivered, PeerChanged]
