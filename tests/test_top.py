"""zmqex-top without a terminal or a node: the view's updates and the screen drawn from it.

tests/integration/test_top.py runs zmqex-top in a pseudo-terminal against real nodes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from rich.console import Console

from tests.vt import Screen
from zmqex.protocol import BookView, FillView, OrderUpdate
from zmqex.top import render
from zmqex.top.view import TAPE, View

T = 1_718_000_000_000


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> BookView:
    return {"bids": [[p, q, 1] for p, q in bids], "asks": [[p, q, 1] for p, q in asks],
            "unavailable": {"bids": [], "asks": []}}


def fill(n: int, price: str = "50000.00", qty: str = "0.10000000", side: str = "buy") -> FillView:
    return {"id": f"a:{n}", "maker": "a:1", "taker": "b:1", "price": price, "qty": qty, "ts": T, "taker_side": side}


def order(oid: str, status: str = "open", filled: str = "0.00000000", qty: str = "1.00000000",
          price: str | None = "49000.00", side: str = "buy") -> OrderUpdate:
    return {"order_id": oid, "owner": "a", "side": side, "price": price, "qty": qty, "tif": "gtc", "status": status,
            "filled": filled, "open": qty if status in ("open", "partial") else "0.00000000",
            "pending": "0.00000000", "available": True, "ts": T, "reason": None, "expire_at": None,
            "client_order_id": ""}


STATUS: dict[str, Any] = {
    "node": "a", "ready": True, "hash": "0123456789abcdef0123", "vc": {"a": 7, "b": 3}, "open_orders": 4, "fills": 2,
    "peers": {"b": {"up": True, "endpoint": "tcp://x:1", "lag": 0, "ahead": 0, "hash": "0123456789abcdef0123"},
              "c": {"up": False, "endpoint": None, "lag": 12, "ahead": 0, "hash": None}},
}


def full_view() -> View:
    view = View("127.0.0.1:7001", trader="alice")
    view.on_status(STATUS, T)
    view.on_book(book([("49990.00", "0.40000000"), ("49980.00", "2.00000000")],
                      [("50010.00", "1.20000000"), ("50020.00", "0.75000000")]), T)
    view.on_trades([fill(1, "50010.00", "0.30000000", "buy"), fill(2, "49990.00", "0.05000000", "sell")], T)
    view.on_open_orders([order("a:2", price="49990.00", qty="0.40000000")], T)
    return view


# --- the view -------------------------------------------------------------------------------


def test_trades_are_kept_newest_first_once_each_and_at_most_tape():
    view = View("x:1")
    view.on_trades([fill(1), fill(2)], T)
    view.on_trades([fill(2), fill(3)], T)  # the page and the stream overlap
    assert [f["id"] for f in view.trades] == ["a:3", "a:2", "a:1"]
    view.on_trades([fill(n) for n in range(4, 4 + TAPE)], T)
    assert len(view.trades) == TAPE and view.trades[0]["id"] == f"a:{3 + TAPE}"


def test_my_orders_settle_on_the_latest_state_whatever_the_order_of_page_and_stream():
    view = View("x:1", trader="alice")
    view.on_open_orders([order("a:1", "partial", filled="0.50000000")], T)
    view.on_order_event({"event": "placed", "order": order("a:1")}, T)  # older than the page: ignored
    assert view.orders["a:1"]["status"] == "partial"
    view.on_order_event({"event": "fill", "order": order("a:1", "filled", filled="1.00000000")}, T)
    view.on_order_event({"event": "placed", "order": order("a:1")}, T)  # a stale one after the close
    assert view.orders == {}
    view.on_order_event({"event": "placed", "order": order("a:2")}, T)
    view.on_order_event({"event": "cancel", "order": order("a:2", "cancelled")}, T)
    view.on_open_orders([order("a:2")], T)  # a page read before the cancel, applied after it
    assert view.orders == {}


def test_status_gives_the_node_and_its_peers():
    view = View("x:1")
    view.on_status(STATUS, T)
    assert (view.node, view.ready, view.events, view.open_orders) == ("a", True, 10, 4)
    assert [(p.name, p.up, p.lag, p.hash) for p in view.peers] == [
        ("b", True, 0, "0123456789abcdef0123"), ("c", False, 12, None)]
    view.on_status({"node": "a", "peers": {"b": {"up": True}}}, T)  # an older node: no lag, no hash
    assert view.peers[0].lag is None and view.hash == ""


def test_a_peer_at_the_same_clock_with_another_hash_is_marked():
    view = View("x:1")
    view.on_status({**STATUS, "peers": {"b": {"up": True, "lag": 0, "ahead": 0, "hash": "ffff"},
                                        "c": {"up": True, "lag": 3, "ahead": 0, "hash": "eeee"}}}, T)
    text = render.screen(view, 80, 24).plain
    assert re.search(r"hash ffff +MISMATCH *$", text, re.M)
    assert "eeee" in text and text.count("MISMATCH") == 1  # c is at another clock: nothing to compare


# --- the screen -----------------------------------------------------------------------------


def test_the_screen_fits_80x24_and_shows_everything():
    lines = render.screen(full_view(), 80, 24).plain.split("\n")
    assert len(lines) == 24 and all(len(line) == 80 for line in lines)
    text = "\n".join(lines)
    body = [line.split("│") for line in lines if "│" in line]  # the ladder | the tape
    assert len(body) == 24 - 2 - 4 - 3  # less title and footer, my orders (3), peers (2)
    ladder = [left.split() for left, _ in body]
    at = {tuple(level[:2]): i for i, level in enumerate(ladder) if len(level) >= 2}
    spread = ladder.index(["---", "spread", "20.00", "---"])
    # asks worst to best, the spread, bids best to worst, next to each other
    assert at["50020.00", "0.75"] + 1 == at["50010.00", "1.2"] == spread - 1 == at["49990.00", "0.4"] - 2
    assert ladder[spread + 2] == ["49980.00", "2", "█" * 17]  # the biggest level has the longest bar
    tape = [right.split() for _, right in body]
    assert tape[1][1:] == ["49990.00", "0.05"] and tape[2][1:] == ["50010.00", "0.3"]  # newest first
    assert "MY ORDERS  alice: 1 open" in text and "a:2" in text
    assert "PEERS  1/2 up" in text and "hash 0123456789ab same as ours" in text
    assert "DOWN  lag      12 events" in text
    assert lines[0].startswith(" zmqex-top  a@127.0.0.1:7001  ready  hash 0123456789ab  events 10  resting 4")


def test_depth_bars_are_in_proportion_to_quantity_in_integers():
    view = View("x:1")
    view.on_book(book([("1.00", "0.00000001"), ("0.99", "3.00000000")], [("1.01", "1.50000000")]), T)
    lines = render.screen(view, 80, 24, bar="#").plain.split("\n")
    bars = {line.split()[0]: line.split("│")[0].count("#") for line in lines if "#" in line}
    assert bars == {"0.99": 17, "1.01": 8, "1.00": 1}  # 17 cells for the largest; never less than one


def test_an_empty_view_and_small_or_large_terminals_still_draw():
    empty = render.screen(View("x:1"), 80, 24).plain
    assert "waiting for the book" in empty and "no trades yet" in empty and "--trader NAME" in empty
    for width, height in ((20, 8), (40, 12), (79, 23), (132, 50), (1, 1)):
        lines = render.screen(full_view(), width, height).plain.split("\n")
        assert len(lines) == max(8, height) and {len(line) for line in lines} == {max(20, width)}


def test_the_screen_comes_out_of_a_terminal_as_drawn():
    """rich's output for the screen, through tests/vt.py, reads as the plain text: what the pty test relies on."""
    console = Console(width=80, height=24, force_terminal=True, color_system="truecolor")
    with console.capture() as captured:
        console.print(render.screen(full_view(), 80, 24), end="")
    vt = Screen(80, 24)
    vt.feed(b"\x1b[?1049h\x1b[H" + captured.get().replace("\n", "\r\n").encode())  # as a tty sends it (ONLCR)
    assert vt.lines() == [line.rstrip() for line in render.screen(full_view(), 80, 24).plain.split("\n")]
    vt.feed(b"\x1b[?1049l")
    assert vt.text().strip() == ""


@pytest.mark.parametrize("data, text", [
    (b"ab\x1b[2;3Hc\x1b[1;1Hx", ["xb", "  c"]),
    (b"abcdef\x1b[1;3H\x1b[K", ["ab", ""]),
    (b"\x1b]0;title\x07\x1b[31mred\x1b[0m\r\nnext", ["red", "next"]),
    (b"\xe2\x94", []),  # half a character: nothing yet
])
def test_the_emulator(data: bytes, text: list[str]):
    vt = Screen(10, 3)
    vt.feed(data)
    assert vt.lines()[:len(text)] == text
