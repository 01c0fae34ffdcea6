"""Fill or kill: hold at every maker's owner, then confirm all or release all (coordinator.py, holds.py).

Every test runs on the checked simulator: every replica's ``_check`` (which
holds, per own fill-or-kill order, "filled is 0 or all of it, and only after
a commit") runs after every step, crashes and restarts included.
"""

from __future__ import annotations

import pytest

from zmqex.core.config import Config
from zmqex.core.events import Side, Tif
from zmqex.core.messages import Confirm, Hold, HoldReply
from zmqex.core.outputs import Decision, HoldTaken
from zmqex.errors import Busy
from tests.checked import Network

BUY, SELL = Side.BUY, Side.SELL
CONFIG = Config()


def fills_of(net: Network, oid: str) -> list[tuple[str, int, int]]:
    """(maker, price, qty) of every fill of ``oid``, the same on every live replica."""
    seen = {tuple(sorted((f["maker"], f["price"], f["qty"]) for f in r.order_info(oid)["fills"])) for r in net.live()}
    assert len(seen) == 1, f"replicas differ on the fills of {oid}: {seen}"
    return list(seen.pop())


def assert_whole_or_nothing(net: Network, fok: str, qty: int) -> str:
    """Every replica agrees the order is filled whole, or killed with nothing filled; returns which."""
    statuses = {(r.order_info(fok)["status"], r.order_info(fok)["filled"], r.order_info(fok)["reason"])
                for r in net.live()}
    assert statuses in ({("filled", qty, None)}, {("cancelled", 0, "killed")}), statuses
    return statuses.pop()[0]


def test_a_fok_fills_whole_from_makers_on_several_nodes_its_own_included() -> None:
    net = Network(["a", "b", "c"])
    b = net.place("b", SELL, 3, 100)
    c = net.place("c", SELL, 4, 101)
    a = net.place("a", SELL, 2, 102)
    net.settle()
    fok = net.place("a", BUY, 8, 102, Tif.FOK, token="t")
    assert "t" not in net.replies, "the reply waits for the decision"
    net.settle()
    assert net.replies["t"]["status"] == "filled"
    assert assert_whole_or_nothing(net, fok, 8) == "filled"
    assert fills_of(net, fok) == sorted([(b, 100, 3), (c, 101, 4), (a, 102, 1)])
    assert net.replica("b").counters["holds_taken"] == 1


def test_a_fok_the_book_cannot_cover_is_killed_at_once_and_nothing_is_held() -> None:
    net = Network(["a", "b"])
    net.place("b", SELL, 3, 100)
    net.settle()
    fok = net.place("a", BUY, 5, 100, Tif.FOK, token="t")
    assert net.replies["t"]["status"] == "cancelled" and net.replies["t"]["reason"] == "killed"
    assert net.replica("a").in_flight == 0
    net.settle()
    assert assert_whole_or_nothing(net, fok, 5) == "cancelled"
    assert net.replica("b").counters["holds_taken"] == 0


def test_a_hold_that_comes_back_short_is_made_up_by_another_maker() -> None:
    net = Network(["a", "b", "c", "d"])
    b = net.place("b", SELL, 5, 100)
    c = net.place("c", SELL, 5, 101)
    net.settle()
    net.place("d", BUY, 3, 100)  # d's take reaches b first ...
    fok = net.place("a", BUY, 5, 101, Tif.FOK)  # ... so b holds only 2 of the 5 a plans on
    assert net.deliver("d", "b")
    net.settle()
    assert assert_whole_or_nothing(net, fok, 5) == "filled"
    assert fills_of(net, fok) == sorted([(b, 100, 2), (c, 101, 3)])


def test_a_short_hold_with_nothing_to_make_it_up_kills_the_order_and_releases_every_hold() -> None:
    net = Network(["a", "b", "c", "d"])
    b = net.place("b", SELL, 5, 100)
    c = net.place("c", SELL, 5, 100)
    net.settle()
    net.place("d", BUY, 1, 100)
    fok = net.place("a", BUY, 10, 100, Tif.FOK)
    assert net.deliver("d", "b")
    net.settle()
    assert assert_whole_or_nothing(net, fok, 10) == "cancelled"
    for replica in net.live():
        assert replica.order_info(c)["open"] == 5 and replica.order_info(b)["open"] == 4
    assert net.replica("c").counters["holds_released"] == 1


def test_what_is_held_cannot_be_granted_to_anyone_else() -> None:
    net = Network(["a", "b", "c"])
    maker = net.place("b", SELL, 5, 100)
    net.settle()
    fok = net.place("a", BUY, 5, 100, Tif.FOK)
    while net.deliver("a", "b"):  # the order, then the hold: b holds all 5
        pass
    assert net.replica("b").taker.reservations.held(maker) == 5
    other = net.place("c", BUY, 5, 100)  # its take waits at b: there is no room
    while net.deliver("c", "b"):
        pass
    assert net.replica("b").order_info(maker)["filled"] == 0
    net.settle()
    assert assert_whole_or_nothing(net, fok, 5) == "filled"
    for replica in net.live():
        assert replica.order_info(other)["filled"] == 0 and replica.order_info(maker)["filled"] == 5


def test_a_makers_owner_that_never_answers_gets_the_order_killed_after_hold_wait() -> None:
    net = Network(["a", "b", "c"])
    b = net.place("b", SELL, 3, 100)
    net.place("c", SELL, 3, 100)
    net.settle()
    net.crash("c")  # still up as far as a knows
    fok = net.place("a", BUY, 6, 100, Tif.FOK, token="t")
    net.drain()
    assert net.replica("b").taker.reservations.held(b) == 3
    net.tick(CONFIG.hold_wait_ms)
    net.drain()
    assert net.replies["t"]["reason"] == "killed"
    assert net.replica("b").taker.reservations.held(b) == 0, "released at once on the decision"
    net.settle()
    assert assert_whole_or_nothing(net, fok, 6) == "cancelled"


def test_a_coordinator_that_dies_undecided_aborts_on_restart_and_its_holders_let_go() -> None:
    net = Network(["a", "b", "c"])
    b = net.place("b", SELL, 3, 100)
    c = net.place("c", SELL, 3, 100)
    net.settle()
    fok = net.place("a", BUY, 6, 100, Tif.FOK)
    for holder in ("b", "c"):
        while net.deliver("a", holder):
            pass
    net.crash("a")  # both hold; their answers go nowhere
    assert net.replica("b").taker.reservations.held(b) == 3
    net.tick(CONFIG.inquire_after_ms)  # they ask a, which is down: they keep holding
    net.drain()
    assert net.replica("c").taker.reservations.held(c) == 3
    net.restart("a")
    assert net.replica("a").in_flight == 1  # the abort, on its first input
    net.settle()
    assert assert_whole_or_nothing(net, fok, 6) == "cancelled"
    assert net.replica("b").taker.reservations.held(b) == 0 and net.replica("c").taker.reservations.held(c) == 0
    decision = next(r for r in net.nodes["a"].store if isinstance(r, Decision))
    assert decision.order == fok and not decision.commit


def test_a_coordinator_that_dies_after_committing_confirms_after_restart() -> None:
    net = Network(["a", "b", "c"])
    net.place("b", SELL, 3, 100)
    net.place("c", SELL, 3, 100)
    net.settle()
    fok = net.place("a", BUY, 6, 100, Tif.FOK)
    for holder in ("b", "c"):
        while net.deliver("a", holder):
            pass
    assert net.deliver("b", "a")
    assert net.deliver("c", "a", crash_before_send=True)  # the commit is durable, its confirms not sent
    assert any(isinstance(r, Decision) and r.commit for r in net.nodes["a"].store)
    net.restart("a")
    net.settle()
    assert assert_whole_or_nothing(net, fok, 6) == "filled"


def test_a_holder_that_dies_after_holding_keeps_the_hold_across_its_restart() -> None:
    net = Network(["a", "b"])
    maker = net.place("b", SELL, 4, 100)
    net.settle()
    fok = net.place("a", BUY, 4, 100, Tif.FOK)
    assert net.deliver("a", "b")  # the order
    assert net.deliver("a", "b", crash_before_send=True)  # the hold: persisted, unanswered
    assert any(isinstance(r, HoldTaken) for r in net.nodes["b"].store)
    net.restart("b")
    assert net.replica("b").taker.reservations.held(maker) == 4
    with pytest.raises(Exception):
        net.amend("b", maker, qty=2)  # held: it cannot go below what is promised
    net.settle()
    assert assert_whole_or_nothing(net, fok, 4) == "filled"


def test_partitioned_from_its_holder_the_coordinator_aborts_and_the_holder_learns_it_by_asking() -> None:
    net = Network(["a", "b"])
    maker = net.place("b", SELL, 4, 100)
    net.settle()
    fok = net.place("a", BUY, 4, 100, Tif.FOK)
    while net.deliver("a", "b"):
        pass
    net.partition(["a"])  # b's answer is lost
    net.tick(CONFIG.inquire_after_ms)
    net.drain()
    assert net.replica("a").order_info(fok)["reason"] == "killed"
    assert net.replica("b").taker.reservations.held(maker) == 4, "b never lets go on its own clock"
    net.settle()
    assert assert_whole_or_nothing(net, fok, 4) == "cancelled"
    assert net.replica("b").order_info(maker)["open"] == 4 and net.replica("b").counters["holds_inquired"] >= 1


def test_a_fok_meeting_its_own_traders_order_is_killed_for_self_trade() -> None:
    net = Network(["a", "b"])
    net.place("b", SELL, 2, 99)
    net.place("a", SELL, 2, 100, trader="alice")
    net.settle()
    fok = net.place("a", BUY, 4, 100, Tif.FOK, trader="alice", token="t")
    assert net.replies["t"]["reason"] == "self_trade"
    net.settle()
    assert net.replica("b").order_info(fok)["filled"] == 0


def test_a_fok_without_a_price_is_kept_within_its_band() -> None:
    net = Network(["a", "b"])
    net.place("b", SELL, 2, 10_000)
    net.place("b", SELL, 2, 20_000)  # beyond 5% of the best ask
    net.settle()
    fok = net.place("a", BUY, 4, None, Tif.FOK, token="t")
    assert net.replica("a").order_info(fok)["price"] == 10_500
    net.settle()
    assert assert_whole_or_nothing(net, fok, 4) == "cancelled"
    fok = net.place("a", BUY, 2, None, Tif.FOK)
    net.settle()
    assert assert_whole_or_nothing(net, fok, 2) == "filled"


def test_a_fok_being_decided_cannot_be_cancelled_and_cancel_all_leaves_it() -> None:
    net = Network(["a", "b"])
    net.place("b", SELL, 2, 100)
    rest = net.place("a", SELL, 1, 200, trader="alice")
    net.settle()
    fok = net.place("a", BUY, 2, 100, Tif.FOK, trader="alice")
    with pytest.raises(Busy):
        net.cancel("a", fok, trader="alice")
    assert net.cancel_all("a", "alice") == [rest]
    net.settle()
    assert assert_whole_or_nothing(net, fok, 2) == "filled"


def test_holds_no_honest_coordinator_asks_for_are_refused_and_change_nothing() -> None:
    net = Network(["a", "b", "c"])
    maker = net.place("b", SELL, 4, 100)
    gtc = net.place("a", BUY, 1, 99)
    net.settle()
    b = net.replica("b")
    a_order = net.replica("a").ledger.orders[gtc].event
    before = b.ledger.state_hash()
    b.receive("a", Hold(f"{gtc}:0", maker, a_order, 4), net.now)  # not an all-or-nothing order
    b.receive("c", Hold(f"{gtc}:0", maker, a_order, 4), net.now)  # c relays a's order
    replies = [o.message for o in b.take_outputs() if hasattr(o, "message")]
    assert [(r.held, r.reason) for r in replies if isinstance(r, HoldReply)] == [(0, "invalid"), (0, "invalid")]
    b.receive("a", Confirm(f"{gtc}:0", maker, gtc, 4), net.now)  # a confirm of nothing held
    b.take_outputs()
    assert b.taker.reservations.held(maker) == 0 and b.ledger.state_hash() == before
    assert b.counters["confirms_refused"] == 1
    b._check()


def test_a_confirm_for_more_than_is_held_fills_nothing() -> None:
    net = Network(["a", "b"])
    maker = net.place("b", SELL, 4, 100)
    net.settle()
    fok = net.place("a", BUY, 2, 100, Tif.FOK)
    while net.deliver("a", "b"):
        pass
    b = net.replica("b")
    assert b.taker.reservations.held(maker) == 2
    b.receive("a", Confirm(f"{fok}:0", maker, fok, 3), net.now)
    b.take_outputs()
    assert b.order_info(maker)["filled"] == 0 and b.taker.reservations.held(maker) == 2
    net.settle()
    assert assert_whole_or_nothing(net, fok, 2) == "filled"
