"""Tests for zmqex.core.causal: causal delivery with de-duplication."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zmqex.core import causal
from zmqex.core.causal import CausalBuffer
from zmqex.core.clock import EMPTY, VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif

BODY = NewOrder(Side.BUY, 100, 1, Tif.GTC)
ORIGINS = "abc"


def ev(origin: str, **vc: int) -> Event:
    return Event(origin, vc[origin], VectorClock(vc), BODY)


def drain(buf: CausalBuffer, delivered: VectorClock) -> tuple[list[Event], VectorClock]:
    """Pop every ready event, checking each is deliverable at the moment it comes out."""
    out = []
    while (event := buf.pop_ready(delivered)) is not None:
        assert event.seq == delivered.get(event.origin) + 1, event
        assert delivered.with_entry(event.origin, event.seq).dominates(event.vc), event
        delivered = delivered.with_entry(event.origin, event.seq)
        out.append(event)
    return out, delivered


def deliver(arrivals: list[Event]) -> tuple[list[Event], CausalBuffer, VectorClock]:
    buf, delivered, out = CausalBuffer(), EMPTY, []
    for event in arrivals:
        buf.add(event, delivered)
        more, delivered = drain(buf, delivered)
        out += more
    return out, buf, delivered


# --- examples -----------------------------------------------------------------


def test_ready_event_is_delivered_at_once():
    buf = CausalBuffer()
    assert buf.add(ev("a", a=1), EMPTY) is True
    assert len(buf) == 1
    assert buf.pop_ready(EMPTY) == ev("a", a=1)
    assert len(buf) == 0 and buf.pop_ready(EMPTY) is None


def test_event_waits_for_its_origins_earlier_events():
    out, buf, _ = deliver([ev("a", a=2)])
    assert out == [] and len(buf) == 1
    out, buf, delivered = deliver([ev("a", a=2), ev("a", a=1)])
    assert out == [ev("a", a=1), ev("a", a=2)]
    assert delivered == VectorClock({"a": 2}) and len(buf) == 0


def test_event_waits_for_its_dependencies_from_other_origins():
    b1, a1 = ev("b", b=1), ev("a", a=1, b=1)
    out, buf, _ = deliver([a1])
    assert out == [] and len(buf) == 1
    out, _, _ = deliver([a1, b1])
    assert out == [b1, a1]


def test_waiting_on_a_transitive_dependency():
    c1, b1, a1 = ev("c", c=1), ev("b", b=1, c=1), ev("a", a=1, b=1, c=1)
    out, _, _ = deliver([a1, b1])
    assert out == []
    assert deliver([a1, b1, c1])[0] == [c1, b1, a1]


def test_duplicate_of_a_delivered_event_is_dropped():
    buf = CausalBuffer()
    delivered = VectorClock({"a": 1})
    assert buf.add(ev("a", a=1), delivered) is False
    assert len(buf) == 0 and buf.pop_ready(delivered) is None


def test_duplicate_of_a_waiting_event_is_dropped():
    buf = CausalBuffer()
    assert buf.add(ev("a", a=2), EMPTY) is True
    assert buf.add(ev("a", a=2), EMPTY) is False
    assert len(buf) == 1
    assert buf.add(ev("a", a=1), EMPTY) is True
    assert drain(buf, EMPTY)[0] == [ev("a", a=1), ev("a", a=2)]


def test_prune_forgets_events_already_covered():
    buf = CausalBuffer()
    for n in (2, 3, 5):
        buf.add(ev("a", a=n), EMPTY)
    buf.add(ev("b", b=2), EMPTY)
    buf.prune(VectorClock({"a": 3}))
    assert len(buf) == 2
    assert buf.pop_ready(VectorClock({"a": 4, "b": 1})) == ev("a", a=5)
    assert buf.pop_ready(VectorClock({"a": 5, "b": 1})) == ev("b", b=2)


def test_max_waiting_caps_each_origin(monkeypatch):
    monkeypatch.setattr(causal, "MAX_WAITING", 3)
    buf = CausalBuffer()
    assert [buf.add(ev("a", a=n), EMPTY) for n in range(2, 7)] == [True, True, True, False, False]
    assert buf.add(ev("b", b=2), EMPTY) is True  # the cap is per origin
    assert len(buf) == 4
    buf.add(ev("a", a=1), EMPTY)  # over the cap too: dropped, repair fetches it again
    assert len(buf) == 4 and buf.pop_ready(EMPTY) is None
    out, delivered = drain(buf, VectorClock({"a": 1}))
    assert [e.seq for e in out] == [2, 3, 4]
    assert delivered.get("a") == 4
    assert buf.add(ev("a", a=5), delivered) is True  # room again once delivered
    assert drain(buf, delivered)[0] == [ev("a", a=5)]


# --- property -----------------------------------------------------------------


@st.composite
def histories(draw) -> list[Event]:
    """A causally consistent history: each new event first receives a prefix of others' events."""
    made: dict[str, list[Event]] = {o: [] for o in ORIGINS}
    clocks = {o: EMPTY for o in ORIGINS}
    history = []
    for _ in range(draw(st.integers(1, 15))):
        origin = draw(st.sampled_from(ORIGINS))
        for peer in ORIGINS:
            if peer != origin and made[peer]:
                seen = draw(st.integers(0, len(made[peer])))
                if seen:
                    clocks[origin] = clocks[origin].merge(made[peer][seen - 1].vc)
        clocks[origin] = clocks[origin].increment(origin)
        event = Event(origin, clocks[origin][origin], clocks[origin], BODY)
        made[origin].append(event)
        history.append(event)
    return history


@given(st.data())
def test_any_arrival_order_is_delivered_causally_exactly_once(data):
    history = data.draw(histories())
    dups = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    arrivals = data.draw(st.permutations(history + dups))
    out, buf, delivered = deliver(arrivals)
    assert sorted(e.id for e in out) == sorted(e.id for e in history)  # all, each once
    assert len(buf) == 0
    assert delivered == VectorClock({o: sum(e.origin == o for e in history) for o in ORIGINS})
    position = {e.id: i for i, e in enumerate(out)}
    for before in history:
        for after in history:
            if before is not after and after.vc.dominates(before.vc):
                assert position[before.id] < position[after.id], (before, after)


def test_the_buffer_holds_a_bounded_number_of_events_and_origins(monkeypatch) -> None:
    monkeypatch.setattr(causal, "MAX_HELD", 5)
    monkeypatch.setattr(causal, "MAX_ORIGINS", 2)
    buffer = CausalBuffer()
    gap = lambda origin, seq: Event(origin, seq, VectorClock({origin: seq}), NewOrder(Side.SELL, 1, 1, Tif.GTC))  # noqa: E731
    assert buffer.add(gap("a", 5), VectorClock()) and buffer.add(gap("b", 5), VectorClock())
    assert not buffer.add(gap("c", 5), VectorClock())  # a third origin with events held
    for seq in (6, 7, 8):
        assert buffer.add(gap("a", seq), VectorClock())
    assert not buffer.add(gap("a", 9), VectorClock()) and len(buffer) == 5  # held in all
