"""``zmqex-top HOST:PORT``: the I/O around :mod:`zmqex.top.view` and :mod:`zmqex.top.render`.

    zmqex-top 127.0.0.1:7001                      # the book, the trades, the peers
    zmqex-top 127.0.0.1:7001 --trader alice       # and alice's open orders
    zmqex-top 127.0.0.1:7001 --keys keys/alice --node-id a   # a keyed node, as alice
    zmqex-top 127.0.0.1:7001 --once               # print one screen and exit (scripts, no terminal needed)

It subscribes to the node's ``book``, ``trades`` and (with a trader) ``orders``
streams, each on a connection of its own, and catches up once by page (the
newest trades, the trader's open orders); after that only the streams change
the view, and ``status`` (peers, clock, state hash) is asked every
``STATUS_EVERY_S``.  A stream that ends (a gap, a slow reader, the node
stopping) or a node that does not answer is shown in the footer, and the
streams are opened again every ``RETRY_S`` until the node answers.

One thread: a ``zmq.Poller`` waits on the streams' sockets and the keyboard
(``q`` quits) until something comes or a timer is due; the screen is redrawn
at most every ``FRAME_S``, only when the view changed, with rich's ``Live`` on
the terminal's alternate screen at whatever size the terminal has.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
import zmq
from rich.console import Console
from rich.live import Live

from zmqex import protocol
from zmqex.client import Client, Subscription
from zmqex.errors import InvalidRequest, StreamEnded, Timeout, ZmqexError
from zmqex.top.render import screen
from zmqex.top.view import TAPE, View

log = logging.getLogger(__name__)

PROG = "zmqex-top"
STATUS_EVERY_S = 2.0
RETRY_S = 1.0
FRAME_S = 0.1  # at most 10 frames a second: a screen over SSH needs no more
BOOK_DEPTH = 25  # levels a side subscribed (one of protocol.STREAM_DEPTHS); the screen shows what fits
MAX_DRAIN = 1000  # stream messages taken from one stream before the screen gets a turn
MAX_PAGES = 20  # pages of open orders read when catching up


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Feed:
    """The node's streams feeding one view: opened, caught up by page, then drained as messages come."""

    def __init__(self, client: Client, view: View) -> None:
        self.client = client
        self.view = view
        self.book: Subscription | None = None
        self.subs: list[Subscription] = []
        self.changed = False  # the view changed since the screen last showed it

    @property
    def is_open(self) -> bool:
        return bool(self.subs)

    def open(self) -> None:
        """Subscribe (first, so nothing is missed), then read what happened before (pages)."""
        client, view = self.client, self.view
        try:
            self.book = client.subscribe("book", BOOK_DEPTH)
            self.subs.append(self.book)
            self.subs.append(client.subscribe("trades"))
            if view.trader is not None:
                self.subs.append(client.subscribe("orders"))
            status = client.status()
            view.on_status(status, now_ms())
            last = status.get("fills")
            if type(last) is int:  # the position of the newest fill: page from TAPE before it
                view.on_trades(client.trades(max(0, last - TAPE), TAPE).items, now_ms())
            if view.trader is not None:
                since = 0
                for _ in range(MAX_PAGES):
                    page = client.open_orders(since, protocol.MAX_PAGE)
                    view.on_open_orders(page.items, now_ms())
                    since = page.next
                    if not page.more:
                        break
        except BaseException:
            self.close()
            raise
        self.changed = True

    def status(self) -> None:
        self.view.on_status(self.client.status(), now_ms())
        self.changed = True

    def drain(self) -> None:
        """Apply what the streams brought (``changed`` says if anything did).  Raises StreamEnded."""
        for sub in self.subs:
            for _ in range(MAX_DRAIN):
                update = sub.poll(0)
                if update is None:
                    break
                self.changed = True
                if sub is self.book:
                    self.view.on_book(update, now_ms())
                elif sub.stream == "trades":
                    self.view.on_trades([update], now_ms())
                else:
                    self.view.on_order_event(update, now_ms())

    def sockets(self) -> list[zmq.Socket[bytes]]:
        return [sub.socket for sub in self.subs if sub.socket is not None]

    def close(self) -> None:
        for sub in self.subs:
            sub.close()
        self.subs, self.book = [], None


class Top:
    """The screen's loop: see the module docstring.  ``run`` returns when ``q`` is pressed or ``stop`` called."""

    def __init__(self, client: Client, view: View, console: Console, bar: str = "█") -> None:
        self.feed = Feed(client, view)
        self.view = view
        self.console = console
        self.bar = bar
        self.stopping = False

    def stop(self) -> None:
        """Leave the loop at its next turn (safe from a signal handler)."""
        self.stopping = True

    def run(self) -> None:
        view, feed = self.view, self.feed
        next_status = next_retry = last_frame = 0.0
        with _keyboard() as keys, Live(console=self.console, screen=True, auto_refresh=False) as live:
            try:
                while not self.stopping:
                    now = time.monotonic()
                    if not feed.is_open and now >= next_retry:
                        next_retry = now + RETRY_S
                        if self._attempt(feed.open, "cannot subscribe"):
                            view.on_problem("")
                            next_status = now + STATUS_EVERY_S
                    if feed.is_open:
                        self._attempt(feed.drain, "")
                    if feed.is_open and now >= next_status:
                        next_status = now + STATUS_EVERY_S
                        self._attempt(feed.status, "status")
                    if feed.changed and now - last_frame >= FRAME_S:
                        live.update(screen(view, self.console.width, self.console.height, self.bar), refresh=True)
                        feed.changed, last_frame = False, now
                    due = min(next_status if feed.is_open else next_retry,
                              last_frame + FRAME_S if feed.changed else now + STATUS_EVERY_S)
                    if self._wait(keys, max(0.0, due - time.monotonic())):
                        return
            finally:
                feed.close()

    def _attempt(self, step: Callable[[], None], what: str) -> bool:
        """Run one step of the feed; False if the node had a problem: it goes to the footer, the
        streams are closed (``run`` opens them again after ``RETRY_S``)."""
        try:
            step()
            return True
        except StreamEnded as exc:
            self.view.on_problem(f"stream ended ({exc.code}); subscribing again")
        except Timeout:
            self.view.on_problem(f"{what + ': ' if what else ''}the node does not answer; trying again")
        except ZmqexError as exc:
            self.view.on_problem(f"{what + ': ' if what else ''}{exc}; trying again")
        self.feed.close()
        self.feed.changed = True
        self.view.reset_streams()
        return False

    def _wait(self, keys: int | None, seconds: float) -> bool:
        """Wait for a stream message, a key or ``seconds``; whether ``q`` was pressed."""
        poller = zmq.Poller()
        for sock in self.feed.sockets():
            poller.register(sock, zmq.POLLIN)
        if keys is not None:
            poller.register(keys, zmq.POLLIN)
        ready = dict(poller.poll(int(seconds * 1000) + 1))
        if keys is not None and keys in ready:
            pressed = os.read(keys, 64)
            if not pressed:  # the terminal is gone
                return True
            return b"q" in pressed.lower()
        return False


@contextlib.contextmanager
def _keyboard() -> Iterator[int | None]:
    """Standard input's descriptor, keys delivered one by one without echo; None if it is no terminal."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def once(client: Client, view: View, console: Console, timeout: float, bar: str = "█") -> None:
    """Catch up, wait (at most ``timeout`` s) for the book's snapshot, print one screen."""
    feed = Feed(client, view)
    feed.open()
    try:
        deadline = time.monotonic() + timeout
        while view.book is None and time.monotonic() < deadline:
            poller = zmq.Poller()
            for sock in feed.sockets():
                poller.register(sock, zmq.POLLIN)
            poller.poll(50)
            feed.drain()
        console.print(screen(view, console.width, console.height, bar), soft_wrap=True)
    finally:
        feed.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="A live view of one zmqex node: book, trades, "
                                "your open orders, peers. q quits.")
    p.add_argument("node", metavar="HOST:PORT", help="the node's address")
    p.add_argument("--trader", help="show this trader's open orders (on a node without keys, names are taken on trust)")
    p.add_argument("--keys", metavar="DIR", help="a keyed node: the trader's key directory, holding NAME.key_secret "
                   "and members/NODE.key (as zmqex-keygen --nodes ... --traders NAME writes it)")
    p.add_argument("--node-id", help="with --keys: the id of the node at HOST:PORT (picks its key)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the node (default 3)")
    p.add_argument("--ascii", action="store_true", help="draw depth bars with # (a terminal without Unicode)")
    p.add_argument("--once", action="store_true", help="print one screen (80x24 unless a terminal says "
                   "otherwise) and exit")
    return p


def connect(args: argparse.Namespace) -> tuple[Client, View]:
    """The client and an empty view, from the command line (InvalidRequest if the keys do not fit)."""
    secret = server = None
    trader = args.trader
    if args.keys:
        secrets = sorted(Path(args.keys).glob("*.key_secret"))
        if len(secrets) != 1 or not args.node_id:
            raise InvalidRequest(f"--keys {args.keys} needs exactly one *.key_secret in it, and --node-id")
        secret, server = secrets[0], Path(args.keys) / "members" / f"{args.node_id}.key"
        trader = trader or secrets[0].name.removesuffix(".key_secret")  # the node knows us by that key
    client = Client(args.node, timeout=args.timeout, trader=args.trader, secret=secret, server=server)
    return client, View(client.address, trader)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        client, view = connect(args)
    except InvalidRequest as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    bar = "#" if args.ascii else "█"
    with client:
        if args.once:
            console = Console()
            if not console.is_terminal and "LINES" not in os.environ:
                console.height = 24  # rich's default elsewhere is 25: the screen is drawn for 24
            try:
                once(client, view, console, args.timeout, bar)
            except ZmqexError as exc:
                print(f"{PROG}: {exc}", file=sys.stderr)
                return 1
            return 0
        return run(client, view, bar)


def run(client: Client, view: View, bar: str = "█") -> int:
    """The live screen until ``q`` (0), Ctrl-C (130) or SIGTERM (0)."""
    top = Top(client, view, Console(), bar)
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, lambda *_: top.stop()) if main_thread else None
    try:
        top.run()
    except KeyboardInterrupt:
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
