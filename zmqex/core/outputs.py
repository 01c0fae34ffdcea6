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
from zmqex.core.messages import ConfirmReply, Message, TakeReply
from zmqex.core.otc import Offer, Rfq, Trade

# The records and outputs made on the hot path are values with a written __init__
# rather than frozen dataclasses, for speed when compiled (see zmqex.core.events).

# --- durable records ------------------------------------------------------------


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class EventRecord:
    """An event this node delivered (its own, or a peer's), in delivery order."""

    event: Event

    def __init__(self, event: Event) -> None:
        self.event = event


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class TakeSent:
    """This node reserved ``qty`` of ``order`` and asked ``maker``'s owner for it."""

    request: str
    order: str
    maker: str
    qty: int

    def __init__(self, request: str, order: str, maker: str, qty: int) -> None:
        self.request = request
        self.order = order
        self.maker = maker
        self.qty = qty


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class TakeSettled:
    """The maker's owner answered ``request`` with ``granted``."""

    request: str
    granted: int

    def __init__(self, request: str, granted: int) -> None:
        self.request = request
        self.granted = granted


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Outcome:
    """This node answered ``sender``'s take ``reply.request`` so; a retry gets the same."""

    sender: str
    reply: TakeReply

    def __init__(self, sender: str, reply: TakeReply) -> None:
        self.sender = sender
        self.reply = reply


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
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
    client_order_id: str
    stp: str

    def __init__(self, order: str, trader: str, client_order_id: str = "", stp: str = "cancel_newest") -> None:
        self.order = order
        self.trader = trader
        self.client_order_id = client_order_id
        self.stp = stp


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


@dataclass(frozen=True, slots=True)
class HoldTaken:
    """This node holds ``qty`` of its order ``maker`` for ``sender``'s all-or-nothing order ``taker``.

    A promise: until the coordinator's decision settles it, that quantity is
    nobody else's, across restarts.
    """

    sender: str
    request: str
    maker: str
    taker: str
    qty: int


@dataclass(frozen=True, slots=True)
class HoldSettled:
    """The hold ``sender`` asked for under ``reply.request`` is settled so (filled, or released)."""

    sender: str
    reply: ConfirmReply


@dataclass(frozen=True, slots=True)
class Decision:
    """This node, coordinating all-or-nothing order ``order``, decided: commit ``parts``, or abort.

    ``parts`` are ``(request, maker, qty)``, one per hold asked for; their
    quantities sum to the order's whole quantity on a commit and are all 0 on
    an abort.  Durable before anything about it leaves the node, and never
    changed: a holder that asks later is told the same.
    """

    order: str
    commit: bool
    parts: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, slots=True)
class RecoveryMark:
    """This node began getting its own history back from its peers (``reason``), or is done (None).

    So a node that dies while it recovers goes on recovering when it restarts:
    its store then holds part of its history, and only its peers know the rest.
    """

    reason: str | None


@dataclass(frozen=True, slots=True)
class OtcRecord:
    """One item of the OTC desk (:mod:`zmqex.core.otcdesk`) under ``key``: the last record of a key wins,
    and ``data`` None deletes it.  Keys: ``counter``, ``offer:ID``, ``rfq:ID``, ``trade:REQUEST``,
    ``answer:REQUEST`` (the owner's answer to an accept), ``accept:REQUEST`` (ours, waiting)."""

    key: str
    data: Any


@dataclass(frozen=True, slots=True)
class Funding:
    """The operator moved ``usd_cents`` and ``btc_sats`` into ``trader``'s account (negative: out of it).

    Node-local, like :class:`OrderTrader`.  ``opened`` is this node's own event
    count when the account opened (its first funding): only own orders placed
    after it count for the account (:mod:`zmqex.core.balances`), so a restart
    leaves out what the trader traded before it had one.  A promise: durable
    before the operator is told.
    """

    trader: str
    usd_cents: int
    btc_sats: int
    opened: int


@dataclass(frozen=True, slots=True)
class CreditLimit:
    """The operator set this node's credit limits for trades with ``desk`` (a node id, or ``*`` for
    every desk without its own), in cents: on open exposure, on each UTC day's traded notional;
    None: no such limit (both None: the desk's own limits are removed).  The latest per desk counts
    (:mod:`zmqex.core.credit`).  A promise: the operator is told once it holds."""

    desk: str
    limit: int | None
    daily: int | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """The operator marked ``cents`` of the exposure to ``desk`` settled (never more than was traded)."""

    desk: str
    cents: int


Record = Union[EventRecord, TakeSent, TakeSettled, Outcome, OrderTrader, Checkpoint, Evidence,
               HoldTaken, HoldSettled, Decision, RecoveryMark, OtcRecord, Funding, CreditLimit, Settlement]

# --- outputs ----------------------------------------------------------------------


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
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
    promise: bool

    def __init__(self, record: Record, promise: bool = True) -> None:
        self.record = record
        self.promise = promise


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Send:
    """A direct message to one peer (DEALER -> its ROUTER, or the reply back)."""

    to: str
    message: Message

    def __init__(self, to: str, message: Message) -> None:
        self.to = to
        self.message = message


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Publish:
    """A message for every peer (PUB/SUB: fast, may be lost)."""

    message: Message

    def __init__(self, message: Message) -> None:
        self.message = message


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Reply:
    """A client's ``place`` has finished its taker flow; ``result`` is the order's state."""

    token: Any
    result: dict[str, Any]

    def __init__(self, token: Any, result: dict[str, Any]) -> None:
        self.token = token
        self.result = result


@dataclass(slots=True, init=False, unsafe_hash=True)  # a value (see above)
class Delivered:
    """An event was applied to this replica (for logs and fill streams)."""

    event: Event

    def __init__(self, event: Event) -> None:
        self.event = event


@dataclass(frozen=True, slots=True)
class PeerChanged:
    peer: str
    up: bool


@dataclass(frozen=True, slots=True)
class Repaired:
    """Records of ``origin`` here differed from its own and were replaced by them (ids in ``changed``)."""

    origin: str
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OtcChanged:
    """An OTC item this desk holds changed (a new version, or a new trade): for the ``rfqs`` stream."""

    item: Offer | Rfq | Trade


Output = Union[Persist, Send, Publish, Reply, Delivered, PeerChanged, Repaired, OtcChanged]
