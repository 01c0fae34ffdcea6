"""Which faults, on which nodes, for how long: all drawn from one seed.

The schedule is a sequence of steps: a quiet gap, then one fault held for a
duration, then its heal.  Kinds come round in shuffled rounds, so every kind
appears once in any ``len(kinds)`` consecutive steps.  The same seed, kinds and
node ids give the same steps, whatever happens while they run (the nemesis uses
no other randomness), so a failing run is repeated by its seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.nemesis.faults import KINDS


@dataclass(frozen=True)
class Step:
    kind: str
    targets: list[str]
    gap: float  # seconds of quiet before the fault
    duration: float  # seconds the fault lasts
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        return f"+{self.gap:.1f}s {self.kind} {','.join(self.targets)} for {self.duration:.1f}s{extra}"


def steps(seed: int, kinds: list[str], ids: list[str], gap: tuple[float, float] = (2.0, 5.0),
          duration: tuple[float, float] = (3.0, 8.0)) -> Iterator[Step]:
    """The endless schedule of ``seed`` (take as many steps as a run has time for)."""
    if not kinds:
        return
    rng = random.Random(seed)
    while True:
        round_ = sorted(kinds)
        rng.shuffle(round_)
        for kind in round_:
            fault = KINDS[kind]
            yield Step(kind, fault.pick(rng, ids), round(rng.uniform(*gap), 2), round(rng.uniform(*duration), 2),
                       fault.params(rng))
