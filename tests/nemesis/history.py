"""The history of a run: every client request, what came back, and when; every fault.

As in Jepsen, an operation ends in one of three ways:

* ``ok``: the node answered with a result (the order is acknowledged);
* ``fail``: the node answered with an error, so nothing changed;
* ``info``: no answer (a timeout): it may or may not have happened, so the
  checker may neither require it nor rule it out.

Times are seconds since the run began (monotonic clock).  Traders and the nemesis
append from their own threads; the checker reads a copy at the end.  ``dump``
writes it as JSON lines, kept beside the node logs for a post-mortem.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL, INFO = "ok", "fail", "info"


@dataclass
class Op:
    """One request by one trader to one node, and its outcome."""

    trader: str
    node: str
    op: str  # "place" or "cancel"
    args: dict[str, Any]
    start: float
    end: float = 0.0
    outcome: str = ""  # OK, FAIL or INFO
    result: dict[str, Any] | None = None  # OK: the parts of the reply the checker needs
    error: dict[str, str] | None = None  # FAIL or INFO: {"type", "code", "message"}
    attempt: int = 1  # retries of one client order id count up


@dataclass
class FaultRecord:
    """One fault the nemesis injected: when it began and healed, and how long recovery took."""

    kind: str
    targets: list[str]
    start: float
    healed: float | None = None
    caught_up: float | None = None  # seconds from heal until every node had what existed at the heal
    note: str = ""  # why it did not heal or catch up, if it did not
    detail: dict[str, Any] = field(default_factory=dict)


class History:
    """Append-only, shared by the trader threads and the nemesis."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._faults: list[FaultRecord] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def add_fault(self, fault: FaultRecord) -> None:
        with self._lock:
            self._faults.append(fault)

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def faults(self) -> list[FaultRecord]:
        with self._lock:
            return list(self._faults)

    def dump(self, path: Path) -> None:
        with self._lock, open(path, "w") as out:
            for op in self._ops:
                out.write(json.dumps({"type": "op", **asdict(op)}) + "\n")
            for fault in self._faults:
                out.write(json.dumps({"type": "fault", **asdict(fault)}) + "\n")
