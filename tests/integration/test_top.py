"""``zmqex-top`` on real nodes: in an 80x24 pseudo-terminal, its screen read through tests/vt.py."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.vt import Screen
from zmqex.local import LocalNetwork, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOP = [sys.executable, str(ROOT / "bin" / "zmqex-top")]


class Terminal:
    """A program in a pseudo-terminal of a fixed size, and the screen it draws there."""

    def __init__(self, argv: list[str], columns: int = 80, rows: int = 24) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the terminal says
        env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                                     start_new_session=True)
        os.close(slave)
        self.master = master
        self.screen = Screen(columns, rows)
        self.raw = b""

    def read(self, seconds: float = 0.1) -> None:
        """Take what the program wrote within ``seconds`` onto the screen."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the program ended: nothing more to read
                return
            if not data:
                return
            self.raw += data
            self.screen.feed(data)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        def shown() -> bool:
            self.read(0.1)
            return bool(condition(self.screen.lines()))
        try:
            wait_for(shown, timeout, what, interval=0)
        except TimeoutError:
            raise AssertionError(f"{what}; the screen:\n" + self.screen.text()) from None

    def close(self) -> None:
        """End the program and whatever it started (its own process group: the demo's nodes too)."""
        with contextlib.suppress(ProcessLookupError):  # none of them is left
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what did not stop on SIGTERM
        self.proc.wait(5)
        os.close(self.master)


def level(lines: list[str], price: str, qty: str) -> bool:
    """Whether the book ladder (left of the bar) shows ``price`` with ``qty`` and a depth bar."""
    return any(re.match(rf"\s+{re.escape(price)}\s+{re.escape(qty)}\s+█+\s*$", line.split("│")[0])
               for line in lines if "│" in line)


def trade(lines: list[str], price: str, qty: str) -> bool:
    """Whether the trade tape (right of the bar) shows a trade of ``qty`` at ``price``."""
    return any(re.match(rf"\s+\d\d:\d\d:\d\d\s+{re.escape(price)}\s+{re.escape(qty)}\s*$", line.split("│")[1])
               for line in lines if "│" in line)


def test_top_shows_the_book_trades_orders_and_peers_live(net: LocalNetwork) -> None:
    net.start_mesh(["a", "b"])
    a, b = net.nodes["a"], net.nodes["b"]
    with a.client() as at_a, b.client() as at_b:
        at_a.trader = "alice"
        at_b.trader = "bob"
        at_a.place("sell", "1.5", "50010")
        at_a.place("buy", "0.4", "49990")
        wait_for(lambda: at_b.book()["asks"], 10, "alice's ask at b")
        assert at_b.place("buy", "0.3", "50010")["status"] == "filled"  # a trade: 0.3 @ 50010
        at_b.place("sell", "0.75", "50020")
        net.wait_converged()

        term = Terminal([*TOP, a.address, "--trader", "alice"])
        try:
            term.wait_for(lambda lines: level(lines, "50010.00", "1.2") and level(lines, "50020.00", "0.75")
                          and level(lines, "49990.00", "0.4") and trade(lines, "50010.00", "0.3"),
                          20, "the book's levels and the trade")
            text = term.screen.text()
            assert "MY ORDERS  alice: 2 open" in text
            assert re.search(r"a:1 +sell +1\.2 of 1\.5 +@ +50010\.00 +partial", text)
            assert "PEERS  1/1 up" in text and re.search(r"\n   b +up +lag +\d+ events", text)
            lines = term.screen.lines()
            assert lines[0].startswith(f" zmqex-top  a@{a.address}  ready  hash ")
            assert len(lines) == 24 and max(map(len, lines)) <= 80

            # live: a trade, a new level and the peer's state come from the streams, not a restart
            at_b.place("buy", "0.2", "50010")
            at_a.place("buy", "0.25", "49980")
            term.wait_for(lambda lines: level(lines, "50010.00", "1") and level(lines, "49980.00", "0.25")
                          and trade(lines, "50010.00", "0.2") and "alice: 3 open" in "\n".join(lines),
                          20, "the new trade, level and order")
            net.wait_converged()
            term.wait_for(lambda lines: any("same as ours" in line for line in lines), 20,
                          "b's state hash, the same as a's")

            os.write(term.master, b"q")
            wait_for(lambda: term.proc.poll() is not None, 10, "zmqex-top to quit on q")
            term.read(0.2)
            assert term.proc.returncode == 0
            assert not term.screen.alternate and b"Traceback" not in term.raw  # the terminal is given back
        finally:
            term.close()


def test_top_once_prints_one_screen_without_a_terminal(net: LocalNetwork) -> None:
    a = net.start("a")
    with a.client() as client:
        client.place("sell", "2", "50100")
        client.place("buy", "1", "49900")
    done = subprocess.run([*TOP, a.address, "--once", "--ascii"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "80", "LINES": "24"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 24 and "\x1b" not in done.stdout  # not a terminal: no colors, no cursor moves
    assert any(re.match(r"\s+50100\.00\s+2\s+#+", line) for line in lines)
    assert any(re.match(r"\s+49900\.00\s+1\s+#+", line) for line in lines)


def test_top_says_when_the_node_does_not_answer(tmp_path: Path) -> None:
    term = Terminal([*TOP, "127.0.0.1:9", "--timeout", "0.5"])  # the discard port: nobody answers
    try:
        term.wait_for(lambda lines: "the node does not answer; trying again" in lines[-1], 20, "the problem shown")
        os.write(term.master, b"q")
        wait_for(lambda: term.proc.poll() is not None, 10, "zmqex-top to quit on q")
        assert term.proc.returncode == 0
    finally:
        term.close()


def test_the_demo_opens_top_while_its_traders_trade() -> None:
    term = Terminal([sys.executable, "-m", "zmqex.demo", "--top", "--traders", "2", "--orders", "8", "--pace", "0.2"])
    try:
        term.wait_for(lambda lines: any("PEERS  2/2 up" in line for line in lines) and any("MY ORDERS  t0: " in line for line in lines)
                      and any(re.match(r"\s+\d+\.\d\d\s+[\d.]+\s+█", line) for line in lines), 60,
                      "zmqex-top showing the demo's nodes, t0's orders and the book")
        assert term.screen.lines()[0].startswith(" zmqex-top  a@127.0.0.1:")
        os.write(term.master, b"q")
        wait_for(lambda: term.proc.poll() is not None, 60, "the demo to finish after q")
        term.read(0.5)
        assert term.proc.returncode == 0, term.raw[-2000:]
        out = term.raw.decode(errors="replace")
        assert "every replica converged" in out and out.rstrip().endswith("nodes stopped.")
        assert "  t0@a: " in out  # the traders' outcomes, printed once the screen is back
    finally:
        term.close()
