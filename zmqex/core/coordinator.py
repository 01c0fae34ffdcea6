"""The coordinator of all-or-nothing trades: a fill-or-kill order's owner.

A fill-or-kill order ``T`` of quantity ``Q`` must fill whole, from makers
owned by any nodes, or not at all.  Its owner coordinates a two-phase
exchange with the makers' owners (:mod:`zmqex.core.holds` is the other
side):

1. **Hold.**  ``T`` is persisted (its event is a promise) before anything
   leaves the node.  The coordinator plans: crossing makers best first, whose
   owners are up, as far as our credit for their desks goes
   (:mod:`zmqex.core.credit`), for exactly ``Q`` in total, and asks each owner to hold its
   part (:class:`~zmqex.core.messages.Hold`, retried every ``retry_ms``).  If
   the book cannot cover ``Q``, ``T`` is killed at once: nothing was held.
2. **Decide.**  When what is held covers ``Q``, the decision is ``commit``
   with an amount per hold (best price first, summing exactly ``Q``); when a
   hold comes back short and no other maker can make up for it, or
   ``Config.hold_wait_ms`` passes, it is ``abort``.  The decision is this
   node's alone and durable (:class:`~zmqex.core.outputs.Decision`, a promise)
   before anything about it leaves the node; an abort also cancels ``T``
   (``killed``).
3. **Finish.**  Every hold gets a :class:`~zmqex.core.messages.Confirm` (its
   amount; 0 releases it), retried until answered.  A confirmed hold comes back
   as an ordinary fill event, so replicas see ``T`` only through its fills
   (all of ``Q``, or none) and its final state.
4. **Inquiries.**  A holder never lets go on its own clock; it asks
   (:class:`~zmqex.core.messages.Inquire`).  The answer comes from the durable
   decision; if there is none yet, the coordinator aborts first (presumed
   abort), so it can never commit later.  Without a record of ``T`` at all
   the answer is a release: only a live record can ever commit.

A restart aborts every own fill-or-kill order still open without a
decision, and sends every decided but unanswered confirm again.

Invariants (``_check``): a record is kept only for an own all-or-nothing
order; its asks, in plan order, ask for ``Q`` in total at most once per
maker; a committed decision's amounts sum to ``Q`` and none is over what its
hold answered; the fills of ``T`` are never more than a committed decision's
amounts, and an aborted ``T`` has none.

Costs: planning walks the crossing makers until ``Q`` is covered; each
message is O(asks of its order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from zmqex.core.context import Context
from zmqex.core.credit import ASK, CREDIT, Pending
from zmqex.core.events import Cancel, CancelReason, Fill, fill_of, owner_of
from zmqex.core.holds import request_of
from zmqex.core.ledger import OrderState
from zmqex.core.messages import Confirm, ConfirmReply, Hold, HoldReply, Inquire
from zmqex.core.outputs import Decision
from zmqex.core.takes import Reservations
from zmqex.core.tif import ATOMIC
from zmqex.core.traders import Traders


class Ask:
    """One hold asked for: ``qty`` of ``maker``, and how it stands."""

    __slots__ = ("request", "maker", "qty", "held", "sent_at", "settled")

    def __init__(self, request: str, maker: str, qty: int, sent_at: int) -> None:
        self.request = request
        self.maker = maker
        self.qty = qty
        self.held: int | None = None  # the holder's answer; None until it comes
        self.sent_at = sent_at  # ms: the last time we sent the hold, or its confirm
        self.settled = False  # its confirm (or release) is answered, or there is nothing to settle


class Atomic:
    """One own all-or-nothing order being decided or finished."""

    __slots__ = ("order", "token", "asks", "started", "decision", "credit")

    def __init__(self, order: str, token: Any, started: int) -> None:
        self.order = order
        self.token = token  # the client waiting for the outcome, if one is
        self.asks: dict[str, Ask] = {}  # by request id, in plan order
        self.started = started  # ms
        self.decision: Decision | None = None
        self.credit = False  # credit (ours, or a holder's) kept it from some maker: an abort says so

    @property
    def held(self) -> int:
        return sum(a.held or 0 for a in self.asks.values())


class Coordinator:
    """Plan, hold, decide and finish this node's all-or-nothing orders."""

    def __init__(self, ctx: Context, traders: Traders, reservations: Reservations) -> None:
        self._ctx = ctx
        self._traders = traders  # read only: self-trade prevention
        self._reservations = reservations  # read only: what our own orders have promised already
        self._live: dict[str, Atomic] = {}  # own order -> its record, until every hold is settled
        self._decisions: dict[str, Decision] = {}  # own order -> its decision, kept for inquiries
        self._to_abort: list[str] = []  # own orders a restart found undecided

    @property
    def unfinished(self) -> int:
        """All-or-nothing orders not finished: deciding, or settling their holds."""
        return len(self._live) + len(self._to_abort)

    def working(self, oid: str) -> bool:
        """Whether own order ``oid`` is an all-or-nothing order in our hands: being decided, or
        committed with its fills still to come.  Nobody may cancel it then: a cancel could not
        stop the fills, only make the order's end say something else than what happened."""
        return oid in self._live

    def decision(self, oid: str) -> Decision | None:
        return self._decisions.get(oid)

    # --- what the replica tells the desk ---------------------------------------------------

    def placed(self, oid: str, token: Any) -> None:
        """Own order ``oid`` (all-or-nothing, delivered) was placed: plan its holds and ask for them."""
        ctx = self._ctx
        order = ctx.ledger.orders[oid]
        atomic = Atomic(oid, token, ctx.now)
        self._live[oid] = atomic
        self._plan(atomic, order, order.qty)

    def on_fill(self, body: Fill) -> None:
        """A fill was delivered: if it fills one of ours, that one may be finished."""
        atomic = self._live.get(body.taker)
        if atomic is not None:
            self._maybe_finished(atomic)

    def on_hold_reply(self, sender: str, msg: HoldReply) -> None:
        ctx = self._ctx
        atomic = self._live.get(msg.request.rpartition(":")[0])
        ask = None if atomic is None else atomic.asks.get(msg.request)
        if atomic is None or ask is None or ask.maker != msg.maker or owner_of(msg.maker) != sender:
            return  # late, or not ours to believe
        if msg.held > ask.qty:
            ctx.counters["holds_over"] += 1  # more than asked: no honest holder does that
            return
        decision = atomic.decision
        if decision is not None:
            if msg.held and ask.settled:
                ask.settled = False  # a hold that came late: release it (its amount is 0)
                self._confirm(atomic, ask)
            return
        if ask.held is not None and (ask.held or not msg.held):
            return  # the answer we have stands
        ask.held = msg.held
        if msg.reason == CREDIT:  # its owner gives our desk no more credit: plan without that desk
            ctx.credit.refused_by(sender, ctx.now + ctx.config.credit_retry_ms)
            atomic.credit = True
        self._credit_sync(atomic)
        order = ctx.ledger.orders[atomic.order]
        if atomic.held >= order.qty:
            self._decide(atomic, True)
            return
        if msg.held < ask.qty:
            # Short: ask makers not asked yet for what is missing (deciding abort if none can give it).
            missing = order.qty - atomic.held - sum(a.qty for a in atomic.asks.values() if a.held is None)
            if missing > 0:
                self._plan(atomic, order, missing)
        if atomic.decision is None and all(a.held is not None for a in atomic.asks.values()):
            self._decide(atomic, False)  # everyone answered, and it is not enough

    def on_confirm_reply(self, sender: str, msg: ConfirmReply) -> None:
        ctx = self._ctx
        atomic = self._live.get(msg.request.rpartition(":")[0])
        ask = None if atomic is None else atomic.asks.get(msg.request)
        if (atomic is None or ask is None or atomic.decision is None or ask.settled
                or ask.maker != msg.maker or owner_of(msg.maker) != sender):
            return
        fill = msg.fill
        if fill is not None:
            body = fill.body
            if not (isinstance(body, Fill) and fill.origin == sender and body.request == msg.request
                    and body.qty == msg.filled and body.taker == atomic.order and body.maker == msg.maker):
                return
        if msg.filled != _amount(atomic.decision, msg.request):
            # The holder broke its promise (it lost its store?): T may not fill whole.
            ctx.counters["confirms_broken"] += 1
            if msg.filled > _amount(atomic.decision, msg.request):
                return
        ask.settled = True
        if fill is not None:
            ctx.offer(fill, sender)
        self._maybe_finished(atomic)

    def on_inquire(self, sender: str, msg: Inquire) -> None:
        """A holder asks what we decided: tell it, aborting first if we have not decided (presumed abort)."""
        ctx = self._ctx
        if (owner_of(msg.taker) != ctx.id or owner_of(msg.maker) != sender
                or not msg.request.startswith(msg.taker + ":") or ctx.amnesia):
            return  # not ours to answer; without our history we cannot know what we decided
        atomic = self._live.get(msg.taker)
        if atomic is not None and atomic.decision is None:
            ctx.counters["holds_presumed_aborted"] += 1
            self._decide(atomic, False)
        decision = self._decisions.get(msg.taker)
        qty = 0 if decision is None else _amount(decision, msg.request)
        ctx.send(sender, Confirm(msg.request, msg.maker, msg.taker, qty))

    def tick(self) -> None:
        """Ask again for unanswered holds and confirms; give up on holds that take too long."""
        ctx = self._ctx
        for atomic in list(self._live.values()):
            if atomic.decision is None and ctx.now - atomic.started >= ctx.config.hold_wait_ms:
                ctx.counters["holds_timed_out"] += 1
                self._decide(atomic, False)
                continue
            for ask in atomic.asks.values():
                if ctx.now - ask.sent_at < ctx.config.retry_ms:
                    continue
                if atomic.decision is None and ask.held is None:
                    ask.sent_at = ctx.now
                    ctx.counters["hold_retries"] += 1
                    self._send_hold(atomic, ask)
                elif atomic.decision is not None and not ask.settled:
                    ctx.counters["confirm_retries"] += 1
                    self._confirm(atomic, ask)

    def drive(self) -> None:
        """Abort what a restart found undecided (events cannot be made while restoring)."""
        ctx = self._ctx
        while self._to_abort and not ctx.amnesia:
            oid = self._to_abort.pop()
            atomic = Atomic(oid, None, ctx.now)
            self._live[oid] = atomic
            self._decide(atomic, False)

    # --- restart --------------------------------------------------------------------------

    def restore(self, decisions: Iterable[Decision], unfinished: Iterable[str]) -> None:
        """Take back the decisions made before a restart; abort the own orders ``unfinished`` left undecided.

        A decided order's confirms go out again, except those whose fill is in the
        ledger already (a holder answers a repeated confirm from its store).
        """
        ctx = self._ctx
        fills = ctx.ledger.fill_by_request
        for decision in decisions:
            self._decisions[decision.order] = decision
            atomic = Atomic(decision.order, None, ctx.now)
            atomic.decision = decision
            for request, maker, qty in decision.parts:
                ask = Ask(request, maker, qty, ctx.now - ctx.config.retry_ms)
                ask.held = qty or None  # a release: what it held is not known, so it is released again
                ask.settled = qty > 0 and request in fills
                atomic.asks[request] = ask
            self._live[decision.order] = atomic
        self._to_abort = sorted(oid for oid in unfinished if oid not in self._decisions)

    def recover_decisions(self) -> None:
        """After our store was lost: the decisions the ledger shows.  O(own orders).

        An own all-or-nothing order with fills was committed, and its fills are its
        parts (all of them once it is filled; a holder still waiting for its confirm
        learns that it was released: that part of the promise went with the store).
        One closed without fills was aborted.  One still open without fills is
        undecided: the caller aborts it (:meth:`restore`).  Each is persisted again.
        """
        ctx = self._ctx
        for order in ctx.ledger.orders.values():
            if order.owner != ctx.id or not ATOMIC[order.tif] or order.id in self._decisions:
                continue
            if order.filled:
                fills = [fill_of(f) for f in ctx.ledger.fills_of.get(order.id, ())]
                parts = tuple((b.request, b.maker, b.qty) for b in fills if b.taker == order.id)
                decision = Decision(order.id, True, parts)
            elif order.open == 0:
                decision = Decision(order.id, False, ())
            else:
                continue
            self._decisions[order.id] = decision
            ctx.persist(decision, promise=False)

    def reconcile(self) -> None:
        """The ledger changed under us (a snapshot): fills of committed holds may be in it now."""
        for atomic in list(self._live.values()):
            self._maybe_finished(atomic)

    # --- planning and deciding -----------------------------------------------------------------

    def _plan(self, atomic: Atomic, order: OrderState, wanted: int) -> None:
        """Ask makers not asked yet for ``wanted`` more, best first.

        Decides abort at once when the book cannot give ``wanted``: then nothing
        more is asked, and what was held is released.  A maker of the order's own
        trader ends the walk: before anything was asked, the order is killed
        (``self_trade``).  Cancelling the resting order instead, to let this one
        through, would be a second effect that no all-or-nothing decision covers.
        """
        ctx = self._ctx
        me = ctx.id
        orders = ctx.ledger.orders
        asked = {a.maker for a in atomic.asks.values()}
        plan: list[tuple[str, int]] = []
        planned: dict[str, int] = {}  # desk -> notional planned of it so far (credit: see _credit_cap)
        for resting in ctx.ledger.book.crossing(order.side, order.price):
            if wanted <= 0:
                break
            oid = resting.order_id
            maker = orders[oid]
            if oid in asked or (maker.owner != me and not ctx.is_up(maker.owner)):
                continue
            if self._traders.same_trader(order.id, oid):
                ctx.counters["fok_self_trade"] += 1
                if not atomic.asks:
                    self._kill(atomic, CancelReason.SELF_TRADE)
                    return
                break
            free = maker.open - (self._reservations.reserved(oid) if maker.owner == me
                                 else self._reservations.asked(oid))
            if free > 0 and maker.owner != me and ctx.credit.engaged:
                free = self._credit_cap(atomic, maker, min(wanted, free), planned)
            if free > 0:
                plan.append((oid, min(wanted, free)))
                wanted -= min(wanted, free)
        if wanted > 0:
            self._decide(atomic, False)
            return
        for maker_id, qty in plan:
            ask = Ask(request_of(atomic.order, len(atomic.asks)), maker_id, qty, ctx.now)
            atomic.asks[ask.request] = ask
            self._send_hold(atomic, ask)
        self._credit_sync(atomic)

    def _credit_cap(self, atomic: Atomic, maker: OrderState, qty: int, planned: dict[str, int]) -> int:
        """How much of ``qty`` of a peer's ``maker`` to plan on: what our credit for its desk lets trade,
        besides what is planned of that desk already; none of a desk that refused us lately."""
        ctx = self._ctx
        desk, price = maker.owner, maker.price
        assert price is not None  # a maker rests, so it has a price
        fits = 0 if ctx.credit.cooling(desk, ctx.now) else ctx.credit.fit(desk, price, qty, ctx.wall(),
                                                                            planned.get(desk, 0))
        if fits < qty:
            atomic.credit = True
        planned[desk] = planned.get(desk, 0) + price * fits
        return fits

    def _send_hold(self, atomic: Atomic, ask: Ask) -> None:
        ctx = self._ctx
        event = ctx.ledger.orders[atomic.order].event
        ctx.send(owner_of(ask.maker), Hold(ask.request, ask.maker, event, ask.qty))

    def _kill(self, atomic: Atomic, reason: CancelReason) -> None:
        """End ``atomic`` undecided and unasked: nothing was held, so nothing is released."""
        assert not atomic.asks, "a kill after asking: decide abort instead"
        del self._live[atomic.order]
        self._ctx.emit(Cancel(atomic.order, reason))
        if atomic.token is not None:
            self._ctx.reply(atomic.token, atomic.order)

    def _decide(self, atomic: Atomic, commit: bool) -> None:
        """Make the decision durable, then tell every holder; an abort cancels the order (killed)."""
        ctx = self._ctx
        order = ctx.ledger.orders[atomic.order]
        parts = []
        left = order.qty if commit else 0
        for ask in atomic.asks.values():
            qty = min(left, ask.held or 0)
            left -= qty
            parts.append((ask.request, ask.maker, qty))
        assert left == 0, f"commit of {atomic.order} without holds for all of it"
        decision = atomic.decision = Decision(atomic.order, commit, tuple(parts))
        self._decisions[atomic.order] = decision
        ctx.persist(Decision(atomic.order, commit, decision.parts))
        ctx.counters["fok_committed" if commit else "fok_killed"] += 1
        if not commit and order.open > 0:
            ctx.emit(Cancel(atomic.order, CancelReason.CREDIT if atomic.credit else CancelReason.KILLED))
        for ask in atomic.asks.values():
            if ask.held == 0:
                ask.settled = True  # nothing held: nothing to settle
            else:
                self._confirm(atomic, ask)  # unanswered ones too: a hold still on its way is let go sooner
        self._maybe_finished(atomic)

    def _confirm(self, atomic: Atomic, ask: Ask) -> None:
        assert atomic.decision is not None
        ask.sent_at = self._ctx.now
        self._ctx.send(owner_of(ask.maker),
                       Confirm(ask.request, ask.maker, atomic.order, _amount(atomic.decision, ask.request)))

    def _maybe_finished(self, atomic: Atomic) -> None:
        """Tell the client once the outcome is in the ledger; forget the record once all holds are settled."""
        decision = atomic.decision
        if decision is None:
            return
        order = self._ctx.ledger.orders[atomic.order]
        done = order.filled == order.qty if decision.commit else order.open == 0
        if done and atomic.token is not None:
            token, atomic.token = atomic.token, None
            self._ctx.reply(token, atomic.order)
        if done and all(a.settled for a in atomic.asks.values()):
            self._live.pop(atomic.order, None)  # may come twice: a fill delivered inside a reply
        self._credit_sync(atomic)

    # --- credit (zmqex.core.credit) ------------------------------------------------------------

    def _in_flight(self, atomic: Atomic, ask: Ask) -> int:
        """What of a peer's maker ``ask`` may still become a fill: asked, or held, until decided;
        then what the decision confirms and its fill has not brought yet (a confirm may be answered
        before its fill can be delivered here)."""
        if owner_of(ask.maker) == self._ctx.id:
            return 0
        decision = atomic.decision
        if decision is None:
            return ask.qty if ask.held is None else ask.held
        fill = self._ctx.ledger.fill_by_request.get(ask.request)
        filled = fill.body.qty if fill is not None and isinstance(fill.body, Fill) else 0
        return max(0, _amount(decision, ask.request) - filled)

    def _credit_sync(self, atomic: Atomic) -> None:
        """Tell credit what ``atomic``'s asks have in flight now (nothing once it is finished)."""
        live = atomic.order in self._live
        orders, credit = self._ctx.ledger.orders, self._ctx.credit
        for ask in atomic.asks.values():
            maker = orders[ask.maker]
            qty = self._in_flight(atomic, ask) if live else 0
            if maker.price is not None:
                credit.reserve(ASK + ask.request, maker.owner, maker.price, qty)

    def credit_pending(self) -> Iterator[Pending]:
        """What our asks have in flight with the holders' desks, from scratch (zmqex.core.credit)."""
        orders = self._ctx.ledger.orders
        for atomic in self._live.values():
            for ask in atomic.asks.values():
                maker = orders[ask.maker]
                qty = self._in_flight(atomic, ask)
                if qty > 0 and maker.price is not None:
                    yield ASK + ask.request, maker.owner, maker.price, qty

    # --- invariants -----------------------------------------------------------------------

    def _check(self) -> None:
        ctx = self._ctx
        orders = ctx.ledger.orders
        for oid, atomic in self._live.items():
            order = orders.get(oid)
            assert order is not None and order.owner == ctx.id and ATOMIC[order.tif], f"{oid} is coordinated here"
            assert atomic.order == oid and (atomic.decision is None) == (oid not in self._decisions)
            makers = [a.maker for a in atomic.asks.values()]
            assert len(set(makers)) == len(makers), f"{oid} asks a maker twice"
            assert all(a.held is None or a.held <= a.qty for a in atomic.asks.values()), f"{oid}: over-held"
        for oid, decision in self._decisions.items():
            order = orders.get(oid)
            assert order is not None, f"a decision on {oid}, which is not here"
            amounts = sum(qty for _, _, qty in decision.parts)
            # All of it on a commit, but for one rebuilt from the ledger after a lost store (see
            # recover_decisions): its confirms still out when the store went are lost with it.
            assert amounts <= order.qty if decision.commit else amounts == 0, f"{oid}: decided amounts {amounts}"
            assert order.filled <= amounts, f"{oid} filled {order.filled}, more than decided ({amounts})"
            live = self._live.get(oid)
            if live is not None:
                for request, _, qty in decision.parts:
                    held = live.asks[request].held
                    assert qty <= (held or 0), f"{oid}: {request} confirms {qty}, more than held"
        for oid, order in orders.items():
            # While a node that lost its store gets its history back, its orders' fills come back
            # before its decisions do: recover_decisions rebuilds them from the ledger at the end.
            if order.owner == ctx.id and ATOMIC[order.tif] and order.filled and not ctx.recovering:
                decided = self._decisions.get(oid)
                assert decided is not None and decided.commit, f"{oid} filled without a commit"


def _amount(decision: Decision, request: str) -> int:
    """What ``decision`` confirms of the hold ``request`` (0: released, or never part of it)."""
    for part_request, _, qty in decision.parts:
        if part_request == request:
            return qty
    return 0
