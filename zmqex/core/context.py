"""What a desk may ask of the replica that wires it: the one small set of calls between them.

The desks (:mod:`~zmqex.core.taker`, :mod:`~zmqex.core.maker`,
:mod:`~zmqex.core.repair`) each own their state and never touch another's.
What they need from the rest of the replica they ask for here, by name; what
the replica needs from them it asks by calling their methods and reading what
they return.  :class:`~zmqex.core.replica.Replica` is the one implementation;
desk tests may pass a fake.

Reading: the node's ``id``, the time ``now``, the ``config``, the replicated
``ledger`` (replaced whole when a snapshot is installed, so desks read it here
each time rather than keep it), the delivered ``clock``, ``amnesia``, and
``counters`` (health figures: a shared tally, not state).  ``credit``
(:mod:`zmqex.core.credit`) is shared the way the reservations are: each desk
tells it what it has in flight, and asks it how far a desk may trade.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from zmqex.core.clock import VectorClock
from zmqex.core.config import Config
from zmqex.core.credit import Credit
from zmqex.core.events import Body, Event
from zmqex.core.ledger import Ledger
from zmqex.core.messages import Message
from zmqex.core.outputs import Output, Record


class Context(Protocol):
    id: str
    now: int
    config: Config
    ledger: Ledger
    clock: VectorClock
    amnesia: str | None
    counters: Counter[str]
    credit: Credit  # this node's credit limits per counterparty desk, and what is traded and in flight

    @property
    def recovering(self) -> bool:
        """Whether this node is getting its own history back from its peers (``amnesia`` is set meanwhile)."""

    def wall(self) -> int:
        """The wall clock, epoch ms: for timestamps and expiry times, never for ordering."""

    def emit(self, body: Body) -> Event:
        """Create, sign, deliver and publish an event of ours; returns it (delivered when this returns)."""

    def offer(self, event: Event, sender: str) -> None:
        """An event from peer ``sender``: checked, then delivered once causally ready (maybe now)."""

    def send(self, to: str, message: Message) -> None:
        """A direct message to one peer (to ourselves: handled before the input call returns)."""

    def persist(self, record: Record, promise: bool = True) -> None:
        """Keep ``record`` durably; a promise is committed before anything is sent."""

    def reply(self, token: Any, oid: str) -> None:
        """Tell the client waiting with ``token`` how own order ``oid`` stands."""

    def answer(self, token: Any, result: dict[str, Any]) -> None:
        """Tell the client waiting with ``token`` ``result`` (a request that is not an order's)."""

    def notify(self, output: Output) -> None:
        """Hand the host a notice (for logs and streams) that changes no state: OtcChanged."""

    def is_up(self, node: str) -> bool:
        """Whether ``node``'s orders may be traded now."""

    def note_gap(self, peer: str, vc: VectorClock) -> None:
        """Peer ``peer`` has what ``vc`` covers: fetch what we lack of it, if it does not come by itself."""

    def repair(self, origin: str, ledger: Ledger, changed: list[str]) -> None:
        """Take ``ledger``, in which ``origin``'s records were replaced by its own (``changed``)."""

    def install(self, sender: str, vc: VectorClock, items: list[Any]) -> None:
        """Unite the ledger with a whole, checked snapshot from ``sender`` taken at ``vc``."""
