"""The holder's side of an all-or-nothing trade: holding part of an own order until told.

A fill-or-kill order needs its whole quantity from makers owned by several
nodes, or nothing; a grant cannot be taken back, so it cannot use plain takes.
Its owner, the coordinator (:mod:`zmqex.core.coordinator`), first asks each
maker's owner to *hold* part of a maker order, then decides, and then
*confirms* (so much of each hold becomes a fill) or *releases* (none does).

This desk is the maker's owner in that exchange.  For a
:class:`~zmqex.core.messages.Hold` it reserves ``min(asked, open - reserved)``
of its order (in the shared :class:`~zmqex.core.takes.Reservations`, so
neither its takes nor its grants can promise it again), and no more than its
credit for the coordinator's desk lets trade (:mod:`zmqex.core.credit`: a hold
cut short for credit is answered ``credit``, and none at all is a ``credit``
refusal), persists the hold
(:class:`~zmqex.core.outputs.HoldTaken`), and answers how much it holds.  A
hold publishes nothing: other replicas never learn of it.  On a
:class:`~zmqex.core.messages.Confirm` it turns the confirmed quantity into an
ordinary fill event, lets go of the rest, persists the answer
(:class:`~zmqex.core.outputs.HoldSettled`) and keeps it for retries.

It never lets go of a hold on its own clock: a coordinator may have committed
already, and its confirm may be on the way.  A hold older than
``Config.inquire_after_ms`` makes it ask the coordinator
(:class:`~zmqex.core.messages.Inquire`, every ``retry_ms``), which answers
from its own durable decision, aborting first if it has none (presumed
abort).  So a hold lasts only while its coordinator cannot be reached.

Invariants (``_check``): the quantities held sum, per order, to what the
reservations count as held; every hold is for an own order, which it does not
over-commit (the shared ``filled + reserved <= qty``); a settled hold is held
no more, and its fill, if any, is in the ledger.

Costs: O(1) per message; the tick walks the holds, O(holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from zmqex.core.context import Context
from zmqex.core.credit import CREDIT, HOLD, Pending
from zmqex.core.events import Event, Fill, NewOrder, fill_of, owner_of
from zmqex.core.ledger import crosses
from zmqex.core.messages import Confirm, ConfirmReply, Hold, HoldReply, Inquire
from zmqex.core.outputs import HoldSettled, HoldTaken
from zmqex.core.takes import Reservations
from zmqex.core.tif import ATOMIC

# Reasons in a HoldReply.
HELD, CLOSED, BUSY, INVALID = "held", "closed", "busy", "invalid"


class Held:
    """One hold this node keeps: ``qty`` of its order ``maker`` for ``sender``'s order ``taker``."""

    __slots__ = ("sender", "request", "maker", "taker", "qty", "since", "asked_at")

    def __init__(self, sender: str, request: str, maker: str, taker: str, qty: int, since: int) -> None:
        self.sender = sender  # the coordinator: the taker order's owner
        self.request = request
        self.maker = maker
        self.taker = taker
        self.qty = qty
        self.since = since  # ms: when held (or restored)
        self.asked_at: int | None = None  # ms: when we last asked the coordinator for its decision


def request_of(taker: str, index: int) -> str:
    """The request id of the hold a coordinator asks for its order ``taker``'s ``index``-th maker.

    It names the taker order, so it is unique while order ids are, across the
    coordinator's restarts, and cannot be taken for a take's (``NODE.N``) or
    an own fill's (``NODE/SEQ``).
    """
    return f"{taker}:{index}"


class HoldDesk:
    """Hold, fill or release parts of own orders for coordinators of all-or-nothing trades."""

    def __init__(self, ctx: Context, reservations: Reservations) -> None:
        self._ctx = ctx
        self._reservations = reservations  # shared: holds count as reserved (see the module docstring)
        self._holds: dict[tuple[str, str], Held] = {}  # (sender, request) -> the hold
        self._settled: dict[tuple[str, str], ConfirmReply] = {}  # answers to confirms, for retries

    @property
    def unfinished(self) -> int:
        """Holds waiting for their coordinator's decision."""
        return len(self._holds)

    def holds(self) -> list[Held]:
        return list(self._holds.values())

    # --- messages ----------------------------------------------------------------------

    def on_hold(self, sender: str, msg: Hold) -> None:
        ctx = self._ctx
        key = (sender, msg.request)
        settled = self._settled.get(key)
        if settled is not None:
            ctx.send(sender, settled)  # a late copy of a hold already settled: say how it ended
            return
        held = self._holds.get(key)
        if held is not None:
            ctx.send(sender, HoldReply(msg.request, msg.maker, held.qty, HELD))  # a retry: the same answer
            return
        taker = msg.taker
        body = taker.body
        if (taker.origin != sender or owner_of(msg.maker) != ctx.id or not isinstance(body, NewOrder)
                or not ATOMIC[body.tif] or not msg.request.startswith(taker.order_id + ":")
                or not ctx.is_up(sender) or ctx.amnesia):
            self._refuse(sender, msg, INVALID)  # no honest coordinator sends it, or we may not trade now
            return
        ctx.offer(taker, sender)
        taker_state = ctx.ledger.orders.get(taker.order_id)
        if taker_state is None:
            # We lack what its order depends on: no answer, so the coordinator asks again,
            # and we fetch the gap meanwhile.
            ctx.note_gap(sender, taker.vc)
            return
        maker = ctx.ledger.orders.get(msg.maker)
        if (maker is None or maker.price is None or not crosses(taker_state, maker)
                or msg.qty > taker_state.qty - taker_state.filled):
            self._refuse(sender, msg, INVALID)
            return
        if maker.open == 0:
            self._refuse(sender, msg, CLOSED)
            return
        qty = min(msg.qty, maker.open - self._reservations.reserved(maker.id))
        if qty <= 0:
            self._refuse(sender, msg, BUSY)  # all of it is promised right now; not kept (see _refuse)
            return
        reason = HELD
        if ctx.credit.engaged:  # a short hold is fine: the coordinator asks others, or kills
            fits = ctx.credit.fit(sender, maker.price, qty, ctx.wall())
            if fits == 0:
                self._refuse(sender, msg, CREDIT)
                return
            if fits < qty:
                qty, reason = fits, CREDIT  # held short for credit: the coordinator asks this desk no more
        self._reservations.hold(maker.id, qty)
        self._holds[key] = Held(sender, msg.request, maker.id, taker_state.id, qty, ctx.now)
        ctx.credit.reserve(_credit_key(key), sender, maker.price, qty)
        ctx.persist(HoldTaken(sender, msg.request, maker.id, taker_state.id, qty))
        ctx.counters["holds_taken"] += 1
        ctx.send(sender, HoldReply(msg.request, maker.id, qty, reason))

    def _refuse(self, sender: str, msg: Hold, reason: str) -> None:
        """Hold nothing.  Not kept: a hold asked again may get something then, which is safe,
        since every hold ends by the coordinator's decision (a late one by its inquiry)."""
        self._ctx.counters[f"holds_refused_{reason}"] += 1
        self._ctx.send(sender, HoldReply(msg.request, msg.maker, 0, reason))

    def on_confirm(self, sender: str, msg: Confirm) -> str | None:
        """The coordinator decided: fill ``msg.qty`` of the hold, release the rest.

        Returns the own order whose reservation went down, if any.
        """
        ctx = self._ctx
        key = (sender, msg.request)
        settled = self._settled.get(key)
        if settled is not None:
            ctx.send(sender, settled)  # a retry: the same answer, never a second fill
            return None
        held = self._holds.get(key)
        if held is None and ctx.recovering:
            return None  # it may be one we settled before we lost our store: asked again, we will know
        if held is None or held.maker != msg.maker or held.taker != msg.taker or msg.qty > held.qty:
            if held is not None or msg.qty:
                ctx.counters["confirms_refused"] += 1  # more than we hold, or of a hold we never took
            if held is None:
                ctx.send(sender, ConfirmReply(msg.request, msg.maker, 0, None))  # nothing held: released
            return None
        del self._holds[key]
        self._reservations.unhold(held.maker, held.qty)
        ctx.credit.release(_credit_key(key))  # what it confirms counts as a trade once its fill is delivered
        fill: Event | None = None
        if msg.qty:
            maker = ctx.ledger.orders[held.maker]
            assert maker.price is not None  # a maker rests, so it has a price
            fill = ctx.emit(Fill(held.maker, held.taker, maker.price, msg.qty, held.request))
        reply = ConfirmReply(msg.request, held.maker, msg.qty, fill)
        self._settled[key] = reply
        ctx.persist(HoldSettled(sender, reply))
        ctx.counters["holds_confirmed" if msg.qty else "holds_released"] += 1
        ctx.send(sender, reply)
        return held.maker

    def tick(self) -> None:
        """Ask the coordinator of every hold that has waited long for its decision."""
        ctx = self._ctx
        for held in self._holds.values():
            if ctx.now - held.since < ctx.config.inquire_after_ms:
                continue
            if held.asked_at is None or ctx.now - held.asked_at >= ctx.config.retry_ms:
                held.asked_at = ctx.now
                ctx.counters["holds_inquired"] += 1
                ctx.send(held.sender, Inquire(held.request, held.maker, held.taker))

    # --- restart --------------------------------------------------------------------------

    def restore(self, holds: Iterable[HoldTaken], settled: Iterable[tuple[str, ConfirmReply]]) -> None:
        """Take back the holds not settled before a restart, and the answers given."""
        for sender, reply in settled:
            self._settled[(sender, reply.request)] = reply
        for h in holds:
            key = (h.sender, h.request)
            if key not in self._settled and key not in self._holds:
                self._holds[key] = Held(h.sender, h.request, h.maker, h.taker, h.qty, self._ctx.now)
                self._reservations.hold(h.maker, h.qty)

    def recover_settled(self) -> None:
        """After our store was lost: the confirmed holds the ledger shows are settled again. O(fills)."""
        me = self._ctx.id
        for fill in self._ctx.ledger.fills.values():
            body = fill_of(fill)
            if fill.origin == me and body.request.startswith(body.taker + ":"):
                self._settled.setdefault((owner_of(body.taker), body.request),
                                         ConfirmReply(body.request, body.maker, body.qty, fill))

    def credit_pending(self) -> Iterator[Pending]:
        """What our holds have in flight with their coordinators' desks, from scratch (zmqex.core.credit)."""
        orders = self._ctx.ledger.orders
        for key, held in self._holds.items():
            price = orders[held.maker].price
            if price is not None:
                yield _credit_key(key), held.sender, price, held.qty

    # --- invariants -----------------------------------------------------------------------

    def _check(self) -> None:
        ctx = self._ctx
        totals: dict[str, int] = {}
        for (sender, request), held in self._holds.items():
            assert held.sender == sender and held.request == request and held.qty > 0
            assert (sender, request) not in self._settled, f"hold {request} is settled and still held"
            assert owner_of(held.maker) == ctx.id and held.maker in ctx.ledger.orders, f"hold {request} is not ours"
            totals[held.maker] = totals.get(held.maker, 0) + held.qty
        assert totals == self._reservations.held_totals(), "holds drifted from the reservations' held totals"
        for (_, request), reply in self._settled.items():
            if reply.filled:
                fill = reply.fill
                assert fill is not None and isinstance(fill.body, Fill) and fill.body.qty == reply.filled
                assert ctx.ledger.fill_by_request.get(request) == fill, f"confirmed {request}, fill not applied"


def _credit_key(key: tuple[str, str]) -> str:
    """The key of a hold's amount in flight (zmqex.core.credit): its sender and request."""
    return f"{HOLD}{key[0]}/{key[1]}"
