"""Causal delivery (Birman-Schiper-Stephenson) with de-duplication.

An event from ``origin`` with clock ``vc`` is deliverable at a replica whose
delivered clock is ``d`` when it is the next event of its origin
(``vc[origin] == d[origin] + 1``) and everything it depends on is already
delivered (``vc[k] <= d[k]`` for every other ``k``).  Events that arrive early
wait here; events already delivered, or already waiting, are dropped, so
duplicates are harmless.

Costs: ``add`` O(1); ``pop_ready`` O(origins * n) per call, where ``n`` is the
clock size, since only the head of each origin's queue can be ready.
"""

from __future__ import annotations

from zmqex.core.clock import VectorClock
from zmqex.core.events import Event

#: Most events held back per origin, in all, and origins with events held.  A
#: flood of future events (a buggy or hostile peer) is dropped past these;
#: repair fetches them again in order.  (Not Final, unlike the hot path's constants:
#: tests monkeypatch them, which a compiled module's Final C statics would ignore.)
MAX_WAITING = 100_000
MAX_HELD = 200_000
MAX_ORIGINS = 256


class CausalBuffer:
    __slots__ = ("_waiting", "_size")

    def __init__(self) -> None:
        self._waiting: dict[str, dict[int, Event]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, event: Event, delivered: VectorClock) -> bool:
        """Hold ``event`` until it is ready; False if it is a duplicate or over the cap."""
        if event.seq <= delivered.get(event.origin):
            return False
        if self._size >= MAX_HELD or (event.origin not in self._waiting and len(self._waiting) >= MAX_ORIGINS):
            return False
        queue = self._waiting.setdefault(event.origin, {})
        if event.seq in queue or len(queue) >= MAX_WAITING:
            return False
        queue[event.seq] = event
        self._size += 1
        return True

    @staticmethod
    def ready(event: Event, delivered: VectorClock) -> bool:
        """Whether ``event`` may be delivered right after ``delivered``. O(n)."""
        origin = event.origin
        if event.seq != delivered.get(origin) + 1:
            return False
        get = delivered.get
        return all(n <= get(node) for node, n in event.vc.items() if node != origin)

    def pop_ready(self, delivered: VectorClock) -> Event | None:
        """Remove and return one event deliverable after ``delivered``, if any."""
        for origin, queue in self._waiting.items():
            nxt = delivered.get(origin) + 1
            event = queue.get(nxt)
            if event is None:
                continue
            if self.ready(event, delivered):
                del queue[nxt]
                self._size -= 1
                if not queue:
                    del self._waiting[origin]
                return event
        return None

    def prune(self, delivered: VectorClock) -> None:
        """Forget waiting events that ``delivered`` already covers. O(size)."""
        for origin in list(self._waiting):
            queue = self._waiting[origin]
            for seq in [s for s in queue if s <= delivered.get(origin)]:
                del queue[seq]
                self._size -= 1
            if not queue:
                del self._waiting[origin]

    def _check(self, delivered: VectorClock) -> None:
        """Invariants, after the replica delivered all it could: O(size).

        Nothing held is already delivered or ready (it would have been
        delivered), no queue is empty, and the size is the sum of the queues.
        """
        assert self._size == sum(len(q) for q in self._waiting.values()), "causal buffer size drifted"
        for origin, queue in self._waiting.items():
            assert queue, f"empty queue kept for {origin}"
            for seq, event in queue.items():
                assert event.origin == origin and event.seq == seq, f"{origin}:{seq} holds another event"
                assert seq > delivered.get(origin), f"{origin}:{seq} is held but already delivered"
                assert not self.ready(event, delivered), f"{origin}:{seq} is ready but held"
