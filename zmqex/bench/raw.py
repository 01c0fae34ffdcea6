"""Raw pyzmq comparators: what ZeroMQ alone does between two processes on loopback.

* :func:`bench_raw_pubsub`: PUB->SUB messages per second of msgpack lists shaped
  like an encoded order event (the comparator for mesh orders per second).
* :func:`bench_raw_rtt`: DEALER->ROUTER round trips to a trivial echo (the
  comparator for take and convergence latency).
* :func:`bench_raw_commit`: one small SQLite WAL transaction with
  ``synchronous=FULL``, as a node's store commits them (the floor under a take
  with the default store: two of these lie on its path, one on each node).

The other process is :func:`worker`, started as ``python -c "... from
zmqex.bench import worker ..."`` with this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

from zmqex.bench import rawpack
from zmqex.bench.stream import MID

ROOT = Path(__file__).resolve().parent.parent.parent  # the directory holding the zmqex package


def _worker_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "PYTHONUNBUFFERED": "1"}


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from zmqex.bench import worker; sys.exit(worker(sys.argv[1:]))", *args],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_worker_env(),
    )


def _read_json_line(proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    """The next line a helper prints, as JSON; raises at the deadline or if it exits."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("a benchmark helper process did not answer in time")
            if sel.select(left):
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"a benchmark helper process exited with {proc.wait(5)}")
                said: dict[str, Any] = json.loads(line)  # a helper prints objects only (_say)
                return said


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _event_like(seq: int) -> list[Any]:
    """A msgpack-ready list shaped like an encoded order event (about the same size)."""
    return [1, "a", seq, {"a": seq, "b": 412_345, "c": 398_765}, "order", "buy", MID - 7, 54_321, "gtc"]


def worker(argv: list[str]) -> int:
    """Helper processes for the raw comparators: ``sub COUNT SECONDS``, ``pub ENDPOINT COUNT``, ``echo SECONDS``."""
    role = argv[0]
    ctx = zmq.Context()
    try:
        if role == "sub":
            count, seconds = int(argv[1]), float(argv[2])
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.bind("tcp://127.0.0.1:0")
            _say({"endpoint": sock.getsockopt_string(zmq.LAST_ENDPOINT)})
            deadline = time.monotonic() + seconds
            received, first, last = 0, None, None
            unpackb = rawpack.unpackb
            while received < count:
                if not sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                    break
                while received < count:
                    try:
                        data = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    unpackb(data)
                    received += 1
                last = time.monotonic()
                first = first or last
            _say({"received": received, "last": last})
        elif role == "pub":
            endpoint, count = argv[1], int(argv[2])
            sock = ctx.socket(zmq.XPUB)  # XPUB: we see the subscription arrive, so no slow joiner
            sock.setsockopt(zmq.LINGER, 5000)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(endpoint)
            if not sock.poll(10_000):
                _say({"error": "no subscription within 10 s"})
                return 1
            sock.recv()
            packb, send = rawpack.packb, sock.send
            start = time.monotonic()
            for seq in range(1, count + 1):
                send(packb(_event_like(seq)))
            _say({"start": start, "sent": count, "end": time.monotonic()})
        elif role == "echo":
            seconds = float(argv[1])
            sock = ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind("tcp://127.0.0.1:0")
            _say({"endpoint": sock.getsockopt_string(zmq.LAST_ENDPOINT)})
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if sock.poll(100):
                    frames = sock.recv_multipart()
                    if frames[-1] == b"stop":
                        break
                    sock.send_multipart(frames)
        else:
            return 2
        return 0
    finally:
        ctx.destroy(linger=0)


def bench_raw_pubsub(count: int, budget_s: float = 20.0) -> dict[str, Any]:
    """PUB->SUB of msgpack events, publisher and subscriber in two processes."""
    deadline = time.monotonic() + budget_s
    sub = _spawn("sub", str(count), str(budget_s))
    pub = None
    try:
        endpoint = _read_json_line(sub, deadline)["endpoint"]
        pub = _spawn("pub", endpoint, str(count))
        started = _read_json_line(pub, deadline)
        if "error" in started:
            raise RuntimeError(started["error"])
        result = _read_json_line(sub, deadline + 5)
    finally:
        for proc in (sub, pub):
            if proc is not None:
                _end(proc)
    received = result["received"]
    seconds = (result["last"] or started["end"]) - started["start"]
    return {
        "raw_pubsub_msgs_per_s": received / seconds if received else 0.0,
        "raw_pubsub_received": received,
        "raw_pubsub_sent": count,
        "raw_pubsub_bytes": len(rawpack.packb(_event_like(123_456))),
    }


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def bench_raw_rtt(count: int, budget_s: float = 20.0) -> dict[str, Any]:
    """DEALER->ROUTER round trips to a trivial echo ROUTER in another process, one at a time."""
    deadline = time.monotonic() + budget_s
    echo = _spawn("echo", str(budget_s + 5))
    ctx = zmq.Context()
    try:
        endpoint = _read_json_line(echo, deadline)["endpoint"]
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        frame = rawpack.packb({"v": 1, "id": 0, "op": "place", "side": "buy", "qty": "0.00100000",
                               "price": "50000.00", "tif": "ioc"})
        samples: list[float] = []
        for i in range(count + 50):
            t0 = time.perf_counter()
            sock.send(frame)
            if not sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                raise TimeoutError("echo helper did not answer")
            rawpack.unpackb(sock.recv())
            if i >= 50:  # warm-up
                samples.append((time.perf_counter() - t0) * 1000)
        sock.send(b"stop")
    finally:
        ctx.destroy(linger=0)
        _end(echo)
    return {"raw_rtt_p50_ms": percentile(samples, 50), "raw_rtt_p99_ms": percentile(samples, 99),
            "raw_rtt_samples": len(samples)}


def bench_raw_commit(count: int, budget_s: float = 10.0) -> dict[str, Any]:
    """Latency of one-row SQLite transactions in WAL mode with synchronous=FULL (an fsync each)."""
    deadline = time.monotonic() + budget_s
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="zmqex-bench-") as tmp:
        db = sqlite3.connect(os.path.join(tmp, "raw.sqlite"), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            row = rawpack.packb(_event_like(1))
            for i in range(count + 10):
                t0 = time.perf_counter()
                db.execute("BEGIN")
                db.execute("INSERT INTO t VALUES (?, ?)", (i, row))
                db.execute("COMMIT")
                if i >= 10:  # warm-up
                    samples.append((time.perf_counter() - t0) * 1000)
                if time.monotonic() > deadline:
                    break
        finally:
            db.close()
    return {"raw_commit_p50_ms": percentile(samples, 50), "raw_commit_p99_ms": percentile(samples, 99),
            "raw_commit_samples": len(samples)}
