"""Time in force: what each kind of order does, in one table.

Every rule that depends on an order's time in force is a field of its
:class:`Rule` in :data:`RULES`, read by the code that acts on it:

* ``rests``: the order may stand in the book.  One that does not (IOC, and
  every market order) takes what it can in its first pass, and the owner
  cancels the rest (``expired``) when that pass is over.  The ledger reads it
  (only resting orders are makers), and so does the taker desk.
* ``takes``: the order may take from a resting order.  One that may not
  (post-only) is refused at placement if it would cross the best opposite
  price, and cancelled (``would_cross``) if a crossing order it did not see
  then turns up later.
* ``market``: what an order without a price of this kind becomes, or None if
  it needs a price.  A market order never rests, so it is always an IOC on the
  wire; a GTC without a price is one too.
* ``expiry``: the order carries ``expire_at`` (epoch ms), and its owner
  cancels what is left of it then (``expired``).  Every other kind carries none.
* ``atomic``: the order trades its whole quantity or nothing (fill or kill).
  It never takes by plain takes: its owner coordinates holds at every maker
  it needs and then confirms all or releases all (:mod:`zmqex.core.coordinator`);
  if it cannot, the owner cancels it (``killed``).

Adding a time in force means a member of :class:`Tif`, a row here, the desk
that acts on a new field (if any), and a line in the client protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Tif(str, enum.Enum):
    """Time in force."""

    GTC = "gtc"  # good till cancelled
    IOC = "ioc"  # immediate or cancel
    POST_ONLY = "post_only"  # rests only: never takes
    GTD = "gtd"  # good till a date: expire_at
    FOK = "fok"  # fill or kill: the whole quantity at once, from any number of makers, or nothing


@dataclass(frozen=True, slots=True)
class Rule:
    rests: bool
    takes: bool
    market: Tif | None
    expiry: bool = False
    atomic: bool = False

    @property
    def expires(self) -> bool:
        """What is left open after the first taker pass is cancelled (``expired``); an atomic
        order has no such pass: its coordinator ends it."""
        return not self.rests and not self.atomic


# Final (here and for the hot path's other module constants): compiled with mypyc, a
# Final name is a C static; any other module-level name is a dict look-up at every use.

#: The one table.
RULES: Final[dict[Tif, Rule]] = {
    Tif.GTC: Rule(rests=True, takes=True, market=Tif.IOC),
    Tif.IOC: Rule(rests=False, takes=True, market=Tif.IOC),
    Tif.POST_ONLY: Rule(rests=True, takes=False, market=None),
    Tif.GTD: Rule(rests=True, takes=True, market=None, expiry=True),
    Tif.FOK: Rule(rests=False, takes=True, market=Tif.FOK, atomic=True),
}

#: An order without a price is one of these on the wire: it never rests.  (A market
#: order is given the edge of its price band when placed, so it rarely goes without.)
MARKET: Final = Tif.IOC

#: Per time in force, whether it rests: read on the hot path, where a dict look-up
#: of a bool beats a dataclass attribute after it.
RESTS: Final[dict[Tif, bool]] = {tif: rule.rests for tif, rule in RULES.items()}
TAKES: Final[dict[Tif, bool]] = {tif: rule.takes for tif, rule in RULES.items()}
EXPIRY: Final[dict[Tif, bool]] = {tif: rule.expiry for tif, rule in RULES.items()}
ATOMIC: Final[dict[Tif, bool]] = {tif: rule.atomic for tif, rule in RULES.items()}
