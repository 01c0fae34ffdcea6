"""Prometheus metrics of a node: ``zmqex-node --metrics HOST:PORT`` serves them at ``/metrics``.

:class:`Collector` turns the latest :class:`~zmqex.probe.Snapshot` the node's
loop published into metric families, at scrape time, on the HTTP server's
thread; it reads nothing else of the node (see :mod:`zmqex.probe`).  Each node
has a registry of its own (``serve``), not prometheus_client's global one, so
several nodes can run in one process (tests, the simulator) without mixing
their figures.  The figures, by name, are in :data:`HELP`; README, "Metrics",
lists them with an example alert.

The endpoint has no authentication and shows only counts and timings (no
orders, traders or keys): bind it where only the monitoring reaches it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                    InfoMetricFamily, Metric)

from zmqex.probe import HistogramData, Probe, Snapshot

log = logging.getLogger(__name__)

_NS_PER_S = 1e9  # Prometheus's base unit for durations is the second (a division rounds exactly: 0.00025)

#: Replica counters (``Replica.counters``, in ``status`` too) with a metric of their own: counter
#: name -> (metric, its labels).  A counter not listed here (a new one) still shows, as
#: ``zmqex_replica_counter_total{name=...}``.
COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "state_mismatches": ("zmqex_state_mismatches_total", {}),
    "sync_requests": ("zmqex_sync_requests_total", {}),
    "sync_requests_refused": ("zmqex_sync_requests_refused_total", {}),
    "take_retries": ("zmqex_take_retries_total", {}),
    **{f"takes_answered_{reason}": ("zmqex_takes_answered_total", {"reason": reason})
       for reason in ("filled", "closed", "busy", "invalid", "other")},
    **{name: (f"zmqex_{name}_total", {}) for name in ("takes_parked", "takes_unparked", "takes_held",
                                                      "held_expired")},
    **{f"snapshots_{outcome}": ("zmqex_snapshots_total", {"outcome": outcome})
       for outcome in ("vouched", "unvouched", "dropped")},
    **{f"snapshot_pages_{outcome}": ("zmqex_snapshot_pages_total", {"outcome": outcome})
       for outcome in ("unasked", "refused")},
    **{name: (f"zmqex_{name}_total", {}) for name in ("envelopes_sealed", "events_sealed")},
    **{name: (f"zmqex_{name}_total", {}) for name in ("bad_signatures", "events_refused", "equivocations",
                                                      "duplicate_ids", "reused_event_ids")},
}
OTHER_COUNTER = "zmqex_replica_counter_total"

HELP: dict[str, str] = {
    "zmqex_node": "This node's id (label node); always 1.",
    "zmqex_ready": "1 when the node may place, cancel and grant; 0 while it awaits its peers or lost its history.",
    "zmqex_snapshot_age_seconds": "Age of the figures shown: the loop publishes them every 0.2 s; "
                                  "growing means the loop is stuck.",
    "zmqex_clock_events": "Events delivered to this replica (the sum of its vector clock).",
    "zmqex_orders_known": "Orders this replica knows, open or closed.",
    "zmqex_open_orders": "Orders resting in this replica's book.",
    "zmqex_fills_known": "Fills this replica knows.",
    "zmqex_compacted_events": "Events this replica holds only as state (checkpointed, or from a snapshot).",
    "zmqex_in_flight": "Matching work not finished (as status's in_flight).",
    "zmqex_orders_total": "Orders delivered since start, by tif (a market order is an ioc) and origin "
                          "(local: placed here; peer).",
    "zmqex_cancels_total": "Orders closed before they filled, delivered since start, by reason.",
    "zmqex_reduces_total": "Quantity reductions (amends down) delivered since start.",
    "zmqex_fills_total": "Fills delivered since start, by this node's role: it owns the maker order, "
                         "the taker order, both, or none.",
    "zmqex_take_seconds": "Take requests of this node's orders: from sending one to a maker's owner "
                          "to its answer.",
    "zmqex_requests_total": "Client requests answered, by op (none: no valid op) and code (ok, or the error code).",
    "zmqex_peers": "Peers this node knows.",
    "zmqex_peers_up": "Peers heard from within the peer timeout.",
    "zmqex_peer_up": "1 if the peer was heard from within the peer timeout.",
    "zmqex_peer_clock_lag_events": "Events this node delivered that the peer's latest heartbeat did not show.",
    "zmqex_peer_clock_ahead_events": "Events the peer's latest heartbeat showed that this node lacks.",
    "zmqex_peer_silence_seconds": "Time since this node last heard from the peer.",
    "zmqex_repaired_events_total": "Events that reached this replica by repair (sync) rather than gossip.",
    "zmqex_state_mismatches_total": "Heartbeats from a peer at this node's very clock with another state hash: "
                                    "must stay 0.",
    "zmqex_sync_requests_total": "Sync requests this node served.",
    "zmqex_sync_requests_refused_total": "Sync requests this node refused.",
    "zmqex_take_retries_total": "Take requests sent again for want of an answer.",
    "zmqex_takes_answered_total": "Answers to this node's take requests, by reason.",
    "zmqex_takes_parked_total": "Peers' takes parked here until an own take settles.",
    "zmqex_takes_unparked_total": "Parked takes woken.",
    "zmqex_takes_held_total": "Peers' takes held until their taker order is delivered.",
    "zmqex_held_expired_total": "Held takes that expired.",
    "zmqex_snapshots_total": "Snapshots received, by outcome.",
    "zmqex_snapshot_pages_total": "Snapshot pages not taken, by why.",
    "zmqex_bad_signatures_total": "Events refused for a bad signature.",
    "zmqex_envelopes_sealed_total": "Envelopes this node sealed: what it made in one loop iteration, sent, signed "
                                    "and stored once.",
    "zmqex_events_sealed_total": "Events this node made, in its envelopes (divided by envelopes: events per envelope).",
    "zmqex_events_refused_total": "Events refused (bad signature, non-member, relayed gossip).",
    "zmqex_equivocations_total": "Two events signed with one id by one member.",
    "zmqex_duplicate_ids_total": "Peer messages from a second process claiming a member's id.",
    "zmqex_reused_event_ids_total": "Events of a known id with other content.",
    OTHER_COUNTER: "Other replica health counters, by name.",
    "zmqex_store_commit_seconds": "Store commits, one per loop iteration with records, by whether they "
                                  "backed a promise (fsynced with --sync full).",
    "zmqex_loop_iteration_seconds": "Busy time of a loop iteration: from the poll's return to the end of "
                                    "carrying out its outputs.",
    "zmqex_queue_depth": "Work waiting inside the node, by queue.",
}


class Collector:
    """A prometheus_client collector that reads the probe's latest snapshot at scrape time."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe

    def collect(self) -> Iterator[Metric]:
        s = self._probe.snapshot  # read once: the loop swaps the whole snapshot, never changes it
        yield from _node(s)
        yield from _activity(s)
        yield from _peers(s)
        yield from _internals(s)


def _gauge(name: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, HELP[name], labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def _node(s: Snapshot) -> Iterator[Metric]:
    info = InfoMetricFamily("zmqex_node", HELP["zmqex_node"])
    info.add_metric([], {"node": s.node})
    yield info
    yield _gauge("zmqex_ready", int(s.ready))
    yield _gauge("zmqex_snapshot_age_seconds", max(0.0, time.monotonic() - s.at))
    for name, value in (("zmqex_clock_events", s.events), ("zmqex_orders_known", s.orders_known),
                        ("zmqex_open_orders", s.open_orders), ("zmqex_fills_known", s.fills_known),
                        ("zmqex_compacted_events", s.compacted), ("zmqex_in_flight", s.in_flight)):
        yield _gauge(name, value)


def _activity(s: Snapshot) -> Iterator[Metric]:
    orders = CounterMetricFamily("zmqex_orders_total", HELP["zmqex_orders_total"], labels=["tif", "origin"])
    for (tif, origin), n in sorted(s.orders.items()):
        orders.add_metric([tif, origin], n)
    yield orders
    yield _labelled("zmqex_cancels_total", "reason", s.cancels)
    reduces = CounterMetricFamily("zmqex_reduces_total", HELP["zmqex_reduces_total"])
    reduces.add_metric([], s.reduces)
    yield reduces
    yield _labelled("zmqex_fills_total", "role", s.fills)
    yield _histogram("zmqex_take_seconds", {}, s.take)
    requests = CounterMetricFamily("zmqex_requests_total", HELP["zmqex_requests_total"], labels=["op", "code"])
    for (op, code), n in sorted(s.requests.items()):
        requests.add_metric([op, code], n)
    yield requests


def _peers(s: Snapshot) -> Iterator[Metric]:
    yield _gauge("zmqex_peers", len(s.peers))
    yield _gauge("zmqex_peers_up", sum(p.up for p in s.peers.values()))
    families = {name: GaugeMetricFamily(name, HELP[name], labels=["peer"]) for name in (
        "zmqex_peer_up", "zmqex_peer_clock_lag_events", "zmqex_peer_clock_ahead_events", "zmqex_peer_silence_seconds")}
    for peer, h in s.peers.items():
        families["zmqex_peer_up"].add_metric([peer], int(h.up))
        families["zmqex_peer_clock_lag_events"].add_metric([peer], h.lag)
        families["zmqex_peer_clock_ahead_events"].add_metric([peer], h.ahead)
        families["zmqex_peer_silence_seconds"].add_metric([peer], h.silent_ms / 1000)
    yield from families.values()
    repaired = CounterMetricFamily("zmqex_repaired_events_total", HELP["zmqex_repaired_events_total"])
    repaired.add_metric([], s.repaired)
    yield repaired


def _internals(s: Snapshot) -> Iterator[Metric]:
    families: dict[str, CounterMetricFamily] = {}
    for counter, (name, labels) in COUNTERS.items():  # every one, 0 until counted: alerts need the series
        if name not in families:
            families[name] = CounterMetricFamily(name, HELP[name], labels=list(labels))
        families[name].add_metric(list(labels.values()), s.counters.get(counter, 0))
    other = CounterMetricFamily(OTHER_COUNTER, HELP[OTHER_COUNTER], labels=["name"])
    for counter, n in sorted(s.counters.items()):
        if counter not in COUNTERS:
            other.add_metric([counter], n)
    yield from families.values()
    yield other
    commit = HistogramMetricFamily("zmqex_store_commit_seconds", HELP["zmqex_store_commit_seconds"],
                                   labels=["promise"])
    for promise, data in sorted(s.commit.items()):
        _add_buckets(commit, [str(promise).lower()], data)
    yield commit
    yield _histogram("zmqex_loop_iteration_seconds", {}, s.loop)
    queues = GaugeMetricFamily("zmqex_queue_depth", HELP["zmqex_queue_depth"], labels=["queue"])
    for queue, depth in s.queues.items():
        queues.add_metric([queue], depth)
    yield queues


def _labelled(name: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, HELP[name], labels=[label])
    for value, n in sorted(counts.items()):
        family.add_metric([value], n)
    return family


def _histogram(name: str, labels: dict[str, str], data: HistogramData) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, HELP[name], labels=list(labels))
    _add_buckets(family, list(labels.values()), data)
    return family


def _add_buckets(family: HistogramMetricFamily, labels: list[str], data: HistogramData) -> None:
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound, n in zip(data.bounds, data.counts):
        total += n
        buckets.append((repr(bound / _NS_PER_S), total))
    total += data.counts[-1]
    buckets.append(("+Inf", total))
    family.add_metric(labels, buckets, data.sum_ns / _NS_PER_S)


class Exporter:
    """The HTTP server of one node's metrics, on a thread of its own (prometheus_client's)."""

    def __init__(self, probe: Probe, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(probe))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, host, self.registry)
        address: Any = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        log.info("metrics at %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
