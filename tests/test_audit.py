"""zmqex.core.digests and zmqex.core.audit: replicas that differ at one clock are repaired from each origin."""

from __future__ import annotations

import dataclasses

import pytest

from zmqex.core.digests import BUCKET, differing, digests, records, replace
from zmqex.core.events import Event, NewOrder, Side
from zmqex.core.ledger import export, rebuild
from zmqex.core.messages import Records
from zmqex.core.outputs import EventRecord
from zmqex.errors import BadEvent, DecodeError
from tests.checked import Network

BUY, SELL = Side.BUY, Side.SELL


def traded() -> Network:
    net = Network(["a", "b", "c"])
    net.place("a", SELL, 5, 100)
    net.place("a", SELL, 5, 101)
    net.place("c", SELL, 3, 99)
    net.settle()
    net.place("b", BUY, 6, 100)
    net.settle()
    return net


def tamper(net: Network, node: str, oid: str, price: int) -> None:
    """Rewrite ``node``'s stored copy of order ``oid`` with another price, and restart it from that."""
    store = net.nodes[node].store
    for i, record in enumerate(store):
        if isinstance(record, EventRecord) and record.event.order_id == oid and isinstance(record.event.body, NewOrder):
            store[i] = EventRecord(dataclasses.replace(record.event, body=dataclasses.replace(record.event.body,
                                                                                                 price=price)))
    net.crash(node)
    net.restart(node)


def test_digests_find_the_bucket_of_the_one_record_that_differs() -> None:
    net = traded()
    a, b = net.replica("a").ledger, net.replica("b").ledger
    assert digests(a) == digests(b) and not differing(digests(a), digests(b), skip="")
    tamper(net, "b", "a:2", 105)
    assert differing(digests(a), digests(net.replica("b").ledger), skip="b") == {"a": [0]}
    assert differing(digests(a), digests(net.replica("b").ledger), skip="a") == {}  # a's own: a is the truth


def test_replace_takes_the_origins_records_and_counts_filled_again() -> None:
    net = traded()
    tamper(net, "b", "a:2", 105)
    theirs = net.replica("a").ledger
    new, changed = replace(net.replica("b").ledger, "a", [0], records(theirs, "a", [0]))
    assert changed == ["a:2"] and new.state_hash() == theirs.state_hash()
    new._check()


def test_replace_refuses_records_that_are_not_the_origins_or_not_asked_for() -> None:
    net = traded()
    ledger = net.replica("b").ledger
    theirs = records(net.replica("a").ledger, "a", [0])
    with pytest.raises(BadEvent):
        replace(ledger, "c", [0], theirs)  # a's records offered as c's
    with pytest.raises(BadEvent):
        replace(ledger, "a", [1], theirs)  # outside the buckets asked for
    with pytest.raises(DecodeError):
        replace(ledger, "a", [0], [["junk"]])
    over = [list(item) for item in theirs]
    over[0][4] = 1  # a's first order lowered below what filled of it: an over-fill
    with pytest.raises(DecodeError):
        replace(ledger, "a", [0], over)
    assert export(rebuild(export(ledger))) == export(ledger)


def test_a_rewritten_store_row_is_found_and_repaired_from_its_origin() -> None:
    net = traded()
    tamper(net, "b", "a:2", 105)
    b = net.replica("b")
    assert b.ledger.state_hash() != net.replica("a").ledger.state_hash()
    for _ in range(8):  # quiet heartbeats: the mismatch, the audit, a's records
        net.tick(net.config.heartbeat_ms)
        net.drain()
    hashes = {r.ledger.state_hash() for r in net.live()}
    assert len(hashes) == 1, "b repaired a's record from a"
    assert b.counters["records_repaired"] == 1 and b.order_info("a:2")["price"] == 101
    mismatches = b.counters["state_mismatches"]
    net.tick(net.config.heartbeat_ms)
    net.drain()
    assert b.counters["state_mismatches"] == mismatches  # no more
    net.crash("b")  # and it holds after a restart: the repaired state was checkpointed
    net.restart("b")
    assert net.replica("b").ledger.state_hash() == net.replica("a").ledger.state_hash()


def test_records_a_peer_sends_in_another_origins_name_are_ignored() -> None:
    net = traded()
    tamper(net, "b", "a:2", 105)
    b = net.replica("b")
    wrong = records(b.ledger, "a", [0])
    b.receive("c", Records(b.clock, "a", (0,), tuple(wrong)), net.now)  # c speaks for a: not asked of c
    b.take_outputs()
    assert b.counters["records_repaired"] == 0


def test_buckets_hold_a_bounded_range_of_seqs() -> None:
    ledger = rebuild([])
    assert digests(ledger) == {} and BUCKET == 1024
