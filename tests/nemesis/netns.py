"""A little LAN of network namespaces: one per node, each with a veth pair to a bridge.

::

    root namespace (the test, its traders)    10.A.B.254 on bridge  <tok>b0
        <tok>h0 ── veth ── <tok>n0  in namespace zmqex-<tok>-a   10.A.B.1
        <tok>h1 ── veth ── <tok>n1  in namespace zmqex-<tok>-b   10.A.B.2  ...

A node binds its namespace's address (``--host``; without keys that needs
``--insecure``) and is started under ``ip netns exec``.  Faults, all undone by
``heal``:

* ``cut(nodes)``: one node: its veth goes down (it hears nobody, nobody hears it);
  several: their veths move to a second bridge ``<tok>b1``, where they hear each
  other but not the rest (a minority/majority split).  The test's own address is on
  the first bridge only, so clients of a cut node time out, as they would.
* ``slow(node, kbit)``: a token bucket (``tc tbf``) on both ends of its veth.
  (``netem`` is not available on these kernels, so no delay or loss.)

Names carry a random token, and the subnet is one no interface uses, so runs in
parallel do not collide; everything made is recorded in :mod:`cleanup`.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess

from tests.nemesis.cleanup import LINK, NETNS, Resources, run

PORT = 7000  # every node has an address of its own, so one port for all


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (this process is not root)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"network namespaces need the {tool!r} command (iproute2), not found"
    probe = f"zmqex-probe-{os.getpid()}-{random.getrandbits(24):06x}"
    try:
        made = run("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


class Lan:
    """The namespaces, veths and bridges of one run."""

    def __init__(self, ids: list[str], resources: Resources) -> None:
        self.ids = ids
        self.res = resources
        tok = resources.token[:5]
        self.bridges = (f"zn{tok}b0", f"zn{tok}b1")
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self.host_ip = str(hosts[-1])
        self.ns = {node: f"zmqex-{tok}-{node}" for node in ids}
        self.ip = {node: str(hosts[i]) for i, node in enumerate(ids)}
        self.host_veth = {node: f"zn{tok}h{i}" for i, node in enumerate(ids)}
        self.node_veth = {node: f"zn{tok}n{i}" for i, node in enumerate(ids)}
        self._cut: set[str] = set()
        self._slow: set[str] = set()
        for bridge in self.bridges:
            run("ip", "link", "add", bridge, "type", "bridge")
            self.res.add(LINK, bridge)
            run("ip", "link", "set", bridge, "up")
        run("ip", "addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.bridges[0])
        for node in ids:
            ns, host, inner = self.ns[node], self.host_veth[node], self.node_veth[node]
            run("ip", "netns", "add", ns)
            self.res.add(NETNS, ns)
            run("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
            self.res.add(LINK, host)  # deleting one end deletes the pair
            run("ip", "link", "set", inner, "netns", ns)
            run("ip", "link", "set", host, "master", self.bridges[0], "up")
            run("ip", "-n", ns, "addr", "add", f"{self.ip[node]}/{self.subnet.prefixlen}", "dev", inner)
            run("ip", "-n", ns, "link", "set", inner, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def prefix(self, node: str) -> list[str]:
        """The command a node runs under: ``ip netns exec`` execs it, so its pid is the node's."""
        return ["ip", "netns", "exec", self.ns[node]]

    def node_args(self, node: str) -> list[str]:
        return ["--host", self.ip[node], "--port", str(PORT), "--insecure"]

    # --- faults -------------------------------------------------------------------------

    def cut(self, nodes: list[str]) -> None:
        """Cut ``nodes`` off from the rest (and from the test's clients)."""
        if len(nodes) == 1:
            run("ip", "link", "set", self.host_veth[nodes[0]], "down")
        else:
            for node in nodes:
                run("ip", "link", "set", self.host_veth[node], "master", self.bridges[1])
        self._cut.update(nodes)

    def slow(self, node: str, kbit: int) -> None:
        """A slow link to ``node``: ``kbit`` kbit/s each way, a queue of at most ~300 ms, the rest dropped."""
        tbf = ["root", "tbf", "rate", f"{kbit}kbit", "burst", "16kb", "latency", "300ms"]
        run("tc", "qdisc", "replace", "dev", self.host_veth[node], *tbf)
        run("tc", "-n", self.ns[node], "qdisc", "replace", "dev", self.node_veth[node], *tbf)
        self._slow.add(node)

    def heal(self) -> None:
        """Every link up, on the first bridge, at full speed."""
        for node in sorted(self._cut):
            run("ip", "link", "set", self.host_veth[node], "master", self.bridges[0], "up")
        self._cut.clear()
        for node in sorted(self._slow):
            run("tc", "qdisc", "del", "dev", self.host_veth[node], "root", check=False)
            run("tc", "-n", self.ns[node], "qdisc", "del", "dev", self.node_veth[node], "root", check=False)
        self._slow.clear()


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no address or route here overlaps."""
    used = [ipaddress.ip_network(word, strict=False)
            for line in (run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show").stdout)
            .splitlines() for word in line.split() if _is_net(word)]
    rng = random.Random()
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{rng.randint(100, 250)}.{rng.randint(0, 255)}.0/24")
        if not any(net.overlaps(other) for other in used):
            return net
    raise RuntimeError("no free /24 in 10.100-250.x.x for the nemesis LAN")


def _is_net(word: str) -> bool:
    if "/" not in word or not word[0].isdigit():
        return False
    try:
        ipaddress.ip_network(word, strict=False)
    except ValueError:
        return False
    return True
