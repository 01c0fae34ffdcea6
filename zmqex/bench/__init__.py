"""Benchmarks: how fast zmqex is, each figure beside a plain comparator measured in the same run.

    bin/zmqex-bench [--quick] [--json FILE] [--nodes N] [--profile-core] [--core] [--compare-compiled]

Sections (one progress line each on stderr, a table on stdout at the end):

* **core** (:mod:`.core`): one :class:`~zmqex.core.replica.Replica` (node ``a``,
  no peers) fed a generated stream (:mod:`.stream`) through ``place``/``cancel``,
  outputs drained after every call as the node does, against
  :class:`~zmqex.bench.plain.PlainBook`, a minimal price-time book on
  ``SortedDict`` with no replication, on the same stream; both must produce the
  same fills.
* **depth** (:mod:`.core`): cost per operation with 1k, 10k, 100k (and 1M) orders resting.
* **wire** (:mod:`.wire`): ``events.encode`` + ``events.decode`` against msgpack of plain dicts.
* **sign** (:mod:`.sign`): Ed25519 sign and verify of an order event (the real
  ``Signer`` and ``Keyring``) against the same event's ``encode`` + ``decode``; the
  core placing passive orders with a signer against without.
* **raw** (:mod:`.raw`): plain pyzmq PUB->SUB and DEALER->ROUTER echo between processes,
  and a one-row SQLite commit with fsync.
* **mesh** (:mod:`.mesh`): real ``zmqex-node`` processes on loopback (sqlite store with
  ``--sync full``, the default, and ``--sync normal``; and ``--ephemeral``), pipelined
  clients, take latency and fill convergence; and the default mesh with keys
  (``--keys``, each client a trader with a key of its own) against it without keys,
  both running at once and taking turns (:func:`~zmqex.bench.mesh.bench_keyed`).

Every run says which core it ran, pure or compiled with mypyc (``core_build``);
``--compare-compiled`` (:mod:`.compiled`) also runs the core section on both, each in
a process of its own, and reports compiled/pure.

:mod:`.report` renders the table and checks the targets; :mod:`.cli` is the
command line (``main``) that runs the sections in order.

Money is integers (cents, satoshis) or decimal strings; floats are timings only.
"""

from zmqex.bench.cli import QUICK_LIMIT_S, log, main
from zmqex.bench.core import bench_core, bench_depth, profile_core, run_core, run_plain
from zmqex.bench.mesh import bench_keyed, bench_mesh, pipelined_places, take_latency
from zmqex.bench.plain import PlainBook
from zmqex.bench.raw import bench_raw_commit, bench_raw_pubsub, bench_raw_rtt, percentile, worker
from zmqex.bench.report import TARGETS, _targets, machine, table  # noqa: F401 (_targets: tests)
from zmqex.bench.sign import bench_sign
from zmqex.bench.stream import (BUY, CANCEL, GTC, IOC, MAX_LOT, MID, PLACE, SELL, SPREAD, Op, make_stream,
                                stream_stats)
from zmqex.bench.wire import bench_wire, plain_dict, sample_events

__all__ = [
    "BUY", "CANCEL", "GTC", "IOC", "MAX_LOT", "MID", "PLACE", "QUICK_LIMIT_S", "SELL", "SPREAD", "TARGETS", "Op",
    "PlainBook", "bench_core", "bench_depth", "bench_keyed", "bench_mesh", "bench_raw_pubsub", "bench_raw_rtt",
    "bench_sign", "bench_wire",
    "log", "machine", "main", "make_stream", "percentile", "pipelined_places", "plain_dict", "profile_core",
    "run_core", "run_plain", "sample_events", "stream_stats", "table", "take_latency", "worker",
]
