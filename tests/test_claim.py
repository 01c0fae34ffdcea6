"""One id, one process: what peers tell a second process (zmqex.mesh.Incarnations), and when a
joining node takes itself for its id (zmqex.claim)."""

from __future__ import annotations

import pytest

from zmqex import mesh
from zmqex.claim import CLAIM_WAIT_MS, Claim
from zmqex.errors import DecodeError
from zmqex.mesh import ACCEPTED, DUPLICATE, REFUSED, Incarnations, Verdict


def test_a_second_process_is_a_duplicate_only_once_the_holder_echoes_a_probe_sent_after_it_spoke():
    seen = Incarnations()
    assert seen.heard("x", "one", 0)
    assert seen.verdict("x", "one") == Verdict(ACCEPTED, "one", "one")
    assert not seen.heard("x", "two", 100)
    assert seen.verdict("x", "two") == Verdict(REFUSED, "two", "one")  # it may be "one" restarted
    nonce = seen.probe("x", 100)
    assert nonce and seen.probe("x", 200) is None  # one probe at a time
    assert seen.echoed("x", "one", "forged", 300) == []  # not our nonce
    assert seen.echoed("x", "two", nonce, 300) == []  # the holder must echo, not the refused one
    assert seen.echoed("x", "one", nonce, 300) == ["two"]
    assert seen.verdict("x", "two") == Verdict(DUPLICATE, "two", "one")
    assert seen.probe("x", 5000) is None  # nothing left to prove


def test_a_holder_that_died_cannot_make_its_restart_a_duplicate():
    seen = Incarnations()
    assert seen.heard("x", "one", 0)
    assert not seen.heard("x", "two", 100)  # "one" was killed; "two" is its restart
    nonce = seen.probe("x", 100)
    assert nonce
    # Stale messages of "one" still queued here are heard, but nothing echoes the probe ...
    assert seen.heard("x", "one", 150)
    assert seen.verdict("x", "two").verdict == REFUSED
    # ... and once "one" has been silent long enough, "two" is the member, afresh.
    assert seen.heard("x", "two", 150 + mesh.RESTART_AFTER_MS)
    assert seen.verdict("x", "two").verdict == ACCEPTED
    assert seen.echoed("x", "one", nonce, 6000) == [] and not seen.contested.get("x")


def test_only_incarnations_refused_before_the_probe_left_are_shown_duplicates():
    seen = Incarnations()
    seen.heard("x", "one", 0)
    seen.heard("x", "two", 10)
    nonce = seen.probe("x", 20)
    seen.heard("x", "three", 30)  # spoke after the probe left: the echo proves nothing about it
    assert nonce and seen.echoed("x", "one", nonce, 40) == ["two"]
    assert seen.verdict("x", "three").verdict == REFUSED
    assert seen.probe("x", 40 + mesh.TELL_EVERY_MS)  # so it gets a probe of its own


def test_verdicts_are_not_repeated_more_than_once_a_second_unless_they_change():
    seen = Incarnations()
    refused = Verdict(REFUSED, "two", "one")
    assert seen.should_tell("x", refused, 0)
    assert not seen.should_tell("x", refused, mesh.TELL_EVERY_MS - 1)
    assert seen.should_tell("x", Verdict(DUPLICATE, "two", "one"), mesh.TELL_EVERY_MS - 1)
    assert seen.should_tell("x", refused, 2 * mesh.TELL_EVERY_MS)


def test_verdicts_and_probes_round_trip_and_garbage_is_refused():
    verdict = Verdict(DUPLICATE, "ab12", "cd34")
    assert mesh.decode_verdict(mesh.encode_verdict(verdict)) == verdict
    assert mesh.decode_probe(mesh.encode_probe("ef56")) == "ef56"
    with pytest.raises(DecodeError):
        mesh.decode_verdict(mesh.encode_probe("ef56"))
    with pytest.raises(DecodeError):
        mesh.decode_verdict(mesh.wire.pack([mesh.wire.VERSION, "welcome", "a", "b"]))


class FakeLink:
    """What Claim reads of a link: its peer, once it said hello, and the verdict it gave."""

    def __init__(self, peer: str | None = None) -> None:
        self.peer = peer
        self.verdict: Verdict | None = None


def test_a_joiner_is_confirmed_when_every_link_accepted_and_every_acceptor_said_hello():
    claim = Claim("me", confirmed=False)
    a, b = FakeLink(), FakeLink("b")
    claim.on_verdict(a, "a", Verdict(ACCEPTED, "me", "me"), 0)
    assert not claim.check([a, b], set(), 1)  # a has not said hello: we may not know all members yet
    a.peer = "a"
    assert not claim.check([a, b], {"a"}, 2)  # b has not answered
    claim.on_verdict(b, "b", Verdict(ACCEPTED, "me", "me"), 3)
    assert claim.check([a, b], {"a", "b"}, 4) and claim.accepted_by == {"a", "b"}


def test_a_joiner_that_any_peer_refuses_is_not_confirmed_and_one_that_is_a_duplicate_learns_it():
    claim = Claim("me", confirmed=False)
    a, b = FakeLink("a"), FakeLink("b")
    claim.on_verdict(a, "a", Verdict(ACCEPTED, "me", "me"), 0)
    claim.on_verdict(b, "b", Verdict(REFUSED, "me", "other"), 0)
    assert not claim.check([a, b], {"a", "b"}, CLAIM_WAIT_MS * 10)  # however long it waits
    claim.on_verdict(b, "b", Verdict(DUPLICATE, "me", "other"), 1)
    assert claim.duplicate == ("b", "other")
    claim.on_verdict(b, "b", Verdict(DUPLICATE, "someone else", "x"), 1)
    assert claim.duplicate == ("b", "other")  # a verdict on another incarnation is not about us


def test_a_peer_that_never_answers_holds_a_joiner_back_for_claim_wait_ms_at_most():
    claim = Claim("me", confirmed=False)
    a, down = FakeLink("a"), FakeLink()
    claim.on_verdict(a, "a", Verdict(ACCEPTED, "me", "me"), 100)
    assert not claim.check([a, down], {"a"}, 100 + CLAIM_WAIT_MS - 1)
    assert claim.check([a, down], {"a"}, 100 + CLAIM_WAIT_MS)
    assert Claim("me", confirmed=True).check([], set(), 0)  # a founder, or a node with its store
