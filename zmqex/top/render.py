"""Draw a :class:`~zmqex.top.view.View` as a screen of text: a pure function of the view and a size.

:func:`screen` returns exactly ``height`` lines of at most ``width`` cells (a
rich :class:`~rich.text.Text`, styled), laid out for a terminal of 80x24 or
more (a smaller one gets the same, cropped)::

    title: the node, ready, its state hash, events, resting orders
    book ladder (asks above, bids below, depth bars) | trade tape, newest first
    my open orders
    peers: up or down, clock lag, announced state hash
    footer: keys, the connection's problem if any, when the view last changed

Amounts are shown exactly as the node sent them (decimal strings, trailing
zeros cut); a depth bar's length is computed in integer satoshis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text

from zmqex.core import money
from zmqex.protocol import BookView, FillView, Level
from zmqex.top.view import View

ASK, BID, TITLE, DIM, BAD = "red", "green", "reverse bold", "dim", "bold red"
SIDE_STYLE = {"buy": BID, "sell": ASK}  # a trade's taker side: "buy" lifted an ask
MY_ORDER_ROWS = 3  # my orders shown below the ladder (on a screen of 24 lines or more)
MAX_PEER_ROWS = 3
HASH_SHOWN = 12  # hex digits of a state hash


def screen(view: View, width: int, height: int, bar: str = "█") -> Text:
    """The whole screen for ``view``: ``height`` lines, each cropped or padded to ``width``."""
    width, height = max(20, width), max(8, height)
    orders = _my_orders(view, MY_ORDER_ROWS if height >= 24 else 1)
    peers = _peers(view, min(MAX_PEER_ROWS, max(1, len(view.peers))) if height >= 16 else 0)
    rows = max(3, height - 2 - len(orders) - len(peers))  # the ladder and the tape, side by side
    left = width * 11 // 20
    ladder, tape = _ladder(view.book, left, rows, bar), _tape(view.trades, width - left - 1, rows)
    lines = [_title(view)]
    lines += [Text.assemble(_fit(a, left), Text("│", DIM), b) for a, b in zip(ladder, tape)]
    lines += orders + peers
    lines.append(_footer(view))
    out = Text()
    for i, line in enumerate(lines[:height]):
        if i:
            out.append("\n")
        out.append_text(_fit(line, width))
    return out


def _fit(line: Text, width: int) -> Text:
    line = line.copy()
    line.truncate(width, overflow="crop", pad=True)
    return line


def _title(view: View) -> Text:
    state = ("ready" if view.ready else "NOT READY") if view.ready is not None else "..."
    return Text(f" zmqex-top  {view.node or '?'}@{view.address}  {state}  hash {view.hash[:HASH_SHOWN] or '-'}"
                f"  events {view.events}  resting {view.open_orders}", TITLE)


def _ladder(book: BookView | None, width: int, rows: int, bar: str) -> list[Text]:
    """The best ``(rows - 2) // 2`` levels a side: asks worst to best, the spread, bids best to worst."""
    head = Text(f" {'price':>10} {'BTC':>12}  depth", "bold")
    if book is None:
        return _pad([head, Text(" waiting for the book ...", DIM)], rows)
    per_side = max(1, (rows - 2) // 2)
    asks, bids = book["asks"][:per_side], book["bids"][:per_side]
    cells = max(1, width - 27)
    most = max((money.parse_qty(str(level[1])) for level in (*asks, *bids)), default=0)
    lines = [head] + [Text("")] * (per_side - len(asks))
    lines += [_level(level, ASK, cells, most, bar) for level in reversed(asks)]
    if not asks:
        lines[-1] = Text("   (no asks)", DIM)
    lines.append(_spread(book))
    lines += [_level(level, BID, cells, most, bar) for level in bids]
    if not bids:
        lines.append(Text("   (no bids)", DIM))
    return _pad(lines, rows)


def _level(level: Level, style: str, cells: int, most: int, bar: str) -> Text:
    price, qty = str(level[0]), str(level[1])
    length = max(1, money.parse_qty(qty) * cells // most) if most else 0  # integers: no float near money
    return Text.assemble((f" {price:>10} {_btc(qty):>12}  ", style), (bar * length, style + " dim"))


def _spread(book: BookView) -> Text:
    text = " ---"
    if book["asks"] and book["bids"]:
        gap = money.parse_price(str(book["asks"][0][0])) - money.parse_price(str(book["bids"][0][0]))
        text += f" spread {money.format_price(gap)}"
    hidden = len(book["unavailable"]["bids"]) + len(book["unavailable"]["asks"])
    if hidden:
        text += f", {hidden} levels unavailable (owner down)"
    return Text(text + " ---", DIM)


def _tape(trades: Sequence[FillView], width: int, rows: int) -> list[Text]:
    lines = [Text(f" {'TRADES':<8} {'price':>10} {'BTC':>12}", "bold")]
    for fill in list(trades)[:rows - 1]:
        lines.append(Text(f" {_clock(fill['ts']):<8} {fill['price']:>10} {_btc(fill['qty']):>12}",
                          SIDE_STYLE.get(fill["taker_side"], "")))
    if not trades:
        lines.append(Text(" no trades yet", DIM))
    return [_fit(line, width) for line in _pad(lines, rows)]


def _my_orders(view: View, rows: int) -> list[Text]:
    if view.trader is None:
        return [Text(" MY ORDERS", "bold"), Text("   --trader NAME (or --keys) shows a trader's open orders", DIM)][:1 + rows]
    orders = sorted(view.orders.values(), key=lambda o: o["ts"])
    lines = [Text(f" MY ORDERS  {view.trader}: {len(orders)} open", "bold")]
    shown = orders if len(orders) <= rows else orders[:rows - 1]
    for o in shown:
        price = o["price"] if o["price"] is not None else "market"
        lines.append(Text(f"   {o['order_id']:<10} {o['side']:<4} {_btc(o['open']):>12} of {_btc(o['qty']):<12} "
                          f"@ {price:>10}  {o['status']:<8} {o['client_order_id']}", SIDE_STYLE.get(o["side"], "")))
    if len(shown) < len(orders):
        lines.append(Text(f"   ... and {len(orders) - len(shown)} more", DIM))
    return _pad(lines, 1 + rows)


def _peers(view: View, rows: int) -> list[Text]:
    if not rows:
        return []
    up = sum(p.up for p in view.peers)
    lines = [Text(f" PEERS  {up}/{len(view.peers)} up", "bold")]
    for p in view.peers[:rows]:
        lag = "?" if p.lag is None else str(p.lag)
        line = Text.assemble(f"   {p.name:<12} ", ("up  " if p.up else "DOWN", BID if p.up else BAD),
                             f"  lag {lag:>7} events  hash {(p.hash or '-')[:HASH_SHOWN]:<{HASH_SHOWN}}")
        if p.hash and p.hash == view.hash:
            line.append(" same as ours", DIM)
        elif p.hash and p.lag == p.ahead == 0:  # at this node's very clock: must be the same state
            line.append(" MISMATCH", BAD)
        lines.append(line)
    if len(view.peers) > rows:
        lines[-1] = Text(f"   ... and {len(view.peers) - rows + 1} more peers", DIM)
    if not view.peers:
        lines.append(Text("   (none)", DIM))
    return lines


def _footer(view: View) -> Text:
    line = Text(" q quit", DIM)
    if view.problem:
        line.append(f"  {view.problem}", BAD)
    elif view.updated:
        line.append(f"  live, updated {_clock(view.updated)}", DIM)
    return line


def _pad(lines: list[Text], rows: int) -> list[Text]:
    return (lines + [Text("")] * rows)[:rows]


def _btc(text: str) -> str:
    """``"0.50000000"`` -> ``"0.5"``: exact, without the trailing zeros."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _clock(epoch_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_ms // 1000))
