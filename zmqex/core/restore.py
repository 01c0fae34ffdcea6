"""Restart: what a node's durable records say, folded into one value.

A host persists every :class:`~zmqex.core.outputs.Persist` record before it
carries out anything that depends on it (:mod:`zmqex.core.schedule`), so the
records hold everything the node ever promised.  :func:`fold` reads them into
a :class:`Durable`, a plain value, and ``Replica.restore`` builds a replica
from it, ending with the same reconcile step as a snapshot install.

What the fold needs of the order of records: events in the order they were
delivered (a store keeps that order); records of other kinds in any order,
since each is keyed by its own id.  Of several checkpoints the last one
counts: each one's clock and base are at least the previous one's.

* **State.**  The latest :class:`Checkpoint` is the ledger and clock to start
  from; an :class:`EventRecord` above its clock is applied after it, and one
  at or below it (its state already came with the checkpoint) is only kept in
  the log for peers, if it is above the checkpoint's base.
* **Taker promises.**  Every :class:`TakeSent` is reserved again.  One with a
  :class:`TakeSettled` keeps its answer; one without is asked again on the
  first tick, under the same request id, so the maker's stored answer comes
  back instead of a second fill.  An order that does not rest and is still
  open had its first pass cut off by the crash: it runs again.
* **Maker promises.**  Every :class:`Outcome` is kept again, so a retried
  take gets the answer it was given before.
* **Holds.**  Every :class:`HoldTaken` without a :class:`HoldSettled` for
  it is held again, until its coordinator decides; every :class:`HoldSettled`
  is kept, so a retried confirm gets the same answer.
* **Decisions.**  Every :class:`Decision` is kept, so a holder that asks is
  told the same; its confirms not yet answered go out again.  An own
  fill-or-kill order still open without one is aborted (presumed abort).
* **Recovery.**  The latest :class:`RecoveryMark` says whether the node was
  getting its history back from its peers when it stopped; if so, it goes on.
* **Evidence.**  Every :class:`Evidence` marks its origin as a member that
  signed two events with one id: its orders stay untradeable.
* **Traders.**  Every :class:`OrderTrader` says again who placed an own
  order, so only they (or an operator) may cancel it after the restart.
* **OTC.**  The last :class:`OtcRecord` of each key is the OTC desk's item
  under it (a record with no data deletes it): offers, requests for quote,
  trades, answers given and accepts waiting (:mod:`zmqex.core.otcdesk`).
* **Balances.**  Every :class:`Funding`, in the order made, funds its
  trader's account again; what fills moved is counted from the ledger
  (:mod:`zmqex.core.balances`).
* **Credit.**  The latest :class:`CreditLimit` per desk is in force again,
  and every :class:`Settlement` counts again; exposures are counted again
  from the ledger (:mod:`zmqex.core.credit`).

Costs: O(records).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zmqex.core.events import Event
from zmqex.core.outputs import (
    Checkpoint, Decision, EventRecord, Evidence, HoldSettled, HoldTaken, OrderTrader, OtcRecord, Outcome, Record,
    RecoveryMark, TakeSent, TakeSettled,
)
from zmqex.core.outputs import Funding
from zmqex.core.outputs import CreditLimit, Settlement


@dataclass(slots=True)
class Durable:
    """A node's durable records, by kind."""

    checkpoint: Checkpoint | None = None
    events: list[Event] = field(default_factory=list)  # in delivery order
    takes: dict[str, TakeSent] = field(default_factory=dict)  # by request id
    settled: dict[str, int] = field(default_factory=dict)  # request id -> granted
    answers: list[Outcome] = field(default_factory=list)
    traders: list[OrderTrader] = field(default_factory=list)  # who placed each own order
    evidence: dict[str, Evidence] = field(default_factory=dict)  # origin -> its first proof
    holds: dict[tuple[str, str], HoldTaken] = field(default_factory=dict)  # by (sender, request)
    settled_holds: list[HoldSettled] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)  # by order
    recovering: str | None = None  # why it was getting its history back, if it had not finished
    otc: dict[str, Any] = field(default_factory=dict)  # the OTC desk's items, by key
    fundings: list[Funding] = field(default_factory=list)  # the operator's, in the order made
    credit_limits: dict[str, CreditLimit] = field(default_factory=dict)  # by desk: the latest
    settlements: list[Settlement] = field(default_factory=list)


def fold(records: Iterable[Record]) -> Durable:
    """Read ``records`` into a :class:`Durable` (see the module docstring). Pure; O(records)."""
    durable = Durable()
    for record in records:
        if isinstance(record, EventRecord):
            durable.events.append(record.event)
        elif isinstance(record, Checkpoint):
            durable.checkpoint = record
        elif isinstance(record, TakeSent):
            durable.takes[record.request] = record
        elif isinstance(record, TakeSettled):
            durable.settled[record.request] = record.granted
        elif isinstance(record, Outcome):
            durable.answers.append(record)
        elif isinstance(record, OrderTrader):
            durable.traders.append(record)
        elif isinstance(record, Evidence):
            durable.evidence.setdefault(record.ours.origin, record)
        elif isinstance(record, HoldTaken):
            durable.holds[(record.sender, record.request)] = record
        elif isinstance(record, HoldSettled):
            durable.settled_holds.append(record)
        elif isinstance(record, Decision):
            durable.decisions[record.order] = record
        elif isinstance(record, RecoveryMark):
            durable.recovering = record.reason  # the latest counts
        elif isinstance(record, OtcRecord):
            if record.data is None:
                durable.otc.pop(record.key, None)
            else:
                durable.otc[record.key] = record.data
        elif isinstance(record, Funding):
            durable.fundings.append(record)
        elif isinstance(record, CreditLimit):
            durable.credit_limits[record.desk] = record  # the latest counts
        elif isinstance(record, Settlement):
            durable.settlements.append(record)
    return durable
