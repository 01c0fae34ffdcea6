"""Whether the mesh takes this process for its node id: the verdicts of its peers on its hellos.

A node that joins a mesh with an empty store (brand-new, or one that lost its
store) could be a second process under a member's id: the peers would refuse
its messages (:class:`zmqex.mesh.Incarnations`), but it would go on answering
its own clients, and two processes would hand out the same order ids.  So such
a node takes no work (its api refuses :data:`zmqex.protocol.WRITES` with
``busy``) until its claim is *confirmed*:

* some peer accepted this incarnation, and none refuses it now; and
* every peer that accepted it has said hello (so this node links to every
  member that peer knows), and every link has a verdict; or
  :data:`CLAIM_WAIT_MS` passed since the first acceptance (a member that is
  down never answers).

So when two brand-new processes with one id join at once, a peer that heard
the other one first refuses each, and neither serves until one is told it is
the second (``duplicate``) and stops.  Once confirmed, a claim stays so.  A
node that starts from its own store, or founds a mesh, has nothing to wait
for: its claim is confirmed from the start; a ``duplicate`` verdict still
stops it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from zmqex.mesh import ACCEPTED, DUPLICATE, RESTART_AFTER_MS, Link, Verdict

#: Longest wait, after the first peer accepted, for the verdicts of the others (a joiner says
#: hello on every tick to a link without one, so a live peer answers well within it).
CLAIM_WAIT_MS = RESTART_AFTER_MS


class Claim:
    def __init__(self, incarnation: str, confirmed: bool) -> None:
        self.incarnation = incarnation
        self.confirmed = confirmed
        self.first_accepted: int | None = None
        self.accepted_by: set[str] = set()
        self.duplicate: tuple[str, str] | None = None  # (the peer that said so, the incarnation it hears)

    def on_verdict(self, link: Link, peer: str, verdict: Verdict, now: int) -> None:
        """A verdict on our hello came in on ``link``, from ``peer``."""
        if verdict.incarnation != self.incarnation:
            return  # not about this process
        link.verdict = verdict
        if verdict.verdict == DUPLICATE:
            self.duplicate = (peer, verdict.holder)
        elif verdict.verdict == ACCEPTED:
            self.accepted_by.add(peer)
            if self.first_accepted is None:
                self.first_accepted = now

    def check(self, links: Iterable[Link], greeted: Container[str], now: int) -> bool:
        """Whether the claim is confirmed now (see the module docstring); ``links`` are all of
        this node's links, ``greeted`` the members that said hello to it."""
        if self.confirmed:
            return True
        if self.first_accepted is None or self.duplicate is not None:
            return False
        links = list(links)
        verdicts = [link.verdict for link in links]
        if any(v is not None and v.verdict != ACCEPTED for v in verdicts):
            return False
        settled = all(v is not None for v in verdicts) and all(
            link.peer is not None and link.peer in greeted for link in links if link.verdict is not None)
        self.confirmed = settled or now - self.first_accepted >= CLAIM_WAIT_MS
        return self.confirmed
