"""The replica: one node's sans-I/O state machine.

Inputs are method calls: a client's ``place`` / ``cancel``, a peer's message
(``receive``), and a timer ``tick``; the current time always comes in as an
argument, in integer milliseconds.  Outputs pile up until the host drains them
with :meth:`Replica.take_outputs` and carries them out in the order
:func:`zmqex.core.schedule.schedule` gives.

What one node decides alone, it decides at one of three desks, each an object
that owns its state:

* **The maker desk** (:mod:`zmqex.core.maker`) answers takes against its own
  orders.  The node is their single writer: it alone grants fills against
  them, one take at a time, never more than ``open - reserved``, and a retried
  request gets the stored answer, never a second fill.
* **The taker desk** (:mod:`zmqex.core.taker`) asks makers' owners for fills
  for its own crossing orders, best price first, reserving what it asks for.
* **Replication** (:mod:`zmqex.core.repair`) keeps the event log, asks peers
  for what it lacks, serves what they lack, and compacts.

All-or-nothing trades (fill or kill) go by hold and confirm between two more
desks: the **coordinator** (:mod:`zmqex.core.coordinator`), the taker's owner,
and the **hold desk** (:mod:`zmqex.core.holds`), each maker's owner.

Off the book, the **OTC desk** (:mod:`zmqex.core.otcdesk`) keeps this desk's
requests for quote, quotes and directed orders, and the private trades
against them, which reach the ledger only as public reports.

The replica wires them (they call it through :class:`~zmqex.core.context.Context`),
and it alone delivers events: every event, ours or a peer's, reaches the
ledger through :meth:`_deliver`, which then tells each desk what it needs to
know.  It also holds what no desk owns: the ledger and the clock, the causal
buffer, peer liveness and trust (members, removed members, equivocators,
amnesia), and who placed each own order (:mod:`zmqex.core.traders`).

A walk from a received take to its published fill: ``receive`` -> ``_handle``
-> ``MakerDesk.on_take`` -> ``MakerDesk._grant`` -> ``emit`` (``_deliver``,
then ``Publish``) -> ``MakerDesk._answer`` (``Persist`` then ``Send``).

Invariants: :meth:`Replica._check` asserts every one of them, each desk's and
the ones across desks; the tests call it after every step.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, Final

from zmqex.core import money, queries
from zmqex.core.audit import Auditor
from zmqex.core.balances import Balance, Balances
from zmqex.core.causal import CausalBuffer
from zmqex.core.clock import VectorClock
from zmqex.core.config import Config
from zmqex.core.coordinator import Coordinator
from zmqex.core.events import (
    Body, Cancel, CancelReason, Event, Fill, NewOrder, Reduce, Report, Side, owner_of, parse_order_id,
)
from zmqex.core.envelope import MAX_EVENTS, Envelope
from zmqex.core.credit import ANY, MAX_CREDIT, Credit, Pending
from zmqex.core.ledger import Ledger, OrderState, merge, rebuild
from zmqex.core.holds import HoldDesk
from zmqex.core.maker import MakerDesk
from zmqex.core.messages import (
    Accept, AcceptReply, Audit, AuditReply, Confirm, ConfirmReply, Gossip, Heartbeat, Hold, HoldReply, Inquire,
    Message, Records, RecordsRequest, Share, ShareAck, SnapshotPage, SyncReply, SyncRequest, Take, TakeReply,
)
from zmqex.core.otc import Offer, Rfq
from zmqex.core.accounts import NodeLimits
from zmqex.core.otcdesk import OtcDesk
from zmqex.core.queries import fill_info
from zmqex.core.outputs import (
    CreditLimit, Delivered, EventRecord, Evidence, OrderTrader, Output, PeerChanged, Persist, Publish, Record,
    RecoveryMark, Repaired, Reply, Send, Settlement,
)
from zmqex.core.repair import Replication
from zmqex.core.recovery import Recovery
from zmqex.core.restore import Durable, fold
from zmqex.core.takes import Reservation
from zmqex.core.taker import TakerDesk
from zmqex.core.tif import ATOMIC, EXPIRY, RESTS, RULES, TAKES, Tif
from zmqex.core.traders import Stp, Traders
from zmqex.core.trust import Copy, Signer, Trust, Verifier
from zmqex.core.wire import is_node_id
from zmqex.errors import (Busy, CreditRefused, Forged, InvalidAmount, InvalidRequest, InvariantViolation, NotOwner,
                          OrderClosed, Rejected, UnknownOrder)

#: An order that does not rest trades within this many basis points of the best opposite price at arrival.
PROTECTION_BPS = 500

__all__ = ["Config", "Replica", "Signer", "Verifier", "fill_info"]  # what hosts import from here


#: Messages whose handling may add to the open envelope: they neither read our log or state
#: for a peer nor move our clock but by delivering (which seals first when it delivers a peer's).
_KEEP_OPEN: Final = frozenset({Gossip, Take, TakeReply, Hold, HoldReply, Confirm, ConfirmReply, Inquire,
                               Share, ShareAck, Accept, AcceptReply})


class Peer:
    """Whether a peer is up: heard from within ``peer_timeout_ms``."""

    __slots__ = ("last_seen", "up")

    def __init__(self, last_seen: int) -> None:
        self.last_seen = last_seen
        self.up = True


class Replica:
    """One node's replica of the exchange: see the module docstring."""

    def __init__(self, node_id: str, *, peers: Iterable[str] = (), now: int = 0, config: Config = Config(),
                 signer: Signer | None = None, verifier: Verifier | None = None,
                 members: Iterable[str] | None = None, epoch: int = 0) -> None:
        if not is_node_id(node_id):
            raise InvalidRequest(f"node id {node_id!r} must be 1-32 characters of A-Z a-z 0-9 _ . -")
        self.id = node_id
        self.config = config
        self.now = now
        self.epoch = epoch  # the wall clock (epoch ms) when now was 0: wall() = epoch + now
        self.ledger = Ledger()
        self.clock = VectorClock()  # everything delivered here
        self.peers: dict[str, Peer] = {}
        self.counters: Counter[str] = Counter()  # health figures for operators and the benchmark
        self.trust = Trust(node_id, self.counters, signer, verifier, members)
        self.amnesia: str | None = None  # why this node must not create events (it lost its own history)
        # While it gets that history back from its peers (zmqex.core.recovery); None: it
        # cannot (it created events since it started, so ids may clash), or nothing was lost.
        self.recovery: Recovery | None = None
        self._created = False  # whether this process has created an event
        # Our events made since the last seal: one envelope, sealed (signed, published) at the
        # end of the loop iteration, when it is full, or before anything could tell a peer of
        # them or move our clock past them otherwise (:meth:`_seal`).
        self._open: list[Event] = []
        self._buffer = CausalBuffer()
        self._out: list[Output] = []
        self._local: deque[tuple[str, Message]] = deque()  # messages to ourselves
        self._next_heartbeat = now
        self._heartbeat_clock: VectorClock | None = None  # our clock at the last heartbeat
        self.traders = Traders()  # who placed each own order (node-local: never in an event)
        self.credit = Credit(node_id)  # credit limits per counterparty desk (node-local: zmqex.core.credit)
        self.taker = TakerDesk(self, self.traders)
        self.maker = MakerDesk(self, self.taker.reservations)
        self.holds = HoldDesk(self, self.taker.reservations)
        self.coordinator = Coordinator(self, self.traders, self.taker.reservations)
        # What funded traders hold and their orders commit (node-local, like traders).
        self.balances = Balances(node_id, self.traders, self.taker.reservations, config.require_funding)
        self.replication = Replication(self, self.trust.verified)
        self.auditor = Auditor(self, self.trust.verified)
        self.otc = OtcDesk(self, NodeLimits(self.balances, self.credit, self.wall))
        for peer in peers:
            self.add_peer(peer)

    # --- host interface -----------------------------------------------------------

    def take_outputs(self) -> list[Output]:
        """What this loop iteration asks of the host, in order; the iteration's envelope is sealed first."""
        if self._open:
            self._seal()
        out, self._out = self._out, []
        return out

    def add_peer(self, peer: str) -> None:
        if peer != self.id and peer not in self.peers and is_node_id(peer) and self.trust.admits(peer):
            self.peers[peer] = Peer(self.now)
            self.replication.add_peer(peer)

    def set_keys(self, verifier: Verifier | None, members: Iterable[str] | None) -> None:
        """Who may originate events (None: anyone, a mesh without keys) and how to check their signatures.

        A member no longer listed is removed: its orders become untradeable here, it
        is no longer a peer, and compaction stops waiting for it.
        """
        self.trust.set_keys(verifier, members, set(self.peers) | set(self.clock))
        for gone in [p for p in self.peers if not self.trust.admits(p)]:
            del self.peers[gone]
            self.replication.drop_peer(gone)
            self._out.append(PeerChanged(gone, False))
        self.taker.sweep()  # orders of members back on the list may trade again

    @property
    def members(self) -> frozenset[str] | None:
        """Who may originate events; None: a mesh without keys (:mod:`zmqex.core.trust`)."""
        return self.trust.members

    @property
    def removed(self) -> set[str]:
        return self.trust.removed

    @property
    def equivocators(self) -> dict[str, tuple[Event, Event]]:
        return self.trust.equivocators

    @property
    def in_flight(self) -> int:
        """Work not finished: takes and first passes, takes parked or queued, held events and requests."""
        return (self.taker.unfinished + self.maker.unfinished + self.holds.unfinished + self.coordinator.unfinished
                + self.otc.unfinished + len(self._buffer) + len(self._local))

    @property
    def quiet(self) -> bool:
        return self.in_flight == 0

    @property
    def compacted(self) -> int:
        """How many events this replica holds only as state (checkpointed or from a snapshot)."""
        return sum(self.replication.log.base.values())

    @property
    def repaired(self) -> int:
        """Events that came by repair (sync), not by gossip: a health figure."""
        return self.replication.repaired

    def is_up(self, node: str) -> bool:
        """Whether ``node``'s orders can be traded now: it is up, not removed, and never equivocated."""
        if node == self.id:
            return True
        if not self.trust.trusted(node):
            return False
        peer = self.peers.get(node)
        return peer is None or peer.up

    def stable_clock(self) -> VectorClock:
        """What every member has delivered (:meth:`Replication.stable_clock`)."""
        return self.replication.stable_clock()

    @classmethod
    def restore(cls, node_id: str, records: Iterable[Record], *, peers: Iterable[str] = (), now: int = 0,
                config: Config = Config(), signer: Signer | None = None, verifier: Verifier | None = None,
                members: Iterable[str] | None = None, epoch: int = 0) -> Replica:
        """Rebuild a node from its durable records (:mod:`zmqex.core.restore`); nothing is left to carry out."""
        replica = cls(node_id, peers=peers, now=now, config=config, signer=signer, verifier=verifier,
                      members=members, epoch=epoch)
        replica._load(fold(records))
        return replica

    # --- client commands --------------------------------------------------------------

    def place(self, side: Side | str, qty: object, price: object, tif: Tif | str = Tif.GTC, *, token: Any = None,
              trader: str = "", client_order_id: str = "", expire_at: int | None = None,
              stp: Stp = Stp.CANCEL_NEWEST, protection_bps: int | None = None,
              only: Iterable[str] = ()) -> str:
        """Place an order owned by this node; returns its id at once.

        The order is durable when the host has carried out the outputs.  When
        its first taker pass is over, a :class:`Reply` with ``token`` carries the
        result.  ``trader`` (node-local, not replicated) is who placed it: only
        they, or an operator, may cancel it.  ``client_order_id`` is the trader's
        own name for it: a second place under it is refused (look it up first
        with :meth:`client_order`).  ``stp`` says what happens if it meets an
        order of the same trader (:class:`~zmqex.core.traders.Stp`).  An order
        that does not rest (IOC, market) is kept within ``protection_bps``
        (default :data:`PROTECTION_BPS`) of the best opposite price at arrival: a
        market order without one is refused.  Raises InvalidAmount /
        InvalidRequest / Rejected, changing nothing.

        ``only`` names the desks that may trade with it: a directed order, which
        never enters the public book (:meth:`OtcDesk.place`; a limit order, GTC or
        GTD, that those desks take by ``accept``); its id is an OTC id.

        ``qty`` is an int of satoshis and ``price`` an int of cents or None (market),
        both checked here, so typed ``object``: compiled with mypyc, ``int`` parameters
        would raise TypeError for a float or str, and take True as 1, before the check.
        """
        side = side if type(side) is Side else Side(side)  # an enum call costs more than the check
        tif = tif if type(tif) is Tif else Tif(tif)
        self._check_memory()
        qty = money.check_qty(qty)
        if client_order_id and self.traders.client_order(trader, client_order_id) is not None:
            raise InvalidRequest(f"client order id {client_order_id!r} is taken: it names an order already")
        if only:
            return self._place_directed(side, qty, price, tif, trader, client_order_id, expire_at, tuple(only))
        if price is None:
            market = RULES[tif].market
            if market is None:
                raise InvalidRequest(f"a {tif.value} order needs a price")
            tif = market
            if self.credit.engaged:
                self._refuse_without_credit(side)
        else:
            price = money.check_price(price)
        if EXPIRY[tif] and (expire_at is None or expire_at <= self.wall()):
            raise InvalidRequest(f"a {tif.value} order needs an expire_at in the future")
        if not TAKES[tif]:
            self._refuse_if_crossing(side, price, tif)
        protected = False
        if not RESTS[tif]:
            price, protected = self._protect(side, price, protection_bps)
        self.balances.check(trader, side, price, qty)  # a market order: at the edge of its band
        event = self.emit(NewOrder(side, price, qty, tif, expire_at if EXPIRY[tif] else None))
        oid = event.order_id
        if trader or client_order_id or stp is not Stp.CANCEL_NEWEST:
            # A promise: committed with the event.
            self._out.append(Persist(OrderTrader(oid, trader, client_order_id, stp.value)))
        self.traders.placed(oid, trader, self.ledger, client_order_id, stp)
        self.balances.order_changed(oid, self.ledger)
        if ATOMIC[tif]:
            self.coordinator.placed(oid, token)
        else:
            self.taker.placed(oid, token, protected=protected)
        self._pump()
        return oid

    def _place_directed(self, side: Side, qty: int, price: object, tif: Tif, trader: str, client_order_id: str,
                        expire_at: int | None, only: tuple[str, ...]) -> str:
        if price is None or tif not in (Tif.GTC, Tif.GTD):
            raise InvalidRequest("a directed order (only) is a limit order, gtc or gtd")
        if client_order_id:
            raise InvalidRequest("a directed order takes no client_order_id")
        if tif is Tif.GTD and (expire_at is None or expire_at <= self.wall()):
            raise InvalidRequest("a gtd order needs an expire_at in the future")
        offer = self.otc.place(trader, side, money.check_price(price), qty, self._known_desks(only),
                               expire_at if tif is Tif.GTD else None)
        self._pump()
        return offer.id

    def _known_desks(self, desks: Iterable[str]) -> tuple[str, ...]:
        named = tuple(desks)
        for desk in named:
            if type(desk) is not str or not is_node_id(desk):
                raise InvalidRequest(f"desk {desk!r:.40} is not a node id")
            if desk != self.id and (desk not in self.peers or not self.trust.trusted(desk)):
                raise InvalidRequest(f"desk {desk} is not a member this node knows")
        return named

    # --- off the book: requests for quote, quotes, directed orders (zmqex.core.otcdesk) ---------------

    def rfq(self, side: Side | str, qty: object, answer_by: int, *, desks: Iterable[str] | None = None,
            trader: str = "") -> Rfq:
        """Ask ``desks`` (None: every member up now) for firm quotes to ``side`` ``qty`` by ``answer_by``."""
        side = side if type(side) is Side else Side(side)
        self._check_memory()
        qty = money.check_qty(qty)
        if desks is None:
            desks = sorted(p for p in self.peers if self.is_up(p))
            if not desks:
                raise Rejected("no other desk is up to ask")
        rfq = self.otc.rfq(trader, side, qty, self._known_desks(desks), answer_by)
        self._pump()
        return rfq

    def quote(self, rfq_id: str, price: object, qty: object, valid_until: int, *, trader: str = "") -> Offer:
        """Answer request for quote ``rfq_id`` with a firm quote (:meth:`OtcDesk.quote`)."""
        self._check_memory()
        offer = self.otc.quote(trader, rfq_id, money.check_price(price), money.check_qty(qty), valid_until)
        self._pump()
        return offer

    def accept(self, offer_id: str, qty: object, *, trader: str = "", token: Any = None,
               disclose: bool = False) -> str:
        """Accept exactly ``qty`` of another desk's quote or directed order (:meth:`OtcDesk.accept`)."""
        self._check_memory()
        request = self.otc.accept(trader, offer_id, money.check_qty(qty), token, disclose)
        self._pump()
        return request

    def withdraw(self, item_id: str, *, trader: str = "", operator: bool = False) -> Offer | Rfq:
        """Withdraw an own quote or directed order (what is left of it), or close an own request for quote."""
        self._check_memory()
        item = self.otc.withdraw(item_id, trader, operator)
        self._pump()
        return item

    def _refuse_if_crossing(self, side: Side, price: int | None, tif: Tif) -> None:
        best = self.ledger.book.best(side.opposite)
        if price is not None and best is not None and (best <= price if side is Side.BUY else best >= price):
            raise Rejected(
                f"{tif.value} {side.value} at {money.format_price(price)} would cross "
                f"the best {'ask' if side is Side.BUY else 'bid'} at {money.format_price(best)}"
            )

    def _protect(self, side: Side, price: int | None, bps: int | None) -> tuple[int | None, bool]:
        """The price an order that does not rest may trade at: within its band of the best opposite price.

        Returns the price to place it at and whether the band set it.  The band is
        a limit: a market order becomes an IOC at its edge, a limit beyond it is
        brought in to it; what is left when the pass ends says ``price_protection``
        if the book had more beyond the edge.
        """
        bps = PROTECTION_BPS if bps is None else bps
        if type(bps) is not int or not 0 <= bps <= 10_000:
            raise InvalidRequest(f"protection_bps must be an integer from 0 to 10000, got {bps!r:.20}")
        best = self.ledger.book.best(side.opposite)
        if best is None:
            if price is None:
                raise Rejected(f"no {'asks' if side is Side.BUY else 'bids'} to take from: a market order "
                               "needs a best price to protect it; send a limit order")
            return price, False
        if side is Side.BUY:
            edge = min(money.MAX_PRICE, best * (10_000 + bps) // 10_000)
            return (edge, True) if price is None or price > edge else (price, False)
        edge = max(1, -(-best * (10_000 - bps) // 10_000))
        return (edge, True) if price is None or price < edge else (price, False)

    def client_order(self, trader: str, client_order_id: str) -> str | None:
        """The own order ``trader`` placed under ``client_order_id``, if any (durable across restarts)."""
        return self.traders.client_order(trader, client_order_id)

    # --- credit (zmqex.core.credit): the operator's ------------------------------------------------

    def set_credit(self, desk: str, limit: object, daily: object = None) -> None:
        """Set this node's credit limits for trades with ``desk`` (a member's id, or ``*`` for every
        desk without limits of its own), in cents: on open exposure, and on each UTC day's traded
        notional; None: no such limit (both None: the desk's own limits go, and ``*``'s hold for it).

        In force for every grant and every ask from now on; durable once the host has
        carried out the outputs.  Raises InvalidRequest / InvalidAmount, changing nothing.
        """
        self._credit_desk(desk, default=True)
        limit_, daily_ = _cents(limit, "credit limit"), _cents(daily, "daily credit limit")
        self._out.append(Persist(CreditLimit(desk, limit_, daily_)))
        self.credit.set_limit(desk, limit_, daily_)
        self._credit_changed()

    def settle(self, desk: str, cents: object) -> int:
        """Mark up to ``cents`` of the exposure to ``desk`` from trades settled; returns how much was
        (never more than is outstanding).  Durable once the host has carried out the outputs."""
        self._credit_desk(desk, default=False)
        amount = _cents(cents, "settlement")
        if not amount:
            raise InvalidAmount("a settlement must be positive")
        done = self.credit.settle(desk, amount)
        if done:
            self._out.append(Persist(Settlement(desk, done)))
            self._credit_changed()
        return done

    def credit_view(self) -> dict[str, Any]:
        """The limits in force and, per desk, exposure, in flight, today's and room, in cents."""
        return self.credit.view(self.wall())

    def _credit_desk(self, desk: object, default: bool) -> None:
        """Refuse (InvalidRequest) a desk that is neither a member this node knows nor (``default``) ``*``."""
        if default and desk == ANY:
            return
        if not is_node_id(desk):
            raise InvalidRequest(f"desk must be a node id{' or *' if default else ''}, got {desk!r:.40}")
        if desk == self.id:
            raise InvalidRequest(f"{desk} is this node: its trades with itself need no credit")
        members = self.trust.members
        if desk not in self.peers and desk not in self.clock and (members is None or desk not in members):
            raise InvalidRequest(f"desk {desk} is not a node this node knows")

    def _credit_changed(self) -> None:
        """A limit or a settlement changed: own orders still crossing may have room now."""
        self.taker.sweep()
        self._pump()

    def _refuse_without_credit(self, side: Side) -> None:
        """A market order meets only orders beyond credit (ours, or a desk that refused us): CreditRefused.

        O(opposite orders) at worst, and only while a limit is set or a desk refused us.
        """
        credit, wall, skipped = self.credit, self.wall(), False
        for resting in self.ledger.book.orders(side.opposite):
            owner = owner_of(resting.order_id)
            if owner == self.id:
                return
            if not self.is_up(owner):
                continue
            if not credit.cooling(owner, self.now) and credit.fit(owner, resting.price, 1, wall):
                return
            skipped = True
        if skipped:
            raise CreditRefused(f"every {'ask' if side is Side.BUY else 'bid'} is of a desk beyond this desk's "
                                "credit, or one that gives it none: nothing to take from")

    def _credit_pending(self) -> Iterator[Pending]:
        """What every desk has in flight with other desks, from their own state (Credit.rebuild, _check)."""
        return chain(self.taker.credit_pending(), self.holds.credit_pending(), self.coordinator.credit_pending())

    def own_open_orders(self, trader: str | None = None) -> list[str]:
        """Own orders still open, placed by ``trader`` (None: by anyone), oldest first."""
        return self.traders.open_ids(self.ledger, trader)

    def cancel_all(self, trader: str, *, side: Side | None = None, operator: bool = False,
                   reason: CancelReason = CancelReason.USER) -> list[str]:
        """Cancel ``trader``'s open orders here (an operator: every open order of this node), of one side or both."""
        self._check_memory()
        done = []
        for oid in self.traders.open_ids(self.ledger, None if operator else trader):
            if (side is None or self.ledger.orders[oid].side is side) and not self.coordinator.working(oid):
                self.emit(Cancel(oid, reason))
                done.append(oid)
        self._pump()
        return done

    def wall(self) -> int:
        """The wall clock, epoch ms (``epoch + now``): event timestamps and expiry times."""
        return self.epoch + self.now

    def cancel(self, oid: str, *, trader: str = "", operator: bool = False,
               reason: CancelReason = CancelReason.USER) -> dict[str, Any]:
        """Cancel the open part of an own order now; what is in flight settles later.

        Only the trader who placed it may, or an ``operator``; an order placed
        without a trader's name may be cancelled by any trader of this node.
        """
        self._own_open(oid, trader, operator)
        if self.coordinator.working(oid):
            raise Busy(f"fill-or-kill order {oid} is trading: it ends filled whole, or killed, in a moment")
        self.emit(Cancel(oid, reason))
        self._pump()
        return self.order_info(oid)

    def amend(self, oid: str, *, qty: int | None = None, price: int | None = None, trader: str = "",
              operator: bool = False) -> str:
        """Change an own resting order's quantity (its new total) or price; returns the order's id after.

        Lowering the quantity keeps the order's id and its place in the book (a
        :class:`Reduce` event).  A new price, or more quantity, takes a new place:
        the order is cancelled (``amended``) and a new one placed for what was
        left, under the same trader, client order id and self-trade mode, in one
        step, so at its owner there is no moment when both, or neither, can
        trade.  That needs the order to have no take in flight (else Busy: try
        again); a lower quantity must leave some open beyond what is filled and
        reserved (else cancel it).  Raises like ``cancel`` and ``place``.
        """
        state = self._own_open(oid, trader, operator)
        body = state.event.body
        if not isinstance(body, NewOrder) or not state.rests:
            raise InvalidRequest(f"order {oid} does not rest: there is nothing to amend")
        new_qty = state.qty if qty is None else money.check_qty(qty)
        new_price = state.price if price is None else money.check_price(price)
        reserved = self.taker.reservations.reserved(oid)
        if new_price == state.price and new_qty <= state.qty:
            if new_qty < state.qty:
                if new_qty <= state.filled + reserved:
                    raise InvalidRequest(f"order {oid} has {money.format_qty(state.filled + reserved)} filled or "
                                         "being filled: amend it to more than that, or cancel it")
                self.emit(Reduce(oid, new_qty))
                self._pump()
            return oid
        if reserved:
            raise Busy(f"order {oid} is taking right now; amend it again in a moment")
        if new_qty <= state.filled:
            raise InvalidRequest(f"order {oid} has {money.format_qty(state.filled)} filled: amend it to more")
        assert new_price is not None  # it rests, so it has a price
        if not TAKES[state.tif]:
            self._refuse_if_crossing(state.side, new_price, state.tif)
        # What the old order reserves is freed by its cancel: the new one may use it.
        self.balances.check(self.traders.of.get(oid, ""), state.side, new_price, new_qty - state.filled, freeing=oid)
        self.emit(Cancel(oid, CancelReason.AMENDED))
        named, client_order_id, stp = self.traders.of.get(oid, ""), self.traders.client_order_id(oid), self.traders.stp(oid)
        new = self.emit(NewOrder(state.side, new_price, new_qty - state.filled, state.tif, body.expire_at)).order_id
        self._out.append(Persist(OrderTrader(new, named, client_order_id, stp.value)))
        self.traders.placed(new, named, self.ledger, client_order_id, stp)
        self.balances.order_changed(new, self.ledger)
        self.taker.placed(new, None)
        self._pump()
        return new

    # --- balances (zmqex.core.balances) ----------------------------------------------------------

    def fund(self, trader: str, usd: object = 0, btc: object = 0) -> Balance:
        """The operator moves ``usd`` cents and ``btc`` satoshis into ``trader``'s account (negative: out).

        The first funding opens the account (0 and 0 open it empty); from then on
        ``trader``'s orders here must fit in what it has available.  Durable (a
        promise) when the host has carried out the outputs.  Returns the account
        after.  Raises InvalidAmount, InvalidRequest or InsufficientBalance (a
        withdrawal beyond what is available), changing nothing.
        """
        self._check_memory()
        if not self.balances.has_account(trader) and (pending := self.otc.open_of(trader)):
            raise InvalidRequest(f"{len(pending)} directed orders or accepts of {trader} came before it had an "
                                 "account, unchecked: withdraw them, or let them end, first")
        self._out.append(Persist(self.balances.fund(trader, usd, btc, self.ledger, self.clock.get(self.id))))
        return self.balances.balance(trader)

    def balance(self, trader: str) -> Balance:
        """``trader``'s account: totals and what its orders reserve; InvalidRequest if it has none."""
        return self.balances.balance(trader)

    def _own_open(self, oid: str, trader: str, operator: bool) -> OrderState:
        """Own order ``oid``, still open, which ``trader`` (or an operator) may change; raises otherwise."""
        parse_order_id(oid)
        self._check_memory()
        state = self.ledger.orders.get(oid)
        if state is None:
            raise UnknownOrder(f"order {oid} is not known here")
        if state.owner != self.id:
            raise NotOwner(f"order {oid} belongs to {state.owner}; change it there")
        if not self.traders.may_cancel(oid, trader, operator):
            raise NotOwner(f"order {oid} belongs to another trader")  # never say whom: names stay private
        if state.open == 0:
            raise OrderClosed(f"order {oid} is already {state.status}")
        return state

    def order_info(self, oid: str) -> dict[str, Any]:
        """The order as a client sees it (:func:`zmqex.core.queries.order_info`)."""
        state = self.ledger.orders.get(oid)
        available = state is not None and self.is_up(state.owner)
        return queries.order_info(self.ledger, oid, self.taker.reservations.reserved(oid), available,
                                  self.traders.client_order_id(oid))

    def is_mine(self, oid: str, trader: str, operator: bool = False) -> bool:
        """Whether ``oid`` is an own order placed by ``trader`` (an operator: any own order)."""
        state = self.ledger.orders.get(oid)
        return state is not None and state.owner == self.id and self.traders.is_mine(oid, trader, operator)

    def open_orders(self, trader: str | None = None) -> int:
        """Own orders still open: placed by ``trader``, or by anyone (None); see :mod:`zmqex.core.traders`."""
        return self.traders.open_orders(self.ledger, trader)

    def _check_memory(self) -> None:
        if self.amnesia:
            if self.recovery is not None:
                raise Busy(f"{self.amnesia}; try again in a moment")
            raise Rejected(self.amnesia)

    # --- recovery (zmqex.core.recovery) ----------------------------------------------------

    def recover(self, reason: str) -> None:
        """Get our own history back from our peers before creating events (a host calls it for an
        empty store among peers; the replica, when a peer holds events of ours that we lack)."""
        if self._created:
            # Ids we created since we started may be ones our lost past used: only an operator
            # (restarting from the right store) can untangle that.
            if not self.amnesia:
                self.amnesia = f"node {self.id} has lost its own history ({reason}): restart it with its data directory"
            return
        if self.recovery is None and not self.amnesia:
            self.otc.lost_store()
            self.recovery = Recovery(self.id, reason)
            self.amnesia = f"node {self.id} is getting its own history back from its peers ({reason})"
            self.counters["recoveries"] += 1
            self._out.append(Persist(RecoveryMark(reason)))

    @property
    def recovering(self) -> bool:
        return self.recovery is not None

    @property
    def recovering_from(self) -> list[str]:
        """The members a recovering node still waits to hear from (empty when not recovering)."""
        rec = self.recovery
        return [] if rec is None else rec.waiting_for(self.peers, self.trust.removed)

    def _maybe_recovered(self) -> None:
        rec = self.recovery
        if rec is None or not rec.done(self.clock.get(self.id), self.peers, self.trust.removed):
            return
        self.recovery = None
        self.amnesia = None
        self._out.append(Persist(RecoveryMark(None)))
        # What the lost store held that the ledger shows again: grants, and settled holds,
        # so a retried take or confirm gets its answer and never a second fill.
        self.maker.recover_answers()
        self.holds.recover_settled()
        self.coordinator.recover_decisions()
        own_open = [s for s in self.ledger.orders.values() if s.owner == self.id and s.open > 0]
        self.taker.restore((), [s.id for s in own_open if RULES[s.tif].expires])
        self.coordinator.restore((), [s.id for s in own_open if ATOMIC[s.tif]])
        self._reconcile()

    # --- peer input and timers -------------------------------------------------------------

    def receive(self, sender: str, message: Message, now: int) -> None:
        """Handle one message from peer ``sender`` (as the transport saw it).

        Raises a RemoteError (DecodeError, Forged, BadEvent) for input no honest
        peer sends; what it changed before that is consistent.
        """
        self.now = max(self.now, now)
        if sender != self.id:
            self._seen(sender)
        self._handle(sender, message)
        if self.recovery is not None:
            self._maybe_recovered()
        self._pump()

    def tick(self, now: int) -> None:
        """Timers: heartbeats, peer liveness, retries of unanswered requests."""
        if self._open:
            self._seal()  # a heartbeat tells peers our clock: the events it counts go first
        self.now = now = max(self.now, now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_ms
            # The state hash only when nothing was delivered since the last heartbeat: under
            # load nobody can compare it (peers compare at equal clocks) and it cost ~5% of a node.
            quiet = self.clock == self._heartbeat_clock
            self._heartbeat_clock = self.clock
            self._out.append(Publish(Heartbeat(self.id, self.clock, self.ledger.state_hash() if quiet else "")))
            # The safety net, as often as heartbeats: whatever still crosses, the later owner
            # acts.  Every change that can make an own order take puts it on the work list
            # itself; a sweep on every tick cost a quarter of a loaded node's time.
            self.taker.sweep()
        for name, peer in self.peers.items():
            up = now - peer.last_seen <= self.config.peer_timeout_ms
            if up != peer.up:
                peer.up = up
                self._out.append(PeerChanged(name, up))
        self.replication.tick()
        self.taker.tick()
        self.maker.tick()
        self.holds.tick()
        self.coordinator.tick()
        self.otc.tick()
        self._pump()

    def _seen(self, sender: str) -> None:
        self.add_peer(sender)
        peer = self.peers.get(sender)
        if peer is None:
            return
        peer.last_seen = self.now
        if not peer.up:
            peer.up = True
            self._out.append(PeerChanged(sender, True))
            self.taker.sweep()  # its orders are tradeable again

    def _handle(self, sender: str, msg: Message) -> None:
        if self._open and type(msg) not in _KEEP_OPEN:
            self._seal()  # it may read our log or state for a peer, or move our clock
        if isinstance(msg, Gossip):
            envelope = msg.envelope
            if envelope.origin != sender:  # a node publishes only its own events; relays go by sync
                self.counters["events_refused"] += 1
                raise Forged(f"gossip from {sender} carries events of {envelope.origin}")
            for event in envelope.events:
                self.offer(event, sender)
        elif isinstance(msg, Heartbeat):
            if self.replication.on_heartbeat(sender, msg):
                self.auditor.mismatch(sender)
            if self.recovery is not None and sender in self.peers:
                self.recovery.heard(sender, msg.vc)
        elif isinstance(msg, Take):
            self.maker.on_take(sender, msg)
        elif isinstance(msg, TakeReply):
            settled = self.taker.on_reply(sender, msg)
            if settled is not None:
                self._reservation_changed(settled)
        elif isinstance(msg, Hold):
            self.holds.on_hold(sender, msg)
        elif isinstance(msg, HoldReply):
            self.coordinator.on_hold_reply(sender, msg)
        elif isinstance(msg, Confirm):
            released = self.holds.on_confirm(sender, msg)
            if released is not None:
                self._reservation_changed(released)
        elif isinstance(msg, ConfirmReply):
            self.coordinator.on_confirm_reply(sender, msg)
        elif isinstance(msg, Inquire):
            self.coordinator.on_inquire(sender, msg)
        elif isinstance(msg, Audit):
            self.auditor.on_audit(sender, msg)
        elif isinstance(msg, AuditReply):
            self.auditor.on_audit_reply(sender, msg)
        elif isinstance(msg, RecordsRequest):
            self.auditor.on_records_request(sender, msg)
        elif isinstance(msg, Records):
            self.auditor.on_records(sender, msg)
        elif isinstance(msg, Share):
            self.otc.on_share(sender, msg)
        elif isinstance(msg, ShareAck):
            self.otc.on_share_ack(sender, msg)
        elif isinstance(msg, Accept):
            self.otc.on_accept(sender, msg)
        elif isinstance(msg, AcceptReply):
            self.otc.on_accept_reply(sender, msg)
        elif isinstance(msg, SyncRequest):
            self.replication.on_sync_request(sender, msg)
        elif isinstance(msg, SyncReply):
            self.replication.on_sync_reply(sender, msg)
        elif isinstance(msg, SnapshotPage):
            self.replication.on_snapshot_page(sender, msg)

    def _pump(self) -> None:
        """Run local messages and the taker desk until nothing changes."""
        while True:
            while self._local:
                self._handle(*self._local.popleft())
            self.coordinator.drive()
            self.taker.drive()
            if not self._local:
                return

    def _reservation_changed(self, oid: str) -> None:
        """Own order ``oid``'s reservation went down: takes queued on it are judged, waiting orders stepped."""
        self.balances.order_changed(oid, self.ledger)  # a cancelled order may fill less now
        self.maker.release(oid)
        self.taker.reservation_changed(oid)

    # --- calls the desks make (zmqex.core.context) -------------------------------------------

    def send(self, to: str, message: Message) -> None:
        if to == self.id:
            self._local.append((to, message))
        else:
            self._out.append(Send(to, message))

    def persist(self, record: Record, promise: bool = True) -> None:
        self._out.append(Persist(record, promise))

    def reply(self, token: Any, oid: str) -> None:
        self._out.append(Reply(token, self.order_info(oid)))

    def answer(self, token: Any, result: dict[str, Any]) -> None:
        self._out.append(Reply(token, result))

    def notify(self, output: Output) -> None:
        self._out.append(output)

    def note_gap(self, peer: str, vc: VectorClock) -> None:
        self.replication.note_gap(peer, vc)

    def emit(self, body: Body) -> Event:
        """Make, deliver and persist an event of ours; it leaves in this iteration's envelope."""
        self._created = True
        seq = self.clock.get(self.id) + 1
        opened = self._open
        ts = opened[0].ts if opened else self.wall()  # one envelope, one timestamp
        event = Event(self.id, seq, self.clock.with_entry(self.id, seq), body, ts=ts)
        opened.append(event)
        self._deliver(event, event.vc)  # its clock is ours after it
        if len(opened) >= MAX_EVENTS:
            self._seal()
        return event

    def _seal(self) -> None:
        """Close the open envelope: sign it once and publish it as one message.

        Its events were delivered here as they were made; their records are persisted
        in this iteration's commit, which the host makes before anything leaves.
        """
        envelope = self.trust.seal(self._open)
        self.counters["envelopes_sealed"] += 1
        self.counters["events_sealed"] += len(self._open)
        self._open = []
        self._out.append(Publish(Gossip(envelope)))

    def offer(self, event: Event, sender: str) -> None:
        """An event from peer ``sender``: deliver it when causally ready, after checking who made it.

        With keys, an event from a non-member is refused, and one that did not come
        straight from its origin (a relay, a sync page) must carry its origin's
        signature.  One straight from its origin is not verified: the connection is
        authenticated with the origin's own key, and verifying costs ~55 us, about
        half a node's whole work per order (a member that signs badly only keeps its
        own events from travelling further).  Raises Forged (changing nothing).
        """
        origin = event.origin
        if origin == self.id:
            if event.seq <= self.clock.get(origin):
                self._check_same(event, sender)
                return
            self._own_event_from_peer(event, sender)
            if self.recovery is None:
                return  # it cannot be taken back: see Replica.recover
        if not self.trust.admits(origin):
            self.counters["events_refused"] += 1
            raise Forged(f"event {origin}:{event.seq}: {origin} is not a member")
        if event.seq <= self.clock.get(origin):
            self._check_same(event, sender)
            return
        if sender != origin and self.trust.keyed and not self.trust.verified(event):
            raise Forged(f"event {origin}:{event.seq} relayed by {sender} does not carry {origin}'s signature")
        if not self._buffer and self._buffer.ready(event, self.clock):
            self._deliver(event)  # the common case: in causal order, nothing waiting
            return
        if not self._buffer.add(event, self.clock):
            return
        while (ready := self._buffer.pop_ready(self.clock)) is not None:
            self._deliver(ready)

    def install(self, sender: str, vc: VectorClock, items: list[Any]) -> None:
        """Unite our ledger with a whole, vouched-for snapshot from ``sender`` taken at ``vc``."""
        if vc.get(self.id) > self.clock.get(self.id):
            # It holds events of ours that we do not (signed by us, with keys: its items were
            # verified): we lost our history, as when such events come by sync.
            self.recover(f"{sender}'s snapshot holds {vc.get(self.id)} of its events, it had "
                         f"{self.clock.get(self.id)}")
        self.ledger = merge(self.ledger, items)  # raises on a malformed snapshot, changing nothing
        self.clock = self.clock.merge(vc)
        self.replication.installed(vc)
        self._buffer.prune(self.clock)
        self._reconcile()
        while (ready := self._buffer.pop_ready(self.clock)) is not None:
            self._deliver(ready)

    def repair(self, origin: str, ledger: Ledger, changed: list[str]) -> None:
        """Take ``ledger``, in which ``origin``'s records were replaced by its own (zmqex.core.audit).

        Our copies of its events may be the wrong ones, so from now on we serve its
        state, not its events (the log's base moves past them), and a checkpoint of
        the repaired state replaces them in the store.
        """
        self.ledger = ledger
        self.replication.installed(VectorClock({origin: self.clock.get(origin)}))
        self._reconcile()
        self.counters["records_repaired"] += len(changed)
        self._out.append(Repaired(origin, tuple(changed)))

    # --- trust (zmqex.core.trust) -------------------------------------------------------------

    def _own_event_from_peer(self, event: Event, sender: str) -> None:
        """A peer holds an event of ours that we do not: we lost (part of) our history.

        Only our own signed event proves it (with keys): a peer's claim about our clock,
        or a forged event, changes nothing.  New events could reuse ids, so this node
        must not place, cancel, grant or take until it has its history back
        (:meth:`recover`; the event is then delivered like a peer's).
        """
        if self.trust.keyed and not self.trust.verified(event):
            raise Forged(f"{sender} sent an event {event.origin}:{event.seq} in our name that we never signed")
        self.recover(f"{sender} holds its event {event.seq}, it had {self.clock.get(self.id)}")

    def _check_same(self, event: Event, sender: str) -> None:
        """A second copy of an event we have must be the same event: ids are never reused (see Trust)."""
        ours = self.replication.log.get(event.origin, event.seq)
        if ours is None or ours == event:
            return
        verdict = self.trust.second_copy(ours, event, sender)  # raises Forged for an unsigned copy
        if verdict is Copy.WE_LOST_HISTORY:
            if self.recovery is not None or not self.amnesia:  # two copies of one id: nothing to recover
                self.recovery = None
                self.amnesia = (f"node {self.id} has lost its own history (a peer holds a different "
                                f"event {event.origin}:{event.seq}): restart it with its data directory")
        elif verdict is Copy.EQUIVOCATION:
            self._out.append(Persist(Evidence(ours, event), promise=False))
            self._out.append(PeerChanged(event.origin, False))
        elif verdict is Copy.SEND_BACK:
            self.send(event.origin, SyncReply((ours,), False))  # a relay of its own event: proof it lost it

    # --- delivery: the one place an event reaches the ledger ------------------------------------

    def _deliver(self, event: Event, clock: VectorClock | None = None) -> None:
        """Apply a causally ready event; ``clock``, if given, is our clock after it (saves a copy)."""
        if self._open and event.origin != self.id:
            self._seal()  # events of one envelope share one clock: none of another origin's in between
        self.ledger.apply(event)  # raises (changing nothing) on an event no honest peer sends
        self.clock = clock if clock is not None else self.clock.with_entry(event.origin, event.seq)
        self.replication.log.append(event)
        mine = event.origin == self.id
        self._out.append(Persist(EventRecord(event), promise=mine))
        self._out.append(Delivered(event))
        if not mine:
            self.add_peer(event.origin)
        body = event.body
        if isinstance(body, Fill):
            self.credit.count(event)
            if self.traders.any_open:
                self.traders.maybe_closed(body.maker, self.ledger)
                self.traders.maybe_closed(body.taker, self.ledger)
            settled = self.taker.on_fill(body)
            self.balances.on_fill(body, self.ledger)  # its takes count it filled: before anything acts on it
            if settled is not None:
                self._reservation_changed(settled)
            self.coordinator.on_fill(body)
        elif isinstance(body, Report):
            pass  # a private trade's public face: the tape has it now, and no desk waits on it
        elif isinstance(body, NewOrder):
            self.maker.order_delivered(event.order_id)
            if mine:
                if self.recovery is not None:  # ours, back from a peer: placed by a trader we forgot
                    self.traders.placed(event.order_id, "", self.ledger)
            elif RESTS[body.tif]:
                self.taker.peer_order_rests(self.ledger.orders[event.order_id])
        elif mine:  # a cancel (only the owner closes an order), or a reduce
            self.traders.maybe_closed(body.order_id, self.ledger)
            self.balances.order_changed(body.order_id, self.ledger)
            self.taker.cancelled(body.order_id)  # its first pass may be over now

    # --- restart and snapshots ----------------------------------------------------------------

    def _load(self, durable: Durable) -> None:
        """Take a new replica to the state its durable records describe (:mod:`zmqex.core.restore`)."""
        log = self.replication.log
        checkpoint = durable.checkpoint
        if checkpoint is not None:
            self.ledger = rebuild(list(checkpoint.items))
            self.clock = checkpoint.vc
            log.reset(checkpoint.base)
        for event in durable.events:
            if event.seq > self.clock.get(event.origin):
                self.ledger.apply(event)
                self.clock = self.clock.with_entry(event.origin, event.seq)
                log.append(event)
            elif event.seq > log.base.get(event.origin):
                log.append(event)  # already in the checkpoint's state, still servable to peers
        self.traders.restore(durable.traders)
        self.balances.restore(durable.fundings)
        self.credit.restore(durable.credit_limits.values(), durable.settlements)
        self.trust.restore((e.ours, e.theirs) for e in durable.evidence.values())
        takes = [(Reservation(t.request, t.order, t.maker, t.qty, self.now), durable.settled.get(t.request))
                 for t in durable.takes.values()]
        own_open = [s for s in self.ledger.orders.values() if s.owner == self.id and s.open > 0]
        self.taker.restore(takes, [s.id for s in own_open if RULES[s.tif].expires])
        self.maker.restore((o.sender, o.reply) for o in durable.answers)
        self.holds.restore(durable.holds.values(), ((h.sender, h.reply) for h in durable.settled_holds))
        self.coordinator.restore(durable.decisions.values(), [s.id for s in own_open if ATOMIC[s.tif]])
        for peer in self.clock:
            self.add_peer(peer)
        self._reconcile()
        # After the reconcile: balances count the ledger's fills there, and the OTC desk's trades and
        # reservations come on top of them.
        self.otc.restore(durable.otc)
        if durable.recovering is not None:
            self.recover(durable.recovering)  # it died recovering: its peers still hold the rest
        self._out = []

    def _reconcile(self) -> None:
        """Reconcile the desks with a ledger that just changed under them: restart, snapshot install."""
        self.credit.rebuild(self.ledger, self._credit_pending())  # first: the desks may grant below
        self.taker.reconcile()
        self.maker.reconcile()
        self.coordinator.reconcile()
        self.traders.recount(self.ledger, self.id)
        self.balances.recount(self.ledger)  # after the taker counted the ledger's fills: exposures need it

    # --- invariants ----------------------------------------------------------------------------

    def _check(self) -> None:
        """Assert every invariant of this replica, its desks' and those across them. O(state).

        Call it between input calls (the tests call it after every step).  Raises
        InvariantViolation, naming the replica and the broken invariant.
        """
        try:
            self._check_all()
        except InvariantViolation:
            raise
        except AssertionError as exc:
            raise InvariantViolation(f"replica {self.id}: {exc}") from exc

    def _check_all(self) -> None:
        self.ledger._check()
        self._buffer._check(self.clock)
        self.replication._check()
        self.taker._check()
        self.maker._check()
        self.holds._check()
        self.coordinator._check()
        self.auditor._check()
        self.otc._check()
        self.traders._check(self.ledger, self.id)
        self.balances._check(self.ledger)
        self.trust._check()
        self.credit._check(self.ledger, self._credit_pending())
        assert not self._local, "messages to ourselves left unhandled"
        assert self.id not in self.peers and set(self.peers) == set(self.replication.peers), "peer lists differ"
        assert not (set(self.peers) & self.removed), "a removed member is still a peer"
        for oid, state in self.ledger.orders.items():
            assert self.clock.get(state.owner) >= state.event.seq, f"{oid} is beyond the clock"
        own = self.clock.get(self.id)
        assert all(e.seq <= own for e in self.ledger.fills.values() if e.origin == self.id)
        assert all(owner_of(o) == self.id for o in self.traders.of), "a trader is named for a peer's order"
        self._check_envelopes()

    def _check_envelopes(self) -> None:
        """The open envelope holds our latest events, one clock apart; an event in the log
        sealed by an envelope is the one that envelope holds."""
        opened = self._open
        assert len(opened) < MAX_EVENTS, "a full envelope left open"
        if opened:
            head = opened[0]
            assert opened[-1].seq == self.clock.get(self.id), "the open envelope is not our latest events"
            for i, event in enumerate(opened):
                assert event.origin == self.id and event.seq == head.seq + i and event.seal is None
                assert event.vc == head.vc.with_entry(self.id, event.seq) and event.ts == head.ts
        for event in self.replication.log:
            seal = event.seal
            if isinstance(seal, Envelope):
                assert seal.events[event.seq - seal.first] is event, f"{event.origin}:{event.seq} not in its envelope"


def _cents(value: object, what: str) -> int | None:
    """A credit amount in integer cents, 0 or more (None passes: no amount); InvalidAmount otherwise."""
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidAmount(f"{what} must be an integer of cents, not {type(value).__name__}")
    if not 0 <= value <= MAX_CREDIT:
        raise InvalidAmount(f"{what} {value} is out of range 0..{MAX_CREDIT} cents")
    return value
