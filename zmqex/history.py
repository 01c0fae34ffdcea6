"""Fills by position, for the paged queries ``trades`` and ``my_fills``.

A fill's **position** is its place in the order this replica learned of its
fills: 1 for the first, and so on.  It is the cursor a client pages with
(``since``): node-local (another node learned the same fills in another
order), and stable, since the ledger only ever appends a fill
(:mod:`zmqex.core.ledger`: a restart replays the log in delivery order, a
checkpoint keeps its fills in that order, and a snapshot merged into the
ledger adds after what it held).

Each fill of an own order is also filed under the trader who placed that
order (and, for operators, under the node's own fills), with which side of
the fill the order was, so ``my_fills`` pages through one trader's fills
without looking at anyone else's.

The reports of private trades (:class:`~zmqex.core.events.Report`) are on
the tape too, filed by position among the fills as this node learned them;
they belong to no order of the book, so to no trader's ``my_fills``.

Costs: ``sync`` is O(new fills and reports); a page is O(log n + limit).
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any, NamedTuple

from zmqex import protocol
from zmqex.core.events import Event, fill_of, owner_of
from zmqex.core.replica import Replica
from zmqex.errors import InvalidRequest

MAKER, TAKER = protocol.LIQUIDITY


class Share(NamedTuple):
    """An own order's part in the fill at ``position``."""

    position: int
    order_id: str
    liquidity: str  # maker or taker


class History:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._ids: list[Any] = []  # (fill or report event id, whether a report) by position - 1
        self._fills = 0  # how many of the ledger's fills, and of its reports, are filed
        self._reports = 0
        self._of: dict[str, list[Share]] = {}  # trader -> shares of their orders, by position
        self._own: list[Share] = []  # shares of every own order (what an operator sees)
        self.sync()

    def __len__(self) -> int:
        return len(self._ids)

    def sync(self) -> list[Event]:
        """File the fills the ledger gained since the last call, then its new reports; returns the fills, in order."""
        ledger = self.replica.ledger
        reports = ledger.reports
        if len(reports) > self._reports:
            new_reports = list(itertools.islice(reversed(reports.values()), len(reports) - self._reports))
            self._ids.extend((event.id, True) for event in reversed(new_reports))  # O(new): from the end
            self._reports = len(reports)
        fills = ledger.fills
        missing = len(fills) - self._fills
        if missing <= 0:
            return []
        new = list(itertools.islice(reversed(fills.values()), missing))  # O(missing): from the end
        new.reverse()
        self._fills = len(fills)
        me, traders = self.replica.id, self.replica.traders.of
        for event in new:
            self._ids.append((event.id, False))
            position, body = len(self._ids), fill_of(event)
            for oid, liquidity in ((body.maker, MAKER), (body.taker, TAKER)):
                if owner_of(oid) == me:
                    share = Share(position, oid, liquidity)
                    self._own.append(share)
                    trader = traders.get(oid)
                    if trader:
                        self._of.setdefault(trader, []).append(share)
        return new

    def event(self, position: int) -> Event:
        """The fill or report at ``position``."""
        event_id, report = self._ids[position - 1]
        ledger = self.replica.ledger
        return ledger.reports[event_id] if report else ledger.fills[event_id]

    def trades(self, since: int, limit: int) -> tuple[list[Event], int, bool]:
        """Fills after position ``since``, at most ``limit``: (fills, the last one's position, more after it)."""
        self._check_cursor(since)
        end = min(len(self._ids), since + limit)
        return [self.event(p) for p in range(since + 1, end + 1)], max(since, end), end < len(self._ids)

    def shares(self, trader: str, operator: bool, since: int, limit: int) -> tuple[list[Share], int, bool]:
        """The trader's shares in fills after position ``since``, of at most ``limit`` fills (both shares
        of a fill between two of their orders come together): (shares, last position, more after it)."""
        self._check_cursor(since)
        shares = self._own if operator else self._of.get(trader, [])
        start = bisect.bisect_right(shares, since, key=lambda share: share.position)
        out: list[Share] = []
        fills = 0
        for i in range(start, len(shares)):
            share = shares[i]
            if not out or share.position != out[-1].position:
                if fills == limit:
                    return out, out[-1].position, True
                fills += 1
            out.append(share)
        return out, out[-1].position if out else since, False

    def _check_cursor(self, since: int) -> None:
        if since > len(self._ids):
            raise InvalidRequest(f"since {since} is past the last fill this node knows ({len(self._ids)}): "
                                          "a cursor is node-local, from this node's pages")
