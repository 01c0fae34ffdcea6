"""The delivered events a replica can still hand to peers that lack them.

Events are kept per origin in seq order, each with its position in this
replica's delivery order, so a page of what a peer lacks can be merged back
into delivery order (a causal order: the peer can deliver it as it comes).

Once every member has an event (the causally stable clock has passed it),
nobody will ask for it again: ``prune`` forgets it and raises the ``base``
below which this log cannot serve.  A peer that asks for less than the base
(a new member) needs a snapshot of the state instead.

Costs: ``append`` O(1); ``missing`` O(k log o) for k events over o origins;
``prune`` O(pruned).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from zmqex.core.clock import VectorClock
from zmqex.core.events import Event


class EventLog:
    __slots__ = ("_events", "_base", "_next_pos")

    def __init__(self, base: VectorClock = VectorClock()) -> None:
        self._events: dict[str, list[tuple[int, Event]]] = {}
        self._base = base
        self._next_pos = 0

    def __len__(self) -> int:
        return sum(len(events) for events in self._events.values())

    @property
    def base(self) -> VectorClock:
        """Per origin, how many of its first events have been pruned."""
        return self._base

    def append(self, event: Event) -> None:
        """Record a delivered event; events of one origin come in seq order."""
        self._events.setdefault(event.origin, []).append((self._next_pos, event))
        self._next_pos += 1

    def get(self, origin: str, seq: int) -> Event | None:
        """The event ``origin:seq`` if it is held here. O(1)."""
        events = self._events.get(origin)
        index = seq - self._base.get(origin) - 1
        if events is None or not 0 <= index < len(events):
            return None
        return events[index][1]

    def can_serve(self, vc: VectorClock) -> bool:
        """Whether everything after ``vc`` is still here (else send a snapshot)."""
        return vc.dominates(self._base)

    def missing(self, vc: VectorClock, limit: int) -> tuple[list[Event], bool]:
        """Up to ``limit`` events ``vc`` lacks, in delivery order; and whether there are more."""
        runs = []
        for origin, events in self._events.items():
            skip = vc.get(origin) - self._base.get(origin)
            if skip < len(events):
                runs.append(events[max(skip, 0):])
        page: list[Event] = []
        for _, event in heapq.merge(*runs, key=lambda item: item[0]):
            if len(page) == limit:
                return page, True
            page.append(event)
        return page, False

    def prune(self, below: VectorClock) -> int:
        """Forget events at or below ``below`` and serve only from above it; returns how many went.

        ``below`` may reach past what is held (a snapshot covered it): the base moves there too.
        """
        gone = 0
        base = dict(self._base.items())
        for origin, upto in below.items():
            held = base.get(origin, 0)
            if upto <= held:
                continue
            events = self._events.get(origin, [])
            cut = min(upto - held, len(events))
            del events[:cut]
            gone += cut
            base[origin] = upto
        self._base = VectorClock(base)
        return gone

    def reset(self, base: VectorClock) -> None:
        """Start over empty at ``base`` (after installing a snapshot taken there)."""
        self._events.clear()
        self._base = base

    def __iter__(self) -> Iterator[Event]:
        """Every event held, in delivery order."""
        runs = list(self._events.values())
        for _, event in heapq.merge(*runs, key=lambda item: item[0]):
            yield event

    def _check(self, delivered: VectorClock) -> None:
        """Invariants: per origin, the log holds exactly the events after the base up to ``delivered``. O(n)."""
        positions: list[int] = []
        for origin, events in self._events.items():
            first = self._base.get(origin) + 1
            assert [e.seq for _, e in events] == list(range(first, first + len(events))), f"{origin}: gap in log"
            assert all(e.origin == origin for _, e in events)
            positions.extend(pos for pos, _ in events)
        for origin in set(self._events) | set(delivered):
            top = self._base.get(origin) + len(self._events.get(origin, ()))
            assert top == max(delivered.get(origin), self._base.get(origin)), (
                f"{origin}: log reaches {top}, delivered {delivered.get(origin)}")
        assert len(positions) == len(set(positions)) and all(p < self._next_pos for p in positions)
