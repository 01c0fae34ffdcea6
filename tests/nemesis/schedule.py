"""Which faults, on which nodes, for how long: all drawn from one seed.

The schedule is a sequence of steps: a quiet gap, then one fault held for a
duration, then its heal.  Kinds come round in shuffled rounds, so every kind
appears once in each round of ``len(kinds)`` steps.  With ``overlap`` (a
probability) a step may bring a second fault of another kind, on other nodes, held
and healed with it (a node killed while two others are cut off, say).  The same seed, kinds and
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
    also: tuple[Step, ...] = ()  # faults at the same time, on other nodes

    @property
    def parts(self) -> list[Step]:
        return [self, *self.also]

    def __str__(self) -> str:
        what = " + ".join(f"{part.kind} {','.join(part.targets)}" + "".join(f" {k}={v}" for k, v in part.params.items())
                          for part in self.parts)
        return f"+{self.gap:.1f}s {what} for {self.duration:.1f}s"


def steps(seed: int, kinds: list[str], ids: list[str], gap: tuple[float, float] = (2.0, 5.0),
          duration: tuple[float, float] = (3.0, 8.0), overlap: float = 0.0) -> Iterator[Step]:
    """The endless schedule of ``seed`` (take as many steps as a run has time for)."""
    if not kinds:
        return
    rng = random.Random(seed)
    while True:
        round_ = sorted(kinds)
        rng.shuffle(round_)
        for kind in round_:
            fault = KINDS[kind]
            targets = fault.pick(rng, ids)
            step = Step(kind, targets, round(rng.uniform(*gap), 2), round(rng.uniform(*duration), 2), fault.params(rng))
            others, rest = [k for k in sorted(kinds) if k != kind], [n for n in ids if n not in targets]
            if rng.random() < overlap and others and len(rest) >= 2:  # leave a node untouched
                second = KINDS[rng.choice(others)]
                picked = second.pick(rng, rng.sample(rest, len(rest) - 1))
                step = Step(kind, targets, step.gap, step.duration, step.params,
                            (Step(second.name, picked, 0.0, step.duration, second.params(rng)),))
            yield step
