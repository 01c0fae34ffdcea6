"""Carrying out a schedule: start each fault, hold it, heal it, and time the recovery.

After each heal the nemesis takes the clock every node had (the entry-wise
maximum of what the nodes answer) and waits, within a bound, until every node is
ready, sees every peer up, and has delivered at least that clock: the time this
takes is the fault's recovery, reported per fault and as the longest.  Traders
keep trading meanwhile, so replicas are never identical under load; they must
only catch up with what existed at the heal.  A fault that does not recover
within the bound is a liveness failure, recorded with what each node lacked.

A node that exits without being killed (a crash) is recorded with its last log
lines and restarted, so that the run goes on and the checker sees everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from tests.nemesis.cluster import Cluster
from tests.nemesis.faults import KINDS
from tests.nemesis.history import FaultRecord, History
from tests.nemesis.schedule import Step

POLL = 0.2


class Nemesis:
    def __init__(self, cluster: Cluster, history: History, *, catch_up_bound: float,
                 abort: threading.Event | None = None, log: Any = None) -> None:
        self.cluster, self.history = cluster, history
        self.catch_up_bound = catch_up_bound
        self.abort = abort or threading.Event()
        self.log = log or (lambda text: None)
        self.problems: list[str] = []  # liveness failures and crashes, as they happen

    def run(self, steps: Iterable[Step], *, count: int | None = None, until: float | None = None) -> list[Step]:
        """Carry out ``count`` steps, or as many as fit before ``until`` (seconds into the run); those done."""
        done: list[Step] = []
        for step in steps:
            if count is not None and len(done) >= count:
                break
            if until is not None and self.history.now() + step.gap + step.duration > until:
                break
            if self.abort.wait(step.gap):  # the schedule's quiet gap
                break
            self.check_crashes("before " + str(step))
            self.one(step)
            done.append(step)
        return done

    def one(self, step: Step) -> FaultRecord:
        """Start the step's faults, hold them, heal them (the last started first), and time the recovery."""
        kind = "+".join(part.kind for part in step.parts)
        targets = [node for part in step.parts for node in part.targets]
        record = FaultRecord(kind, targets, self.history.now(), detail={p.kind: p.params for p in step.parts})
        self.log(f"{record.start:7.1f}s  {str(step).partition(' ')[2]}")
        for part in step.parts:
            try:
                KINDS[part.kind].start(self.cluster, part.targets, part.params)
            except Exception as exc:  # a fault we could not inject is a harness failure, reported as such
                record.note += f" could not start {part.kind}: {exc}"
                self.problems.append(f"{step}: could not start {part.kind}: {exc}")
        self.abort.wait(step.duration)  # the faults last this long
        record.detail["seen_down"] = self.seen_down(targets)
        record.healed = self.history.now()
        for part in reversed(step.parts):
            try:
                KINDS[part.kind].heal(self.cluster, part.targets, part.params)
            except Exception as exc:
                record.note += f" could not heal {part.kind}: {exc}"
                self.problems.append(f"{step}: could not heal {part.kind}: {exc}")
        self.check_crashes(f"during {step}")
        seconds, lagging = self.catch_up()
        if seconds is None:
            record.note += f" not caught up {self.catch_up_bound:.0f}s after the heal: {lagging}"
            self.problems.append(f"{step} (at {record.start:.1f}s): liveness: not caught up "
                                 f"{self.catch_up_bound:.0f}s after the heal: {lagging}")
        else:
            record.caught_up = round(self.history.now() - record.healed, 2)
        self.log(f"{self.history.now():7.1f}s  healed {kind} (seen down by {record.detail['seen_down']}); "
                 + (f"caught up in {record.caught_up:.1f}s" if record.caught_up is not None else record.note.strip()))
        self.history.add_fault(record)
        return record

    def seen_down(self, targets: list[str]) -> dict[str, list[str]]:
        """Which of ``targets`` the other nodes see down now: evidence that the fault took effect."""
        seen = {}
        for node in self.cluster.ids:
            status = self.cluster.status(node) if node not in targets else None
            if status is not None:
                seen[node] = sorted(t for t in targets if not status["peers"].get(t, {}).get("up", False))
        return seen

    def check_crashes(self, when: str) -> None:
        """Record and restart every node that exited without being killed."""
        for node, why in self.cluster.crashed().items():
            self.problems.append(f"node {node} exited {when}, not killed by the nemesis: {why}")
            self.log(f"node {node} crashed {when}; restarting it")
            try:
                self.cluster.restart(node)
            except Exception as exc:
                self.problems.append(f"node {node} could not be restarted after its crash: {exc}")

    def catch_up(self) -> tuple[float | None, str]:
        """Wait until every node has what any node had now; (seconds, "") or (None, what lacked)."""
        started = time.monotonic()
        target: dict[str, int] = {}
        for node in self.cluster.ids:
            status = self.cluster.status(node)
            for origin, seq in (status or {}).get("vc", {}).items():
                target[origin] = max(target.get(origin, 0), seq)
        deadline = started + self.catch_up_bound
        lagging = "no node answered"
        while True:
            lagging = "; ".join(f"{node}: {why}" for node in self.cluster.ids
                                if (why := _lags(self.cluster.status(node), target)))
            if not lagging:
                return time.monotonic() - started, ""
            if time.monotonic() >= deadline or self.abort.is_set():
                return None, lagging
            time.sleep(POLL)


def _lags(status: dict[str, Any] | None, target: dict[str, int]) -> str:
    """What keeps one node from having caught up; "" if nothing."""
    if status is None:
        return "not answering"
    why = []
    if not status["ready"]:
        why.append("not ready")
    down = sorted(p for p, info in status["peers"].items() if not info["up"])
    if down:
        why.append(f"sees {','.join(down)} down")
    behind = {o: f"{status['vc'].get(o, 0)}<{seq}" for o, seq in target.items() if status["vc"].get(o, 0) < seq}
    if behind:
        why.append(f"behind {behind}")
    return ", ".join(why)
