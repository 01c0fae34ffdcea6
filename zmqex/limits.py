"""The bounds a node puts on its clients, with their defaults, in one place.

A node passes a :class:`Limits` to :class:`zmqex.api.ClientApi`; docs/protocol.md
("Limits") states each bound and the error a client gets past it.  Every bound
is per trader first, so one trader's flood is refused before it can take what
the node-wide bounds keep for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    #: ``place`` requests awaiting their taker flow, per trader (``busy`` past it).
    pending_per_trader: int = 1_000
    #: ... and per node, all traders together (``busy``).
    pending_per_node: int = 10_000
    #: Requests per second per trader, a token bucket refilled at this rate (``rate_limited``).
    rate_per_s: int = 2_000
    #: Requests a trader may send at once after being quiet: the bucket's size.
    burst: int = 4_000
    #: Open own orders per trader, resting or still matching (``place`` refused: ``limit``).
    open_per_trader: int = 10_000
    #: Open own orders per node, all traders together (``limit``).
    open_per_node: int = 100_000
    #: Fills in one ``fills`` reply: the most recent ones, ``truncated`` when there are more.
    fills_reply: int = 1_000
    #: Levels per side in one ``book`` reply.
    book_depth: int = 1_000
    #: Items in one page of ``open_orders``, ``my_fills`` or ``trades`` (``limit`` above it: ``invalid_request``).
    page: int = 1_000
    #: Levels per side of a ``book`` subscription: the node recomputes that many after every change.
    stream_depth: int = 100
    #: Open subscriptions per connection, per trader, per node (``subscribe`` past it: ``limit``).  Every fill
    #: costs a message per ``trades`` subscription, so the node-wide bound is what a fill may cost.
    subs_per_connection: int = 16
    subs_per_trader: int = 64
    subs_per_node: int = 1_000
    #: Connections with cancel on disconnect armed, per node (``limit``); the timer checks each every tick.
    cod_per_node: int = 10_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"limit {name} must be a positive integer, got {value!r}")


DEFAULT = Limits()
