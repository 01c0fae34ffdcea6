"""Off the book: requests for quote, firm quotes, directed orders and private trades (otc.py, otcdesk.py).

Every test runs on the checked simulator: each replica's ``_check`` (an own
offer is never traded past its quantity or after it expired; a copy is held
only by a desk it names; every private trade has its report on the tape) runs
after every step.
"""

from __future__ import annotations

import pytest

from zmqex.core import messages
from zmqex.core.events import Report, Side
from zmqex.core.messages import Accept, Share
from zmqex.core.otc import Status, ref_of
from zmqex.errors import Busy, CreditRefused, Forged, InsufficientBalance, InvalidRequest, OrderClosed, UnknownOrder
from tests.checked import Network

BUY, SELL = Side.BUY, Side.SELL
SEC = 1000


def reports(net: Network) -> set[tuple[int, int, str]]:
    """(price, qty, taker side) of every report, the same on every live replica."""
    seen = {frozenset((e.body.price, e.body.qty, e.body.side.value) for e in r.ledger.reports.values()
                      if isinstance(e.body, Report)) for r in net.live()}
    assert len(seen) == 1, f"replicas differ on the tape: {seen}"
    return set(seen.pop())


def rfq(net: Network, node: str, side: Side, qty: int, desks: list[str] | None = None, within: int = 30 * SEC) -> str:
    item = net.act(node, "rfq", side, qty, net.now + net.replica(node).epoch + within, desks=desks, trader="t1")
    return str(item.id)


def quote(net: Network, node: str, rfq_id: str, price: int, qty: int, valid: int = 10 * SEC) -> str:
    return str(net.act(node, "quote", rfq_id, price, qty, net.now + valid, trader="q1").id)


def quoted(net: Network, side: Side, qty: int, price: int, valid: int = 10 * SEC,
           desks: list[str] | None = None) -> str:
    """a asks for a quote, b quotes ``price`` for all of it, and both know: the quote's id."""
    r = rfq(net, "a", side, qty, desks)
    net.settle()
    q = quote(net, "b", r, price, qty, valid)
    net.settle()
    return q


def test_an_rfq_to_three_desks_answered_by_two_is_accepted_once_and_traded_once() -> None:
    net = Network(["a", "b", "c", "d"])
    r = rfq(net, "a", BUY, 5, ["b", "c", "d"])
    net.settle()
    assert all(r in net.replica(d).otc.rfqs for d in "bcd")
    qb = quote(net, "b", r, 100_00, 5)
    qc = quote(net, "c", r, 101_00, 5)
    net.settle()
    a = net.replica("a")
    assert {qb, qc} <= set(a.otc.offers)
    assert qb not in net.replica("c").otc.offers and qb not in net.replica("d").otc.offers, "a quote is private"
    request = net.act("a", "accept", qb, 5, trader="t1", token="acc")
    net.settle()
    assert net.replies["acc"]["trade"] is not None
    trade = a.otc.trades[request]
    assert (trade.maker, trade.taker, trade.price, trade.qty, trade.side) == ("b", "a", 100_00, 5, BUY)
    assert net.replica("b").otc.trades[request] == trade, "both desks know the trade in full"
    assert "c" not in {t.maker for t in net.replica("c").otc.trades.values()}
    assert reports(net) == {(100_00, 5, "buy")}, "every replica's tape has the report"
    assert net.replica("b").otc.offers[qb].status is Status.FILLED
    assert a.otc.rfqs[r].status is Status.FILLED
    with pytest.raises(OrderClosed):
        net.act("a", "accept", qc, 5, trader="t1")  # the request is answered: one accept
    assert len({r.ledger.state_hash() for r in net.live()}) == 1


def test_a_report_names_no_desk_unless_both_allow() -> None:
    from zmqex.core.config import Config
    for maker_allows, taker_allows, named in ((False, True, False), (True, False, False), (True, True, True)):
        net = Network(["a", "b"], Config(disclose_desks=maker_allows))
        r = rfq(net, "a", SELL, 3)
        net.settle()
        q = quote(net, "b", r, 50_00, 3)
        net.settle()
        net.act("a", "accept", q, 3, disclose=taker_allows)
        net.settle()
        (event,) = net.replica("a").ledger.reports.values()
        assert isinstance(event.body, Report)
        assert (event.body.maker_desk, event.body.taker_desk) == (("b", "a") if named else ("", ""))


def test_accepts_of_one_quote_in_flight_together_trade_at_most_its_size() -> None:
    net = Network(["a", "b"])
    q = quoted(net, BUY, 10, 100_00)
    first = net.act("a", "accept", q, 6, token="one")
    second = net.act("a", "accept", q, 6, token="two")  # a's copy still says 10 open: the owner decides
    net.settle()
    assert net.replies["one"]["trade"] and not net.replies["two"]["trade"]
    assert net.replies["two"]["reason"] == "size"
    assert sum(t.qty for t in net.replica("b").otc.trades.values()) == 6
    assert first in net.replica("a").otc.trades and second not in net.replica("a").otc.trades
    assert reports(net) == {(100_00, 6, "buy")}


@pytest.mark.parametrize("withdraw_first", [True, False])
def test_accept_against_withdraw_one_of_them_wins_whole(withdraw_first: bool) -> None:
    net = Network(["a", "b"])
    q = quoted(net, BUY, 4, 100_00)
    net.act("a", "accept", q, 4, token="acc")  # on the link a -> b, not yet delivered
    if withdraw_first:
        net.act("b", "withdraw", q, trader="q1")
        net.settle()
        assert net.replies["acc"] == {"request": net.replies["acc"]["request"], "reason": "closed", "trade": None}
        assert reports(net) == set()
    else:
        assert net.deliver("a", "b")
        with pytest.raises(OrderClosed):
            net.act("b", "withdraw", q, trader="q1")  # an accepted quote cannot be taken back
        net.settle()
        assert net.replies["acc"]["trade"]
        assert reports(net) == {(100_00, 4, "buy")}


def test_a_quote_that_expires_before_the_accept_arrives_trades_nothing() -> None:
    net = Network(["a", "b"])
    q = quoted(net, SELL, 2, 100_00, valid=1500)
    net.act("a", "accept", q, 2, token="acc")
    net.tick(2000)  # b's clock passes valid_until before the accept reaches it
    net.settle()
    assert net.replies["acc"]["reason"] == "expired"
    assert net.replica("b").otc.offers[q].status is Status.EXPIRED
    assert net.replica("a").otc.offers[q].status is Status.EXPIRED, "the owner shares the expiry"
    assert reports(net) == set()
    with pytest.raises(OrderClosed):
        net.act("a", "accept", q, 2)


def test_a_directed_order_travels_only_to_the_desks_it_names_and_only_they_can_take_it() -> None:
    net = Network(["a", "b", "c"])
    d = net.place("b", SELL, 10, 99_00, trader="seller", only=["a"])
    net.settle()
    assert d in net.replica("a").otc.offers
    assert d not in net.replica("c").otc.offers
    assert all(not r.ledger.orders for r in net.live()), "it never enters the public book"
    with pytest.raises(UnknownOrder):
        net.act("c", "accept", d, 1)
    # c learns the id and the price anyway, and asks b directly: b answers as for an unknown offer.
    forged = Accept("c.a99", d, 1, 99_00, False)
    net._enqueue("c", "b", messages.encode(forged))
    net.settle()
    assert "c.a99" not in net.replica("b").otc.trades
    assert net.replica("b").otc._answers["c.a99"][1].reason == "unknown"
    net.act("a", "accept", d, 4, token="acc")
    net.settle()
    assert net.replies["acc"]["trade"]
    assert net.replica("b").otc.offers[d].open == 6 and net.replica("a").otc.offers[d].open == 6
    assert reports(net) == {(99_00, 4, "buy")}
    info = net.act("b", "withdraw", d, trader="seller")
    assert info.status is Status.WITHDRAWN
    net.settle()
    assert net.replica("a").otc.offers[d].status is Status.WITHDRAWN


def test_bad_otc_commands_change_nothing() -> None:
    net = Network(["a", "b"])
    with pytest.raises(InvalidRequest):
        net.place("a", SELL, 1, 100, only=["zz"])  # not a member
    with pytest.raises(InvalidRequest):
        net.place("a", SELL, 1, 100, only=["a"])  # itself
    with pytest.raises(InvalidRequest):
        net.place("a", SELL, 1, None, "ioc", only=["b"])
    with pytest.raises(InvalidRequest):
        net.act("a", "rfq", BUY, 1, net.now - 1, desks=["b"])  # answer_by in the past
    with pytest.raises(UnknownOrder):
        net.act("a", "quote", "b:r1", 100, 1, net.now + 10)
    with pytest.raises(UnknownOrder):
        net.act("a", "withdraw", "b:q1")
    r = rfq(net, "a", BUY, 2)
    net.settle()
    with pytest.raises(InvalidRequest):
        quote(net, "b", r, 100, 3)  # more than asked
    with pytest.raises(UnknownOrder):
        net.act("b", "withdraw", r)  # not b's
    assert not net.replica("b").otc.offers and not net.replica("a").otc.offers


def test_forged_otc_messages_are_refused() -> None:
    net = Network(["a", "b", "c"])
    q = quoted(net, BUY, 2, 100, desks=["b"])
    offer = net.replica("a").otc.offers[q]
    c = net.replica("c")
    with pytest.raises(Forged):
        c.receive("a", Share(offer), net.now)  # a does not own it
    with pytest.raises(Forged):
        c.receive("b", Share(offer), net.now)  # it does not name c
    with pytest.raises(Forged):
        net.replica("b").receive("c", Accept("a.a7", q, 1, 100, False), net.now)  # a's request id, from c
    assert not c.otc.offers


def test_a_grant_survives_the_owner_crashing_before_its_answer_is_sent() -> None:
    net = Network(["a", "b"])
    q = quoted(net, BUY, 3, 100_00)
    request = net.act("a", "accept", q, 3, token="acc")
    assert net.deliver("a", "b", crash_before_send=True)  # b grants, persists, dies before sending
    net.restart("b")
    net.settle()  # a retries; b answers from its stored answer: one trade
    assert net.replies["acc"]["trade"]
    assert list(net.replica("b").otc.trades) == [request]
    assert reports(net) == {(100_00, 3, "buy")}


def test_a_pending_accept_survives_the_accepting_desk_crashing() -> None:
    net = Network(["a", "b"])
    q = quoted(net, BUY, 3, 100_00)
    request = net.act("a", "accept", q, 3)
    net.crash("a")
    net.restart("a")
    net.settle()
    assert request in net.replica("a").otc.trades and request in net.replica("b").otc.trades
    assert net.replica("a").otc.rfqs[net.replica("a").otc.offers[q].rfq].accepted == 3


def test_an_owner_that_lost_its_store_answers_a_retried_accept_from_the_tape() -> None:
    net = Network(["a", "b", "c"])
    q = quoted(net, BUY, 3, 100_00, desks=["b"])
    request = net.act("a", "accept", q, 3, token="acc")
    assert net.deliver("a", "b", crash_before_send=True)  # granted and persisted, nothing sent
    net.restart("b")
    net.partition(["a"])  # a's retries go nowhere while the report spreads from b to c
    for _ in range(10):
        net.tick(net.config.heartbeat_ms)
        net.drain()
    assert any(e.body.ref == ref_of(request) for e in net.replica("c").ledger.reports.values()
               if isinstance(e.body, Report))
    net.wipe("b")  # b loses its answer with its disk: only the tape remembers the grant
    net.settle()
    assert net.replies["acc"]["trade"], "b answered from the report, found by the request's digest"
    assert net.replica("a").otc.trades[request].qty == 3
    assert reports(net) == {(100_00, 3, "buy")}


def test_accepting_needs_the_owner_up_and_the_node_whole() -> None:
    net = Network(["a", "b"])
    q = quoted(net, BUY, 3, 100_00)
    net.crash("b")
    net.tick(net.config.peer_timeout_ms + 1)
    with pytest.raises(Busy):
        net.act("a", "accept", q, 3)
    assert ref_of("a.a1") != ref_of("b.a1")


def test_a_desk_that_lost_its_store_makes_no_id_its_peers_hold_already() -> None:
    net = Network(["a", "b"])
    old = rfq(net, "a", BUY, 3, ["b"])
    net.settle()
    net.tick(5_000)
    net.wipe("a")
    net.restart("a")
    net.settle()
    new = rfq(net, "a", BUY, 3, ["b"])
    net.settle()
    assert new != old and {old, new} <= set(net.replica("b").otc.rfqs)


# --- with balances and credit --------------------------------------------------------------


def test_an_accept_moves_both_traders_balances_exactly_and_a_quote_beyond_its_traders_balance_is_refused() -> None:
    net = Network(["a", "b"])
    net.fund("a", "t1", 1_000_00, 0)  # alice: $1,000, no BTC
    net.fund("b", "q1", 0, 3_000)  # the quoter: 3,000 satoshis
    r = rfq(net, "a", BUY, 3_000)
    net.settle()
    q = quote(net, "b", r, 50_000_00, 3_000)  # checked against its balance, not reserved ...
    net.fund("b", "q1", 0, -1_000)  # ... so its operator may take some back: the accept finds too little
    net.settle()
    net.act("a", "accept", q, 3_000, trader="t1", token="too much")
    net.settle()
    assert net.replies["too much"]["reason"] == "insufficient_balance" and not net.replies["too much"]["trade"]
    net.fund("b", "q1", 0, 1_000)
    net.act("a", "accept", q, 3_000, trader="t1", token="ok")
    net.settle()
    assert net.replies["ok"]["trade"] is not None
    cost = 50_000_00 * 3_000 // 10**8  # $1.50
    alice, bob = net.replica("a").balance("t1"), net.replica("b").balance("q1")
    assert (alice.usd_total, alice.btc_total) == (1_000_00 - cost, 3_000)
    assert (bob.usd_total, bob.btc_total) == (cost, 0)
    assert alice.usd_reserved == alice.btc_reserved == bob.usd_reserved == bob.btc_reserved == 0


def test_an_accept_reserves_its_traders_balance_until_answered() -> None:
    net = Network(["a", "b"])
    net.fund("a", "t1", 60, 0)  # $0.60
    d = net.place("b", SELL, 1_000, 50_000_00, trader="s", only=["a"])  # 1,000 sats for $0.50
    net.settle()
    net.act("a", "accept", d, 1_000, trader="t1")
    assert net.replica("a").balance("t1").usd_reserved == 50
    with pytest.raises(InsufficientBalance):  # the $0.50 it reserved is not available to a second one
        net.act("a", "accept", d, 1_000, trader="t1")
    net.settle()
    assert net.replica("a").balance("t1").usd_total == 10 and net.replica("a").balance("t1").usd_reserved == 0


def test_a_directed_order_reserves_what_it_may_spend() -> None:
    net = Network(["a", "b"])
    net.fund("b", "s", 0, 500)
    with pytest.raises(InsufficientBalance):
        net.place("b", SELL, 501, 50_000_00, trader="s", only=["a"])
    d = net.place("b", SELL, 500, 50_000_00, trader="s", only=["a"])
    assert d == "b:d1", "the refused one used no id"
    assert net.replica("b").balance("s").btc_reserved == 500
    net.act("b", "withdraw", d, trader="s")
    assert net.replica("b").balance("s").btc_reserved == 0


def test_credit_refuses_an_accept_at_either_desk() -> None:
    net = Network(["a", "b"])
    q = quoted(net, BUY, 10_000, 50_000_00)  # $5.00
    net.act("b", "set_credit", "a", 4_00)  # b grants a $4 of exposure: not enough
    net.act("a", "accept", q, 10_000, token="owner says no")
    net.settle()
    assert net.replies["owner says no"]["reason"] == "credit"
    net.act("b", "set_credit", "a", None)
    net.act("a", "set_credit", "b", 1_00)  # now a's own limit for b has no room: refused before asking
    with pytest.raises(CreditRefused):
        net.act("a", "accept", q, 10_000)
    net.act("a", "set_credit", "b", 10_00)
    net.act("a", "accept", q, 10_000, token="yes")
    net.settle()
    assert net.replies["yes"]["trade"] is not None
    assert net.replica("a").credit.exposure("b") == 50_000_00 * 10_000 == net.replica("b").credit.exposure("a")


def test_a_restart_reserves_a_directed_order_again_on_top_of_what_fills_brought() -> None:
    net = Network(["a", "b"])
    net.fund("b", "s", 0, 10)
    net.place("a", SELL, 5, 50_000_00)
    net.place("b", BUY, 5, 50_000_00, trader="s")  # s buys 5 more satoshis from a: 15 now
    net.settle()
    net.fund("b", "s", 1_00, 0)
    d = net.place("b", SELL, 15, 50_000_00, trader="s", only=["a"])  # all of them, directed
    net.crash("b")
    net.restart("b")
    assert net.replica("b").balance("s").btc_reserved == 15 and d in net.replica("b").otc.offers
