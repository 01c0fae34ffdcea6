"""Restart: rebuilding a replica from its durable records.

A host persists every :class:`~zmqex.core.outputs.Persist` record before it
carries out anything else (see :mod:`zmqex.core.outputs`), so replaying the
records in the order they were persisted brings back everything the node ever
promised:

* **State.**  Each :class:`Checkpoint` replaces the ledger and clock with its
  snapshot and keeps the logged events above its base; each
  :class:`EventRecord` above the clock is applied, and one at or below it (its
  state already came with a checkpoint) is only kept in the log for peers.
* **Taker promises.**  Every :class:`TakeSent` is reserved again.  One with a
  :class:`TakeSettled` keeps its answer; one without is asked again on the
  first tick, under the same request id, so the maker's stored answer comes
  back instead of a second fill.  An IOC or market order the crash cut off
  is finished (its first taker pass runs again).
* **Maker promises.**  Every :class:`Outcome` is stored again, so a retried
  take gets the answer it was given before.
* **Evidence.**  Every :class:`Evidence` marks its origin as a member that
  signed two events with one id again: its orders stay untradeable.
* **Traders.**  Every :class:`OrderTrader` says again who placed an own
  order, so only they (or an operator) may cancel it after the restart.

Nothing in the replay is news to the host: no outputs are left to carry out.

Costs: O(records), plus, per checkpoint, O(n) in its orders and fills and
O(events logged so far).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from zmqex.core.ledger import rebuild
from zmqex.core.outputs import (
    Checkpoint, EventRecord, Evidence, OrderTrader, Outcome, Record, TakeSent, TakeSettled,
)
from zmqex.core.takes import PendingTake

if TYPE_CHECKING:
    from zmqex.core.replica import Replica


def replay(replica: Replica, records: Iterable[Record]) -> None:
    """Load a new replica's durable ``records``, in the order they were persisted (``Replica.restore``)."""
    node_id, now, config = replica.id, replica.now, replica.config
    takes: dict[str, PendingTake] = {}
    log = replica._log
    for record in records:
        if isinstance(record, EventRecord):
            event = record.event
            if event.seq > replica.clock.get(event.origin):
                replica.ledger.apply(event)
                replica._record_delivery(event)
            elif event.seq > log.base.get(event.origin):
                log.append(event)  # already in the checkpoint's state, still servable to peers
        elif isinstance(record, Checkpoint):
            kept = [e for e in log if e.seq > record.base.get(e.origin)]
            replica.ledger = rebuild(list(record.items))
            replica.clock = record.vc
            log.reset(record.base)
            for event in kept:
                log.append(event)
        elif isinstance(record, TakeSent):
            takes[record.request] = PendingTake(record.request, record.order, record.maker, record.qty, now)
            replica._requests = max(replica._requests, int(record.request.rpartition(".")[2]))
        elif isinstance(record, TakeSettled):
            takes[record.request].granted = record.granted
        elif isinstance(record, Outcome):
            replica._outcomes[(record.sender, record.reply.request)] = record.reply
        elif isinstance(record, OrderTrader):
            replica.traders.of[record.order] = record.trader
        elif isinstance(record, Evidence):
            replica.equivocators.setdefault(record.ours.origin, (record.ours, record.theirs))
    for take in takes.values():
        fill = replica.ledger.fill_by_request.get(take.request)
        granted, take.granted = take.granted, None
        replica._takes.open(take)
        if fill is not None:
            replica._takes.fill_applied(take, fill.body.qty)  # type: ignore[union-attr]
        if granted is not None:
            replica._takes.answer(take, granted)
        else:
            take.sent_at = now - config.retry_ms  # ask again on the first tick
    replica.traders.recount(replica.ledger, node_id)
    for state in replica.ledger.orders.values():
        if state.owner == node_id and state.open > 0 and not state.rests:
            replica._flows.add(state.id)  # an IOC interrupted by the crash: finish it
    replica._mark_crossed()
    for peer in replica.clock:
        replica.add_peer(peer)
    replica._out = []
