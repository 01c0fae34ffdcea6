"""zmqex.core.tif: the time-in-force table, and what the desks do with it (GTD expiry, price protection)."""

from __future__ import annotations

import pytest

from zmqex.core.events import Side, Tif
from zmqex.core.replica import PROTECTION_BPS
from zmqex.core.tif import MARKET, RULES
from zmqex.errors import InvalidRequest
from tests.checked import Network

BUY, SELL = Side.BUY, Side.SELL


def test_the_table_is_whole_and_consistent() -> None:
    assert set(RULES) == set(Tif)
    assert not RULES[MARKET].rests, "a market order never rests"
    for tif, rule in RULES.items():
        assert rule.market is None or not RULES[rule.market].rests, tif
        assert rule.market in (None, MARKET) or rule.market is tif, "a market order keeps its all-or-nothing"
        assert rule.expires == (not rule.rests and not rule.atomic)
        assert not (rule.expiry and not rule.rests), "only a resting order can wait for a date"
        assert not (rule.atomic and rule.rests), "an all-or-nothing order trades at once or not at all"


# --- good till date -----------------------------------------------------------------------


def test_a_gtd_order_is_cancelled_by_its_owner_at_expire_at_on_every_replica() -> None:
    net = Network(["a", "b"])
    gtd = net.place("a", SELL, 5, 100, Tif.GTD, expire_at=5_000)
    net.drain()
    net.place("b", BUY, 2, 100)
    net.drain()  # no time passes
    assert net.replica("b").order_info(gtd)["expire_at"] == 5_000
    net.tick(4_999)
    net.drain()
    assert net.replica("a").order_info(gtd)["status"] == "partial"
    net.tick(1)
    net.settle()
    for replica in net.live():
        info = replica.order_info(gtd)
        assert (info["status"], info["reason"], info["filled"], info["open"]) == ("expired", "expired", 2, 0)


def test_a_gtd_order_still_expires_after_its_owner_restarts() -> None:
    net = Network(["a", "b"])
    gtd = net.place("a", SELL, 5, 100, Tif.GTD, expire_at=1_000)
    net.crash("a")
    net.restart("a")
    net.tick(1_000)
    net.settle()
    assert net.replica("b").order_info(gtd)["status"] == "expired"


@pytest.mark.parametrize("expire_at", [None, 0])
def test_a_gtd_order_needs_an_expire_at_in_the_future(expire_at: int | None) -> None:
    net = Network(["a"])
    with pytest.raises(InvalidRequest, match="expire_at"):
        net.place("a", SELL, 5, 100, Tif.GTD, expire_at=expire_at)
    assert net.replica("a").ledger.orders == {}


# --- price protection ---------------------------------------------------------------------


def test_a_market_order_trades_only_within_its_band_of_the_best_price_at_arrival() -> None:
    net = Network(["a", "b"])
    near = net.place("a", SELL, 5, 10_000)
    far = net.place("a", SELL, 5, 10_000 * (10_000 + PROTECTION_BPS) // 10_000 + 1)  # just beyond 5%
    net.settle()
    buy = net.place("b", BUY, 10, None, token="m")
    net.settle()
    info = net.replica("a").order_info(buy)
    assert (info["filled"], info["status"], info["reason"]) == (5, "cancelled", "price_protection")
    assert info["price"] == 10_500  # a market order travels as an IOC at its band's edge
    assert net.replica("a").order_info(near)["status"] == "filled"
    assert net.replica("a").order_info(far)["status"] == "open"


def test_a_band_can_be_set_per_order() -> None:
    net = Network(["a", "b"])
    net.place("a", SELL, 5, 10_000)
    wide = net.place("a", SELL, 5, 11_000)
    net.settle()
    buy = net.place("b", BUY, 10, None, protection_bps=1_000, token="m")
    net.settle()
    assert net.replica("b").order_info(buy)["status"] == "filled"
    assert net.replica("b").order_info(wide)["status"] == "filled"
    with pytest.raises(InvalidRequest, match="protection_bps"):
        net.place("b", BUY, 1, None, protection_bps=10_001)


def test_an_ioc_beyond_its_band_is_brought_in_and_one_inside_is_left_alone() -> None:
    net = Network(["a", "b"])
    net.place("a", BUY, 5, 10_000)
    net.settle()
    far = net.place("b", SELL, 1, 1, Tif.IOC)  # a sell limit far below the best bid
    near = net.place("b", SELL, 1, 9_900, Tif.IOC)
    net.settle()
    assert net.replica("b").order_info(far)["price"] == 9_500
    assert net.replica("b").order_info(near)["price"] == 9_900
    assert net.replica("b").order_info(far)["status"] == "filled"


def test_a_market_order_is_protected_even_when_the_best_price_is_unavailable() -> None:
    net = Network(["a", "b", "c"])
    net.place("a", SELL, 5, 10_000)
    net.place("c", SELL, 5, 99_999_00)
    net.settle()
    net.crash("a")  # the best ask's owner is down
    net.tick(3_000)
    buy = net.place("b", BUY, 5, None, token="m")
    net.settle()
    assert net.replica("b").order_info(buy)["filled"] == 0  # not 99,999.00
