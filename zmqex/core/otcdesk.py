"""The OTC desk: firm offers and requests for quote between named desks, off the public book.

One node is one desk.  Its OTC desk owns every private item this node knows
(:mod:`zmqex.core.otc`): its own offers and requests for quote, copies of
other desks' items that name it, the trades it was party to, and the answers it
gave.  None of it is in the ledger, so none of it reaches a replica that is
not a party; the ledger gets only each trade's public
:class:`~zmqex.core.events.Report`.

How items travel.  An item's owner is its single writer; it sends every
version to the desks the item names, until they acknowledge it
(:mod:`zmqex.core.sharing`), and a holder keeps the highest version it was
sent.  Messages may be lost, repeated or reordered: versions make that
harmless.

Accepting an offer is one request to its owner, who alone decides, in one
step: the whole ``qty`` at the offer's price, or nothing (``reason`` says
why: ``closed``, ``expired``, ``size``, ``price``, ``credit``,
``insufficient_balance``, ``unknown``).  With a single owner that step is the
commit point, so no hold is needed: an offer's owner can never be traded
through for more than it offered (``filled <= qty``), and a withdrawal that
comes after a grant withdraws only what is left.  Before asking, the
accepting desk reserves what its trader will spend and the credit it grants
the owner, and keeps the request durably until answered; it retries, and the
owner answers a retry from its stored answer (or, after losing its store,
from the report of the trade on the public tape, found by the request's
digest).

Everything the owner promises (a new offer, a grant and its answer) is
persisted before anything leaves the node.  Limits (trader balances, bilateral
credit) are asked of ``limits`` (:class:`Limits`); the desk only says when.

Invariants (:meth:`OtcDesk._check`): an own offer's ``filled`` is the sum of
its trades and never exceeds its ``qty``; no trade is granted after an
offer's ``valid_until``; every held copy names this desk; every own trade
has its report on the tape.
"""

from __future__ import annotations

import logging
from typing import Any

from zmqex.core import money
from zmqex.core.context import Context
from zmqex.core.events import Report, Side
from zmqex.core.accounts import Limits
from zmqex.core.messages import Accept, AcceptReply, Share, ShareAck, reply_from_wire, reply_to_wire
from zmqex.core.otc import (
    ACCEPT, DIRECTED, MAX_DESKS, QUOTE, RFQ, Accepting, Offer, Rfq, Status, Trade, offer_from_wire, offer_to_wire,
    otc_id, parse_otc_id, ref_of, rfq_from_wire, rfq_to_wire, trade_from_wire, trade_to_wire,
)
from zmqex.core.outputs import OtcChanged, OtcRecord
from zmqex.core.sharing import Sharing
from zmqex.errors import Busy, CreditRefused, Forged, InvalidRequest, OrderClosed, Rejected, UnknownOrder

log = logging.getLogger(__name__)

#: Why an owner refused an accept.
CLOSED, EXPIRED, SIZE, PRICE, CREDIT, BALANCE, UNKNOWN = (
    "closed", "expired", "size", "price", "credit", "insufficient_balance", "unknown")
REASONS = (CLOSED, EXPIRED, SIZE, PRICE, CREDIT, BALANCE, UNKNOWN)


class OtcDesk:
    """See the module docstring.  ``limits``: the node's balances and credit (:class:`Limits`)."""

    def __init__(self, ctx: Context, limits: Limits) -> None:
        self._ctx = ctx
        self.limits = limits
        self.offers: dict[str, Offer] = {}  # own, and copies of other desks' that name us
        self.rfqs: dict[str, Rfq] = {}  # own, and other desks' that ask us
        self.trader_of: dict[str, str] = {}  # own offer, request for quote or accept -> trader (node-local)
        self.trades: dict[str, Trade] = {}  # by request id: every private trade this desk was party to
        self._accepting: dict[str, Accepting] = {}
        self._tokens: dict[str, Any] = {}  # request -> the client waiting (not durable: gone with the process)
        self._answers: dict[str, tuple[str, AcceptReply]] = {}  # request -> (who asked, our answer)
        self._sharing = Sharing(ctx)  # own items to the desks they name
        self._next = 0  # the last number an id of ours used
        self._retry_at = 0  # when pending accepts are asked again

    # --- commands (from this desk's traders) ------------------------------------------------------

    def place(self, trader: str, side: Side, price: int, qty: int, only: tuple[str, ...],
              valid_until: int | None) -> Offer:
        """A directed order: a firm offer only the desks ``only`` see and may trade with; reserves at once."""
        ctx = self._ctx
        only = self._desks(only)
        if valid_until is not None and valid_until <= ctx.wall():
            raise InvalidRequest("a directed order's expire_at must be in the future")
        oid = self._next_id(DIRECTED)
        self.limits.reserve(oid, trader, side, price, qty)  # raises InsufficientBalance, changing nothing
        self._new_id(DIRECTED)
        offer = Offer(oid, ctx.id, side, price, qty, 0, only, valid_until, "", Status.OPEN, 1, ctx.wall())
        self.trader_of[oid] = trader
        self._put_offer(offer)
        log.info("directed order %s: %s %s @ %s for %s", oid, side.value, money.format_qty(qty),
                 money.format_price(price), ",".join(only))
        return offer

    def rfq(self, trader: str, side: Side, qty: int, desks: tuple[str, ...], answer_by: int) -> Rfq:
        """Ask ``desks`` for firm quotes to ``side`` ``qty``, answered by ``answer_by`` (epoch ms)."""
        ctx = self._ctx
        desks = self._desks(desks)
        if answer_by <= ctx.wall():
            raise InvalidRequest("a request for quote's answer_by must be in the future")
        rid = self._new_id(RFQ)
        rfq = Rfq(rid, ctx.id, side, qty, desks, answer_by, 0, Status.OPEN, 1, ctx.wall())
        self.trader_of[rid] = trader
        self._put_rfq(rfq)
        return rfq

    def quote(self, trader: str, rfq_id: str, price: int, qty: int, valid_until: int) -> Offer:
        """A firm quote answering another desk's request: ``qty`` (at most the request's) at ``price``
        until ``valid_until``.  Reserves nothing: the quoter's limits are checked when it is accepted."""
        ctx = self._ctx
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or rfq.owner == ctx.id:
            raise UnknownOrder(f"request for quote {rfq_id} was not sent to this desk")
        if rfq.status is not Status.OPEN or rfq.answer_by <= ctx.wall():
            raise OrderClosed(f"request for quote {rfq_id} is {'expired' if rfq.status is Status.OPEN else rfq.status.value}")
        if qty > rfq.qty - rfq.accepted:
            raise InvalidRequest(f"request for quote {rfq_id} asks for {money.format_qty(rfq.qty - rfq.accepted)}: "
                                 "quote at most that")
        if valid_until <= ctx.wall():
            raise InvalidRequest("a quote's valid_until must be in the future")
        side = rfq.side.opposite
        self.limits.check(trader, side, price, qty)  # not reserved: checked again when accepted
        qid = self._new_id(QUOTE)
        offer = Offer(qid, ctx.id, side, price, qty, 0, (rfq.owner,), valid_until, rfq_id, Status.OPEN, 1, ctx.wall())
        self.trader_of[qid] = trader
        self._put_offer(offer)
        log.info("quote %s on %s: %s %s @ %s until %d", qid, rfq_id, side.value, money.format_qty(qty),
                 money.format_price(price), valid_until)
        return offer

    def withdraw(self, oid: str, trader: str, operator: bool) -> Offer | Rfq:
        """Take back an own offer (what is left of it) or close an own request for quote."""
        item = self._mine(oid, trader, operator)
        if item.status is not Status.OPEN:
            raise OrderClosed(f"{oid} is already {item.status.value}")
        if isinstance(item, Offer):
            self.limits.release(oid)
            offer = item.changed(status=Status.WITHDRAWN)
            self._put_offer(offer)
            return offer
        rfq = item.changed(status=Status.WITHDRAWN)
        self._put_rfq(rfq)
        return rfq

    def accept(self, trader: str, offer_id: str, qty: int, token: Any, disclose: bool) -> str:
        """Ask the owner of offer ``offer_id`` for exactly ``qty`` of it at its price; returns the request id.

        The answer comes later: a Reply with ``token`` (:meth:`accept_view` of it).
        Raises UnknownOrder / OrderClosed / InvalidRequest / Busy / Rejected
        (InsufficientBalance, CreditRefused), changing nothing.
        """
        ctx = self._ctx
        offer = self.offers.get(offer_id)
        if offer is None or offer.owner == ctx.id:
            raise UnknownOrder(f"offer {offer_id} was not sent to this desk")
        if offer.status is not Status.OPEN:
            raise OrderClosed(f"offer {offer_id} is {offer.status.value}")
        if offer.valid_until is not None and offer.valid_until <= ctx.wall():
            raise OrderClosed(f"offer {offer_id} has expired")
        if qty > offer.open:
            raise InvalidRequest(f"offer {offer_id} has {money.format_qty(offer.open)} open: accept at most that")
        rfq = self.rfqs.get(offer.rfq)
        if rfq is not None and rfq.status in (Status.FILLED, Status.WITHDRAWN):
            raise OrderClosed(f"request for quote {rfq.id} is {rfq.status.value}")
        if not ctx.is_up(offer.owner):
            raise Busy(f"desk {offer.owner} is not reachable now; try again")
        side = offer.side.opposite
        if self.limits.credit_fit(offer.owner, offer.price, qty) < qty:
            raise CreditRefused(f"the credit this desk grants {offer.owner} has no room for this trade")
        request = self._next_id(ACCEPT)
        self.limits.reserve(request, trader, side, offer.price, qty)  # raises InsufficientBalance, changing nothing
        self._new_id(ACCEPT)
        self.limits.credit_reserve(request, offer.owner, offer.price, qty)
        accepting = Accepting(request, offer.id, offer.owner, side, offer.price, qty, trader, disclose)
        self._accepting[request] = accepting
        if token is not None:
            self._tokens[request] = token
        self.trader_of[request] = trader
        ctx.persist(OtcRecord(f"accept:{request}", accepting.to_wire()))
        ctx.send(offer.owner, Accept(request, offer.id, qty, offer.price, disclose))
        return request

    # --- messages from other desks ------------------------------------------------------------------

    def on_share(self, sender: str, msg: Share) -> None:
        ctx = self._ctx
        item = msg.item
        if item.owner != sender:
            raise Forged(f"{sender} shared {item.id}, owned by {item.owner}")
        named = item.only if isinstance(item, Offer) else item.desks
        if ctx.id not in named or sender == ctx.id:
            raise Forged(f"{sender} shared {item.id} with a desk it does not name")
        held: Offer | Rfq | None = self.offers.get(item.id) if isinstance(item, Offer) else self.rfqs.get(item.id)
        if held is None or held.version < item.version:
            if isinstance(item, Offer):
                self.offers[item.id] = item
                ctx.persist(OtcRecord(f"offer:{item.id}", [offer_to_wire(item), ""]), promise=False)
            else:
                self.rfqs[item.id] = item
                ctx.persist(OtcRecord(f"rfq:{item.id}", [rfq_to_wire(item), ""]), promise=False)
            ctx.notify(OtcChanged(item))
        ctx.send(sender, ShareAck(item.id, max(item.version, held.version if held is not None else 0)))

    def on_share_ack(self, sender: str, msg: ShareAck) -> None:
        self._sharing.acked(sender, msg)

    def on_accept(self, sender: str, msg: Accept) -> None:
        """An accept of an own offer: grant exactly ``msg.qty`` or refuse, in this one step."""
        ctx = self._ctx
        desk, _, _ = parse_otc_id(msg.request, ACCEPT)
        if desk != sender:
            raise Forged(f"{sender} sent accept {msg.request}, a request id of {desk}")
        answered = self._answers.get(msg.request)
        if answered is not None:
            if answered[0] == sender:
                ctx.send(sender, answered[1])
            return
        if ctx.amnesia:
            return  # our answers are gone with our store until recovery ends: the asker retries
        report = ctx.ledger.report_by_ref.get(ref_of(msg.request))
        if report is not None and report.origin == ctx.id:  # granted before our store was lost
            self._answer(sender, AcceptReply(msg.request, msg.offer, "", self._trade_of_report(sender, msg, report)))
            return
        offer = self.offers.get(msg.offer)
        reason = self._refusal(sender, offer, msg)
        if reason or offer is None:
            self._answer(sender, AcceptReply(msg.request, msg.offer, reason or UNKNOWN, None))
            return
        self._grant(sender, offer, msg)

    def on_accept_reply(self, sender: str, msg: AcceptReply) -> None:
        ctx = self._ctx
        accepting = self._accepting.get(msg.request)
        if accepting is None or accepting.owner != sender or accepting.offer != msg.offer:
            return  # a repeat of an answer we have, or not ours
        trade = msg.trade
        if msg.reason == "" and (trade is None or trade.request != msg.request or trade.maker != sender
                                 or trade.taker != ctx.id or trade.offer != accepting.offer
                                 or trade.qty != accepting.qty or trade.price != accepting.price
                                 or trade.side is not accepting.side):
            raise Forged(f"{sender} answered accept {msg.request} with a trade that is not the one asked for")
        del self._accepting[msg.request]
        self.limits.credit_release(msg.request)
        ctx.persist(OtcRecord(f"accept:{msg.request}", None))
        if trade is not None and msg.reason == "":
            self._record_trade(trade, accepting.trader, msg.request)  # what the accept reserved pays for it
            offer = self.offers.get(trade.offer)
            rfq = self.rfqs.get(offer.rfq) if offer is not None else None
            if rfq is not None and rfq.owner == ctx.id:
                accepted = min(rfq.qty, rfq.accepted + trade.qty)
                status = Status.FILLED if accepted == rfq.qty else rfq.status
                self._put_rfq(rfq.changed(accepted=accepted, status=status))
            log.info("accepted %s: %s %s @ %s from %s", msg.offer, trade.side.value, money.format_qty(trade.qty),
                     money.format_price(trade.price), sender)
        else:
            self.limits.release(msg.request)
            log.info("accept of %s refused by %s: %s", msg.offer, sender, msg.reason)
        token = self._tokens.pop(msg.request, None)
        if token is not None:
            ctx.answer(token, self.accept_view(msg.request, msg.reason))

    # --- timers ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Expire own items whose time passed; resend what is unacknowledged or unanswered."""
        ctx = self._ctx
        wall = ctx.wall()
        for offer in [o for o in self.offers.values() if o.owner == ctx.id and o.status is Status.OPEN
                      and o.valid_until is not None and o.valid_until <= wall]:
            self.limits.release(offer.id)
            self._put_offer(offer.changed(status=Status.EXPIRED))
        for rfq in [r for r in self.rfqs.values() if r.owner == ctx.id and r.status is Status.OPEN
                    and r.answer_by <= wall]:
            self._put_rfq(rfq.changed(status=Status.EXPIRED))
        self._sharing.tick()
        if ctx.now < self._retry_at:
            return
        self._retry_at = ctx.now + ctx.config.retry_ms
        for accepting in self._accepting.values():
            ctx.send(accepting.owner, Accept(accepting.request, accepting.offer, accepting.qty, accepting.price,
                                             accepting.disclose))

    def open_of(self, trader: str) -> list[str]:
        """Own directed orders still open, and accepts still waiting, of ``trader``: what reserves balance."""
        me = self._ctx.id
        offers = [o.id for o in self.offers.values()
                  if o.owner == me and o.kind == DIRECTED and o.open and self.trader_of.get(o.id) == trader]
        return offers + [r for r, a in self._accepting.items() if a.trader == trader]

    @property
    def unfinished(self) -> int:
        """Accepts waiting for an answer, and shares not yet acknowledged by a desk that is up."""
        return len(self._accepting) + self._sharing.unfinished

    # --- views ------------------------------------------------------------------------------------------

    def accept_view(self, request: str, reason: str) -> dict[str, Any]:
        """How accept ``request`` ended: ``trade`` (a Trade, or None) and ``reason`` ("" when traded)."""
        return {"request": request, "reason": reason, "trade": self.trades.get(request)}

    # --- restart ------------------------------------------------------------------------------------------

    def restore(self, records: dict[str, Any]) -> None:
        """Take the desk back to what its records (``key -> data``, the last of each) say."""
        for key, data in records.items():
            kind, _, name = key.partition(":")
            if kind == "counter":
                self._next = max(self._next, data)
            elif kind == "offer":
                offer = offer_from_wire(data[0])
                self.offers[offer.id] = offer
                if offer.owner == self._ctx.id:
                    self.trader_of[offer.id] = data[1]
            elif kind == "rfq":
                rfq = rfq_from_wire(data[0])
                self.rfqs[rfq.id] = rfq
                if rfq.owner == self._ctx.id:
                    self.trader_of[rfq.id] = data[1]
            elif kind == "trade":
                trade = trade_from_wire(data[0])
                self.trades[trade.request] = trade
                self.trader_of[trade.request] = data[1]
            elif kind == "answer":
                self._answers[name] = (data[0], reply_from_wire(data[1]))
            elif kind == "accept":
                accepting = Accepting.from_wire(data)
                self._accepting[accepting.request] = accepting
                self.trader_of[accepting.request] = accepting.trader
        own: list[Offer | Rfq] = [*self.offers.values(), *self.rfqs.values()]
        for item in own:
            if item.owner == self._ctx.id:
                self._sharing.restore(item)
        self._count_again()

    def lost_store(self) -> None:
        """This node lost its store: its ids must not repeat those its peers may still hold.

        The counter went with the store, so ids start past the wall clock in ms: never
        fewer than the ids made before, unless a desk made more than one a millisecond
        on average since its ids began, or its clock went back.
        """
        self._next = max(self._next, self._ctx.wall())

    def _count_again(self) -> None:
        """Limits are rebuilt on restart from the ledger, which holds no private trade: count ours
        again, and reserve again what our open directed orders and our accepts hold."""
        ctx = self._ctx
        for request, trade in self.trades.items():
            self._count(trade, self.trader_of.get(request, ""), None)
        for offer in self.offers.values():
            if offer.owner == ctx.id and offer.kind == DIRECTED and offer.open:
                self.limits.reserve(offer.id, self.trader_of.get(offer.id, ""), offer.side, offer.price, offer.open)
        for a in self._accepting.values():
            self.limits.reserve(a.request, a.trader, a.side, a.price, a.qty)
            self.limits.credit_reserve(a.request, a.owner, a.price, a.qty)

    # --- inside -------------------------------------------------------------------------------------------

    def _refusal(self, sender: str, offer: Offer | None, msg: Accept) -> str:
        ctx = self._ctx
        if offer is None or offer.owner != ctx.id or sender not in offer.only:
            return UNKNOWN  # the same answer for an offer that names others: its existence stays private
        if offer.status is Status.EXPIRED or (offer.valid_until is not None and offer.valid_until <= ctx.wall()):
            return EXPIRED
        if offer.status is not Status.OPEN:
            return CLOSED
        if msg.price != offer.price:
            return PRICE
        if msg.qty > offer.open:
            return SIZE
        if self.limits.credit_fit(sender, offer.price, msg.qty) < msg.qty:
            return CREDIT
        if offer.kind == QUOTE:
            try:
                self.limits.check(self.trader_of.get(offer.id, ""), offer.side, offer.price, msg.qty)
            except Rejected:
                return BALANCE
        return ""

    def _grant(self, sender: str, offer: Offer, msg: Accept) -> None:
        ctx = self._ctx
        disclose = msg.disclose and ctx.config.disclose_desks
        side = offer.side.opposite
        report = ctx.emit(Report(offer.price, msg.qty, side, ref_of(msg.request),
                                 ctx.id if disclose else "", sender if disclose else ""))
        trade = Trade(msg.request, offer.id, ctx.id, sender, side, offer.price, msg.qty, report.ts,
                      f"{report.origin}:{report.seq}")
        filled = offer.filled + msg.qty
        trader = self.trader_of.get(offer.id, "")
        self._put_offer(offer.changed(filled=filled, status=Status.FILLED if filled == offer.qty else Status.OPEN))
        # A directed order's reservation pays for it; a quote reserved nothing (checked in _refusal).
        self._record_trade(trade, trader, offer.id if offer.kind == DIRECTED else None)
        self._answer(sender, AcceptReply(msg.request, offer.id, "", trade))
        log.info("granted %s of %s to %s @ %s", money.format_qty(msg.qty), offer.id, sender,
                 money.format_price(offer.price))

    def _record_trade(self, trade: Trade, trader: str, reserved: str | None) -> None:
        ctx = self._ctx
        self.trades[trade.request] = trade
        self.trader_of[trade.request] = trader
        self._count(trade, trader, reserved)
        ctx.persist(OtcRecord(f"trade:{trade.request}", [trade_to_wire(trade), trader]))
        ctx.notify(OtcChanged(trade))

    def _count(self, trade: Trade, trader: str, reserved: str | None) -> None:
        """Move ``trader``'s balance (from what ``reserved`` holds, if given) and count the trade
        against the credit granted the other desk."""
        taker = trade.taker == self._ctx.id
        self.limits.traded(trader, trade.side if taker else trade.side.opposite, trade.price, trade.qty, reserved)
        self.limits.credit_traded(trade.request, trade.maker if taker else trade.taker, trade.price, trade.qty,
                                  trade.ts)

    def _answer(self, sender: str, reply: AcceptReply) -> None:
        self._answers[reply.request] = (sender, reply)
        self._ctx.persist(OtcRecord(f"answer:{reply.request}", [sender, reply_to_wire(reply)]))
        self._ctx.send(sender, reply)

    def _trade_of_report(self, sender: str, msg: Accept, event: Any) -> Trade:
        body = event.body
        assert isinstance(body, Report)
        return Trade(msg.request, msg.offer, self._ctx.id, sender, body.side, body.price, body.qty, event.ts,
                     f"{event.origin}:{event.seq}")

    def _put_offer(self, offer: Offer) -> None:
        self.offers[offer.id] = offer
        self._ctx.persist(OtcRecord(f"offer:{offer.id}", [offer_to_wire(offer), self.trader_of.get(offer.id, "")]))
        self._share(offer)

    def _put_rfq(self, rfq: Rfq) -> None:
        self.rfqs[rfq.id] = rfq
        self._ctx.persist(OtcRecord(f"rfq:{rfq.id}", [rfq_to_wire(rfq), self.trader_of.get(rfq.id, "")]))
        self._share(rfq)

    def _share(self, item: Offer | Rfq) -> None:
        self._sharing.put(item)
        self._ctx.notify(OtcChanged(item))

    def _next_id(self, kind: str) -> str:
        """The id :meth:`_new_id` makes next (to reserve under it before anything is made)."""
        return otc_id(self._ctx.id, kind, self._next + 1)

    def _new_id(self, kind: str) -> str:
        self._next += 1
        self._ctx.persist(OtcRecord("counter", self._next))
        return otc_id(self._ctx.id, kind, self._next)

    def _desks(self, desks: tuple[str, ...]) -> tuple[str, ...]:
        named = tuple(sorted(set(desks)))
        if not 0 < len(named) <= MAX_DESKS:
            raise InvalidRequest(f"name 1..{MAX_DESKS} desks")
        if self._ctx.id in named:
            raise InvalidRequest("a desk does not trade off the book with itself: leave it out")
        return named

    def _mine(self, item_id: str, trader: str, operator: bool) -> Offer | Rfq:
        item: Offer | Rfq | None = self.offers.get(item_id) or self.rfqs.get(item_id)
        if item is None:
            raise UnknownOrder(f"{item_id} is not known here")
        if item.owner != self._ctx.id:
            raise UnknownOrder(f"{item_id} belongs to desk {item.owner}")
        owner = self.trader_of.get(item_id, "")
        if not (operator or owner == "" or owner == trader):
            raise UnknownOrder(f"{item_id} belongs to another trader")
        return item

    # --- invariants -------------------------------------------------------------------------------------

    def _check(self) -> None:
        self._sharing._check()
        me = self._ctx.id
        filled: dict[str, int] = {}
        for trade in self.trades.values():
            assert me in (trade.maker, trade.taker), f"trade {trade.request} is not ours"
            if trade.maker == me:
                filled[trade.offer] = filled.get(trade.offer, 0) + trade.qty
                report = self._ctx.ledger.report_by_ref.get(ref_of(trade.request))
                assert report is not None or self._ctx.amnesia, f"trade {trade.request} has no report on the tape"
        for offer in self.offers.values():
            assert 0 <= offer.filled <= offer.qty, f"offer {offer.id} over-filled"
            if offer.owner == me:
                assert filled.get(offer.id, 0) == offer.filled or self._ctx.amnesia, \
                    f"offer {offer.id}: filled {offer.filled} is not the sum of its trades"
                assert offer.status is not Status.FILLED or offer.filled == offer.qty
            else:
                assert me in offer.only, f"we hold a copy of {offer.id}, which does not name us"
        for trade in self.trades.values():
            traded = self.offers.get(trade.offer)
            if trade.maker == me and traded is not None and traded.valid_until is not None:
                assert trade.ts < traded.valid_until, f"trade {trade.request} after {traded.id} expired"
        for rfq in self.rfqs.values():
            assert rfq.owner == me or me in rfq.desks, f"we hold {rfq.id}, which does not ask us"
            assert 0 <= rfq.accepted <= rfq.qty
        for request, accepting in self._accepting.items():
            assert request not in self.trades, f"accept {request} is both pending and traded"
            assert parse_otc_id(request, ACCEPT)[0] == me
