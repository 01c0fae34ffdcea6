"""The garbage collector and a node's long-lived state.

A node's state only grows (orders, fills, the log), and CPython's full
collection walks every object it tracks: with 200k orders resting in a
replica that was a 620 ms pause, each time the heap had grown by a quarter,
and a third of the replica's run time went to collections.  The state holds
no reference cycles (reference counting alone frees it), so
:func:`freeze_survivors`, which the node runs once a second, moves what
survived the young collections out of the collector's sight (``gc.freeze``);
full collections then only ever see what is newer than a second.  Measured
in process, 60k operations on a book of 200k orders: longest pause 705 ms ->
40 ms, total time 2.8 s -> 1.8 s.

The cost: a reference cycle that becomes garbage after it was frozen is never
freed.  The node makes none in steady state (a full collection after a
6,000-order mixed run on three replicas finds only objects left from imports).
"""

from __future__ import annotations

import gc


def freeze_survivors() -> None:
    """Collect the young generations, then freeze everything that is left. Well under 1 ms."""
    gc.collect(1)
    gc.freeze()
