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
        # Per origin, its events and, beside them, their positions in delivery order: two
        # lists rather than one of (position, event) pairs, so a delivered event costs no
        # tuple, a fifth of the objects a replica keeps per event for the garbage collector
        # to walk (its full collections are a third of a compiled core's time).
        self._events: dict[str, tuple[list[int], list[Event]]] = {}
        self._base = base
        self._next_pos = 0

    def __len__(self) -> int:
        return sum(len(events) for _, events in self._events.values())

    @property
    def base(self) -> VectorClock:
        """Per origin, how many of its first events have been pruned."""
        return self._base

    def append(self, event: Event) -> None:
        """Record a delivered event; events of one origin come in seq order."""
        held = self._events.get(event.origin)
        if held is None:
            held = self._events[event.origin] = ([], [])
        held[0].append(self._next_pos)
        held[1].append(event)
        self._next_pos += 1

    def get(self, origin: str, seq: int) -> Event | None:
        """The event ``origin:seq`` if it is held here. O(1)."""
        held = self._events.get(origin)
        index = seq - self._base.get(origin) - 1
        if held is None or not 0 <= index < len(held[1]):
            return None
        return held[1][index]

    def can_serve(self, vc: VectorClock) -> bool:
        """Whether everything after ``vc`` is still here (else send a snapshot)."""
        return vc.dominates(self._base)

    def missing(self, vc: VectorClock, limit: int) -> tuple[list[Event], bool]:
        """Up to ``limit`` events ``vc`` lacks, in delivery order; and whether there are more."""
        runs = []
        for origin, (positions, events) in self._events.items():
            skip = max(vc.get(origin) - self._base.get(origin), 0)
            if skip < len(events):
                runs.append(zip(positions[skip:], events[skip:]))
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
            positions, events = self._events.get(origin, ([], []))
            cut = min(upto - held, len(events))
            del positions[:cut]
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
        runs = [zip(positions, events) for positions, events in self._events.values()]
        for _, event in heapq.merge(*runs, key=lambda item: item[0]):
            yield event

    def _check(self, delivered: VectorClock) -> None:
        """Invariants: per origin, the log holds exactly the events after the base up to ``delivered``. O(n)."""
        all_positions: list[int] = []
        for origin, (positions, events) in self._events.items():
            first = self._base.get(origin) + 1
            assert [e.seq for e in events] == list(range(first, first + len(events))), f"{origin}: gap in log"
            assert all(e.origin == origin for e in events)
            assert len(positions) == len(events) and positions == sorted(positions), f"{origin}: positions"
            all_positions.extend(positions)
        for origin in set(self._events) | set(delivered):
            top = self._base.get(origin) + len(self._events[origin][1] if origin in self._events else ())
            assert top == max(delivered.get(origin), self._base.get(origin)), (
                f"{origin}: log reaches {top}, delivered {delivered.get(origin)}")
        assert len(all_positions) == len(set(all_positions)) and all(p < self._next_pos for p in all_positions)
