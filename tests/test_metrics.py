"""The metrics without node processes: peer health, request counts, the probe, the collector over HTTP.

tests/integration/test_metrics.py scrapes a real node process started with --metrics.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from zmqex import health, probe
from zmqex.api import NO_OP, OK
from zmqex.cli import _host_port
from zmqex.core.clock import VectorClock
from zmqex.core.messages import Heartbeat
from zmqex.core.outputs import TakeSent, TakeSettled
from zmqex.metrics import COUNTERS, HELP, Exporter
from zmqex.node import Node
from zmqex.probe import Histogram, Probe
from zmqex.store import MemoryStore


@pytest.fixture
def node():
    n = Node("a", port=0, store=MemoryStore())
    yield n
    n.close()


def ask(node: Node, request_id: int = 1, **request: Any) -> None:
    """A client request to the in-process node, and its loop iteration's outputs carried out."""
    node._client_request(b"\x00c", msgpack.packb({"v": 1, "id": request_id, **request}))
    node._carry_out()


def scrape(exporter: Exporter) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample at ``exporter``'s URL: sample name -> sorted labels -> value."""
    with urllib.request.urlopen(exporter.url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


# --- peer health ------------------------------------------------------------------------------


def test_clock_lag_counts_the_events_one_clock_has_beyond_the_other():
    ours = VectorClock({"a": 5, "b": 3})
    assert health.clock_lag(ours, VectorClock({"a": 5, "b": 3})) == 0
    assert health.clock_lag(ours, VectorClock({"a": 2})) == 3 + 3
    assert health.clock_lag(ours, VectorClock({"a": 9, "b": 1, "c": 4})) == 2  # more elsewhere does not offset
    assert health.clock_lag(VectorClock(), ours) == 0


def test_peer_health_reads_the_latest_heartbeat(node):
    replica = node.replica
    ask(node, op="place", side="sell", qty="1", price="50000")  # a:1
    replica.add_peer("b")
    assert health.peers(replica)["b"].lag == 1  # nothing heard: all of ours is missing there
    replica.receive("b", Heartbeat("b", VectorClock({"b": 2}), ""), replica.now)
    seen = health.peers(replica)["b"]
    assert (seen.up, seen.lag, seen.ahead, seen.hash) == (True, 1, 2, None)
    replica.receive("b", Heartbeat("b", VectorClock({"a": 1, "b": 2}), "f00d"), replica.now)
    seen = health.peers(replica)["b"]
    assert (seen.lag, seen.ahead, seen.hash) == (0, 2, "f00d")
    status = node.api._status(None, 1, {})  # type: ignore[arg-type]
    assert status["peers"]["b"] == {"up": True, "endpoint": None, "lag": 0, "ahead": 2, "hash": "f00d"}
    replica.receive("b", Heartbeat("b", VectorClock({"a": 1, "b": 3}), ""), replica.now)  # busy: no hash
    assert health.peers(replica)["b"].hash is None  # f00d was its state at another clock


# --- request counts ---------------------------------------------------------------------------


def test_requests_are_counted_by_op_and_code(node):
    ask(node, op="book")
    ask(node, op="book", depth=0)  # out of range
    ask(node, op="cancel", order_id="a:99")
    ask(node, op="no-such-op")
    ask(node, op=["unhashable"])
    node._client_request(b"\x00c", msgpack.packb({"v": 2, "id": 1, "op": "book"}))
    node.api.handle_parts(b"\x00c", 2, b"")
    assert dict(node.api.requests) == {
        ("book", OK): 1, ("book", "invalid_request"): 1, ("cancel", "unknown_order"): 1,
        (NO_OP, "unknown_op"): 2, ("book", "unsupported_version"): 1, (NO_OP, "malformed"): 1}


# --- the probe --------------------------------------------------------------------------------


def test_a_histogram_counts_by_less_or_equal_bounds():
    h = Histogram((10, 20))
    for ns in (0, 10, 11, 20, 21, 10**9):
        h.observe(ns)
    assert h.data() == probe.HistogramData((10, 20), (2, 2, 2), 0 + 10 + 11 + 20 + 21 + 10**9)


def test_the_probe_counts_what_the_loop_commits(node):
    node.probe = Probe(node)
    ask(node, 1, op="place", side="sell", qty="1", price="50000", trader="alice")
    ask(node, 2, op="place", side="buy", qty="0.4", price="50000", tif="ioc", trader="bob")  # fills against a:1
    ask(node, 3, op="place", side="buy", qty="0.1", trader="bob")  # market: fills too
    ask(node, 4, op="cancel", order_id="a:1", trader="alice")
    p = node.probe
    assert dict(p.orders) == {("gtc", "local"): 1, ("ioc", "local"): 2}  # a market order is an ioc
    assert dict(p.fills) == {"both": 2}  # both orders are this node's
    assert dict(p.cancels) == {"user": 1}
    assert sum(p.commit[True].counts) == 4 and sum(p.commit[False].counts) == 0

    p.committed([TakeSent("r1", "a:9", "b:1", 5)], True, 0)
    assert sum(p.take.counts) == 0
    p.committed([TakeSettled("r1", 5), TakeSettled("r-unknown", 1)], False, 0)
    assert sum(p.take.counts) == 1  # the one whose start it saw


def test_the_snapshot_is_replaced_whole_and_at_most_every_publish_interval(node, monkeypatch):
    node.probe = p = Probe(node)
    first = p.snapshot
    assert first.orders_known == 0 and first.peers == {}
    p.iteration(node, 0)
    published = p.snapshot
    assert published is not first
    ask(node, op="place", side="sell", qty="1", price="50000")
    p.iteration(node, 0)
    assert p.snapshot is published  # within PUBLISH_MS: the figures wait
    monkeypatch.setattr(p, "_next_publish", 0)
    p.iteration(node, 0)
    assert p.snapshot.orders_known == 1 and published.orders_known == 0  # the old one did not change
    assert p.snapshot.requests == {("place", OK): 1}


# --- the collector, over HTTP -----------------------------------------------------------------


def test_each_node_serves_its_own_figures_with_prometheus_names():
    a, b = Node("a", port=0, store=MemoryStore()), Node("b", port=0, store=MemoryStore())
    exporters = []
    try:
        for n in (a, b):
            n.probe = Probe(n)
            exporters.append(Exporter(n.probe, "127.0.0.1", 0))
        ask(a, op="place", side="sell", qty="1", price="50000")
        a.replica.counters["state_mismatches"] += 2
        a.replica.counters["a_new_counter"] += 1
        a.probe.iteration(a, 0)
        got = scrape(exporters[0])
        other = scrape(exporters[1])
    finally:
        for exporter in exporters:
            exporter.close()
        a.close()
        b.close()
    assert got["zmqex_node_info"] == {(("node", "a"),): 1} and other["zmqex_node_info"] == {(("node", "b"),): 1}
    assert got["zmqex_orders_total"] == {(("origin", "local"), ("tif", "gtc")): 1}
    assert "zmqex_orders_total" not in other
    assert got["zmqex_open_orders"] == {(): 1} and got["zmqex_state_mismatches_total"] == {(): 2}
    assert got["zmqex_replica_counter_total"] == {(("name", "a_new_counter"),): 1}
    assert other["zmqex_state_mismatches_total"] == {(): 0}  # shown before it is ever counted
    assert got["zmqex_requests_total"] == {(("code", "ok"), ("op", "place")): 1}
    assert got["zmqex_store_commit_seconds_count"][(("promise", "true"),)] == 1
    assert got["zmqex_loop_iteration_seconds_count"] == {(): 1}
    assert got["zmqex_take_seconds_bucket"][(("le", "+Inf"),)] == 0
    assert "process_cpu_seconds_total" in got
    for name in got:  # every zmqex figure is described, in base units, counters ending in _total
        if name.startswith("zmqex_"):
            family = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum").removesuffix("_info")
            assert family in HELP or family + "_total" in HELP, name
            assert not any(unit in name for unit in ("_ms", "milliseconds", "_us"))
    assert all(name.endswith("_total") for name, _ in COUNTERS.values())


def test_metrics_addresses_are_host_and_port():
    assert _host_port("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert _host_port("[::1]:0") == ("::1", 0)
    for bad in ("9100", "host:", "host:65536", "host:x1"):
        with pytest.raises(Exception):
            _host_port(bad)
