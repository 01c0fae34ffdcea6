"""Trust: who may originate events, whose signatures hold, and who was caught lying.

With keys, a mesh has a list of members (the key directory's ``members/``);
only they may originate events, each event carries its origin's Ed25519
signature (of the event alone, or of its envelope: :mod:`zmqex.core.envelope`),
and a member that signs two different events with one id has
*equivocated*: the two events are kept as evidence, and none of its orders is
traded here again.  Without keys (``members`` is None) anyone may join, and
nothing is signed.

:class:`Trust` holds that state and answers the questions delivery asks; the
replica acts on the answers (it owns the outputs).

Invariants (``_check``): a removed member is not a member; each equivocator's
evidence is two different events of it with one id.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterable

from zmqex.core import envelope
from zmqex.core.envelope import Envelope
from zmqex.core.events import Event
from zmqex.errors import Forged

#: Signs our events' signed bytes (deterministic: Ed25519); and checks ``(origin, data, signature)``.
Signer = Callable[[bytes], bytes]
Verifier = Callable[[str, bytes, bytes], bool]


class Copy(enum.Enum):
    """What a second, different copy of a delivered event proves (:meth:`Trust.second_copy`)."""

    NOTHING = "nothing"  # nothing new, or no proof (our copy came unsigned)
    WE_LOST_HISTORY = "we_lost_history"  # a different event of ours: we reused an id
    EQUIVOCATION = "equivocation"  # a member signed two events with one id: new evidence
    SEND_BACK = "send_back"  # no keys: show the origin our copy, so it finds out it lost its history


class Trust:
    def __init__(self, node_id: str, counters: Counter[str], signer: Signer | None = None,
                 verifier: Verifier | None = None, members: Iterable[str] | None = None) -> None:
        self._id = node_id
        self._counters = counters
        self._signer = signer
        self._verifier = verifier
        # None: a mesh without keys, where anyone may join.
        self.members: frozenset[str] | None = None if members is None else frozenset(members) | {node_id}
        self.removed: set[str] = set()  # members taken off the list: untradeable, not waited for
        self.equivocators: dict[str, tuple[Event, Event]] = {}  # origin -> two events it signed with one id

    @property
    def keyed(self) -> bool:
        return self._verifier is not None

    def set_keys(self, verifier: Verifier | None, members: Iterable[str] | None, known: Iterable[str]) -> None:
        """New keys: of the ``known`` nodes, those no longer members are removed."""
        self._verifier = verifier
        if members is None:
            self.members = None
            return
        self.members = frozenset(members) | {self._id}
        self.removed = {node for node in set(known) | self.removed if node not in self.members}

    def admits(self, node: str) -> bool:
        """Whether ``node`` may originate events (and be a peer)."""
        return self.members is None or node in self.members

    def trusted(self, node: str) -> bool:
        """Whether ``node``'s orders may be traded: not removed, never caught equivocating."""
        return node not in self.removed and node not in self.equivocators

    def seal(self, events: list[Event]) -> Envelope:
        """Seal our own ``events`` into one envelope, signed with keys (~25 us, however many)."""
        return envelope.seal(events, self._signer)

    def verified(self, event: Event) -> bool:
        """Whether ``event`` carries its origin's signature (always, without keys).

        ~55 us with keys, once per envelope: its other events are then verified too.
        """
        if self._verifier is None:
            return True
        seal = event.seal
        if isinstance(seal, Envelope) and seal.verified:
            return True
        claim = envelope.vouched(event)
        ok = claim is not None and self._verifier(event.origin, claim[0], claim[1])
        if not ok:
            self._counters["bad_signatures"] += 1
        elif isinstance(seal, Envelope):
            seal.verified = True
        return ok

    def second_copy(self, ours: Event, theirs: Event, sender: str) -> Copy:
        """``theirs`` has the id of our delivered event ``ours`` and other bytes: what does it prove?

        Ids are never reused, so a different copy signed by its origin proves that
        the origin reused one: it restarted without its store, or two processes run
        with its key.  Our own copy must be signed too (one that came straight from
        its origin is not verified on arrival): else there is no proof against it.
        Raises Forged if ``theirs`` is not signed by its origin.
        """
        if self._verifier is not None and not self.verified(theirs):
            raise Forged(f"a copy of event {theirs.origin}:{theirs.seq} from {sender} "
                         f"is not signed by {theirs.origin}")
        self._counters["reused_event_ids"] += 1
        if theirs.origin == self._id:
            return Copy.WE_LOST_HISTORY
        if self._verifier is None:
            return Copy.SEND_BACK
        if not self.verified(ours) or theirs.origin in self.equivocators:
            return Copy.NOTHING
        self._counters["equivocations"] += 1
        self.equivocators[theirs.origin] = (ours, theirs)
        return Copy.EQUIVOCATION

    def restore(self, evidence: Iterable[tuple[Event, Event]]) -> None:
        for ours, theirs in evidence:
            self.equivocators.setdefault(ours.origin, (ours, theirs))

    def _check(self) -> None:
        assert self.members is None or not (self.removed & self.members), "a removed member is listed"
        for origin, (ours, theirs) in self.equivocators.items():
            assert ours.origin == theirs.origin == origin and ours.seq == theirs.seq and ours != theirs
