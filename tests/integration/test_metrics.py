"""``zmqex-node --metrics``: a real node process serves Prometheus metrics while it trades."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from zmqex.local import LocalNetwork, NodeProcess, wait_for

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def metrics_url(node: NodeProcess) -> str:
    urls: list[str] = []

    def logged() -> bool:
        urls[:] = re.findall(r"metrics at (http://\S+)", node.log())
        return bool(urls)

    wait_for(logged, 10, "the metrics address in the node's log")
    return urls[-1]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_a_node_serves_its_figures_while_it_trades(net: LocalNetwork) -> None:
    a = net.start("a", args=["--metrics", "127.0.0.1:0"])
    b = net.start("b")
    net.wait_meshed()
    url = metrics_url(a)
    with a.client() as at_a, b.client() as at_b:
        at_b.place("sell", "1", "50000", tif="gtc")  # the maker, owned by b
        wait_for(lambda: at_a.book()["asks"], 10, "b's order at a")
        taken = at_a.place("buy", "0.3", "50000")  # a takes from b: one take request a -> b
        assert taken["status"] == "filled"
        for n in range(3):
            at_a.place("buy", "0.1", f"{49000 + n}")  # rests
        try:
            at_a.cancel("b:1")  # not a's order: refused
        except Exception:
            pass
    net.wait_converged()

    got: Samples = {}

    def settled() -> bool:  # the loop publishes every 0.2 s, and a's clock lag at b closes by heartbeat
        got.clear()
        got.update(scrape(url))
        return (got.get("zmqex_peer_clock_lag_events", {}).get((("peer", "b"),)) == 0
                and got.get("zmqex_orders_total", {}).get((("origin", "local"), ("tif", "gtc"))) == 4)

    wait_for(settled, 15, "a's metrics to show its orders, and b caught up")
    assert got["zmqex_node_info"] == {(("node", "a"),): 1}
    assert got["zmqex_ready"] == {(): 1}
    assert got["zmqex_orders_total"][(("origin", "peer"), ("tif", "gtc"))] == 1
    assert got["zmqex_fills_total"] == {(("role", "taker"),): 1}
    assert got["zmqex_requests_total"][(("code", "ok"), ("op", "place"))] == 4
    assert got["zmqex_requests_total"][(("code", "not_owner"), ("op", "cancel"))] == 1
    assert got["zmqex_take_seconds_count"] == {(): 1} and got["zmqex_take_seconds_sum"][()] > 0
    assert got["zmqex_takes_answered_total"][(("reason", "filled"),)] == 1
    assert got["zmqex_peers_up"] == {(): 1} and got["zmqex_peer_up"] == {(("peer", "b"),): 1}
    assert got["zmqex_state_mismatches_total"] == {(): 0}
    assert got["zmqex_open_orders"] == {(): 4}  # b's rest and a's three
    assert got["zmqex_store_commit_seconds_count"][(("promise", "true"),)] >= 4
    assert got["zmqex_loop_iteration_seconds_count"][()] > 0
    assert got["zmqex_queue_depth"][(("queue", "pending_places"),)] == 0
    assert got["zmqex_snapshot_age_seconds"][()] < 5

    a.stop()
    try:
        urllib.request.urlopen(url, timeout=2)
        raise AssertionError("the metrics server outlived its node")
    except urllib.error.URLError:
        pass
