"""The kinds of fault: what each needs, which nodes it picks, how it starts and heals.

Every fault starts, lasts the schedule's duration, and heals; the nemesis then
measures how long the nodes take to catch up.  One fault at a time.

========= ========== ==================================================================
kind      needs      what it does
========= ========== ==================================================================
kill      -          ``kill -9`` one node; heal: restart it from its store
pause     -          ``SIGSTOP`` one node; heal: ``SIGCONT``
partition namespaces cut a minority off (one node: link down; more: another bridge)
slow      namespaces a slow link (``tc tbf``) to one node, both ways
rejoin    -          ``kill -9`` one node and lose its store; heal: restart it empty with
                     ``--join`` a live peer
disk      tmpfs      fill one node's disk; heal: free it
========= ========== ==================================================================
"""

from __future__ import annotations

import random
from typing import Any

from tests.nemesis import disk, netns
from tests.nemesis.cluster import Cluster

NETNS, TMPFS = "namespaces", "tmpfs"

class Fault:
    name = ""
    needs: tuple[str, ...] = ()

    def pick(self, rng: random.Random, ids: list[str]) -> list[str]:
        return [rng.choice(ids)]

    def params(self, rng: random.Random) -> dict[str, Any]:
        return {}

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        raise NotImplementedError

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        raise NotImplementedError


class Kill(Fault):
    name = "kill"

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.kill(targets[0])

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.restart(targets[0])


class Pause(Fault):
    name = "pause"

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.pause(targets[0])

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.resume(targets[0])


class Partition(Fault):
    name = "partition"
    needs = (NETNS,)

    def pick(self, rng: random.Random, ids: list[str]) -> list[str]:
        return sorted(rng.sample(ids, rng.randint(1, max(1, (len(ids) - 1) // 2))))  # a minority

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        assert cluster.lan is not None
        cluster.lan.cut(targets)

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        assert cluster.lan is not None
        cluster.lan.heal()


class Slow(Fault):
    name = "slow"
    needs = (NETNS,)

    def params(self, rng: random.Random) -> dict[str, Any]:
        return {"kbit": rng.choice([64, 128, 256, 512, 1024])}

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        assert cluster.lan is not None
        cluster.lan.slow(targets[0], params["kbit"])

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        assert cluster.lan is not None
        cluster.lan.heal()


class Rejoin(Fault):
    name = "rejoin"

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.kill(targets[0])
        cluster.wipe(targets[0])

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        peer = next(node for node in cluster.ids if node != targets[0])
        cluster.restart(targets[0], join=peer)


class DiskFull(Fault):
    name = "disk"
    needs = (TMPFS,)

    def start(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.disks[targets[0]].fill()

    def heal(self, cluster: Cluster, targets: list[str], params: dict[str, Any]) -> None:
        cluster.disks[targets[0]].free()


KINDS: dict[str, Fault] = {f.name: f for f in (Kill(), Pause(), Partition(), Slow(), Rejoin(), DiskFull())}


def unavailable(kinds: list[str]) -> dict[str, str]:
    """The kinds that cannot run here, each with why."""
    reasons: dict[str, str | None] = {}
    missing = {}
    for kind in kinds:
        for need in KINDS[kind].needs:
            if need not in reasons:
                reasons[need] = netns.unavailable() if need == NETNS else disk.unavailable()
            if reasons[need]:
                missing[kind] = f"{kind}: {reasons[need]}"
    return missing


def needs(kinds: list[str]) -> set[str]:
    return {need for kind in kinds for need in KINDS[kind].needs}
