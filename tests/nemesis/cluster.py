"""The nodes of a run: real ``zmqex-node`` processes (zmqex.local), on loopback or in namespaces.

A node keeps its address across restarts (loopback: its first port; a namespace:
its own address and :data:`netns.PORT`), so a trader talks to one address for the
whole run.  The nemesis kills, pauses and restarts nodes through this class, and
it remembers which exits were the nemesis's doing: any other exit is a crash, which
the run reports (with the node's last log lines) before restarting the node, as a
supervisor would.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from zmqex.client import Client
from zmqex.errors import LocalError, RemoteError
from zmqex.local import LocalNetwork, NodeProcess

from tests.nemesis.cleanup import PROCESS, Resources
from tests.nemesis.disk import Tmpfs
from tests.nemesis.netns import Lan

STATUS_TIMEOUT = 2.0


class Cluster:
    def __init__(self, workdir: Path, ids: list[str], *, lan: Lan | None = None,
                 disks: dict[str, Tmpfs] | None = None, args: list[str] | None = None,
                 resources: Resources | None = None) -> None:
        self.workdir, self.ids = workdir, ids
        self.resources = resources  # node pids go on record, for a later run to end if this one is killed
        self.lan, self.disks = lan, disks or {}
        self.net = LocalNetwork(workdir, extra_args=args or [])
        self._addresses: dict[str, str] = {}
        self._down: set[str] = set()  # killed by the nemesis, not yet restarted
        self._paused: set[str] = set()
        self._pids: dict[str, str] = {}  # node -> its record in resources

    def start(self, timeout: float = 40.0) -> None:
        """Start every node (the first founds the mesh, the rest join it) and wait until they are meshed."""
        for node in self.ids:
            prefix = self.lan.prefix(node) if self.lan else []
            args = self.lan.node_args(node) if self.lan else []
            self._track(self.net.start(node, args=args, prefix=prefix, wait=False)).wait_ready(timeout)
            self._addresses[node] = self.net.nodes[node].address
        self.net.wait_meshed(timeout)

    def _track(self, proc: NodeProcess) -> NodeProcess:
        """Put a node's pid on record (and take off the one it replaces, which has been waited for)."""
        if self.resources is not None:
            old = self._pids.get(proc.id)
            if old is not None:
                self.resources.forget(PROCESS, old)
            self._pids[proc.id] = f"{proc.proc.pid} {self.workdir}"
            self.resources.add(PROCESS, self._pids[proc.id])
        return proc

    def address(self, node: str) -> str:
        return self._addresses[node]

    def proc(self, node: str) -> NodeProcess:
        return self.net.nodes[node]

    def data_dir(self, node: str) -> Path:
        return self.workdir / node

    # --- what the nemesis does to nodes ----------------------------------------------------

    def kill(self, node: str) -> None:
        self._down.add(node)
        self._paused.discard(node)
        self.proc(node).kill()

    def restart(self, node: str, join: str | None = None, timeout: float = 40.0) -> None:
        """Start a stopped node again on its address (with ``--join`` a live peer, if given)."""
        old = self.proc(node)
        if join is not None and "--join" not in old.args:
            old.args += ["--join", self.proc(join).join_address]  # the founder joins nobody otherwise
        self._track(self.net.restart(node, wait=False)).wait_ready(timeout)
        self._down.discard(node)

    def pause(self, node: str) -> None:
        self._paused.add(node)
        os.kill(self.proc(node).proc.pid, signal.SIGSTOP)

    def resume(self, node: str) -> None:
        if self.proc(node).alive():
            os.kill(self.proc(node).proc.pid, signal.SIGCONT)
        self._paused.discard(node)

    def wipe(self, node: str) -> None:
        """Lose a stopped node's store: everything in its data directory."""
        assert not self.proc(node).alive(), f"{node} is running"
        if node in self.disks:
            self.disks[node].wipe()
        else:
            shutil.rmtree(self.data_dir(node), ignore_errors=True)

    def crashed(self) -> dict[str, str]:
        """Nodes that exited without the nemesis killing them: node -> exit status and last log lines."""
        found = {}
        for node in self.ids:
            proc = self.proc(node)
            if node not in self._down and not proc.alive():
                found[node] = f"exit status {proc.proc.returncode}; its log ends:\n{_tail(proc.log())}"
        return found

    # --- looking --------------------------------------------------------------------------

    def status(self, node: str, timeout: float = STATUS_TIMEOUT) -> dict[str, Any] | None:
        if node in self._down or not self.proc(node).alive():
            return None
        try:
            with Client(self.address(node), timeout=timeout) as client:
                return client.status()
        except (LocalError, RemoteError):
            return None

    def client(self, node: str, timeout: float = 10.0) -> Client:
        return Client(self.address(node), timeout=timeout)

    def stop(self) -> None:
        """Stop every node (a paused one is let go first, so that it can stop cleanly)."""
        for node in self.net.nodes:
            if self.proc(node).alive():
                try:
                    os.kill(self.proc(node).proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.net.stop()
        if self.resources is not None:
            for record in self._pids.values():  # all waited for by now
                self.resources.forget(PROCESS, record)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])
