"""zmqex.core.balances: funded traders, what their orders reserve, and fills that move both sides exactly.

Unit tests of :class:`Balances` (the interface beyond orders), then the replica:
refusals that change nothing, reservations of market orders, amends and
cancels, fills between traders of two nodes, restarts, and the proof that a
fill cannot take available below zero (hypothesis).  The client protocol
(``fund``, ``balance``) at the end.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex import accountwire, protocol
from zmqex.api import ClientApi
from zmqex.core import money
from zmqex.core.balances import MAX_BTC, MAX_USD, Balance, Balances
from zmqex.core.events import Side, Tif
from zmqex.core.ledger import Ledger
from zmqex.core.money import notional
from zmqex.core.outputs import Funding, Persist
from zmqex.core.replica import Config, Replica
from zmqex.core.takes import Reservations
from zmqex.core.traders import Traders
from zmqex.errors import InsufficientBalance, InvalidAmount, InvalidRequest, InvariantViolation
from tests.checked import Network

BTC = money.SATS_PER_BTC
USD = money.CENTS_PER_USD


def accounts() -> Balances:
    return Balances("a", Traders(), Reservations())


def held(balances: Balances, trader: str) -> tuple[int, int, int, int]:
    """(usd total, usd reserved, btc total, btc reserved)."""
    b = balances.balance(trader)
    return b.usd_total, b.usd_reserved, b.btc_total, b.btc_reserved


# --- Balances on its own: fund, and reservations of any key ------------------------------------


def test_the_first_funding_opens_an_account_and_a_withdrawal_stops_at_available() -> None:
    balances = accounts()
    assert not balances.has_account("alice")
    with pytest.raises(InvalidRequest, match="no account"):
        balances.balance("alice")
    assert balances.fund("alice", 0, 0, Ledger(), 7) == Funding("alice", 0, 0, 7)  # opens it, empty
    assert balances.balance("alice") == Balance("alice", 0, 0, 0, 0)
    assert balances.fund("alice", 100_00, BTC, Ledger(), 9) == Funding("alice", 100_00, BTC, 7)  # opened stays
    balances.reserve("rfq-1", "alice", Side.BUY, 50_000_00, BTC // 1000)  # 50.00 USD
    assert held(balances, "alice") == (100_00, 50_00, BTC, 0)
    with pytest.raises(InsufficientBalance, match="50.00 USD available"):
        balances.fund("alice", -50_01, 0, Ledger(), 9)
    with pytest.raises(InsufficientBalance, match="withdrawal of 1.00000001 BTC"):
        balances.fund("alice", 0, -BTC - 1, Ledger(), 9)
    assert held(balances, "alice") == (100_00, 50_00, BTC, 0)  # refused: nothing changed
    balances.fund("alice", -50_00, -BTC, Ledger(), 9)
    assert held(balances, "alice") == (50_00, 50_00, 0, 0)
    balances._check(Ledger())


@pytest.mark.parametrize("usd, btc, error", [
    (1.5, 0, InvalidAmount), (0, 0.1, InvalidAmount), ("100", 0, InvalidAmount), (True, 0, InvalidAmount),
    (None, 0, InvalidAmount), (MAX_USD + 1, 0, InvalidAmount), (0, -MAX_BTC - 1, InvalidAmount),
    (10**40, 0, InvalidAmount),
])
def test_a_funding_that_is_not_whole_units_in_bounds_changes_nothing(usd: Any, btc: Any, error: type) -> None:
    balances = accounts()
    with pytest.raises(error):
        balances.fund("alice", usd, btc, Ledger(), 0)
    assert not balances.has_account("alice")


def test_an_account_holds_at_most_its_bound() -> None:
    balances = accounts()
    balances.fund("alice", MAX_USD, MAX_BTC, Ledger(), 0)
    for usd, btc in ((1, 0), (0, 1)):
        with pytest.raises(InvalidAmount, match="more than"):
            balances.fund("alice", usd, btc, Ledger(), 0)
    with pytest.raises(InvalidRequest, match="name"):
        balances.fund("", 1, 0, Ledger(), 0)


def test_a_key_reserves_replaces_releases_and_a_trade_under_it_uses_it_up() -> None:
    balances = accounts()
    balances.fund("bob", 1000_00, 2 * BTC, Ledger(), 0)
    balances.reserve("q1", "bob", Side.BUY, 40_000_00, 2 * BTC // 100)  # 800.00 USD
    with pytest.raises(InsufficientBalance, match="needs 400.00 USD; 200.00 available"):
        balances.check("bob", Side.BUY, 40_000_00, BTC // 100)
    with pytest.raises(InsufficientBalance):
        balances.reserve("q2", "bob", Side.BUY, 40_000_00, BTC // 100)
    assert balances.reserved("q2") == (0, 0) and held(balances, "bob")[1] == 800_00
    balances.check("bob", Side.BUY, 40_000_00, BTC // 100, freeing="q1")  # what q1 frees counts
    balances.reserve("q1", "bob", Side.BUY, 50_000_00, 2 * BTC // 100)  # replaced: 1000.00 fits with q1's 800.00
    assert balances.reserved("q1") == (1000_00, 0)
    balances.reserve("s1", "bob", Side.SELL, 1, 2 * BTC)
    with pytest.raises(InsufficientBalance, match="0.00000000 available"):
        balances.check("bob", Side.SELL, 1, 1)
    # half of q1 trades: the rest stays reserved; the total moves exactly
    balances.traded("bob", Side.BUY, 49_999_99, BTC // 100, key="q1")
    assert balances.reserved("q1") == (500_00, 0)
    assert held(balances, "bob") == (1000_00 - notional(49_999_99, BTC // 100), 500_00 + 0,
                                      2 * BTC + BTC // 100, 2 * BTC)
    balances.traded("bob", Side.SELL, 50_000_00, 2 * BTC, key="s1")
    assert balances.reserved("s1") == (0, 0)
    with pytest.raises(InsufficientBalance, match="reserve it first"):
        balances.traded("bob", Side.BUY, 50_000_00, 3 * BTC)  # 150,000 USD: it has about 100,500
    assert held(balances, "bob")[2] == BTC // 100  # refused: nothing moved
    balances.release("q1")
    balances.release("never")  # nothing held: nothing to do
    assert held(balances, "bob")[1] == 0
    balances.traded("nobody", Side.BUY, 1, 1)  # a trader without an account is not counted
    balances.reserve("k", "nobody", Side.BUY, 1, 1)
    assert balances.reserved("k") == (0, 0)
    balances._check(Ledger())


def test_require_funding_refuses_a_trader_without_an_account() -> None:
    balances = Balances("a", Traders(), Reservations(), require_funding=True)
    with pytest.raises(InsufficientBalance, match="no account"):
        balances.check("carol", Side.SELL, 1, 1)
    with pytest.raises(InsufficientBalance, match="no account"):
        balances.reserve("k", "carol", Side.SELL, 1, 1)
    balances.fund("carol", 0, 1, Ledger(), 0)
    balances.check("carol", Side.SELL, 1, 1)


def test_an_order_key_is_not_another_reservations() -> None:
    net = Network(["a"])
    net.fund("a", "alice", 0, BTC)
    oid = net.place("a", Side.SELL, BTC, 50_000_00, trader="alice")
    balances = net.replica("a").balances
    for call in (lambda: balances.reserve(oid, "alice", Side.SELL, 1, 1), lambda: balances.release(oid)):
        with pytest.raises(ValueError, match="own order"):
            call()
    assert balances.reserved(oid) == (0, BTC)


# --- the proof: a fill never takes available below zero ------------------------------------------


limits = st.integers(1, money.MAX_PRICE)


@given(limit=limits, data=st.data())
def test_fills_within_the_limit_never_cost_more_than_the_reserve_they_free(limit: int, data: st.DataObject) -> None:
    """notional(p, q) + notional(L, E - q) <= notional(L, E) for p <= L, q <= E: the module docstring's proof."""
    exposure = data.draw(st.integers(1, money.MAX_QTY))
    reserve = notional(limit, exposure)
    spent = 0
    while exposure:  # fills of the order, each at a price within its limit, until nothing is left
        qty = data.draw(st.integers(1, exposure))
        price = data.draw(st.integers(1, limit))
        assert notional(price, qty) + notional(limit, exposure - qty) <= notional(limit, exposure)
        spent += notional(price, qty)
        exposure -= qty
        assert spent + notional(limit, exposure) <= reserve  # what was spent and what stays reserved


@given(fills=st.lists(st.tuples(st.integers(9_990, 10_010), st.integers(1, 7)), min_size=1, max_size=12),
       limit=st.integers(10_000, 10_010), spare=st.integers(0, 3))
def test_a_buyer_funded_for_exactly_its_order_never_goes_below_zero(fills: list[tuple[int, int]], limit: int,
                                                                    spare: int) -> None:
    """Sellers at any prices within the buyer's limit, in any sizes and order: the buyer, funded for
    exactly what its order reserves (and ``spare`` cents), ends with exactly what the fills moved."""
    net = Network(["a", "b"])
    qty = sum(q for _, q in fills)
    net.fund("a", "bob", notional(limit, qty) + spare, 0)
    for price, q in fills:
        net.place("b", Side.SELL, q, min(price, limit), trader="s")  # every one rests, then bob takes them
    net.settle()
    oid = net.place("a", Side.BUY, qty, limit, trader="bob")
    net.settle()
    a = net.replica("a")
    assert a.ledger.orders[oid].filled == qty
    cost = sum(notional(min(price, limit), q) for price, q in fills)
    assert a.balance("bob") == Balance("bob", notional(limit, qty) + spare - cost, 0, qty, 0)


# --- the replica: placing, refusals, market orders, amends, cancels -------------------------------


def test_an_order_over_the_balance_is_refused_and_changes_nothing() -> None:
    net = Network(["a", "b"])
    net.fund("a", "alice", 500_00, BTC)
    a = net.replica("a")
    before = (dict(a.clock.items_sorted()), a.ledger.state_hash(), len(a.ledger.orders), a.balance("alice"))
    with pytest.raises(InsufficientBalance, match="needs 500.01 USD; 500.00 available"):
        a.place(Side.BUY, BTC // 100, 50_001_00, trader="alice")  # 0.01 BTC at 50,001.00
    with pytest.raises(InsufficientBalance, match="needs 1.00000001 BTC"):
        a.place(Side.SELL, BTC + 1, 50_000_00, trader="alice")
    assert a.take_outputs() == []  # nothing to persist, nobody to tell
    assert (dict(a.clock.items_sorted()), a.ledger.state_hash(), len(a.ledger.orders), a.balance("alice")) == before
    oid = net.place("a", Side.BUY, BTC // 100, 50_000_00, trader="alice")  # exactly what it has
    assert a.balance("alice") == Balance("alice", 500_00, 500_00, BTC, 0)
    net.place("a", Side.SELL, BTC, 60_000_00, trader="alice")
    assert a.balance("alice").btc_available == 0
    with pytest.raises(InsufficientBalance):
        net.place("a", Side.SELL, 1, 60_000_00, trader="alice")
    net.place("a", Side.SELL, 5, 60_000_00, trader="zed")  # a trader without an account is not checked
    a._check()
    assert a.balances.reserved(oid) == (500_00, 0)


def test_a_market_buy_reserves_at_the_edge_of_its_band_until_its_take_is_answered() -> None:
    net = Network(["a", "b"])
    net.place("b", Side.SELL, BTC, 100_00, trader="s")  # the best ask, at b
    net.settle()
    edge = 100_00 * 10_500 // 10_000  # 5% above the best ask (the default band)
    net.fund("a", "bob", notional(edge, BTC) - 1, 0)
    a = net.replica("a")
    with pytest.raises(InsufficientBalance, match="at 105.00 needs 105.00 USD; 104.99 available"):
        a.place(Side.BUY, BTC, None, Tif.IOC, trader="bob")
    net.fund("a", "bob", 1, 0)
    oid = net.place("a", Side.BUY, BTC, None, Tif.IOC, trader="bob")
    assert a.ledger.orders[oid].price == edge and a.balances.reserved(oid) == (105_00, 0)  # its take is in flight
    assert a.balance("bob").usd_available == 0
    net.settle()
    assert a.balance("bob") == Balance("bob", 5_00, 0, BTC, 0)  # it paid the maker's price, not the edge
    assert net.replica("b").ledger.orders[oid].filled == BTC


def test_a_cancelled_order_keeps_what_its_take_in_flight_may_still_fill() -> None:
    """A cancel stops new promises, not the take already asked: until it is answered, what it asked stays
    reserved, so the trader cannot spend it twice."""
    net = Network(["a", "b"])
    net.place("b", Side.SELL, BTC, 100_00, trader="s")
    net.settle()
    net.fund("a", "bob", 100_00, 0)
    a = net.replica("a")
    oid = net.place("a", Side.BUY, BTC, 100_00, trader="bob")  # asks b for it
    assert a.order_info(oid)["pending"] == BTC
    net.cancel("a", oid, trader="bob")
    assert a.ledger.orders[oid].open == 0 and a.balances.reserved(oid) == (100_00, 0)
    with pytest.raises(InsufficientBalance, match="needs 1.00 USD; 0.00 available"):
        a.place(Side.BUY, BTC // 100, 100_00, trader="bob")
    net.settle()  # b grants it: the cancelled order filled, and paid from what stayed reserved
    assert a.ledger.orders[oid].filled == BTC
    assert a.balance("bob") == Balance("bob", 0, 0, BTC, 0)


def test_a_cancelled_order_whose_take_is_refused_frees_what_it_kept() -> None:
    net = Network(["a", "b"])
    ask = net.place("b", Side.SELL, BTC, 100_00, trader="s")
    net.settle()
    net.fund("a", "bob", 100_00, 0)
    a = net.replica("a")
    oid = net.place("a", Side.BUY, BTC, 100_00, trader="bob")
    net.cancel("a", oid, trader="bob")
    net.cancel("b", ask, trader="s")  # before bob's take gets there: it is answered closed, nothing granted
    assert a.balances.reserved(oid) == (100_00, 0)
    net.settle()
    assert a.ledger.orders[oid].filled == 0 and a.balances.reserved(oid) == (0, 0)
    assert a.balance("bob") == Balance("bob", 100_00, 0, 0, 0)


def test_a_cancel_frees_what_the_order_reserved() -> None:
    net = Network(["a"])
    net.fund("a", "alice", 1000_00, BTC)
    buy = net.place("a", Side.BUY, BTC // 100, 99_000_00, trader="alice")
    sell = net.place("a", Side.SELL, BTC // 2, 100_000_00, trader="alice")
    a = net.replica("a")
    assert a.balance("alice") == Balance("alice", 1000_00, 990_00, BTC, BTC // 2)
    net.cancel("a", buy, trader="alice")
    assert a.balance("alice") == Balance("alice", 1000_00, 0, BTC, BTC // 2)
    assert net.cancel_all("a", "alice") == [sell]
    assert a.balance("alice") == Balance("alice", 1000_00, 0, BTC, 0)


def test_an_amend_must_fit_with_what_the_old_order_frees_and_a_reduce_only_frees() -> None:
    net = Network(["a"])
    net.fund("a", "alice", 1000_00, 0)
    oid = net.place("a", Side.BUY, BTC // 100, 90_000_00, trader="alice")  # 900.00
    a = net.replica("a")
    with pytest.raises(InsufficientBalance, match="needs 1000.01 USD; 1000.00 available"):
        net.amend("a", oid, price=100_001_00, trader="alice")
    assert a.ledger.orders[oid].open == BTC // 100 and a.balances.reserved(oid) == (900_00, 0)  # unchanged
    new = net.amend("a", oid, price=100_000_00, trader="alice")  # all of it: the old 900.00 counts
    assert new != oid and a.balances.reserved(new) == (1000_00, 0) and a.balances.reserved(oid) == (0, 0)
    with pytest.raises(InsufficientBalance):
        net.amend("a", new, qty=BTC // 100 + BTC // 10_000, trader="alice")  # more quantity: a new order too
    assert net.amend("a", new, qty=BTC // 200, trader="alice") == new  # a reduce keeps it, and frees half
    assert a.balance("alice") == Balance("alice", 1000_00, 500_00, 0, 0)


def test_a_fill_or_kill_reserves_like_any_order() -> None:
    net = Network(["a", "b"])
    net.place("b", Side.SELL, BTC // 2, 100_00, trader="s")
    net.settle()
    net.fund("a", "bob", 100_00, 0)
    a = net.replica("a")
    with pytest.raises(InsufficientBalance, match="needs 100.01 USD"):
        a.place(Side.BUY, BTC, 100_01, Tif.FOK, trader="bob")
    killed = net.place("a", Side.BUY, BTC, 100_00, Tif.FOK, trader="bob")  # more than the book has
    assert a.ledger.orders[killed].status == "cancelled" and a.balance("bob") == Balance("bob", 100_00, 0, 0, 0)
    oid = net.place("a", Side.BUY, BTC // 2, 100_00, Tif.FOK, trader="bob")
    assert a.balances.reserved(oid) == (50_00, 0) and a.coordinator.working(oid)  # its holds are asked for
    net.settle()
    assert a.balance("bob") == Balance("bob", 50_00, 0, BTC // 2, 0)


# --- fills between traders, on two nodes and on one ---------------------------------------------


def test_a_trade_between_traders_of_two_nodes_moves_both_exactly() -> None:
    net = Network(["a", "b"])
    net.fund("a", "alice", 0, BTC)
    net.fund("b", "bob", 1_000_00, 0)
    price, qty = 33_333_33, 1_234_567  # 411.52...: rounded down, the same on both sides
    cost = notional(price, qty)
    assert cost == 411_52 and price * qty % BTC
    net.place("a", Side.SELL, qty, price, trader="alice")
    net.settle()
    net.place("b", Side.BUY, 2 * qty, price + 1, trader="bob")  # takes alice's at her price; the rest rests
    net.settle()
    a, b = net.replica("a"), net.replica("b")
    assert a.balance("alice") == Balance("alice", cost, 0, BTC - qty, 0)
    assert b.balance("bob") == Balance("bob", 1_000_00 - cost, notional(price + 1, qty), qty, 0)
    assert not b.balances.has_account("alice") and not a.balances.has_account("bob")  # node-local


def test_a_trade_between_two_traders_of_one_node_moves_both_and_a_traders_own_nets_out() -> None:
    net = Network(["a"])
    net.fund("a", "alice", 0, BTC)
    net.fund("a", "bob", 1_000_00, 0)
    net.place("a", Side.SELL, BTC // 100, 70_000_00, trader="alice")
    net.place("a", Side.BUY, BTC // 100, 70_000_00, trader="bob")
    a = net.replica("a")
    assert a.balance("alice") == Balance("alice", 700_00, 0, BTC - BTC // 100, 0)
    assert a.balance("bob") == Balance("bob", 300_00, 0, BTC // 100, 0)


def test_orders_placed_before_an_account_opened_are_not_counted_even_after_a_restart() -> None:
    net = Network(["a", "b"])
    net.place("a", Side.SELL, BTC, 50_000_00, trader="alice")  # no account: not checked
    with pytest.raises(InvalidRequest, match="1 open orders placed before"):
        net.fund("a", "alice", 0, 0)
    net.place("b", Side.BUY, BTC, 50_000_00, trader="x")  # it fills
    net.settle()
    net.fund("a", "alice", 0, BTC // 2)
    a = net.replica("a")
    assert a.balance("alice") == Balance("alice", 0, 0, BTC // 2, 0)
    net.crash("a")
    net.restart("a")
    assert net.replica("a").balance("alice") == Balance("alice", 0, 0, BTC // 2, 0)


def test_a_restart_rebuilds_totals_and_reservations_from_fundings_and_the_ledger() -> None:
    net = Network(["a", "b"])
    net.fund("a", "alice", 2_000_00, 3 * BTC)
    net.fund("a", "alice", -1_000_00, 0)
    net.place("a", Side.SELL, BTC, 50_000_00, trader="alice")
    resting = net.place("a", Side.BUY, BTC // 100, 49_000_00, trader="alice")
    net.settle()
    net.place("b", Side.BUY, BTC // 4, 50_000_00, trader="x")
    net.settle()
    before = net.replica("a").balance("alice")
    assert before == Balance("alice", 1_000_00 + 12_500_00, 490_00, 3 * BTC - BTC // 4, BTC - BTC // 4)
    net.crash("a")
    records = list(net.nodes["a"].store)
    assert [r for r in records if isinstance(r, Funding)] == [Funding("alice", 2_000_00, 3 * BTC, 0),
                                                              Funding("alice", -1_000_00, 0, 0)]
    restored = Replica.restore("a", records, peers=["b"])
    restored._check()
    assert restored.balance("alice") == before and restored.balances.reserved(resting) == (490_00, 0)


def test_a_snapshot_that_brings_a_fill_of_a_funded_order_moves_its_total() -> None:
    """A replica that catches up from a snapshot gets fills without their events: counted all the same."""
    net = Network(["a", "b", "c"], Config(compact_after=1, compact_every_ms=0))
    net.fund("a", "alice", 0, BTC)
    oid = net.place("a", Side.SELL, BTC, 10_000_00, trader="alice")
    net.settle()
    net.place("b", Side.BUY, BTC, 10_000_00, trader="x")
    net.settle()
    assert net.replica("a").balance("alice") == Balance("alice", 10_000_00, 0, 0, 0)
    a = net.replica("a")
    a.balances.recount(a.ledger)  # from scratch, it says the same
    assert a.balance("alice") == Balance("alice", 10_000_00, 0, 0, 0) and a.ledger.orders[oid].filled == BTC


def test_the_check_finds_a_balance_that_drifted() -> None:
    net = Network(["a"])
    net.fund("a", "alice", 100_00, 0)
    net.place("a", Side.BUY, BTC // 1000, 50_000_00, trader="alice")
    a = net.replica("a")
    a.balances._accounts["alice"].filled_usd -= 1  # a fill counted twice, say
    with pytest.raises(InvariantViolation, match="fills moved"):
        a._check()
    a.balances.recount(a.ledger)
    a._check()
    a.balances._accounts["alice"].funded_usd -= 60_00  # available below zero
    with pytest.raises(InvariantViolation, match="less than nothing"):
        a._check()


def test_require_funding_refuses_places_of_traders_without_an_account() -> None:
    net = Network(["a"], Config(require_funding=True))
    with pytest.raises(InsufficientBalance, match="only for funded traders"):
        net.place("a", Side.SELL, 1, 100, trader="zed")
    with pytest.raises(InsufficientBalance):
        net.place("a", Side.SELL, 1, 100)  # no name, no account
    net.fund("a", "zed", 0, 1)
    net.place("a", Side.SELL, 1, 100, trader="zed")
    assert len(net.replica("a").ledger.orders) == 1


def test_a_node_without_fundings_behaves_as_before() -> None:
    net = Network(["a"])
    a = net.replica("a")
    net.place("a", Side.SELL, 10 * BTC, 1, trader="alice")  # no account, no check, no reservation
    assert a.balances.traders == [] and a.balances.reserved("a:1") == (0, 0)
    with pytest.raises(InvalidRequest, match="no account"):
        a.balance("alice")


# --- the client protocol: fund and balance --------------------------------------------------------


class Node:
    """A replica and its api; ``user`` as a keyed node's ZAP gives it (None: no keys)."""

    def __init__(self) -> None:
        self.replica = Replica("a")
        self.api = ClientApi(self.replica)

    def ask(self, user: str | None = None, who: bytes = b"\x00c", **request: Any) -> dict[str, Any]:
        reply = self.api.handle(who, msgpack.packb({"v": 1, "id": 1, **request}), user=user)
        assert reply is not None
        return dict(msgpack.unpackb(reply))


def test_fund_then_balance_over_the_protocol_and_the_funding_is_a_promise() -> None:
    node = Node()
    reply = node.ask(op="fund", account="alice", usd="1000.5", btc="0.25", trader="anyone")
    assert reply["ok"], reply
    assert reply["result"] == {"trader": "alice",
                               "usd": {"total": "1000.50", "reserved": "0.00", "available": "1000.50"},
                               "btc": {"total": "0.25000000", "reserved": "0.00000000", "available": "0.25000000"}}
    assert node.api.changed  # the reply waits for the commit
    assert [o for o in node.replica.take_outputs() if isinstance(o, Persist)] == [
        Persist(Funding("alice", 1000_50, BTC // 4, 0), promise=True)]
    assert node.ask(op="place", side="buy", qty="0.01", price="50000", trader="alice", ack="accepted")["ok"]
    node.replica.take_outputs()
    mine = node.ask(op="balance", trader="alice")["result"]
    assert accountwire.parse_balance(mine) == mine
    assert mine["usd"] == {"total": "1000.50", "reserved": "500.00", "available": "500.50"}
    withdrawn = node.ask(op="fund", account="alice", usd="-500.50", trader="anyone")["result"]
    assert withdrawn["usd"]["available"] == "0.00" and withdrawn["btc"]["total"] == "0.25000000"
    refused = node.ask(op="place", side="buy", qty="0.00002", price="50000", trader="alice")  # 1.00 USD
    assert refused["error"]["code"] == "insufficient_balance", refused


@pytest.mark.parametrize("args, code", [
    ({"usd": "-0.01"}, "insufficient_balance"),  # a withdrawal from nothing
    ({"usd": 5}, "invalid_amount"), ({"usd": 1.5}, "invalid_amount"), ({"btc": "0.000000001"}, "invalid_amount"),
    ({"usd": "1e3"}, "invalid_amount"), ({"usd": "+1"}, "invalid_amount"), ({"usd": "01"}, "invalid_amount"),
    ({"usd": "--1"}, "invalid_amount"), ({"usd": " 1"}, "invalid_amount"), ({"usd": "1.001"}, "invalid_amount"),
    ({"usd": "9" * 16}, "invalid_amount"), ({"btc": "21000000.00000001"}, "invalid_amount"),
    ({"usd": [1]}, "invalid_amount"), ({"usd": "NaN"}, "invalid_amount"),
    ({"usd": "10000000000000.01"}, "invalid_amount"),  # past MAX_USD
    ({"account": ""}, "invalid_request"), ({"account": None}, "invalid_request"),
    ({"account": "o:root"}, "invalid_request"), ({"account": "x" * 33}, "invalid_request"),
    ({"amount": "1"}, "invalid_request"),
])
def test_a_bad_fund_is_refused_and_changes_nothing(args: dict[str, Any], code: str) -> None:
    node = Node()
    node.ask(op="fund", account="bob", usd="1", btc="1")  # an account to leave alone
    node.replica.take_outputs()
    before = node.replica.balance("bob")
    reply = node.ask(op="fund", **{"account": "alice", **args})
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    assert node.replica.take_outputs() == [] and node.replica.balance("bob") == before
    assert not node.replica.balances.has_account("alice")


def test_bounds_of_a_fund_are_inclusive() -> None:
    node = Node()
    assert node.ask(op="fund", account="alice", usd="10000000000000.00", btc="21000000")["ok"]
    assert node.ask(op="fund", account="bob", usd="-0", btc="0.00")["ok"]  # zero either way: opens it, empty
    assert node.replica.balance("bob") == Balance("bob", 0, 0, 0, 0)


def test_a_balance_of_a_trader_without_an_account_is_a_clear_error() -> None:
    node = Node()
    for request in ({"trader": "ghost"}, {"account": "ghost"}, {}):
        reply = node.ask(op="balance", **request)
        assert reply["error"]["code"] == "invalid_request" and "no account" in reply["error"]["message"], reply
    assert node.ask(op="balance", account="bad name")["error"]["code"] == "invalid_request"


def test_with_keys_only_an_operator_funds_and_sees_another_traders_balance() -> None:
    node = Node()
    refused = node.ask("t:bob", op="fund", account="bob", usd="1000000")
    assert refused["error"]["code"] == "not_owner" and "operator" in refused["error"]["message"]
    assert node.replica.take_outputs() == [] and not node.replica.balances.has_account("bob")
    assert node.ask("o:root", op="fund", account="bob", usd="10")["ok"]
    assert node.ask("o:root", op="fund", account="alice", usd="20")["ok"]
    assert node.ask("t:bob", op="balance")["result"]["usd"]["total"] == "10.00"
    assert node.ask("t:bob", op="balance", account="bob")["ok"]
    assert node.ask("t:bob", op="balance", account="alice")["error"]["code"] == "not_owner"
    assert node.ask("o:root", op="balance", account="alice")["result"]["usd"]["total"] == "20.00"
    assert node.ask("t:bob", op="fund", account="alice", usd="-20", trader="bob")["error"]["code"] == "not_owner"
    assert node.replica.balance("alice").usd_total == 20_00


def test_a_funding_is_refused_while_the_store_cannot_be_written() -> None:
    from zmqex.errors import StoreUnavailable

    node = Node()
    node.api.refusal = (StoreUnavailable, "node a cannot write its store (disk full)")
    assert node.ask(op="fund", account="alice", usd="1")["error"]["code"] == "store_unavailable"
    assert node.ask(op="balance", account="alice")["error"]["code"] == "invalid_request"  # a read: answered


def test_a_client_builds_fund_requests_as_a_node_reads_them() -> None:
    from decimal import Decimal

    assert accountwire.fund_request("alice", Decimal("-1.50"), 2) == {"account": "alice", "usd": "-1.50",
                                                                    "btc": "2.00000000"}
    assert accountwire.fund_request("alice", "0.1") == {"account": "alice", "usd": "0.10"}
    assert accountwire.fund_args(accountwire.fund_request("bob", "-0.01", Decimal("1E-8"))) == ("bob", -1, 1)
    for bad in (0.1, True, Decimal("NaN"), "1.001", Decimal("0.001"), 10**17):
        with pytest.raises(InvalidAmount):
            accountwire.fund_request("alice", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        accountwire.fund_request("not a name", "1")
    assert accountwire.balance_request() == {} and accountwire.balance_request("bob") == {"account": "bob"}


@pytest.mark.parametrize("mutate", [
    lambda b: b["usd"].update(available="1.00"),  # not total less reserved
    lambda b: b["btc"].update(total="1"),  # not canonical
    lambda b: b["usd"].update(reserved="-1.00"),
    lambda b: b.pop("btc"),
    lambda b: b.update(trader=7),
])
def test_a_bad_balance_reply_raises_decode_error(mutate: Any) -> None:
    from zmqex.errors import DecodeError

    good = accountwire.balance_view(Balance("alice", 10_00, 2_50, BTC, 0))
    assert accountwire.parse_balance(good) == good
    mutate(good)
    with pytest.raises(DecodeError):
        accountwire.parse_balance(good)


# --- the store keeps fundings; a store of the version before balances is upgraded in place ----------


def test_fundings_survive_the_sqlite_store_and_rebuild_the_same_balances(tmp_path: Any) -> None:
    from zmqex.store import SqliteStore

    net = Network(["a", "b"])
    net.fund("a", "alice", 1_000_00, BTC)
    net.place("a", Side.SELL, BTC // 2, 40_000_00, trader="alice")
    net.place("a", Side.BUY, BTC // 100, 30_000_00, trader="alice")
    net.settle()
    net.place("b", Side.BUY, BTC // 4, 40_000_00, trader="x")
    net.settle()
    net.fund("a", "alice", -100_00, 0)
    before = net.replica("a").balance("alice")
    store = SqliteStore(tmp_path, "a")
    store.commit(net.nodes["a"].store)
    store.close()
    store = SqliteStore(tmp_path, "a")
    records = list(store.records())
    store.close()
    assert [r for r in records if isinstance(r, Funding)] == [Funding("alice", 1_000_00, BTC, 0),
                                                              Funding("alice", -100_00, 0, 0)]
    restored = Replica.restore("a", records, peers=["b"])
    restored._check()
    assert restored.balance("alice") == before == Balance("alice", 900_00 + 10_000_00, 300_00, BTC - BTC // 4,
                                                          BTC // 4)


def test_stores_of_schema_versions_3_and_4_are_upgraded_and_an_older_one_refused(tmp_path: Any) -> None:
    import sqlite3

    from zmqex import store as stores
    from zmqex.errors import StoreError

    net = Network(["a"])
    oid = net.place("a", Side.SELL, 5, 100, trader="alice")
    for version in (4, 3, 2):
        directory = tmp_path / f"v{version}"
        store = stores.SqliteStore(directory, "a")
        store.commit(net.nodes["a"].store)
        store.close()
        db = sqlite3.connect(directory / stores.FILENAME)  # as a zmqex before envelopes (and balances) left it
        db.execute("ALTER TABLE events DROP COLUMN last")
        if version < 4:
            db.execute("DROP TABLE funding")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        db.commit()
        db.close()
    with pytest.raises(StoreError, match="schema version 2; .* start from an empty data directory"):
        stores.SqliteStore(tmp_path / "v2", "a")
    for version in (3, 4):
        store = stores.SqliteStore(tmp_path / f"v{version}", "a")
        store.commit([Funding("bob", 5, 0, 1)])
        assert store._meta("schema_version") == str(stores.SCHEMA_VERSION) == "5"
        restored = Replica.restore("a", store.records())
        store.close()
        assert oid in restored.ledger.orders and restored.traders.of[oid] == "alice"  # nothing of it lost
        assert restored.balance("bob") == Balance("bob", 5, 0, 0, 0)