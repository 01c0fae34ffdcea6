"""Run nodes as local processes: for the demo, the benchmark and the integration tests.

Each node is a real ``zmqex-node`` process on loopback, started with port 0 so
it picks a free port itself; its log goes to a file, from which we read the
endpoint it announces.  Every wait polls with a deadline; ``stop`` always ends
the processes (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zmqex import keys
from zmqex.client import Client
from zmqex.errors import LocalError, RemoteError

#: The operator key a keyed LocalNetwork's harness (status polls, tests) connects with.
OPERATOR = "harness"

_READY = re.compile(r"node (\S+) ready: clients and peers at (tcp://\S+),")


class NodeProcess:
    def __init__(self, node_id: str, log_path: Path, args: list[str], keys_dir: Path | None = None,
                 prefix: Sequence[str] = ()) -> None:
        self.id = node_id
        self.log_path = log_path
        self.args = args
        self.keys_dir = keys_dir  # the network's keys (see LocalNetwork), or None for a node without keys
        # A command the node runs under, e.g. ("ip", "netns", "exec", NS) for a network namespace; it must
        # exec the node (as ``ip netns exec`` does), so that ``proc.pid`` is the node's own pid.
        self.prefix = tuple(prefix)
        self.endpoint: str | None = None
        self._log = open(log_path, "ab")
        self._log_start = self._log.tell()  # a restarted node appends to the same log
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "zmqex.cli", *args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    @property
    def ready_endpoint(self) -> str:
        """The endpoint it announced for clients and peers (tcp://HOST:PORT); it must be ready."""
        assert self.endpoint, f"{self.id} is not ready"
        return self.endpoint

    @property
    def address(self) -> str:
        """HOST:PORT for clients and --join."""
        return self.ready_endpoint.removeprefix("tcp://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for match in _READY.finditer(self.log_path.read_bytes()[self._log_start:].decode(errors="replace")):
                self.endpoint = match.group(2)
            if self.endpoint:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited with {self.proc.returncode}:\n{self.log()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError(f"node {self.id} not ready after {timeout}s:\n{self.log()[-2000:]}")

    def client(self, timeout: float = 5.0, as_: str = OPERATOR) -> Client:
        """A client of this node; on a keyed network it connects with the key of ``as_``
        (a trader or operator of the network; by default the harness's operator key)."""
        if self.keys_dir is None:
            return Client(self.address, timeout=timeout)
        return Client(self.address, timeout=timeout, secret=self.keys_dir / as_ / f"{as_}.key_secret",
                      server=self.keys_dir / as_ / "members" / f"{self.id}.key")

    @property
    def join_address(self) -> str:
        """What another node passes to --join: ID@HOST:PORT (with keys the id picks the key to expect)."""
        return f"{self.id}@{self.address}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._log.close()

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


class LocalNetwork:
    """A set of node processes on 127.0.0.1, joined into one mesh.

    With ``keyed`` (the node ids of the whole network, known up front), every
    node runs with ``--keys``: :func:`zmqex.keys.make_network` writes the keys
    of those nodes, of ``traders``, and of the operator the harness itself
    uses (:data:`OPERATOR`), under ``workdir/keys``.
    """

    def __init__(self, workdir: str | Path | None = None, extra_args: list[str] | None = None,
                 keyed: list[str] | None = None, traders: Sequence[str] = ()) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if not workdir:
            self._tmp = tempfile.TemporaryDirectory(prefix="zmqex-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.extra_args = extra_args or []
        self.nodes: dict[str, NodeProcess] = {}
        self.keys_dir: Path | None = None
        if keyed is not None:
            self.keys_dir = keys.make_network(self.workdir / "keys", keyed, list(traders), [OPERATOR])

    def start(self, node_id: str, join: list[str] | None = None, args: list[str] | None = None,
              wait: bool = True, prefix: Sequence[str] = ()) -> NodeProcess:
        """Start a node; by default it joins the first running node, and with none running
        (or ``join=[]``) it founds the mesh (``--new-mesh``).  ``prefix``: see NodeProcess."""
        if join is None:
            join = [n.join_address for n in self.nodes.values() if n.alive() and n.endpoint][:1]
        argv = ["--id", node_id, "--port", "0", *self.extra_args, *(args or [])]
        if not join and "--new-mesh" not in argv:
            argv.append("--new-mesh")
        if "--ephemeral" not in argv and "--data-dir" not in argv:
            argv += ["--data-dir", str(self.workdir / node_id)]
        if self.keys_dir is not None and "--keys" not in argv:
            argv += ["--keys", str(self.keys_dir / node_id)]
        for peer in join:
            argv += ["--join", peer]
        node = NodeProcess(node_id, self.workdir / f"{node_id}.log", argv, self.keys_dir, prefix)
        self.nodes[node_id] = node
        if wait:
            node.wait_ready()
        return node

    def restart(self, node_id: str, wait: bool = True) -> NodeProcess:
        """Start a stopped or killed node again, from its data directory, on its old port and prefix
        (not as a founder: ``--new-mesh`` is for a first start only)."""
        old = self.nodes[node_id]
        assert not old.alive(), f"{node_id} is still running"
        argv = [arg for arg in old.args if arg != "--new-mesh"]
        if old.endpoint:  # else it never got that far: its command line names the port already
            argv[argv.index("--port") + 1] = old.address.rpartition(":")[2]
        node = NodeProcess(node_id, old.log_path, argv, old.keys_dir, old.prefix)
        self.nodes[node_id] = node
        if wait:
            node.wait_ready()
        return node

    def start_mesh(self, ids: list[str], timeout: float = 20.0) -> None:
        for node_id in ids:
            self.start(node_id)
        self.wait_meshed(timeout)

    def wait_meshed(self, timeout: float = 20.0) -> None:
        """Until every running node sees every other as an up peer."""
        live = [n for n in self.nodes.values() if n.alive()]
        want = {n.id for n in live}

        def meshed() -> bool:
            for node in live:
                status = _status(node)
                if status is None:
                    return False
                up = {p for p, info in status["peers"].items() if info["up"]} | {node.id}
                if not want <= up or not status["ready"]:
                    return False
            return True

        wait_for(meshed, timeout, "the mesh to form")

    def wait_converged(self, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
        """Until the running nodes are quiet and identical; returns their statuses.

        Quiet: every peer up, no matching work in flight, no crossed book (else more
        events are on their way).  Identical: the same clock and state hash.
        """
        result: dict[str, dict[str, Any]] = {}

        def converged() -> bool:
            result.clear()
            for node in self.nodes.values():
                if node.alive():
                    status = _status(node)
                    if status is None:
                        return False
                    result[node.id] = status
            quiet = all(
                s["in_flight"] == 0 and not s["crossed"] and all(p["up"] for p in s["peers"].values())
                for s in result.values()
            )
            return quiet and len({(s["hash"], tuple(sorted(s["vc"].items()))) for s in result.values()}) == 1

        wait_for(converged, timeout, "the replicas to converge")
        return dict(result)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _status(node: NodeProcess) -> dict[str, Any] | None:
    try:
        with node.client(timeout=2.0) as client:
            return client.status()
    except (LocalError, RemoteError):  # not answering (Timeout), or answering with an error
        return None


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it is true; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
