"""The maker desk: answering takes against this node's own orders.

A node is the single writer of its own orders, so it alone grants fills
against them (README, "The rules").  A :class:`~zmqex.core.messages.Take`
from a peer asks for part of one of them; the answer is a
:class:`~zmqex.core.messages.TakeReply` that carries the fill event when
something was granted.

State, all of it the desk's own: the answers given (``_answers``), takes
waiting for their taker order (``_parked``), and takes waiting for an order
of ours that is all reserved (``_queued``).  It reads the
taker desk's reservations, never writes them.

Invariants (``_check``):

* Never more than ``open - reserved`` of an order is granted, where
  ``reserved`` is what this node's own taker desk is asking for with it;
  and never more than our credit for the taker's desk lets trade
  (:mod:`zmqex.core.credit`): nothing at all is a ``credit`` refusal.
* One answer per ``(sender, request)``.  A grant or a busy answer is
  persisted (:class:`~zmqex.core.outputs.Outcome`) before it is sent, and a
  retried or duplicated request gets the stored answer again, never a second
  fill; ``closed`` and ``invalid`` answers are the same whenever a take is
  judged, so they are given again rather than kept (see ``_answer``).
* A take is judged only once its taker's order is delivered here (the fill
  must come causally after it); until then it is parked, at most
  ``Config.park_ms`` and :data:`MAX_PARKED` per peer (a dropped one was never
  answered: its taker asks again), and the rest is fetched by repair.
* A take against an order whose open quantity is all reserved (its owner is
  taking with it right now) is queued, unanswered, until that reservation
  settles (``release``) or ``Config.retry_ms`` passes (then: busy).  Holding
  beats a busy answer: the taker would only ask again a tick later.  It cannot
  deadlock: an order only waits on a take by an order with a later priority
  key to one with an earlier key, and answers never wait on anything.

Costs: an answer is O(1) plus the fill's delivery; a duplicate is one dict
look-up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from zmqex.core.context import Context
from zmqex.core.credit import CREDIT
from zmqex.core.events import Event, Fill, NewOrder, fill_of, owner_of
from zmqex.core.ledger import crosses
from zmqex.core.messages import Take, TakeReply
from zmqex.core.outputs import Outcome
from zmqex.core.takes import Reservations
from zmqex.core.taker import BUSY, CLOSED, GRANTED, INVALID

#: Most takes one peer may have parked here, waiting for their taker orders (see _park).
MAX_PARKED = 1_000


class Parked:
    """A take waiting for its taker order to be delivered here."""

    __slots__ = ("sender", "take", "since")

    def __init__(self, sender: str, take: Take, since: int) -> None:
        self.sender = sender
        self.take = take
        self.since = since


class MakerDesk:
    """Answer takes against this node's orders."""

    def __init__(self, ctx: Context, reservations: Reservations) -> None:
        self._ctx = ctx
        self._reservations = reservations  # the taker desk's: read only
        self._answers: dict[tuple[str, str], TakeReply] = {}  # (sender, request) -> the answer it got
        self._parked: dict[str, list[Parked]] = {}  # taker order id -> takes awaiting it
        self._parked_by: Counter[str] = Counter()  # sender -> its takes in _parked
        self._queued: dict[str, dict[tuple[str, str], tuple[Take, int]]] = {}  # own order -> takes, since

    @property
    def unfinished(self) -> int:
        """Takes not answered yet: parked or queued."""
        return len(self._parked) + len(self._queued)

    @property
    def answers(self) -> dict[tuple[str, str], TakeReply]:
        """The answers kept for retries, by (sender, request): a copy."""
        return dict(self._answers)

    def parked(self, sender: str | None = None) -> int:
        """Takes parked here, from ``sender`` or from anyone."""
        if sender is not None:
            return self._parked_by[sender]
        return sum(len(p) for p in self._parked.values())

    def on_take(self, sender: str, take: Take) -> None:
        ctx = self._ctx
        stored = self._answers.get((sender, take.request))
        if stored is not None:
            ctx.send(sender, stored)  # a retry or a duplicate: same answer, never a new fill
            return
        if (take.taker.origin != sender or owner_of(take.maker) != ctx.id
                or not isinstance(take.taker.body, NewOrder) or not take.request.startswith(sender + ".")):
            self._answer(sender, take, 0, INVALID)  # request ids and taker orders are the sender's own
            return
        if not ctx.is_up(sender):
            self._answer(sender, take, 0, INVALID)  # removed, or caught signing two events with one id
            return
        ctx.offer(take.taker, sender)
        if take.taker.order_id not in ctx.ledger.orders:
            # We lack something the taker's order depends on: hold the request until it
            # comes (by gossip, nearly always; else by repair from the taker's node).
            self._park(sender, take)
            ctx.note_gap(sender, take.taker.vc)
            return
        self._grant(sender, take)

    def order_delivered(self, oid: str) -> None:
        """Order ``oid`` is in the ledger now: judge the takes that waited for it."""
        if oid not in self._parked:
            return  # nearly always: a take comes after its taker order (and _unpark would build a list)
        for parked in self._unpark(oid):
            self._grant(parked.sender, parked.take)

    def release(self, oid: str) -> None:
        """The reservation of own order ``oid`` changed: judge the takes queued on it."""
        for (sender, _), (take, _) in self._queued.pop(oid, {}).items():
            self._grant(sender, take)

    def tick(self) -> None:
        self._expire_queued()
        self._expire_parked()

    # --- restart --------------------------------------------------------------------------

    def restore(self, answers: Iterable[tuple[str, TakeReply]]) -> None:
        """Take back the answers given before a restart."""
        for sender, reply in answers:
            self._answers[(sender, reply.request)] = reply

    def reconcile(self) -> None:
        """The ledger changed (restart, snapshot): judge parked takes whose taker order it now holds."""
        for oid in [o for o in self._parked if o in self._ctx.ledger.orders]:
            self.order_delivered(oid)

    def recover_answers(self) -> None:
        """After our store was lost: the grants the ledger shows are answers again. O(fills).

        A retried take then gets its fill back instead of a second judgement, which
        the ledger would refuse (one fill per request).  Busy answers left no trace
        and are gone (see zmqex.core.recovery).
        """
        me = self._ctx.id
        for fill in self._ctx.ledger.fills.values():
            body = fill_of(fill)
            sender = owner_of(body.taker)
            if fill.origin == me and sender != me and ":" not in body.request:  # a take's, not a hold's
                self._answers.setdefault((sender, body.request),
                                         TakeReply(body.request, body.maker, body.qty, GRANTED, fill))

    # --- deciding ---------------------------------------------------------------------------

    def _park(self, sender: str, take: Take) -> None:
        """Hold a take until its taker order is delivered; at most MAX_PARKED per sender.

        A parked take has no answer yet, so dropping one (over the cap, or after
        ``Config.park_ms``) breaks no promise: its taker asks again.
        """
        ctx = self._ctx
        parked = self._parked.get(take.taker.order_id, [])
        if any(p.take.request == take.request for p in parked):
            return
        if self._parked_by[sender] >= MAX_PARKED:
            ctx.counters["takes_unparked"] += 1
            return
        parked.append(Parked(sender, take, ctx.now))
        self._parked[take.taker.order_id] = parked
        self._parked_by[sender] += 1
        ctx.counters["takes_parked"] += 1

    def _unpark(self, oid: str) -> list[Parked]:
        parked = self._parked.pop(oid, [])
        for p in parked:
            self._parked_by[p.sender] -= 1
        return parked

    def _expire_parked(self) -> None:
        """Drop parked takes whose taker order did not come within ``park_ms`` (O(parked))."""
        ctx = self._ctx
        for oid in list(self._parked):
            waiting = self._parked[oid]
            kept = [p for p in waiting if ctx.now - p.since < ctx.config.park_ms]
            for p in waiting:
                if p not in kept:
                    self._parked_by[p.sender] -= 1
            if kept:
                self._parked[oid] = kept
            else:
                del self._parked[oid]
            ctx.counters["takes_unparked"] += len(waiting) - len(kept)

    def _grant(self, sender: str, take: Take) -> None:
        """Decide a take whose taker order is delivered here, and answer it."""
        if (sender, take.request) in self._answers:
            return
        ctx = self._ctx
        maker = ctx.ledger.orders.get(take.maker)
        taker = ctx.ledger.orders[take.taker.order_id]
        if ctx.amnesia:
            # Getting our history back, we may have granted it already: no answer, so it is asked
            # again, and then answered from the ledger.  Past hope of that, nothing is granted.
            if not ctx.recovering:
                self._answer(sender, take, 0, INVALID)
            return
        if (maker is None or maker.price is None or not crosses(taker, maker)
                or (taker.rests and taker.key <= maker.key) or take.qty > taker.qty - taker.filled
                or take.request in ctx.ledger.fill_by_request):  # an id of its past, already granted
            self._answer(sender, take, 0, INVALID)
            return
        available = maker.open - self._reservations.reserved(maker.id)
        if maker.open == 0:
            self._answer(sender, take, 0, CLOSED)
        elif available <= 0:
            self._queued.setdefault(maker.id, {})[(sender, take.request)] = (take, ctx.now)
            ctx.counters["takes_held"] += 1
        else:
            granted = min(take.qty, available)
            if ctx.credit.engaged:  # no more than our credit for the taker's desk lets it (zmqex.core.credit)
                granted = ctx.credit.fit(sender, maker.price, granted, ctx.wall())
                if granted == 0:
                    ctx.counters["takes_refused_credit"] += 1
                    self._answer(sender, take, 0, CREDIT)
                    return
            fill = ctx.emit(Fill(maker.id, taker.id, maker.price, granted, take.request))
            self._answer(sender, take, granted, GRANTED, fill)

    def _expire_queued(self) -> None:
        """Takes queued past ``retry_ms`` get a busy answer, so their takers move on."""
        ctx = self._ctx
        for oid in list(self._queued):
            held = self._queued[oid]
            for key, (take, since) in list(held.items()):
                if ctx.now - since >= ctx.config.retry_ms:
                    del held[key]
                    ctx.counters["held_expired"] += 1
                    self._answer(key[0], take, 0, BUSY)
            if not held:
                del self._queued[oid]

    def _answer(self, sender: str, take: Take, granted: int, reason: str, fill: Event | None = None) -> None:
        """Send the answer; a grant or a busy answer is stored first (persisted before it is sent).

        Those two are promises, and so is a ``credit`` refusal (credit comes back): asked
        again, the same take must get the same answer (a second judgement could grant
        what the taker already let go).  ``closed`` and
        ``invalid`` are not: a closed order never reopens, and an invalid take (one no
        honest taker sends: another's order, a maker we never had, more than the taker
        has left, a non-crossing price, or from a member caught equivocating) is invalid
        whenever it is judged.  Keeping them would let any member grow our memory and
        store one request id at a time.
        """
        reply = TakeReply(take.request, take.maker, granted, reason, fill)
        if reason is GRANTED or reason is BUSY or reason is CREDIT:
            self._answers[(sender, take.request)] = reply
            self._ctx.persist(Outcome(sender, reply))
        self._ctx.send(sender, reply)

    # --- invariants -----------------------------------------------------------------------

    def _check(self) -> None:
        ctx = self._ctx
        orders = ctx.ledger.orders
        counts: Counter[str] = Counter()
        for oid, parked in self._parked.items():
            assert parked, f"empty parked list for {oid}"
            assert oid not in orders, f"takes still parked for {oid}, which is delivered"
            for p in parked:
                assert p.take.taker.order_id == oid
                counts[p.sender] += 1
        assert +counts == +self._parked_by, "parked counts per sender drifted"
        assert all(n <= MAX_PARKED for n in counts.values())
        for oid, held in self._queued.items():
            order = orders.get(oid)
            assert held and order is not None and order.owner == ctx.id, f"takes queued on {oid}"
            assert order.open <= self._reservations.reserved(oid), f"takes queued on {oid}, which has room"
        for (sender, request), reply in self._answers.items():
            assert reply.request == request and reply.reason in (GRANTED, BUSY, CREDIT)
            fill = reply.fill
            if reply.granted:
                assert fill is not None and isinstance(fill.body, Fill) and fill.body.qty == reply.granted
                assert ctx.ledger.fill_by_request.get(request) == fill, f"granted {request}, fill not applied"
