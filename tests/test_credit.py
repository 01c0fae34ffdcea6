"""Bilateral credit (zmqex.core.credit): the arithmetic, then whole replicas on the checked simulator.

Prices here are $100.00 (10,000 cents) a BTC, so one BTC is 10,000 cents of
notional and a limit of $150.00 lets 1.5 BTC trade.
"""

from __future__ import annotations

import msgpack
import pytest

from zmqex import accountwire, protocol
from zmqex.api import ClientApi
from zmqex.core.clock import VectorClock
from zmqex.core.config import Config
from zmqex.core.credit import ANY, CREDIT, DAY_MS, UNIT, Credit
from zmqex.core.events import CancelReason, Event, Fill, NewOrder, Side, Tif
from zmqex.core.ledger import Ledger
from zmqex.core.outputs import CreditLimit, Persist, Reply, Settlement
from zmqex.core.replica import Replica
from zmqex.errors import CreditRefused, DecodeError, InvalidAmount, InvalidRequest
from tests.checked import Network

BUY, SELL = Side.BUY, Side.SELL
BTC = 100_000_000
P = 10_000  # $100.00 in cents
CONFIG = Config()


def fill(maker_owner: str, maker: str, taker: str, qty: int, price: int = P, ts: int = 0, seq: int = 1) -> Event:
    return Event(maker_owner, seq, VectorClock({maker_owner: seq}), Fill(maker, taker, price, qty, f"r{seq}"), ts=ts)


# --- the arithmetic -------------------------------------------------------------------------------


def test_room_is_exact_at_the_boundary_and_the_most_that_fits_is_room_over_price():
    credit = Credit("a")
    credit.set_limit("b", 150_00, None)  # $150.00
    assert credit.fit("b", P, 2 * BTC, 0) == 150 * BTC // 100  # 1.5 BTC: exactly $150.00
    credit.count(fill("a", "a:1", "b:1", 150 * BTC // 100 - 1))  # one satoshi short of the limit
    assert credit.headroom("b", 0) == P  # one satoshi at $100.00, in units of 1e-8 cent
    assert credit.fit("b", P, 5, 0) == 1 and credit.fit("b", P + 1, 5, 0) == 0
    assert credit.room("b", 0) == 0  # less than a cent left, in cents rounded down
    credit.count(fill("a", "a:1", "b:1", 1, seq=2))
    assert credit.headroom("b", 0) == 0 and credit.fit("b", 1, BTC, 0) == 0


def test_fills_worth_less_than_a_cent_still_count_so_no_limit_is_passed_in_crumbs():
    """money.notional rounds a fill down to the cent: 9,999 satoshis at $100.00 would count as nothing."""
    credit = Credit("a")
    credit.set_limit("b", 1, None)  # one cent: 10,000 satoshis at $100.00
    assert credit.fit("b", P, 9_999, 0) == 9_999
    credit.count(fill("a", "a:1", "b:1", 9_999))
    assert credit.fit("b", P, 9_999, 0) == 1  # not another 9,999
    credit.set_limit("b", 0, None)
    assert credit.fit("b", P, 1, 0) == 0 and credit.fit("b", 1, 1, 0) == 0


def test_exposure_counts_both_directions_and_in_flight_but_not_our_own_trades_or_others():
    credit = Credit("a")
    credit.count(fill("a", "a:1", "b:1", BTC))  # our maker, their taker
    credit.count(fill("b", "b:2", "a:3", BTC, seq=2))  # their maker, our taker
    credit.count(fill("a", "a:1", "a:4", BTC, seq=3))  # ours with ours
    credit.count(fill("b", "b:2", "c:1", BTC, seq=4))  # theirs with another's
    assert credit.exposure("b") == 2 * P * BTC and credit.exposure("c") == 0 and credit.exposure("a") == 0
    credit.reserve("otc:1", "b", P, BTC)
    credit.reserve("otc:1", "b", P, BTC // 2)  # replaced, not added
    assert credit.in_flight("b") == P * BTC // 2
    credit.set_limit("b", 300_00, None)
    assert credit.room("b", 0) == 300_00 - 200_00 - 50_00
    credit.release("otc:1")
    assert credit.in_flight("b") == 0 and credit.room("b", 0) == 100_00
    credit.reserve("otc:2", "a", P, BTC)  # with ourselves: nothing in flight
    assert credit.in_flight("a") == 0


def test_the_daily_limit_counts_fills_by_their_utc_day_by_our_wall_clock():
    credit = Credit("a")
    credit.set_limit("b", None, 100_00)  # $100 a day, no limit on open exposure
    credit.count(fill("a", "a:1", "b:1", BTC, ts=DAY_MS - 1))  # the last millisecond of day 0
    assert credit.fit("b", P, BTC, DAY_MS - 1) == 0
    assert credit.fit("b", P, 2 * BTC, DAY_MS) == BTC  # midnight UTC: a new day
    credit.count(fill("a", "a:1", "b:1", BTC // 2, ts=DAY_MS, seq=2))
    assert credit.room("b", DAY_MS + 1) == 50_00 and credit.room("b", DAY_MS - 1) == 0
    credit.reserve("k", "b", P, BTC // 4)  # in flight counts against both
    assert credit.room("b", DAY_MS) == 25_00
    credit.set_limit("b", 120_00, 100_00)
    assert credit.headroom("b", 2 * DAY_MS) == 0  # exposure: $150 traded + $25 in flight > $120
    credit.set_limit("b", 200_00, 100_00)
    assert credit.room("b", 2 * DAY_MS) == 25_00 and credit.room("b", DAY_MS) == 25_00  # open, then daily


def test_a_settlement_lowers_exposure_never_below_zero_and_never_pays_ahead():
    credit = Credit("a")
    credit.set_limit("b", 100_00, None)
    credit.count(fill("a", "a:1", "b:1", BTC + 123))  # $100.00123
    assert credit.room("b", 0) == 0
    assert credit.settle("b", 40_00) == 40_00 and credit.room("b", 0) == 39_99  # 0.00123 cents still owed
    assert credit.settle("b", 1_000_00) == 60_00  # only what is outstanding, to the cent below
    assert credit.exposure("b") == 123 * P and credit.settle("b", 1) == 0
    credit.count(fill("a", "a:1", "b:1", BTC, seq=2))  # a settlement never pays for later trades
    assert credit.exposure("b") == P * BTC + 123 * P
    assert credit.settle("c", 5) == 0  # nothing traded with c: nothing to settle


def test_the_default_limit_holds_for_desks_without_their_own_and_ours_is_unlimited():
    credit = Credit("a")
    assert not credit.active and credit.fit("b", P, BTC, 0) == BTC
    credit.set_limit(ANY, 50_00, None)
    assert credit.limits_of("b") == (50_00, None) and credit.fit("c", P, BTC, 0) == BTC // 2
    credit.set_limit("b", None, 10_00)  # its own: the default no longer holds for it
    assert credit.limits_of("b") == (None, 10_00) and credit.fit("b", P, BTC, 0) == BTC // 10
    credit.set_limit("b", None, None)  # removed: the default holds again
    assert credit.limits_of("b") == (50_00, None) and credit.own_limits("b") is None
    assert credit.limits_of("a") == (None, None) and credit.fit("a", P, BTC, 0) == BTC


def test_private_trades_count_once_and_survive_a_rebuild_from_the_ledger():
    credit = Credit("a")
    credit.traded("otc:7", "b", P, BTC, 0)
    credit.traded("otc:7", "b", P, BTC, 0)
    credit.reserve("otc:8", "b", P, BTC)
    credit.reserve("take:x", "b", P, BTC)  # a core desk's key: rebuilt from the desks
    assert credit.exposure("b") == P * BTC and credit.in_flight("b") == 2 * P * BTC
    credit.rebuild(Ledger(), [])
    assert credit.exposure("b") == P * BTC and credit.in_flight("b") == P * BTC
    credit._check(Ledger(), [])


def test_a_desk_that_refused_us_cools_off():
    credit = Credit("a")
    credit.refused_by("b", 1_000)
    assert credit.engaged and credit.cooling("b", 999) and not credit.cooling("b", 1_000)
    assert not credit.engaged


# --- whole replicas ---------------------------------------------------------------------------------


def mesh(*ids: str) -> Network:
    return Network(list(ids) or ["a", "b", "c"])


def test_the_maker_refuses_a_desk_beyond_its_limit_and_the_book_stays_crossed():
    net = mesh()
    ask = net.place("a", SELL, BTC, P)
    net.settle()
    net.set_credit("a", "b", 0)
    bid = net.place("b", BUY, BTC, P, token="t")
    net.settle()
    a, b = net.replica("a"), net.replica("b")
    assert a.counters["takes_refused_credit"] == 1 and b.counters["takes_answered_credit"] == 1
    assert net.replies["t"]["status"] == "open" and b.order_info(bid)["filled"] == 0
    assert a.order_info(ask)["open"] == BTC and a.ledger.book.crossed()
    assert b.credit.cooling("a", net.now)  # b does not ask a again for a while
    net.tick(CONFIG.credit_retry_ms)
    net.settle()
    assert a.counters["takes_refused_credit"] == 2, "asked again after the cool-off, refused again"
    assert [reply.reason for reply in a.maker.answers.values()] == [CREDIT, CREDIT]  # kept: a retry gets them


def test_a_grant_is_capped_at_what_the_limit_leaves():
    net = mesh()
    ask = net.place("a", SELL, 2 * BTC, P)
    net.settle()
    net.set_credit("a", "b", 150_00)
    bid = net.place("b", BUY, 2 * BTC, P)
    net.settle()
    a = net.replica("a")
    assert a.order_info(ask)["filled"] == 3 * BTC // 2 and net.replica("b").order_info(bid)["filled"] == 3 * BTC // 2
    assert a.credit.exposure("b") == 150_00 * UNIT and a.credit.room("b", a.wall()) == 0
    assert a.counters["takes_refused_credit"] == 1  # its next take, for the half left
    assert a.credit_view()["desks"]["b"] == {"limit": 150_00, "daily": None, "exposure": 150_00, "pending": 0,
                                             "today": 150_00, "room": 0}


def test_the_taker_does_not_ask_a_desk_its_own_credit_gives_no_room_and_trades_with_another():
    net = mesh()
    a_ask = net.place("a", SELL, BTC, P)
    c_ask = net.place("c", SELL, BTC, P + 100)
    net.settle()
    net.set_credit("b", "a", 0)
    ioc = net.place("b", BUY, 2 * BTC, P + 100, Tif.IOC, token="t")
    net.settle()
    assert net.replica("a").maker.answers == {}, "b never asked a"
    b = net.replica("b")
    assert [f["maker"] for f in b.order_info(ioc)["fills"]] == [c_ask]
    assert (net.replies["t"]["filled"], net.replies["t"]["reason"]) == (BTC, CancelReason.CREDIT.value)
    assert b.order_info(a_ask)["open"] == BTC


def test_a_market_order_with_nothing_but_makers_beyond_credit_is_refused_and_changes_nothing():
    net = mesh()
    net.place("a", SELL, BTC, P)
    net.settle()
    net.set_credit("b", ANY, 0)
    b = net.replica("b")
    before = (b.clock, len(net.nodes["b"].store))
    with pytest.raises(CreditRefused):
        net.place("b", BUY, BTC, None)
    assert (b.clock, len(net.nodes["b"].store)) == before
    net.place("b", SELL, BTC, P + 5)  # an own order on the other side is always tradeable
    net.place("b", BUY, BTC // 2, None)


def test_a_fok_is_held_only_as_far_as_credit_lets_and_made_up_by_another_maker():
    net = mesh()
    a_ask = net.place("a", SELL, 2 * BTC, P)
    c_ask = net.place("c", SELL, BTC // 2, P)
    c_more = net.place("c", SELL, BTC, P + 1)
    net.settle()
    net.set_credit("a", "b", 150_00)  # a holds only 1.5 BTC for b
    fok = net.place("b", BUY, 5 * BTC // 2, P + 1, Tif.FOK, token="t")  # planned: 2 of a's, 0.5 of c's
    net.settle()
    assert net.replies["t"]["status"] == "filled"
    fills = sorted((f["maker"], f["qty"]) for f in net.replica("b").order_info(fok)["fills"])
    assert fills == sorted([(a_ask, 3 * BTC // 2), (c_ask, BTC // 2), (c_more, BTC // 2)])
    assert net.replica("a").counters["holds_taken"] == 1
    assert net.replica("a").credit.exposure("b") == 150_00 * UNIT


def test_a_fok_that_credit_keeps_short_is_killed_with_reason_credit():
    net = mesh()
    net.place("a", SELL, 2 * BTC, P)
    net.settle()
    net.set_credit("b", "a", 100_00)  # b's own limit: it plans only 1 BTC of a's 2
    fok = net.place("b", BUY, 2 * BTC, P, Tif.FOK, token="t")
    assert (net.replies["t"]["status"], net.replies["t"]["reason"]) == ("cancelled", "credit")
    net.settle()
    assert net.replica("a").holds.holds() == [] and net.replica("c").order_info(fok)["filled"] == 0
    net.set_credit("b", "a", None)
    net.set_credit("a", "b", 50_00)  # now a's limit for b: a holds half of 1 BTC, nobody makes up the rest
    fok = net.place("b", BUY, BTC, P, Tif.FOK, token="u")
    net.settle()
    assert (net.replies["u"]["status"], net.replies["u"]["reason"]) == ("cancelled", "credit")
    assert net.replica("a").holds.holds() == [] and net.replica("a").credit.in_flight("b") == 0


def test_a_limit_change_holds_for_the_next_grant_at_once():
    net = mesh()
    ask = net.place("a", SELL, 3 * BTC, P)
    net.settle()
    net.set_credit("a", "b", 100_00)
    net.place("b", BUY, BTC, P)
    net.settle()
    net.set_credit("a", "b", 0)  # lowered below what is traded already: nothing more
    net.place("b", BUY, BTC, P)
    net.settle()
    a = net.replica("a")
    assert a.order_info(ask)["filled"] == BTC and a.counters["takes_refused_credit"] == 1
    net.set_credit("a", "b", 300_00)  # raised: the crossed order trades once b asks again
    net.tick(CONFIG.credit_retry_ms)
    net.settle()
    assert a.order_info(ask)["filled"] == 2 * BTC
    assert net.settle_credit("a", "b", 500_00) == 200_00 and a.credit.room("b", a.wall()) == 300_00


def test_a_restart_keeps_limits_settlements_and_exposure_and_what_is_in_flight():
    net = mesh()
    net.place("a", SELL, 4 * BTC, P)
    net.settle()
    net.set_credit("a", "b", 250_00, 1_000_00)
    net.set_credit("a", ANY, 10_00)
    net.place("b", BUY, 2 * BTC, P)
    net.settle()
    assert net.settle_credit("a", "b", 50_00) == 50_00
    net.place("c", BUY, BTC, P)  # c's take to a is on the link, unanswered
    view = net.replica("a").credit_view()
    store = net.nodes["a"].store
    assert CreditLimit("b", 250_00, 1_000_00) in store and Settlement("b", 50_00) in store
    net.crash("a")
    net.restart("a")
    assert net.replica("a").credit_view() == view
    net.place("b", BUY, 2 * BTC, P, token="t")  # a restarted with $100.00 of room left for b
    net.settle()
    a = net.replica("a")
    assert a.credit.exposure("b") == 250_00 * UNIT and a.credit.exposure("c") == 10_00 * UNIT


def test_a_restarted_taker_counts_its_takes_in_flight_again():
    net = mesh()
    net.place("a", SELL, BTC, P)
    net.settle()
    net.set_credit("b", "a", 100_00)
    net.place("b", BUY, BTC, P)  # its take to a waits on the link
    assert net.replica("b").credit.in_flight("a") == 100_00 * UNIT
    net.crash("b")
    net.restart("b")
    assert net.replica("b").credit.in_flight("a") == 100_00 * UNIT
    assert net.replica("b").credit.fit("a", P, 1, 0) == 0
    net.settle()
    assert net.replica("b").credit.in_flight("a") == 0 and net.replica("b").credit.exposure("a") == 100_00 * UNIT


@pytest.mark.parametrize("desk, limit, daily, error", [
    ("b", -1, None, InvalidAmount), ("b", 1.5, None, InvalidAmount), ("b", True, None, InvalidAmount),
    ("b", "100", None, InvalidAmount), ("b", 10**18, None, InvalidAmount), ("b", 5, -5, InvalidAmount),
    ("b", None, 2.0, InvalidAmount), ("zz", 5, None, InvalidRequest), ("a", 5, None, InvalidRequest),
    ("b c", 5, None, InvalidRequest), ("", 5, None, InvalidRequest), ("**", 5, None, InvalidRequest),
])
def test_bad_limits_are_refused_and_change_nothing(desk, limit, daily, error):
    replica = Replica("a", peers=["b"])
    replica.take_outputs()
    with pytest.raises(error):
        replica.set_credit(desk, limit, daily)
    assert replica.take_outputs() == [] and not replica.credit.active


@pytest.mark.parametrize("desk, cents, error", [
    (ANY, 5, InvalidRequest), ("b", 0, InvalidAmount), ("b", -1, InvalidAmount), ("b", None, InvalidAmount),
    ("b", 1.0, InvalidAmount), ("x", 5, InvalidRequest),
])
def test_bad_settlements_are_refused_and_change_nothing(desk, cents, error):
    replica = Replica("a", peers=["b"])
    replica.take_outputs()
    with pytest.raises(error):
        replica.settle(desk, cents)
    assert replica.take_outputs() == []


def test_a_limit_is_a_promise_persisted_before_anything_leaves():
    replica = Replica("a", peers=["b"])
    replica.set_credit("b", 0, None)
    assert Persist(CreditLimit("b", 0, None)) in replica.take_outputs()
    assert replica.settle("b", 5) == 0 and replica.take_outputs() == []  # nothing settled: nothing kept
    replica.set_credit(ANY, 7, 8)
    replica.set_credit("b", None, None)
    restored = Replica.restore("a", [CreditLimit("b", 0, None), CreditLimit(ANY, 7, 8), CreditLimit("b", None, None)])
    assert restored.credit.limits_of("b") == (7, 8) and restored.credit.own_limits("b") is None


def test_without_limits_every_desk_is_unlimited():
    replica = Replica("a", peers=["b"])
    event = Event("b", 1, VectorClock({"b": 1}), NewOrder(SELL, P, BTC, Tif.GTC))
    replica.offer(event, "b")
    assert replica.credit.fit("b", P, BTC, 0) == BTC and replica.credit_view() == {"default": None, "desks": {}}


def test_limits_and_settlements_survive_a_reopened_store(tmp_path):
    from zmqex.store import SqliteStore

    net = mesh()
    net.place("a", SELL, 2 * BTC, P)
    net.settle()
    net.set_credit("a", "b", 500_00, 200_00)
    net.set_credit("a", ANY, 0)
    net.set_credit("a", "b", 150_00, None)  # the latest counts
    net.place("b", BUY, 2 * BTC, P)
    net.settle()
    assert net.settle_credit("a", "b", 20_00) == 20_00 and net.settle_credit("a", "b", 30_00) == 30_00
    store = SqliteStore(tmp_path, "a")
    store.commit(net.nodes["a"].store)
    store.close()
    records = list(SqliteStore(tmp_path, "a").records())
    assert {r for r in records if isinstance(r, CreditLimit)} == {CreditLimit("b", 150_00, None),
                                                                   CreditLimit(ANY, 0, None)}  # one per desk
    assert [r for r in records if isinstance(r, Settlement)] == [Settlement("b", 20_00), Settlement("b", 30_00)]
    restored = Replica.restore("a", records)
    restored._check()
    assert restored.credit_view() == net.replica("a").credit_view()
    assert restored.credit.room("b", 0) == 50_00


# --- the protocol: operators' ops, bad input, the book's tradeable ---------------------------------

def node_with_asks(*asks: tuple[str, int, int]) -> tuple[Replica, ClientApi]:
    """Node a, and peers' asks (owner, price in cents, qty in satoshis) delivered to it."""
    replica = Replica("a", peers=["b", "c"])
    seqs: dict[str, int] = {}
    for owner, price, qty in asks:
        seq = seqs[owner] = seqs.get(owner, 0) + 1
        replica.offer(Event(owner, seq, VectorClock({**seqs}), NewOrder(SELL, price, qty, Tif.GTC)), owner)
    replica.take_outputs()
    return replica, ClientApi(replica)


def ask(api: ClientApi, user: str | None = None, **request):
    raw = api.handle(b"\x00c", msgpack.packb({"v": 1, "id": 1, **request}), user=user)
    if raw is None:  # a place: its flow ends in the outputs
        [raw] = [frame for _, frame in filter(None, (api.finish(o.token, o.result) for o in
                                                       api.replica.take_outputs() if isinstance(o, Reply)))]
    return msgpack.unpackb(raw)


@pytest.mark.parametrize("user, ok", [(None, True), ("o:ops", True), ("t:alice", False)])
def test_only_an_operator_may_set_credit_on_a_keyed_node_and_anyone_on_a_node_without_keys(user, ok):
    replica, api = node_with_asks()
    for request in ({"op": "set_credit", "desk": "b", "limit": "5"}, {"op": "settle", "desk": "b", "usd": "1"},
                    {"op": "credit"}):
        reply = ask(api, user, **request)
        assert reply["ok"] is ok, reply
        if not ok:
            assert reply["error"]["code"] == "not_owner"
    assert replica.credit.active is ok


@pytest.mark.parametrize("request_", [
    {"desk": "b", "limit": "-1"}, {"desk": "b", "limit": 1.5}, {"desk": "b", "limit": 100},
    {"desk": "b", "limit": "1e3"},
    {"desk": "b", "limit": "12345678901234567"}, {"desk": "b", "limit": "1.001"}, {"desk": "b", "limit": "abc"},
    {"desk": "b", "limit": "5", "daily": "-5"}, {"desk": "b", "limit": "5", "daily": True},
    {"desk": "b", "limit": True}, {"desk": "b", "limit": ["5"]},
])
def test_bad_amounts_in_set_credit_are_invalid_amount_and_change_nothing(request_):
    replica, api = node_with_asks()
    reply = ask(api, op="set_credit", **request_)
    assert reply["error"]["code"] == "invalid_amount", reply
    assert not replica.credit.active and replica.take_outputs() == []


@pytest.mark.parametrize("op, request_", [
    ("set_credit", {"desk": "zz", "limit": "5"}), ("set_credit", {"desk": "a", "limit": "5"}),
    ("set_credit", {"desk": 5, "limit": "5"}), ("set_credit", {"desk": "b c", "limit": "5"}),
    ("set_credit", {"desk": "b"}), ("set_credit", {"limit": "5"}), ("set_credit", {"desk": "b", "limit": "5", "x": 1}),
    ("settle", {"desk": "*", "usd": "5"}), ("settle", {"desk": "nobody", "usd": "5"}), ("credit", {"desk": "b"}),
])
def test_bad_desks_and_fields_are_invalid_request_and_change_nothing(op, request_):
    replica, api = node_with_asks()
    reply = ask(api, op=op, **request_)
    assert reply["error"]["code"] == "invalid_request", reply
    assert not replica.credit.active and replica.take_outputs() == []


@pytest.mark.parametrize("usd", ["0", "0.00", "-1", 5, None])
def test_a_settlement_must_be_a_positive_usd_string(usd):
    replica, api = node_with_asks()
    reply = ask(api, op="settle", desk="b", usd=usd)
    assert reply["error"]["code"] == "invalid_amount" and replica.take_outputs() == []


def test_the_credit_view_on_the_wire_and_what_a_client_reads_of_it():
    replica, api = node_with_asks(("b", P, 2 * BTC))
    assert ask(api, op="credit")["result"] == {"default": None, "desks": {}}
    set_ = ask(api, op="set_credit", desk="*", limit="150", daily="1000.5")["result"]
    assert set_ == {"default": {"limit": "150.00", "daily": "1000.50"}, "desks": {}}
    taken = ask(api, op="place", side="buy", qty="2", price="100", tif="ioc", ack="accepted")["result"]
    assert (taken["filled"], taken["pending"]) == ("0.00000000", "1.50000000")  # asked b as far as credit goes
    view = ask(api, op="credit")["result"]
    assert view["desks"] == {"b": {"limit": "150.00", "daily": "1000.50", "exposure": "0.00", "pending": "150.00",
                                   "today": "0.00", "room": "0.00"}}
    assert accountwire.parse_credit(msgpack.unpackb(msgpack.packb(view))) == view
    assert ask(api, op="settle", desk="b", usd="10")["result"]["settled"] == "0.00"  # nothing traded yet
    for bad in ({**view, "desks": {"b c": view["desks"]["b"]}}, {**view, "default": 1},
                {**view, "desks": {"b": {**view["desks"]["b"], "room": "1"}}},
                {**view, "desks": {"b": {k: v for k, v in view["desks"]["b"].items() if k != "limit"}}}):
        with pytest.raises(DecodeError):
            accountwire.parse_credit(bad)


def test_client_side_arguments_are_checked_as_the_node_checks_them():
    assert accountwire.set_credit_request("b", "150", None) == {"desk": "b", "limit": "150.00"}
    assert accountwire.set_credit_request("*", 0, "1.5") == {"desk": "*", "limit": "0.00", "daily": "1.50"}
    assert accountwire.settle_request("b", 12) == {"desk": "b", "usd": "12.00"}
    for call in (lambda: accountwire.set_credit_request("b", 1.5), lambda: accountwire.set_credit_request("b", -1),
                 lambda: accountwire.settle_request("b", "0"), lambda: accountwire.settle_request("*", "1")):
        with pytest.raises((InvalidAmount, InvalidRequest)):
            call()


def test_the_book_tells_what_this_desk_can_trade_against_only_while_it_has_limits():
    replica, api = node_with_asks(("b", P, BTC), ("c", P, BTC), ("b", P + 1, 2 * BTC), ("c", P + 2, BTC))
    plain = ask(api, op="book")["result"]["asks"]
    assert plain == [["100.00", "2.00000000", 2], ["100.01", "2.00000000", 1], ["100.02", "1.00000000", 1]]
    ask(api, op="set_credit", desk="b", limit="150")  # c: unlimited
    asks = ask(api, op="book")["result"]["asks"]
    # b's room ($150) goes first to its 1 BTC at $100, then to $50 worth at $100.01
    assert asks == [["100.00", "2.00000000", 2, "2.00000000"], ["100.01", "2.00000000", 1, "0.49995000"],
                    ["100.02", "1.00000000", 1, "1.00000000"]]
    assert protocol.parse_book(ask(api, op="book")["result"])["asks"] == asks
    ask(api, op="set_credit", desk="b", limit=None)
    assert ask(api, op="book")["result"]["asks"] == plain


def test_a_level_with_tradeable_is_read_back_and_a_gone_level_has_none():
    book = {"unavailable": {"bids": [], "asks": []}, "bids": [["1.00", "1.00000000", 1, "0.00000000"]], "asks": []}
    assert protocol.parse_book(book) == book
    for bad in ([["1.00", "1.00000000", 1, "x"]], [["1.00", "1.00000000", 1, "0", 5]], [["1.00", "1.00000000", 1, 1]]):
        with pytest.raises(DecodeError):
            protocol.parse_book({**book, "bids": bad})
    with pytest.raises(DecodeError):
        protocol.parse_book({**book, "bids": [["1.00", "0.00000000", 0, "0.00000000"]]}, changes=True)


def test_a_book_stream_sends_the_levels_whose_tradeable_a_credit_change_moved():
    replica, api = node_with_asks(("b", P, BTC), ("c", P + 1, BTC))
    assert api.handle(b"s", msgpack.packb({"v": 1, "id": "sub", "op": "subscribe", "stream": "book"})) is not None
    [(_, snapshot)] = api.flush(0)
    assert msgpack.unpackb(snapshot)["snapshot"]["asks"] == [["100.00", "1.00000000", 1], ["100.01", "1.00000000", 1]]
    ask(api, op="set_credit", desk="b", limit="50")
    [(_, changes)] = api.flush(1)
    assert msgpack.unpackb(changes)["changes"]["asks"] == [["100.00", "1.00000000", 1, "0.50000000"],
                                                           ["100.01", "1.00000000", 1, "1.00000000"]]
    ask(api, op="set_credit", desk="b", limit="60")
    [(_, changes)] = api.flush(2)
    assert msgpack.unpackb(changes)["changes"]["asks"] == [["100.00", "1.00000000", 1, "0.60000000"]]
