"""One whole nemesis run: nodes, traders, the schedule, the final convergence, the checker.

``run(Plan(...))`` returns a :class:`Report`; ``report.problems`` is empty when
everything held, and ``report.summary()`` says what ran and what was found.
Whatever happens, the traders are stopped, the faults healed, the nodes stopped,
and namespaces, links and mounts removed (also at exit, and by the next run if
this process is killed: :mod:`cleanup`).  The history (``history.jsonl``) and the
node logs stay in the work directory.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.nemesis import checker, cleanup, faults
from tests.nemesis.cluster import Cluster
from tests.nemesis.disk import Tmpfs
from tests.nemesis.history import OK, History
from tests.nemesis.nemesis import Nemesis
from tests.nemesis.netns import Lan
from tests.nemesis.schedule import Step, steps
from tests.nemesis.workload import Trader


class Unavailable(Exception):
    """Some fault kinds of the plan cannot run here (root, namespaces, tmpfs): the reasons."""


@dataclass
class Plan:
    workdir: Path
    seed: int
    kinds: list[str]
    nodes: int = 3
    faults: int | None = None  # this many faults; or as many as fit in ``seconds``
    seconds: float | None = None
    gap: tuple[float, float] = (2.0, 5.0)
    duration: tuple[float, float] = (3.0, 8.0)
    overlap: float = 0.0  # the chance that a step brings a second fault (schedule.steps)
    warmup: float = 2.0  # seconds of trading before the first fault
    pace: float = 0.05  # seconds between one trader's requests, on average
    catch_up_bound: float = 60.0  # after each heal
    converge_bound: float = 60.0  # after the traders stop
    netns: bool | None = None  # None: if a kind needs namespaces
    tmpfs_mb: int = 256  # each node's data directory, when a kind fills disks
    node_args: list[str] = field(default_factory=list)
    verbose: bool = False

    @property
    def ids(self) -> list[str]:
        return [chr(ord("a") + i) for i in range(self.nodes)]


@dataclass
class Report:
    plan: Plan
    done: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    result: checker.Result | None = None
    recoveries: list[tuple[float, str]] = field(default_factory=list)  # (seconds, the fault)
    converged: float | None = None  # seconds after the traders stopped
    ops: int = 0
    elapsed: float = 0.0
    where: str = ""

    def summary(self) -> str:
        plan, result = self.plan, self.result
        kinds = Counter(part.kind for step in self.done for part in step.parts)
        lines = [f"nemesis seed {plan.seed}, {plan.nodes} nodes ({self.where}), kinds {','.join(plan.kinds)}, "
                 f"overlap {plan.overlap:g}, {self.elapsed:.0f}s; work dir {plan.workdir}",
                 "faults: " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none")
                 + f" (in {len(self.done)} steps, {sum(1 for s in self.done if s.also)} of them two at once)",
                 "schedule: " + ("; ".join(str(step) for step in self.done) or "none")]
        if result is not None:
            lines.append(f"requests {self.ops}; orders acknowledged {result.acked}, checked on every replica "
                         f"({result.checked} order-replica checks); fills {result.fills}; client errors "
                         + (", ".join(f"{c} {n}" for c, n in result.errors.most_common()) or "none"))
        if self.recoveries:
            worst = max(self.recoveries)
            lines.append(f"longest recovery after a heal: {worst[0]:.1f}s ({worst[1]}); "
                         f"mean {sum(s for s, _ in self.recoveries) / len(self.recoveries):.1f}s")
        lines.append("converged after the traders stopped: "
                     + (f"{self.converged:.1f}s" if self.converged is not None else "NO"))
        lines.append(f"{len(self.problems)} problems" + "".join(f"\n  - {p}" for p in self.problems[:40])
                     + (f"\n  ... {len(self.problems) - 40} more" if len(self.problems) > 40 else ""))
        return "\n".join(lines)


def run(plan: Plan) -> Report:
    """Carry out ``plan``; raise Unavailable (before starting anything) if a kind cannot run here."""
    missing = faults.unavailable(plan.kinds)
    if missing:
        raise Unavailable("; ".join(missing.values()))
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if plan.verbose else (lambda text: None)
    for error in cleanup.sweep():
        say(f"sweeping what earlier runs left: {error}")
    plan.workdir.mkdir(parents=True, exist_ok=True)
    report = Report(plan)
    history = History()
    resources = cleanup.Resources(secrets.token_hex(4))
    stop = threading.Event()
    traders: list[Trader] = []
    cluster: Cluster | None = None
    needs = faults.needs(plan.kinds)
    try:
        use_netns = plan.netns if plan.netns is not None else faults.NETNS in needs
        lan = Lan(plan.ids, resources) if use_netns else None
        report.where = f"namespaces on {lan.subnet}" if lan else "loopback"
        disks = ({node: Tmpfs(plan.workdir / node, plan.tmpfs_mb, resources) for node in plan.ids}
                 if faults.TMPFS in needs else {})
        cluster = Cluster(plan.workdir, plan.ids, lan=lan, disks=disks, args=plan.node_args, resources=resources)
        cluster.start()
        say(f"{history.now():7.1f}s  {plan.nodes} nodes meshed ({report.where})")
        for i, node in enumerate(plan.ids):
            traders.append(Trader(f"t{node}", node, _address_of(cluster, node), history,
                                  seed=plan.seed * 1_000 + i, stop=stop, pace=plan.pace))
        for trader in traders:
            trader.start()
        stop.wait(plan.warmup)  # the schedule: trading before the first fault
        nemesis = Nemesis(cluster, history, catch_up_bound=plan.catch_up_bound, log=say)
        report.done = nemesis.run(steps(plan.seed, plan.kinds, plan.ids, plan.gap, plan.duration, plan.overlap),
                                  count=plan.faults, until=plan.seconds)
        stop.set()
        _join(traders, report)
        nemesis.check_crashes("at the end")
        report.problems += nemesis.problems
        report.recoveries = [(f.caught_up, f"{f.kind} {','.join(f.targets)} at {f.start:.0f}s")
                             for f in history.faults() if f.caught_up is not None]
        report.converged, last = _converge(cluster, plan.converge_bound)
        if report.converged is None:
            report.problems.append(f"liveness: replicas not identical and quiet {plan.converge_bound:.0f}s after "
                                   f"the traders stopped: {last}")
        say(f"{history.now():7.1f}s  traders stopped; converged: {report.converged}")
        ops = history.ops()
        report.ops = len(ops)
        acked = {op.result["order_id"] for op in ops if op.op == "place" and op.outcome == OK and op.result}
        replicas = checker.read(plan.ids, lambda node: cluster.client(node, timeout=10.0), acked)
        report.result = checker.check(ops, replicas)
        report.problems += report.result.problems
        seen = len(nemesis.problems)
        nemesis.check_crashes("while being checked")
        report.problems += nemesis.problems[seen:]
    finally:
        stop.set()
        _join(traders, report)
        if cluster is not None:
            cluster.stop()
        for error in resources.release():
            report.problems.append(f"cleanup: {error}")
        history.dump(plan.workdir / "history.jsonl")
        report.elapsed = history.now()
    return report


def _address_of(cluster: Cluster, node: str) -> Callable[[], str]:
    return lambda: cluster.address(node)


def _join(traders: list[Trader], report: Report) -> None:
    for trader in traders:
        if trader.ident is not None:  # started
            trader.join(30)
            if trader.is_alive():
                report.problems.append(f"trader {trader.trader} did not stop within 30 s")


def _converge(cluster: Cluster, bound: float) -> tuple[float | None, str]:
    """Wait until all replicas are identical, ready, quiet and uncrossed; (seconds, "") or (None, why not)."""
    started = time.monotonic()
    why = ""
    while True:
        statuses: dict[str, dict[str, Any] | None] = {node: cluster.status(node) for node in cluster.ids}
        why = _not_converged(statuses)
        if not why:
            return time.monotonic() - started, ""
        if time.monotonic() - started >= bound:
            return None, why
        time.sleep(0.2)


def _not_converged(statuses: dict[str, dict[str, Any] | None]) -> str:
    why = []
    for node, s in statuses.items():
        if s is None:
            why.append(f"{node} not answering")
            continue
        flags = [text for bad, text in ((not s["ready"], "not ready"), (s["crossed"], "crossed"),
                                        (s["in_flight"], f"{s['in_flight']} in flight"),
                                        (not all(p["up"] for p in s["peers"].values()), "a peer down")) if bad]
        if flags:
            why.append(f"{node} {', '.join(flags)}")
    states = {node: (s["hash"], tuple(sorted(s["vc"].items()))) for node, s in statuses.items() if s}
    if len(set(states.values())) > 1:
        why.append("differ: " + "; ".join(f"{n} {h[:10]} {dict(vc)}" for n, (h, vc) in states.items()))
    return "; ".join(why)
