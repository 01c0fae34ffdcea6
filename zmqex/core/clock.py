"""Vector clocks.

A :class:`VectorClock` maps node ids to the number of that node's events seen.
Missing entries are zero.  Instances are immutable and hashable; every
operation returns a new clock.  Costs are in ``n``, the number of nodes named.

Laws (proven in ``tests/test_clock.py``): ``merge`` is commutative, associative
and idempotent and its result dominates both inputs; ``compare`` is
antisymmetric; ``a.dominates(b)`` iff ``compare(a, b)`` is AFTER or EQUAL.
"""

from __future__ import annotations

import enum
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, Union


class Order(enum.Enum):
    """How two clocks relate in the happened-before partial order."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


class VectorClock:
    """An immutable vector clock with zero entries elided.

    A read-only mapping of node ids to counts (registered as a ``Mapping``
    rather than subclassing it: compiled with mypyc, a subclass of the ABC gets
    a weak-reference slot that the compiled class frees wrongly).
    """

    __slots__ = ("_c", "_total", "_hash")

    def __init__(self, counts: Clockish | None = None, _trusted_total: int = -1) -> None:
        if _trusted_total >= 0:  # internal fast path (_trusted): counts is a checked dict of our own
            assert isinstance(counts, dict)
            self._c: dict[str, int] = counts
            self._total = _trusted_total
            self._hash: int | None = None
            return
        counts = counts or {}
        # Any: the entries are untrusted until checked here; compiled with mypyc, a loop
        # typed (str, int) would raise TypeError first, and would read True as 1.
        entries: Any = counts.items()
        for node, n in entries:
            if type(n) is not int or n < 0:
                raise ValueError(f"clock entry {node!r} must be a non-negative int, got {n!r:.20}")
        c = {k: v for k, v in counts.items() if v}
        self._c = c
        self._total = sum(c.values())
        self._hash = None

    # Mapping protocol (O(1) lookups; a missing node reads as 0).
    def __getitem__(self, node: str) -> int:
        return self._c[node]

    def get(self, node: str, default: int = 0) -> int:
        return self._c.get(node, default)

    def __contains__(self, node: object) -> bool:
        return node in self._c

    def __iter__(self) -> Iterator[str]:
        return iter(self._c)

    # The Mapping mixins would iterate in Python, one __getitem__ per entry;
    # the dict's own views are C and several times faster (a clock is read per event).
    def keys(self) -> KeysView[str]:
        return self._c.keys()

    def values(self) -> ValuesView[int]:
        return self._c.values()

    def items(self) -> ItemsView[str, int]:
        return self._c.items()

    def __len__(self) -> int:
        return len(self._c)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VectorClock):
            return self._c == other._c
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._c.items()))
        return self._hash

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in sorted(self._c.items()))
        return f"VectorClock({inner})"

    @property
    def total(self) -> int:
        """Sum of all entries, O(1): the first part of the book priority key."""
        return self._total

    def items_sorted(self) -> list[tuple[str, int]]:
        """Entries sorted by node id: the canonical order on the wire. O(n log n)."""
        return sorted(self._c.items())

    def increment(self, node: str) -> VectorClock:
        """This clock with ``node``'s entry one higher. O(n)."""
        c = dict(self._c)
        c[node] = c.get(node, 0) + 1
        return VectorClock._trusted(c, self._total + 1)

    def with_entry(self, node: str, n: object) -> VectorClock:
        """This clock with ``node``'s entry set to ``n``. O(n)."""
        # n: object, checked here (compiled, an int parameter would raise TypeError, and take True as 1).
        if type(n) is not int or n < 0:
            raise ValueError(f"clock entry {node!r} must be a non-negative int, got {n!r:.20}")
        c = dict(self._c)
        old = c.get(node, 0)
        if n:
            c[node] = n
        else:
            c.pop(node, None)
        return VectorClock(c, self._total - old + n)  # the hot path, one per event: _trusted without its call

    def merge(self, other: Clockish) -> VectorClock:
        """The least clock that dominates both (entry-wise maximum). O(n)."""
        c = dict(self._c)
        for node, n in other.items():
            if n > c.get(node, 0):
                c[node] = n
        return VectorClock(c)

    def dominates(self, other: Clockish) -> bool:
        """True if every entry of ``other`` is <= ours (we have seen all it has). O(n)."""
        mine = self._c
        return all(n <= mine.get(node, 0) for node, n in other.items())

    def compare(self, other: VectorClock) -> Order:
        """Where this clock stands relative to ``other``. O(n)."""
        ge = self.dominates(other)
        le = other.dominates(self)
        if ge and le:
            return Order.EQUAL
        if ge:
            return Order.AFTER
        if le:
            return Order.BEFORE
        return Order.CONCURRENT

    @staticmethod
    def _trusted(c: dict[str, int], total: int) -> VectorClock:
        # Internal fast path: ``c`` is already validated and owned by the new clock.
        return VectorClock(c, total)


#: A clock, or any mapping of node ids to counts (tests and decoders build them from dicts).
Clockish = Union[VectorClock, Mapping[str, int]]

Mapping.register(VectorClock)

EMPTY = VectorClock()
