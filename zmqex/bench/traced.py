"""A node whose loop stages are timed, for :mod:`zmqex.bench.timeline`.

``python -m zmqex.bench.traced OUT -- PYTHON -m zmqex.cli ARGS`` (a
``LocalNetwork`` prefix) runs ``zmqex-node ARGS`` in this process with a few
methods of :class:`zmqex.node.Node` wrapped: each call records
``(perf_counter_ns, stage, 0 on entry / 1 on exit)``, written to ``OUT.PID`` as
JSON when the node exits.  ``perf_counter`` is CLOCK_MONOTONIC on Linux, one
clock for every process of the machine, so marks of two nodes and their client
line up.  The wrappers cost ~1 us a call: fine for a take at a time, not for load.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

#: The node's stages a take passes through (all exist in every version of the node this times).
STAGES = ("_client_request", "_peer_message", "_commit", "_effects", "_to_client")


def install(marks: list[tuple[int, str, int]]) -> None:
    from zmqex import node

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            marks.append((time.perf_counter_ns(), name, 0))
            try:
                return method(self, *args, **kwargs)
            finally:
                marks.append((time.perf_counter_ns(), name, 1))
        return timed

    for name in STAGES:
        setattr(node.Node, name, wrap(name, getattr(node.Node, name)))


def main() -> int:
    out, argv = sys.argv[1], sys.argv[sys.argv.index("zmqex.cli") + 1:]
    marks: list[tuple[int, str, int]] = []
    install(marks)

    def dump() -> None:
        with open(f"{out}.{os.getpid()}", "w") as f:
            json.dump(marks, f)

    atexit.register(dump)
    from zmqex import cli

    sys.argv = ["zmqex-node", *argv]
    return cli.node_main()


if __name__ == "__main__":
    sys.exit(main())
