"""The one contract for carrying out the replica's outputs (zmqex.core.schedule), on random drains.

Each output built here is distinct (a counter in it), so "in order" and
"exactly once" are checked on identities, not on look-alikes.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif
from zmqex.core.messages import Heartbeat
from zmqex.core.outputs import Delivered, Output, PeerChanged, Persist, Publish, Reply, Send, TakeSettled
from zmqex.core.schedule import schedule

PEERS = ["b", "c", "d"]


def build(kind: str, peer: str, promise: bool, i: int) -> Output:
    message = Heartbeat("a", VectorClock({"a": i + 1}), str(i))
    if kind == "persist":
        return Persist(TakeSettled(f"a.{i}", i), promise)
    if kind == "send":
        return Send(peer, message)
    if kind == "publish":
        return Publish(message)
    if kind == "reply":
        return Reply(("client", i), {"order_id": f"a:{i}"})
    if kind == "delivered":
        return Delivered(Event("a", i + 1, VectorClock({"a": i + 1}), NewOrder(Side.SELL, 100, 1, Tif.GTC)))
    return PeerChanged(peer, i % 2 == 0)


drains = st.lists(
    st.tuples(st.sampled_from(["persist", "send", "publish", "reply", "delivered", "peer"]),
              st.sampled_from(PEERS), st.booleans()),
    max_size=60,
).map(lambda specs: [build(kind, peer, promise, i) for i, (kind, peer, promise) in enumerate(specs)])


@given(drains)
def test_every_output_lands_in_exactly_one_step_in_its_order(outputs: list[Output]) -> None:
    plan = schedule(outputs)
    assert plan.records == [o.record for o in outputs if isinstance(o, Persist)]
    assert plan.replies == [o for o in outputs if isinstance(o, Reply)]
    assert plan.gossip == [o.message for o in outputs if isinstance(o, Publish)]
    assert plan.notices == [o for o in outputs if isinstance(o, (Delivered, PeerChanged))]
    sent = sum(len(msgs) for msgs in plan.to_peers.values())
    assert len(plan.records) + sent + len(plan.replies) + len(plan.gossip) + len(plan.notices) == len(outputs)


@given(drains)
def test_records_are_committed_once_whole_first_if_one_is_a_promise_else_last(outputs: list[Output]) -> None:
    plan = schedule(outputs)
    persists = [o for o in outputs if isinstance(o, Persist)]
    assert plan.promised == any(p.promise for p in persists)
    first, last = list(plan.commit_first), list(plan.commit_last)
    assert first + last == [p.record for p in persists]  # each record once, in order, in one batch
    assert not (first and last)
    if plan.promised:
        assert first == plan.records  # the records a promise may depend on go with it
    else:
        assert first == []


@given(drains)
def test_messages_to_each_peer_keep_their_order_and_peers_their_first_mention(outputs: list[Output]) -> None:
    plan = schedule(outputs)
    sends = [o for o in outputs if isinstance(o, Send)]
    assert list(plan.to_peers) == list(dict.fromkeys(s.to for s in sends))
    for peer, msgs in plan.to_peers.items():
        assert msgs == [s.message for s in sends if s.to == peer]
        assert msgs  # no peer without a message


def test_an_empty_drain_has_nothing_to_do() -> None:
    plan = schedule([])
    assert (list(plan.commit_first), list(plan.commit_last), plan.promised) == ([], [], False)
    assert plan.to_peers == {} and plan.replies == plan.gossip == plan.notices == []


def test_one_promise_takes_the_whole_drain_ahead_of_the_sends() -> None:
    counter = itertools.count()
    peers_event = build("persist", "b", False, next(counter))  # e.g. a peer's event, delivered first
    own = build("persist", "b", True, next(counter))  # then a fill on it: a promise
    take = build("send", "b", False, next(counter))
    plan = schedule([peers_event, take, own])
    assert isinstance(peers_event, Persist) and isinstance(own, Persist)
    assert list(plan.commit_first) == [peers_event.record, own.record] and list(plan.commit_last) == []


def test_something_that_is_not_an_output_is_refused() -> None:
    with pytest.raises(TypeError):
        schedule([object()])  # type: ignore[list-item]  # the point of the test
