"""One id, one store, one process (real node processes): a node that lost its store never founds a
mesh again unless told to, and a second process under a member's id stops before it acknowledges
anything, leaving the running mesh as it was."""

from __future__ import annotations

import shutil
import time

import pytest

from zmqex.cli import EX_DUPLICATE, EX_USAGE
from zmqex.client import Client
from zmqex.errors import LocalError, RemoteError
from zmqex.local import LocalNetwork, NodeProcess, wait_for


def test_a_founder_that_lost_its_data_dir_is_refused_unless_told_it_founds_a_new_mesh(net):
    net.start_mesh(["a", "b"])
    with net.nodes["a"].client() as a:
        a.place("sell", "1", "50000")  # a:1, which b keeps
    net.wait_converged()
    net.nodes["a"].kill()
    shutil.rmtree(net.workdir / "a")  # its data directory is lost
    lost = net.restart("a", wait=False)  # as it was started, less --new-mesh: no --join
    assert lost.proc.wait(30) == EX_USAGE
    said = lost.log()[lost._log_start:].splitlines()
    assert len(said) == 1 and "node a has an empty store and nothing to join" in said[0], said
    assert "--new-mesh" in said[0]
    # Told it founds a new mesh (of its own: it names no peer), it starts and takes orders.
    founder = net.start("a", join=[], args=["--data-dir", str(net.workdir / "a-new")])
    assert "--new-mesh" in founder.args
    with founder.client() as a:
        wait_for(lambda: a.status()["ready"], 10, "the new founder to be ready")
        assert a.place("sell", "1", "50000")["order_id"] == "a:1"


def place_until_exit(node: NodeProcess, timeout: float) -> list[str]:
    """Place orders on ``node`` until it exits (or ``timeout``): the ids it acknowledged."""
    acknowledged = []
    deadline = time.monotonic() + timeout
    with Client(node.address, timeout=1.0) as client:
        while node.alive() and time.monotonic() < deadline:
            try:
                acknowledged.append(client.place("sell", "1", "50000", ack="accepted")["order_id"])
            except (LocalError, RemoteError):  # busy until accepted; no answer once it is gone
                time.sleep(0.02)
    return acknowledged


def test_a_second_process_with_a_members_id_stops_and_the_mesh_is_unharmed(net):
    net.start_mesh(["a", "b", "c"])
    with net.nodes["a"].client() as a:
        ask = a.place("sell", "1", "50000")["order_id"]
    dup = net.nodes["a-dup"] = NodeProcess(  # stopped with the network, whatever happens
        "a", net.workdir / "a-dup.log",
        ["--id", "a", "--port", "0", "--data-dir", str(net.workdir / "a-dup"), "--join", net.nodes["b"].address])
    dup.wait_ready()
    assert place_until_exit(dup, 30) == []
    assert dup.proc.wait(30) == EX_DUPLICATE
    [line] = [line for line in dup.log().splitlines() if "stops" in line]
    assert "another process is running as a" in line and "took no orders" in line and "Traceback" not in dup.log()
    del net.nodes["a-dup"]
    # The real a still trades with b and c, and all three agree.
    with net.nodes["b"].client() as b:
        bid = b.place("buy", "1", "50000")
        assert bid["status"] == "filled" and [f["maker"] for f in bid["fills"]] == [ask]
    statuses = net.wait_converged()
    assert statuses["a"]["vc"] == {"a": 2, "b": 1}  # a:1 and the fill a granted, b:1: nothing of the second a


@pytest.mark.parametrize("seeds", ["one seed", "two seeds"])
def test_two_brand_new_nodes_with_one_id_joining_at_once_never_both_serve(net: LocalNetwork, seeds: str):
    net.start_mesh(["a", "b"])
    joins = [net.nodes["a"], net.nodes["a" if seeds == "one seed" else "b"]]
    xs = []
    for i, seed in enumerate(joins):
        xs.append(NodeProcess("x", net.workdir / f"x{i}.log", ["--id", "x", "--port", "0", "--data-dir",
                                                                str(net.workdir / f"x{i}"), "--join", seed.address]))
        net.nodes[f"x{i}"] = xs[-1]
    for x in xs:
        x.wait_ready()
    served: list[list[str]] = [[], []]
    clients = [Client(x.address, timeout=1.0) for x in xs]
    deadline = time.monotonic() + 40
    try:  # until both have stopped, or one has stopped and the other served a few orders
        while time.monotonic() < deadline and not (
                all(not x.alive() for x in xs) or any(not x.alive() for x in xs) and max(map(len, served)) >= 3):
            for i, (x, client) in enumerate(zip(xs, clients)):
                if x.alive():
                    try:
                        served[i].append(client.place("sell", "0.1", str(50000 + i), ack="accepted")["order_id"])
                    except (LocalError, RemoteError):
                        pass
            time.sleep(0.02)
    finally:
        for client in clients:
            client.close()
    assert sum(1 for ids in served if ids) <= 1, served  # at most one ever acknowledged anything
    stopped = [x for x in xs if not x.alive()]
    assert stopped and all(x.proc.wait(5) == EX_DUPLICATE for x in stopped)
    if seeds == "one seed":  # a heard one of them first: that one is x, the other stops
        assert len(stopped) == 1 and len([ids for ids in served if ids]) == 1
    for i, x in enumerate(xs):
        if not x.alive():
            del net.nodes[f"x{i}"]
    statuses = net.wait_converged()  # what a serving x acknowledged is on a and b as well
    assert statuses["a"]["orders"] == sum(map(len, served))
