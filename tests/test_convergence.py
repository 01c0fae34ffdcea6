"""The whole protocol, many replicas, a hostile network: the spec as a state machine.

Hypothesis drives 3-5 replicas through placing and cancelling orders at any
node and every fault the simulator knows: delivering out of order, dropping,
duplicating and delaying messages, partitions, crashes and restarts, and time
passing.  After every step no replica may hold an over-filled order or a
broken book.  At the end the network heals and goes quiet, and then every
replica must be identical, uncrossed, and hold every acknowledged order; no
hold may be left, and every fill-or-kill order must be filled whole or have
nothing filled.

Off the book, the same faults hit requests for quote, quotes, directed orders,
accepts and withdrawals racing each other and expiry: after every step no
offer is traded past its quantity or after it expired, and no desk holds a
copy of an offer or request that does not name it; at the end both desks of
every private trade hold it alike, and every replica's tape has exactly its
report.

Credit: nodes set limits for each other (and settle), so some desks cannot
trade with others.  After every step, no node's exposure to a desk from trades
may exceed the limit in force, unless it already stood above it, with what was
in flight, after the step before (a grant is checked when it is made: what a
step brings is either new, and within the limit, or was in flight already).  At
quiescence the book may stay crossed only between desks without credit for each
other.

Balances: about half the runs fund traders, and an operator funds or
withdraws during the run; no balance ever goes below zero, and at the end
each account holds exactly what was funded plus what its trades moved.

The differential test pins the matching semantics: with the network drained
between orders, the distributed book must trade exactly like a naive
single-threaded price-time matcher.
"""

from __future__ import annotations

from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from zmqex.core.clock import VectorClock
from zmqex.core.credit import ANY, DAY_MS, UNIT
from zmqex.core.events import Side, Tif, fill_of, owner_of
from zmqex.core.replica import Config, Replica
from zmqex.core.traders import Stp
from zmqex.core.otc import DIRECTED, ref_of
from zmqex.errors import Busy, InsufficientBalance, InvalidRequest, OrderClosed, Rejected, UnknownOrder
from tests.checked import Network

from tests.reference import NaiveMatcher

NAMES = ["a", "b", "c", "d", "e"]

sides = st.sampled_from(list(Side))
tifs = st.sampled_from([Tif.GTC, Tif.GTC, Tif.GTC, Tif.IOC, Tif.POST_ONLY, Tif.GTD, Tif.FOK])
#: About 1,000,000 USD per BTC (in cents), so that a few satoshis cost some cents, rounded down (balances).
TICK = 10_001
prices = st.one_of(st.integers(9_998, 10_002), st.integers(9_998, 10_002), st.none()).map(
    lambda p: None if p is None else p * TICK)  # plenty of crossing
qtys = st.integers(1, 30)
#: Quantities in satoshis: at ~1,000,000 USD per BTC an order is worth cents, so credit limits of a few
#: cents bind (matching is the same at any scale).
LOT = 1
limits = st.sampled_from([None, 0, 5, 20, 100])  # cents
picks = st.integers(0, 2**16)  # index into whatever is there to choose from


class ReplicasUnderFaults(RuleBasedStateMachine):
    @initialize(n=st.integers(3, 4), compact=st.booleans(), keyed=st.booleans(),
                funds=st.none() | st.tuples(st.integers(0, 600), st.integers(0, 60)),
                credit=st.lists(st.tuples(picks, picks, st.sampled_from([0, 5, 20])), max_size=4))
    def start(self, n: int, compact: bool, keyed: bool, funds: tuple[int, int] | None,
              credit: list[tuple[int, int, int]]) -> None:
        # Half the runs compact as eagerly as they can, so snapshots replace the log
        # and a joining node catches up from a snapshot and the tail.  Half the runs are
        # keyed: every event signed, every relayed event and snapshot item verified.
        config = Config(compact_after=1, compact_every_ms=0) if compact else Config()
        self.net = Network(NAMES[:n], config, keyed=NAMES if keyed else None)
        self.client_orders: dict[tuple[str, str, str], str] = {}  # (node, trader, client order id) -> order
        self.wiped: set[str] = set()  # nodes that lost their disk: their OTC records went with it
        self.before_account: dict[tuple[str, str], set[str]] = {}  # private trades of a trader before it was funded
        self.funded: dict[tuple[str, str], list[int]] = {}  # (node, trader) -> [usd, btc, opened] funded there
        if funds is not None:  # about half the runs: two of the three traders of each node funded, not the third
            for name in self.net.ids:
                for trader in ("t0", "t1"):
                    self.net.fund(name, trader, *funds)
                    self.funded[(name, trader)] = [*funds, 0]
        self.settled: dict[tuple[str, str], int] = {}  # (node, desk) -> cents it marked settled (credit)
        self.used: dict[tuple[str, str], tuple[int, int]] = {}  # (node, desk) -> (exposure, today), in flight too
        self.seen: dict[str, Replica] = {}  # node -> its replica when credit was last checked
        self.relearning: dict[str, VectorClock] = {}  # node that lost its disk -> the history it gets back
        for node, pick, limit in credit:  # some desks short of credit with others from the start
            name = self._node(node)
            self.net.set_credit(name, self._desk(name, pick, default=True), limit)

    @rule(settle_first=st.booleans())
    def join(self, settle_first: bool) -> None:
        """A new member joins; with ``settle_first``, after the others had time to compact."""
        if len(self.net.ids) == len(NAMES):
            return
        if settle_first:  # a quiet spell: heartbeats tell everyone what everyone has, so they compact
            self.net.settle()
            for _ in range(2):
                self.net.tick(self.net.config.heartbeat_ms)
                self.net.drain()
        self.net.add_node(NAMES[len(self.net.ids)])

    def _node(self, pick: int) -> str:
        return self.net.ids[pick % len(self.net.ids)]

    def _link(self, pick: int) -> tuple[str, str] | None:
        links = self.net.busy_links()
        return links[pick % len(links)] if links else None

    # --- clients ------------------------------------------------------------------

    # Orders come in bursts at several nodes before anything is delivered: that is
    # where takers race for one maker and concurrent orders cross.
    @rule(burst=st.lists(st.tuples(picks, sides, qtys, prices, tifs, st.sampled_from(Stp), picks),
                         min_size=1, max_size=6))
    def place(self, burst: list) -> None:
        for node, side, qty, price, tif, stp, pick in burst:
            name = self._node(node)
            self.net.restart(name)  # a trader whose node is down restarts it first
            if self.net.replica(name).recovering:
                continue  # it started with an empty store: busy until it has its history back
            trader, client_order_id = f"t{qty % 3}", f"c{pick % 50}" if pick % 2 else ""  # three traders a node
            expire_at = self.net.now + pick % 5_000 + 1 if tif is Tif.GTD else None
            try:
                oid = self.net.place(name, side, qty * LOT, price, tif, trader=trader,
                                     client_order_id=client_order_id, expire_at=expire_at, stp=stp,
                                     protection_bps=pick % 1_000)
            except (Rejected, InvalidRequest):
                continue  # post-only that would cross or without a price, market into an empty book, id taken
            if client_order_id:
                self.client_orders[(name, trader, client_order_id)] = oid

    # A loaded node handles several clients' orders and peers' messages in one loop iteration:
    # what it makes there leaves in one envelope, under one clock and one signature.
    @rule(node=picks, steps=st.lists(st.tuples(sides, qtys, prices, tifs) | st.integers(0, 3), min_size=2, max_size=8))
    def one_loop_iteration(self, node: int, steps: list) -> None:
        name = self._node(node)
        self.net.restart(name)
        if self.net.replica(name).recovering:
            return
        with self.net.iteration(name):
            for step in steps:
                if isinstance(step, int):  # a peer's message to it, read in the same iteration
                    inbound = [link for link in self.net.busy_links() if link[1] == name]
                    if inbound:
                        self.net.deliver(*inbound[step % len(inbound)])
                    continue
                side, qty, price, tif = step
                expire_at = self.net.now + 1_000 if tif is Tif.GTD else None
                try:
                    self.net.place(name, side, qty * LOT, price, tif, trader=f"t{qty % 3}", expire_at=expire_at)
                except (Rejected, InvalidRequest):
                    continue

    @rule(node=picks, pick=picks, qty=st.one_of(st.none(), qtys), price=st.one_of(st.none(), prices))
    def amend(self, node: int, pick: int, qty: int | None, price: int | None) -> None:
        """A trader lowers an order (it keeps its place) or moves it (a new place), maybe while it trades."""
        name = self._node(node)
        if not self.net.nodes[name].up or self.net.replica(name).recovering:
            return
        replica = self.net.replica(name)
        own = [o for o in replica.ledger.orders.values() if o.owner == name and o.open > 0 and o.rests]
        if own:
            oid = own[pick % len(own)].id
            try:
                new = self.net.amend(name, oid, qty=None if qty is None else qty * LOT, price=price,
                                     trader=replica.traders.of.get(oid, ""))
            except (Busy, InvalidRequest, Rejected):
                return  # taking right now, nothing would be left, or a post-only moved across the book
            for key, named in self.client_orders.items():
                if named == oid:
                    self.client_orders[key] = new  # its client order id names the new order now

    @rule(node=picks, pick=picks)
    def cancel_all(self, node: int, pick: int) -> None:
        name = self._node(node)
        if self.net.nodes[name].up and not self.net.replica(name).recovering:
            side = [None, Side.BUY, Side.SELL][pick % 3]
            self.net.cancel_all(name, f"t{pick % 3}", side=side, operator=pick % 7 == 0)

    @rule(viewer=picks, pick=picks, takers=st.sets(picks, min_size=2, max_size=3), tif=tifs, regret=st.booleans())
    def race(self, viewer: int, pick: int, takers: set[int], tif: Tif, regret: bool) -> None:
        """Several nodes go for the same resting order at once, each for all of it.

        With ``regret``, the first taker cancels at once, while its take is in flight.
        """
        name = self._node(viewer)
        if not self.net.nodes[name].up or not len(self.net.replica(name).ledger.book):
            return
        book = self.net.replica(name).ledger.book
        side = Side.BUY if pick % 2 else Side.SELL
        resting = list(book.orders(side.opposite)) or list(book.orders(side))
        target = resting[pick % len(resting)]
        placed = []
        for taker in takers:
            node = self._node(taker)
            self.net.restart(node)
            if self.net.replica(node).recovering:
                continue
            try:
                expire_at = self.net.now + 1_000 if tif is Tif.GTD else None
                placed.append((node, self.net.place(node, target.side.opposite, target.qty, target.price, tif,
                                                    expire_at=expire_at)))
            except Rejected:
                pass
        if regret and placed:
            node, oid = placed[0]
            replica = self.net.replica(node)
            if replica.ledger.orders[oid].open > 0 and not replica.coordinator.working(oid):
                self.net.cancel(node, oid, trader=replica.traders.of.get(oid, ""))

    @rule(node=picks, pick=picks)
    def cancel(self, node: int, pick: int) -> None:
        name = self._node(node)
        if not self.net.nodes[name].up or self.net.replica(name).recovering:
            return
        replica = self.net.replica(name)
        own = [o for o in replica.ledger.orders.values() if o.owner == name and o.open > 0]
        taking = [o for o in own if replica.order_info(o.id)["pending"]]
        if pick % 2 and taking:
            own = taking  # half the time, cancel an order while its take is in flight
        if own:
            oid = own[pick % len(own)].id
            try:  # by the trader who placed it, or now and then by an operator
                self.net.cancel(name, oid, trader=replica.traders.of.get(oid, ""), operator=pick % 3 == 0)
            except OrderClosed:
                raise AssertionError("an own open order could not be cancelled") from None
            except Busy:
                assert replica.coordinator.working(oid), "only a fill-or-kill in its coordinator's hands may not be cancelled"

    # --- credit (zmqex.core.credit) -----------------------------------------------------

    def _desk(self, name: str, pick: int, default: bool) -> str:
        desks = [d for d in self.net.ids if d != name] + ([ANY] if default else [])
        return desks[pick % len(desks)]

    @rule(node=picks, pick=picks, limit=limits, daily=st.sampled_from([None, None, 30]))
    def set_credit(self, node: int, pick: int, limit: int | None, daily: int | None) -> None:
        """An operator sets (or lifts) a node's credit for one desk, or for every desk without its own."""
        name = self._node(node)
        if self.net.nodes[name].up:
            self.net.set_credit(name, self._desk(name, pick, default=True), limit, daily)

    @rule(node=picks, pick=picks, cents=st.sampled_from([1, 5, 50]))
    def settle_credit(self, node: int, pick: int, cents: int) -> None:
        name = self._node(node)
        if self.net.nodes[name].up:
            desk = self._desk(name, pick, default=False)
            done = self.net.settle_credit(name, desk, cents)
            assert 0 <= done <= cents
            self.settled[(name, desk)] = self.settled.get((name, desk), 0) + done

    # --- the network ------------------------------------------------------------------

    @rule(link=picks, index=st.integers(0, 3))
    def deliver(self, link: int, index: int) -> None:
        chosen = self._link(link)
        if chosen:
            self.net.deliver(*chosen, index=index)

    @rule(link=picks, index=st.integers(0, 3))
    def deliver_then_crash(self, link: int, index: int) -> None:
        """The receiver persists what the message made it do, then dies before replying."""
        chosen = self._link(link)
        if chosen and sum(n.up for n in self.net.nodes.values()) > 1:
            self.net.deliver(*chosen, index=index, crash_before_send=True)

    @rule(steps=st.integers(1, 40))
    def deliver_many(self, steps: int) -> None:
        for _ in range(steps):
            links = self.net.busy_links()
            if not links:
                return
            self.net.deliver(*links[self.net.steps % len(links)])

    @rule(fault=st.sampled_from(["drop", "duplicate", "delay"]), link=picks, index=st.integers(0, 3))
    def lose_copy_or_hold(self, fault: str, link: int, index: int) -> None:
        chosen = self._link(link)
        if chosen:
            getattr(self.net, fault)(*chosen, index=index)

    # --- off the book ---------------------------------------------------------------

    def _otc_ready(self, name: str) -> bool:
        self.net.restart(name)
        return not self.net.replica(name).recovering

    @rule(node=picks, side=sides, qty=qtys, desks=st.sets(picks, min_size=1, max_size=3),
          within=st.sampled_from([300, 2_000, 30_000]))
    def ask_for_quotes(self, node: int, side: Side, qty: int, desks: set[int], within: int) -> None:
        name = self._node(node)
        named = sorted({self._node(d) for d in desks} - {name})
        if named and self._otc_ready(name):
            replica = self.net.replica(name)
            try:
                self.net.act(name, "rfq", side, qty, replica.wall() + within, desks=named, trader="t0")
            except InvalidRequest:
                return  # a desk it does not know yet (one that just joined)

    @rule(node=picks, pick=picks, price=st.integers(9_990, 10_010), qty=qtys,
          valid=st.sampled_from([200, 1_000, 20_000]))
    def quote_or_direct(self, node: int, pick: int, price: int, qty: int, valid: int) -> None:
        """A desk quotes a request it was asked, or places a directed order to some desks."""
        name = self._node(node)
        if not self._otc_ready(name):
            return
        replica = self.net.replica(name)
        asked = [r for r in replica.otc.rfqs.values() if r.owner != name]
        try:
            if asked and pick % 3:
                rfq = asked[pick % len(asked)]
                self.net.act(name, "quote", rfq.id, price * TICK, qty, replica.wall() + valid, trader="t1")
            else:
                only = sorted({self._node(pick), self._node(pick // 7)} - {name})
                if only:
                    self.net.place(name, Side.SELL if pick % 2 else Side.BUY, qty, price * TICK,
                                   Tif.GTD if pick % 4 == 0 else Tif.GTC, trader="t1", only=only,
                                   expire_at=replica.wall() + valid if pick % 4 == 0 else None)
        except (InvalidRequest, OrderClosed, Rejected):
            return  # more than asked, closed or past its answer_by, an unknown desk, beyond its trader's balance

    @rule(node=picks, pick=picks, qty=qtys)
    def accept(self, node: int, pick: int, qty: int) -> None:
        name = self._node(node)
        if not self._otc_ready(name):
            return
        offers = [o for o in self.net.replica(name).otc.offers.values() if o.owner != name]
        if offers:
            offer = offers[pick % len(offers)]
            try:
                self.net.act(name, "accept", offer.id, qty, trader="t2", disclose=bool(pick % 2))
            except (InvalidRequest, OrderClosed, Busy, UnknownOrder, Rejected):
                return  # more than its copy shows open, closed or expired here, its owner down, beyond a limit

    @rule(node=picks, pick=picks)
    def withdraw(self, node: int, pick: int) -> None:
        name = self._node(node)
        if not self._otc_ready(name):
            return
        desk = self.net.replica(name).otc
        own = [i for i in [*desk.offers.values(), *desk.rfqs.values()] if i.owner == name and not i.status.closed]
        if own:
            self.net.act(name, "withdraw", own[pick % len(own)].id, operator=True)

    @rule(members=st.sets(picks, max_size=2))
    def partition_or_heal(self, members: set[int]) -> None:
        if members:
            self.net.partition({self._node(m) for m in members})
        else:
            self.net.heal()

    @rule(node=picks)
    def crash_or_restart(self, node: int) -> None:
        name = self._node(node)
        if not self.net.nodes[name].up:
            self.net.restart(name)
        elif sum(n.up for n in self.net.nodes.values()) > 1:
            self.net.crash(name)

    @rule(node=picks)
    def lose_a_disk(self, node: int) -> None:
        """A quiet node loses its store and restarts empty: it gets its history back from its peers
        (busy meanwhile) while the others go on.  Quiet first: a promise that lived only in the lost
        store (an answer kept for a retry, a hold, a decision) cannot come back, and the README says so."""
        self.net.settle()
        name = self._node(node)
        self.relearning[name] = self.net.live()[0].clock  # all of it: the network is settled
        self.net.wipe(name)
        self.net.restart(name)
        self.wiped.add(name)
        assert self.net.replica(name).recovering
        # Who placed which order, and under which client order id, lived only in that store;
        # and its credit limits and settlements.
        self.client_orders = {key: oid for key, oid in self.client_orders.items() if key[0] != name}
        self.funded = {key: funds for key, funds in self.funded.items() if key[0] != name}  # and its fundings
        self.settled = {key: done for key, done in self.settled.items() if key[0] != name}
        self.used = {key: used for key, used in self.used.items() if key[0] != name}
        self.seen.pop(name, None)

    @rule(node=picks, trader=st.integers(0, 2), usd=st.integers(-400, 1_500) | st.none(),
          btc=st.integers(-40, 150) | st.none())
    def fund(self, node: int, trader: int, usd: int | None, btc: int | None) -> None:
        """An operator funds a trader, or takes some back (None: all that is available, so that what a
        cancel freed while its takes are in flight would be spent twice if it were not still reserved):
        from then on its orders must fit, whatever trades, amends, cancels, crashes and snapshots come
        (Replica._check: available is never negative)."""
        name = self._node(node)
        if not self.net.nodes[name].up or self.net.replica(name).recovering:
            return
        replica, who = self.net.replica(name), f"t{trader}"
        opening = not replica.balances.has_account(who)
        if opening:  # its orders placed unchecked must go first (a fill-or-kill in flight stays: refused)
            self.net.cancel_all(name, who)
            for item in replica.otc.open_of(who):  # and its directed orders (an accept in flight stays: refused)
                if item in replica.otc.offers:
                    self.net.act(name, "withdraw", item, operator=True)
        else:
            balance = replica.balance(who)
            usd = -balance.usd_available if usd is None else usd
            btc = -balance.btc_available if btc is None else btc
        usd, btc = usd or 0, btc or 0
        try:
            self.net.fund(name, who, usd, btc)
        except (InsufficientBalance, InvalidRequest):
            return  # more than is available, or an order still open
        if opening:
            self.before_account[(name, who)] = set(replica.otc.trades)  # not counted for the account
        funds = self.funded.setdefault((name, who), [0, 0, replica.clock.get(name)])
        funds[0] += usd
        funds[1] += btc

    @rule(advance=st.sampled_from([0, 100, 500, 2500]))
    def tick(self, advance: int) -> None:
        self.net.tick(advance)

    # --- the spec -----------------------------------------------------------------------

    @invariant()
    def every_replica_is_sound(self) -> None:
        # No order over-filled, every fill balanced, book and orders agree, hash exact;
        # filled + reserved <= qty for every own order, one take in flight per order,
        # reservation totals exact, held takes only on orders with no room, the causal
        # buffer holds nothing ready, the log holds exactly what it may serve; each
        # node's count of its own open orders per trader is exact (Replica._check).
        for replica in self.net.live():
            replica._check()

    @invariant()
    def no_trade_beyond_credit(self) -> None:
        # What a node traded with a desk, counted here from its ledger, its private trades and the settlements it
        # reported, against its limits for that desk: a step may bring trades beyond a limit
        # only if they were in flight before it (Credit's own figures, which Replica._check
        # holds to the ledger and the desks' state).  Nor may what is traded and in flight
        # together go beyond it, but in a step that restarted the node (a take's answer not
        # yet kept counts as asked for again until the maker answers again).
        for replica in self.net.live():
            me, day = replica.id, replica.wall() // DAY_MS
            fresh = self.seen.get(me) is not replica
            self.seen[me] = replica
            past = self.relearning.get(me)
            if past is not None and not replica.recovering and replica.clock.dominates(past):
                del self.relearning[me]  # from the next step on, what it trades is new
            relearning = past is not None  # the trades of its lost past come back: no new grants
            traded: dict[str, int] = {}
            today: dict[str, int] = {}
            for event in replica.ledger.fills.values():
                fill = fill_of(event)
                maker, taker = event.origin, owner_of(fill.taker)
                if maker != taker and me in (maker, taker):
                    desk = taker if maker == me else maker
                    traded[desk] = traded.get(desk, 0) + fill.price * fill.qty
                    if event.ts // DAY_MS == day:
                        today[desk] = today.get(desk, 0) + fill.price * fill.qty
            for trade in replica.otc.trades.values():  # private trades count the same, off the ledger
                desk = trade.taker if trade.maker == me else trade.maker
                traded[desk] = traded.get(desk, 0) + trade.price * trade.qty
                if trade.ts // DAY_MS == day:
                    today[desk] = today.get(desk, 0) + trade.price * trade.qty
            credit = replica.credit
            for desk in self.net.ids:
                if desk == me:
                    continue
                exposure = traded.get(desk, 0) - self.settled.get((me, desk), 0) * UNIT
                assert exposure >= 0 and exposure == credit.exposure(desk), f"{me}: exposure to {desk}"
                before = self.used.get((me, desk), (0, 0))
                limit, daily = credit.limits_of(desk)
                if not relearning:
                    assert limit is None or exposure <= max(limit * UNIT, before[0]), (
                        f"{me} traded beyond its limit of {limit} cents with {desk}: {exposure / UNIT} cents")
                    assert daily is None or today.get(desk, 0) <= max(daily * UNIT, before[1]), (
                        f"{me} traded beyond its daily limit of {daily} cents with {desk}")
                flying = credit.in_flight(desk)
                used = self.used[(me, desk)] = (exposure + flying, today.get(desk, 0) + flying)
                if not (fresh or relearning):
                    assert limit is None or used[0] <= max(limit * UNIT, before[0]), (
                        f"{me} promised or asked {desk} beyond its limit of {limit} cents: {used[0] / UNIT} cents")
                    assert daily is None or used[1] <= max(daily * UNIT, before[1]), (
                        f"{me} promised or asked {desk} beyond its daily limit of {daily} cents")

    @invariant()
    def a_client_order_id_keeps_naming_its_order(self) -> None:
        # Across crashes and restarts: a retried place finds the order it made.
        for (node, trader, client_order_id), oid in self.client_orders.items():
            if self.net.nodes[node].up:
                assert self.net.replica(node).client_order(trader, client_order_id) == oid

    @invariant()
    def replicas_at_the_same_clock_hold_the_same_state(self) -> None:
        # Checked by the replicas themselves, from the hashes in quiet heartbeats.
        for replica in self.net.live():
            assert replica.counters["state_mismatches"] == 0, f"{replica.id} saw a peer's state differ"

    def teardown(self) -> None:
        if not hasattr(self, "net"):
            return
        net = self.net
        net.settle()
        for _ in range(2):  # quiet heartbeats: every replica compares its hash with its peers'
            net.tick(Config().heartbeat_ms)
            net.drain()
        replicas = net.live()
        for replica in replicas:
            replica._check()
            assert replica.counters["state_mismatches"] == 0, f"{replica.id} saw a peer's state differ"
            assert replica.amnesia is None, f"{replica.id}: {replica.amnesia}"  # every lost disk recovered
            assert replica.counters["reused_event_ids"] == 0 and not replica.equivocators
        self.no_trade_beyond_credit()  # across the settling too: the limits did not change
        hashes = {r.id: r.ledger.state_hash() for r in replicas}
        note(f"hashes: {hashes}")
        assert len(set(hashes.values())) == 1, f"replicas diverged: {hashes}"
        first = replicas[0].ledger
        for order in first.orders.values():  # fill or kill: all of it, or none of it
            if order.tif is Tif.FOK:
                assert order.filled in (0, order.qty), f"{order.id} filled {order.filled} of {order.qty}"
                assert order.filled or order.cancelled is not None, f"{order.id} is still open"
        for replica in replicas:
            assert not replica.taker.reservations.held_totals(), f"{replica.id} still holds {replica.holds.holds()}"
            assert not replica.ledger.book.crossed() or crossed_only_for_credit(net, replica), (
                f"{replica.id}: crossed book at quiescence")
            assert net.acknowledged <= set(replica.ledger.orders), f"{replica.id} lost acknowledged orders"
            assert set(replica.ledger.fills) == set(first.fills)
        self._off_the_book_agrees(replicas)
        self._balances_are_what_was_funded_and_traded()

    def _off_the_book_agrees(self, replicas: list) -> None:
        """Both desks of a private trade hold it alike; the tape holds one report per private trade; no
        offer traded past its quantity, counted at the desks that accepted it."""
        desks = {r.id: r.otc for r in replicas}
        reports = {e.body.ref for e in replicas[0].ledger.reports.values()}
        taken: dict[str, int] = {}
        for name, desk in desks.items():
            assert not desk._accepting, f"{name} still waits for an answer to {list(desk._accepting)}"
            for request, trade in desk.trades.items():
                assert ref_of(request) in reports, f"private trade {request} has no report on the tape"
                other = trade.maker if trade.taker == name else trade.taker
                if other in desks and not ({name, other} & self.wiped):
                    assert desks[other].trades.get(request) == trade, f"{name} and {other} differ on {request}"
                if trade.taker == name:
                    taken[trade.offer] = taken.get(trade.offer, 0) + trade.qty
        for offer_id, qty in taken.items():
            owner = desks.get(offer_id.split(":")[0])
            held = owner.offers.get(offer_id) if owner is not None else None
            if held is not None and owner is not None and owner._ctx.id not in self.wiped:
                # Equal, unless a desk that took some lost its disk (and its trade with it).
                assert qty <= held.filled <= held.qty, f"{offer_id}: {qty} taken, {held.filled} of {held.qty}"
                assert qty == held.filled or self.wiped, f"{offer_id}: {qty} taken, {held.filled} granted"
        if not self.wiped:
            granted = {ref_of(request) for desk in desks.values() for request, t in desk.trades.items()}
            assert reports == granted, "a report on the tape that no desk granted"

    def _balances_are_what_was_funded_and_traded(self) -> None:
        """Counted apart from zmqex.core.balances: every account holds what it was funded with, plus what
        each fill of its trader's orders (placed since it opened) moved, both sides by the same rounded
        notional; what is reserved is what its open orders commit (nothing is in flight now)."""
        for (node, trader), (usd, btc, opened) in self.funded.items():
            replica = self.net.replica(node)
            replica.balances._check(replica.ledger)
            reserved = [0, 0]
            for oid, named in replica.traders.of.items():
                order = replica.ledger.orders[oid]
                if named != trader or order.event.seq <= opened:
                    continue
                for event in replica.ledger.fills_of.get(oid, ()):
                    cost = event.body.price * event.body.qty // 100_000_000
                    usd, btc = (usd - cost, btc + event.body.qty) if order.side is Side.BUY else (
                        usd + cost, btc - event.body.qty)
                if order.side is Side.BUY:
                    reserved[0] += order.price * order.open // 100_000_000
                else:
                    reserved[1] += order.open
            desk = replica.otc  # off the book: its private trades since the account opened, its open directed orders
            for request, trade in desk.trades.items():
                if desk.trader_of.get(request) != trader or request in self.before_account.get((node, trader), ()):
                    continue
                cost = trade.price * trade.qty // 100_000_000
                bought = (trade.taker == node) == (trade.side is Side.BUY)
                usd, btc = (usd - cost, btc + trade.qty) if bought else (usd + cost, btc - trade.qty)
            for offer in desk.offers.values():
                mine = offer.owner == node and desk.trader_of.get(offer.id) == trader
                if mine and offer.kind == DIRECTED and offer.open:
                    if offer.side is Side.BUY:
                        reserved[0] += offer.price * offer.open // 100_000_000
                    else:
                        reserved[1] += offer.open
            balance = replica.balance(trader)
            assert (balance.usd_total, balance.btc_total) == (usd, btc), f"{trader} at {node}: {balance}"
            assert [balance.usd_reserved, balance.btc_reserved] == reserved, f"{trader} at {node}: {balance}"
            assert balance.usd_available >= 0 and balance.btc_available >= 0


TestReplicasUnderFaults = ReplicasUnderFaults.TestCase


def crossed_only_for_credit(net: Network, replica: Replica) -> bool:
    """Whether every two orders that cross in ``replica``'s book are of two desks one of which gives
    the other no room for even one satoshi at the maker's price, or refused it lately (so the later
    one's owner does not ask)."""
    book = replica.ledger.book
    bids, asks = list(book.orders(Side.BUY)), list(book.orders(Side.SELL))
    for bid in bids:
        for ask in asks:
            if bid.price < ask.price:
                break
            maker, taker = (bid, ask) if bid.key < ask.key else (ask, bid)
            m, t = owner_of(maker.order_id), owner_of(taker.order_id)
            if m == t:
                return False  # its owner takes from itself at once
            of_m, of_t = net.replica(m), net.replica(t)
            if (of_t.credit.fit(m, maker.price, 1, of_t.wall()) and not of_t.credit.cooling(m, of_t.now)
                    and of_m.credit.fit(t, maker.price, 1, of_m.wall())):
                note(f"{maker.order_id} and {taker.order_id} cross, and credit would let them trade")
                return False
    return True


# --- differential: the distributed book trades like a naive matcher -----------------------


orders = st.lists(
    st.tuples(st.integers(0, 4), sides, qtys, prices, tifs, st.integers(0, 9)),
    min_size=1, max_size=40,
)


@given(n=st.integers(3, 5), script=orders)
def test_drained_network_trades_like_a_naive_matcher(n: int, script: list) -> None:
    net = Network(NAMES[:n])
    ref = NaiveMatcher()
    for node, side, qty, price, tif, cancel_roll in script:
        name = net.ids[node % n]
        if cancel_roll == 0 and ref.resting:  # now and then, cancel the oldest resting order
            victim = ref.resting[0]["id"]
            net.cancel(victim.split(":")[0], victim)
            ref.cancel(victim)
        else:
            gtd = tif is Tif.GTD  # one that never expires here: a GTC to the naive matcher
            try:
                oid = net.place(name, side, qty, price, tif, expire_at=10**15 if gtd else None)
            except (Rejected, InvalidRequest):
                oid = None
            if oid is not None or price is not None:  # a post-only needs a price: no test there
                accepted = ref.place(oid or "rejected", side, qty, price, Tif.GTC if gtd else tif)
                assert accepted == (oid is not None), f"post-only disagreement for {side} {qty}@{price}"
        net.drain()
    net.settle()
    for replica in net.live():
        ledger = replica.ledger
        got = [(f.body.maker, f.body.taker, f.body.price, f.body.qty) for f in ledger.fills.values()]
        assert sorted(got) == sorted(ref.fills)
        for side in Side:
            assert ledger.book.depth(side, 10**6) == ref.depth(side)
        for oid, filled in ref.filled.items():
            assert ledger.orders[oid].filled == filled
