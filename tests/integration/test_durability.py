"""kill -9 an owner at random moments under load; nothing acknowledged is lost."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from decimal import Decimal

from zmqex.errors import Busy, Timeout, ZmqexError
from zmqex.local import wait_for
from zmqex.store import FILENAME

KILLS = 6


class Trader(threading.Thread):
    """Places orders at one node until told to stop; remembers what was acknowledged."""

    def __init__(self, net, node_id: str, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.net, self.node_id, self.stop = net, node_id, stop
        self.rng = random.Random(seed)
        self.acked: dict[str, dict] = {}  # order id -> the place result
        self.failures = 0

    def run(self) -> None:
        for _ in range(100_000):  # bounded; the stop event ends it long before
            if self.stop.is_set():
                return
            node = self.net.nodes[self.node_id]
            if node.endpoint is None:  # being restarted and not ready yet: poll again shortly
                self.stop.wait(0.02)
                continue
            side = self.rng.choice(["buy", "sell"])
            price = 50_000 + self.rng.randint(-3, 3) * (1 if side == "buy" else -1)
            try:
                with node.client(timeout=2.0) as client:
                    result = client.place(side, f"0.{self.rng.randint(1, 9)}", str(price))
                self.acked[result["order_id"]] = result
            except (Timeout, ZmqexError):
                self.failures += 1  # the node is down or restarting: not acknowledged
                wait_for(lambda: self.stop.is_set() or node is not self.net.nodes[self.node_id]
                         or node.alive(), 10, "the node to come back")


def test_kill_9_owners_under_load_loses_nothing(net):
    ids = ["a", "b", "c"]
    net.start_mesh(ids)
    stop = threading.Event()
    traders = [Trader(net, node_id, seed, stop) for seed, node_id in enumerate(ids)]
    for trader in traders:
        trader.start()
    rng = random.Random(42)
    try:
        for _ in range(KILLS):
            acked = sum(len(t.acked) for t in traders)
            target = acked + rng.randint(5, 40)
            wait_for(lambda: sum(len(t.acked) for t in traders) >= target, 60, "load between kills")
            victim = rng.choice(ids)
            net.nodes[victim].kill()
            net.restart(victim)
    finally:
        stop.set()
        for trader in traders:
            trader.join(30)
    statuses = net.wait_converged(60)
    assert len({s["hash"] for s in statuses.values()}) == 1

    acked = {oid: result for t in traders for oid, result in t.acked.items()}
    assert len(acked) > 50
    for node_id in ids:
        with net.nodes[node_id].client(timeout=10) as client:
            fills = client.fills()
            filled: dict[str, Decimal] = {}
            for fill in fills:
                for oid in (fill["maker"], fill["taker"]):
                    filled[oid] = filled.get(oid, Decimal(0)) + Decimal(fill["qty"])
            bought = sold = Decimal(0)
            for oid in set(acked) | set(filled):
                order = client.order(oid)  # every acknowledged order is there
                assert Decimal(order["filled"]) == filled.get(oid, 0), oid
                assert Decimal(order["filled"]) <= Decimal(order["qty"]), f"{oid} over-filled"
                if order["side"] == "buy":
                    bought += Decimal(order["filled"])
                else:
                    sold += Decimal(order["filled"])
            assert bought == sold
            fill_ids = {f["id"] for f in fills}
            for result in acked.values():  # every fill a client was told of is there
                assert {f["id"] for f in result["fills"]} <= fill_ids


def test_an_unreadable_store_is_a_clear_error(tmp_path):
    data = tmp_path / "a"
    data.mkdir()
    (data / FILENAME).write_bytes(b"\x00garbage" * 1000)
    proc = subprocess.run(
        [sys.executable, "-m", "zmqex.cli", "--id", "a", "--port", "0", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1
    assert "cannot be opened" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_a_node_restarted_without_its_store_gets_its_history_back_and_converges_under_load(net):
    net.start("a", args=["--ephemeral"])
    net.start("b")
    net.start("c")
    net.wait_meshed()
    with net.nodes["a"].client() as a:
        mine = [a.place("sell", "1", str(60_000 + i))["order_id"] for i in range(5)]  # above the load
    net.wait_converged()
    stop = threading.Event()
    traders = [Trader(net, node_id, seed, stop) for seed, node_id in enumerate(["b", "c"])]
    for trader in traders:
        trader.start()
    try:
        wait_for(lambda: sum(len(t.acked) for t in traders) >= 20, 60, "load on b and c")
        net.nodes["a"].kill()
        net.nodes["a"].args += ["--join", net.nodes["b"].address]  # the operator names a peer, as one does
        net.restart("a")  # same id and port, nothing remembered

        def ready() -> bool:
            with net.nodes["a"].client() as a:
                try:
                    placed = a.place("buy", "0.1", "40000")["order_id"]
                except Busy:
                    return False  # still getting its history back: nothing created meanwhile
            assert placed not in mine and int(placed.partition(":")[2]) > 5, f"{placed} reuses an id"
            return True

        wait_for(ready, 60, "a to get its history back from b and c and take orders again")
    finally:
        stop.set()
        for trader in traders:
            trader.join(30)
    statuses = net.wait_converged(60)
    assert len({s["hash"] for s in statuses.values()}) == 1 and statuses["a"]["ready"]
    with net.nodes["a"].client() as a:
        assert all(a.order(oid)["status"] == "open" for oid in mine)  # its orders from before, back
    assert "has its history back" in net.nodes["a"].log()
