"""A node whose disk fills up (a small tmpfs as its data directory; needs root to mount).

It stops acknowledging new work at once (``store_unavailable``), still answers queries, says what
happened in one line, and resumes by itself once space returns; every order it acknowledged
survives a kill -9 and a restart; a restart on the full disk says so without a traceback.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zmqex.client import Client
from zmqex.errors import StoreUnavailable, Timeout, UnknownOrder
from zmqex.local import LocalNetwork, NodeProcess, wait_for

DISK = "4m"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {DISK} tmpfs (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def net(tmp_path: Path, disk: Path) -> Iterator[LocalNetwork]:  # after disk: stopped before it goes
    network = LocalNetwork(tmp_path / "work")
    network.workdir.mkdir()
    try:
        yield network
    finally:
        network.stop()


def fill(disk: Path) -> Path:
    """Fill ``disk`` to its last byte; the file that does it (remove it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 512):  # a tmpfs hands out pages: the small writes take what is left
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


class Placer:
    """Places orders on one connection, as fast as the node answers, until stopped: ``acked`` are
    the ids it acknowledged.  On a nearly full disk a commit may go through and the next fail
    (SQLite reuses its WAL's room), so the node stalls and resumes over and over under it."""

    def __init__(self, address: str, acked: list[str], price: int) -> None:
        self.acked, self.price = acked, price
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(address,), daemon=True)
        self._thread.start()

    def _run(self, address: str) -> None:
        with Client(address, timeout=3.0) as client:
            while not self._stop.is_set():
                self.price += 1
                try:
                    self.acked.append(client.place("sell", "0.1", str(self.price))["order_id"])
                except (StoreUnavailable, Timeout):  # refused, or held past our patience: not acknowledged
                    time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()


def refuses_writes_and_answers_queries(client: Client) -> bool:
    """Whether, in one stall, a write is refused with store_unavailable and queries are answered."""
    try:
        client.cancel("a:999999999")  # unknown_order when the node takes writes
    except UnknownOrder:
        return False
    except StoreUnavailable as exc:
        assert "disk is full" in str(exc) or "I/O error" in str(exc), exc
        book, status = client.book(), client.status()
        return bool(book["asks"]) and status["ready"] is False
    raise AssertionError("cancel of an unknown order succeeded")


def log_after(node: NodeProcess, start: int) -> str:
    return node.log_path.read_bytes()[start:].decode(errors="replace")


def test_a_full_disk_stops_new_work_keeps_queries_and_resumes_when_space_returns(net, disk):
    a = net.start("a", args=["--data-dir", str(disk / "a")])
    b = net.start("b")
    net.wait_meshed()
    acked: list[str] = []
    with Client(a.address, timeout=2.0) as client, b.client() as bob:
        acked += [client.place("sell", "0.1", str(50000 + i))["order_id"] for i in range(5)]
        log_from = a.log_path.stat().st_size
        filler = fill(disk)
        placer = Placer(a.address, acked, 51000)
        try:
            wait_for(lambda: refuses_writes_and_answers_queries(client), 30, "a to refuse writes, answer queries")
            bob.place("buy", "0.1", "49000")  # the peer carries on; a catches up by repair later
            said = log_after(a, log_from)
            [line] = [line for line in said.splitlines() if "cannot write its store" in line]
            assert "database or disk is full" in line and "0 bytes free" in line and "store_unavailable" in line
            assert "cannot rollback" not in said and "Traceback" not in said and a.alive()
            filler.unlink()  # space returns: the node resumes by itself
            wait_for(lambda: len(acked) >= 5 + 20 and client.status()["ready"], 15, "a to take orders again")
        finally:
            placer.stop()
        assert "writes its store again" in log_after(a, log_from)
    net.wait_converged()
    a.kill()  # every order it acknowledged is in its store
    a = net.restart("a")
    with a.client() as client:
        assert all(client.order(oid)["status"] == "open" for oid in acked)
    statuses = net.wait_converged()
    assert statuses["a"]["vc"] == {"a": len(acked), "b": 1}  # and b's order, missed while stalled, repaired


def test_a_restart_on_a_full_disk_says_so_without_a_traceback_and_resumes(net, disk):
    a = net.start("a", args=["--data-dir", str(disk / "a")])
    net.start("b")
    net.wait_meshed()
    with a.client() as client:
        acked = [client.place("sell", "0.1", str(50000 + i))["order_id"] for i in range(5)]
    for stop in ("stop", "kill"):  # a clean stop checkpoints and removes the WAL; kill -9 leaves it
        getattr(a, stop)()
        filler = fill(disk)
        log_from = a.log_path.stat().st_size
        a = net.restart("a", wait=False)
        try:
            a.wait_ready(20)
        except RuntimeError:  # it exited: it could not open its store
            assert a.proc.returncode == 1
            said = log_after(a, log_from).strip().splitlines()
            assert len(said) == 1 and "zmqex-node: store" in said[0] and "bytes free" in said[0], said
            filler.unlink()
            a = net.restart("a")
        else:  # it opened it: it answers queries and refuses writes until space returns
            placer = Placer(a.address, acked, 51000 if stop == "stop" else 52000)
            try:
                with Client(a.address, timeout=2.0) as client:
                    wait_for(lambda: refuses_writes_and_answers_queries(client), 30, "a to refuse writes")
                assert "Traceback" not in log_after(a, log_from)
                filler.unlink()
            finally:
                placer.stop()
        with a.client() as client:
            wait_for(lambda: client.status()["ready"], 15, "a to take orders again")
            acked.append(client.place("sell", "0.1", str(53000 + len(acked)))["order_id"])
    a.kill()
    a = net.restart("a")
    with a.client() as client:
        assert all(client.order(oid)["status"] == "open" for oid in acked)
    net.wait_converged()
