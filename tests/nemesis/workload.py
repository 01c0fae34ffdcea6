"""The workload: one trader thread per node, placing and cancelling orders, recording a history.

Each trader sends to one node only, under a trader name of its own, and names
every order with a client order id, so a place that timed out is simply sent
again with the same id (at most one order per id: the checker holds the node
to that).  Prices sit around a mid that drifts, buys below and sells above, with
some crossing the mid so that orders trade across nodes; a few are ioc.

A node may be down, paused, cut off or out of disk at any moment, so every call
has a timeout, a timeout opens a fresh connection, and a retry waits a little
first.  Nothing a node answers, and no exception, ends the thread: everything is
recorded, and the checker judges it.  Every loop is bounded.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from zmqex.client import Client
from zmqex.errors import Timeout, ZmqexError

from tests.nemesis.history import FAIL, INFO, OK, History, Op

MID = 50_000
#: Codes after which the same request is sent again: nothing happened, or we cannot know.
RETRY_CODES = {"timeout", "busy", "rate_limited"}


class Trader(threading.Thread):
    """Trades at one node until ``stop`` is set."""

    def __init__(self, name: str, node: str, address: Callable[[], str], history: History, seed: int,
                 stop: threading.Event, *, pace: float = 0.05, timeout: float = 3.0, retry_for: float = 30.0,
                 max_ops: int = 1_000_000) -> None:
        super().__init__(name=f"trader-{name}", daemon=True)
        self.trader, self.node, self.address = name, node, address
        self.history, self.stop = history, stop
        self.rng = random.Random(seed)
        self.pace, self.timeout, self.retry_for, self.max_ops = pace, timeout, retry_for, max_ops
        self.open: list[str] = []  # acknowledged orders of ours that may still rest
        self._client: Client | None = None
        self._placed = 0

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            for _ in range(self.max_ops):
                if self.stop.is_set():
                    return
                if self.open and self.rng.random() < 0.25:
                    self._cancel(self.open.pop(self.rng.randrange(len(self.open))))
                else:
                    self._place()
                self.stop.wait(self.pace * self.rng.uniform(0.5, 1.5))  # the workload's pace, not a wait
        finally:
            self._drop_client()

    def _place(self) -> None:
        self._placed += 1
        side = self.rng.choice(("buy", "sell"))
        # A buy mostly below the mid, a sell mostly above; about one in five crosses it.
        offset = self.rng.randint(-2, 8)
        price = MID - offset if side == "buy" else MID + offset
        args = {"side": side, "qty": f"0.{self.rng.randint(1, 99):02d}", "price": f"{price}.00",
                "tif": "ioc" if self.rng.random() < 0.15 else "gtc",
                "client_order_id": f"{self.trader}-{self._placed}"}
        result = self._call("place", args, lambda c: c.place(args["side"], args["qty"], args["price"], args["tif"],
                                                              client_order_id=args["client_order_id"]))
        if result is not None and result["status"] in ("open", "partial"):
            self.open.append(result["order_id"])

    def _cancel(self, order_id: str) -> None:
        self._call("cancel", {"order_id": order_id}, lambda c: c.cancel(order_id))

    # --- one request, retried while retrying is safe and useful ----------------------------

    def _call(self, op: str, args: dict[str, Any], send: Callable[[Client], Any]) -> dict[str, Any] | None:
        """Send until answered, refused for good, out of time or stopped; the ok result, or None."""
        deadline = self.history.now() + self.retry_for
        for attempt in range(1, 1_000):
            record = Op(self.trader, self.node, op, args, self.history.now(), attempt=attempt)
            retry = False
            try:
                reply = send(self._connection())
            except Timeout as exc:
                record.outcome, record.error = INFO, _error(exc)
                self._drop_client()  # a fresh connection: nothing queued for a node that went away
                retry = True
            except ZmqexError as exc:
                record.outcome, record.error = FAIL, _error(exc)
                retry = exc.code in RETRY_CODES
            except Exception as exc:  # not an error the protocol names: the checker reports it
                record.outcome, record.error = FAIL, _error(exc, unexpected=True)
                self._drop_client()
            else:
                record.outcome, record.result = OK, _summary(reply)
            record.end = self.history.now()
            self.history.add(record)
            if record.outcome == OK:
                return record.result
            if not retry or self.stop.is_set() or record.end >= deadline:
                return None
            self.stop.wait(0.1 + 0.2 * self.rng.random())  # back off before the retry
        return None

    def _connection(self) -> Client:
        if self._client is None:
            self._client = Client(self.address(), timeout=self.timeout, trader=self.trader)
        return self._client

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _summary(reply: Any) -> dict[str, Any]:
    """What the checker needs of an order reply."""
    return {"order_id": reply["order_id"], "side": reply["side"], "price": reply["price"], "qty": reply["qty"],
            "status": reply["status"], "filled": reply["filled"], "pending": reply["pending"],
            "fills": [fill["id"] for fill in reply.get("fills", [])]}


def _error(exc: BaseException, unexpected: bool = False) -> dict[str, str]:
    code = getattr(exc, "code", "") if isinstance(exc, ZmqexError) else ""
    return {"type": type(exc).__name__, "code": str(code), "message": str(exc)[:300],
            **({"unexpected": "yes"} if unexpected else {})}
