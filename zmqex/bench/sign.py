"""Signing: what an Ed25519 signature costs per event, beside the event's own codec.

* :func:`bench_sign`: microseconds per op of signing an order event's
  :func:`~zmqex.core.events.signed_bytes` with the real :class:`~zmqex.keys.Signer`
  (what a node does for each event it originates), of :meth:`~zmqex.keys.Keyring.verify`
  on it (what a node does for each event relayed to it by someone other than its
  origin), and of ``signed_bytes`` itself; each beside ``encode`` + ``decode`` of
  the same signed events, measured in the same run.
* and the core's own-order cost with a signer and without: one
  :class:`~zmqex.core.replica.Replica` placing passive orders (one signed
  ``NewOrder`` event each), as the node's loop does.

The keys are a throw-away network's (:func:`~zmqex.keys.make_network`), loaded as
a node loads them; every round of each pair is timed alternately and the best
round kept, as in :mod:`.core`.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from zmqex import keys
from zmqex.bench.core import _settle_heap, run_core
from zmqex.bench.stream import make_stream
from zmqex.bench.wire import sample_events
from zmqex.core import events
from zmqex.core.events import NewOrder
from zmqex.core.replica import Replica


def order_events(n: int, seed: int = 3) -> list[events.Event]:
    """``n`` order events as a 3-node mesh makes them (clocks in the thousands), unsigned."""
    out: list[events.Event] = []
    while len(out) < n:
        out += [e for e in sample_events(max(2 * n, 64), seed + len(out)) if type(e.body) is NewOrder]
    return out[:n]


T = TypeVar("T")


def _best(fn: Callable[[T], object], items: Sequence[T], rounds: int) -> float:
    """Seconds per item of ``fn(item)``, the best of ``rounds`` passes."""
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items)


def bench_sign(n: int, orders: int, rounds: int = 3) -> dict[str, Any]:
    """Sign/verify ``n`` order events against their codec; core with and without a signer on ``orders`` places."""
    with tempfile.TemporaryDirectory(prefix="zmqex-bench-keys-") as tmp:
        keys.make_network(tmp, ["a", "b", "c"])
        signer = keys.Keyring.load(f"{tmp}/a", "a").own.signer()  # node a signs its events
        ring_b = keys.Keyring.load(f"{tmp}/b", "b")  # node b verifies a's, relayed by c
    evs = [replace(e, origin="a", vc=e.vc.with_entry("a", e.seq) if e.origin != "a" else e.vc)
           for e in order_events(n)]
    evs = [events.decode(events.encode(e)) for e in evs]  # clocks as a decoder builds them
    data = [events.signed_bytes(e) for e in evs]
    signed = [events.Event(e.origin, e.seq, e.vc, e.body, signer(d), e.ts) for e, d in zip(evs, data)]
    pairs = [(d, e.sig) for d, e in zip(data, signed)]
    verify = ring_b.verify
    assert all(verify("a", d, s) for d, s in pairs[:100]), "a signature did not verify"
    encode, decode = events.encode, events.decode

    sign_s = verify_s = codec_s = bytes_s = math.inf
    for _ in range(rounds):  # alternate, so a slow moment of the machine hits them alike
        codec_s = min(codec_s, _best(lambda e: decode(encode(e)), signed, 1))
        sign_s = min(sign_s, _best(signer, data, 1))
        verify_s = min(verify_s, _best(lambda p: verify("a", p[0], p[1]), pairs, 1))
        bytes_s = min(bytes_s, _best(events.signed_bytes, evs, 1))

    # The core placing passive orders (each one signed NewOrder event), with a signer and without.
    ops = make_stream(orders, 7, cancel_frac=0.0, cross_frac=0.0)
    plain_best = signed_best = math.inf
    for _ in range(rounds):
        _settle_heap()
        seconds, done, _ = run_core(ops, Replica("a"))
        plain_best = min(plain_best, seconds / done)
        _settle_heap()
        seconds, done, _ = run_core(ops, Replica("a", signer=signer))
        signed_best = min(signed_best, seconds / done)
    us = 1e6
    return {
        "sign_us": sign_s * us,
        "verify_us": verify_s * us,
        "signed_bytes_us": bytes_s * us,
        "sign_codec_us": codec_s * us,
        "sign_vs_codec": sign_s / codec_s,
        "verify_vs_codec": verify_s / codec_s,
        "signed_event_bytes": sum(len(encode(e)) for e in signed) // len(signed),
        "core_unsigned_us_per_order": plain_best * us,
        "core_signed_us_per_order": signed_best * us,
        "core_signed_vs_unsigned": signed_best / plain_best,
    }
