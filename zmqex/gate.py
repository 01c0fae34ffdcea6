"""What a node holds back until the commit it depends on is on disk.

With ``--sync full`` the store's fsync runs off the loop (:mod:`zmqex.walsync`),
so the loop goes on with the next batch while the disk works.  What one loop
iteration's outputs do outside the node (messages to peers, replies, gossip,
stream messages) waits here, behind the ticket of its commit, and leaves in the
order it was made: an iteration that committed nothing still waits behind an
earlier one that did, and so does every frame to a client made meanwhile (a
query's answer, a stream heartbeat), so nobody hears of what is not yet durable.

Invariants (``_check``): tickets never go down along the queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from zmqex.core.schedule import Schedule

Frame = tuple[bytes, bytes]  # (client identity, frame)


@dataclass(slots=True)
class Held:
    ticket: int  # the commit it waits for (and every one before it)
    plan: Schedule | None  # one iteration's effects; None for frames alone
    answers: list[Frame]  # replies its requests got as they were handled (after the plan's)
    frames: list[Frame] = field(default_factory=list)  # frames to clients made while it waited


class Gate:
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: deque[Held] = deque()

    def __bool__(self) -> bool:
        return bool(self._held)

    def __len__(self) -> int:
        return len(self._held)

    @property
    def last_ticket(self) -> int:
        return self._held[-1].ticket if self._held else 0

    def hold(self, ticket: int, plan: Schedule | None, answers: list[Frame]) -> None:
        """Hold ``plan`` (and ``answers``) until ``ticket``, and whatever is held before it, is durable."""
        if self._held:
            ticket = max(ticket, self._held[-1].ticket)
        self._held.append(Held(ticket, plan, answers))

    def later(self, frame: Frame) -> None:
        """A frame to a client made while something is held: it leaves after that."""
        self._held[-1].frames.append(frame)

    def ready(self, durable: Callable[[int], bool]) -> Iterator[Held]:
        """What may leave now, in order: the held entries whose tickets are durable."""
        while self._held and durable(self._held[0].ticket):
            yield self._held.popleft()

    def _check(self) -> None:
        tickets = [h.ticket for h in self._held]
        assert tickets == sorted(tickets), "held tickets go down"
