"""The one exception hierarchy of zmqex.

Every error the package raises on purpose is a :class:`ZmqexError`.  Each child
names one kind of failure and carries a message a trader or operator can act on;
``code`` is the stable, machine-readable name used in protocol error replies.
"""

from __future__ import annotations


class ZmqexError(Exception):
    """Base of every deliberate zmqex error."""

    code = "error"


class InvalidAmount(ZmqexError, ValueError):
    """A price or quantity is not an exact, positive, in-range decimal."""

    code = "invalid_amount"


class InvalidRequest(ZmqexError, ValueError):
    """A request is well-formed on the wire but asks for something impossible."""

    code = "invalid_request"


class DecodeError(ZmqexError, ValueError):
    """Bytes on the wire are not a valid message or event of this version."""

    code = "malformed"


class UnknownOrder(ZmqexError, KeyError):
    """An order id that this replica has never seen."""

    code = "unknown_order"

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown order"


class NotOwner(ZmqexError):
    """Only the node that placed an order may cancel it or grant fills on it."""

    code = "not_owner"


class OrderClosed(ZmqexError):
    """The order is already filled, cancelled or expired."""

    code = "order_closed"


class Rejected(ZmqexError):
    """The order was refused as a whole (for example a post-only that would cross)."""

    code = "rejected"


class InvariantViolation(ZmqexError, AssertionError):
    """A replicated event would break an invariant (over-fill, forged owner).

    Raised by the core on events no correct peer can produce; the node logs
    and drops them, and the test suite treats them as failures.
    """

    code = "invariant"


class Forged(ZmqexError):
    """A message or event that its claimed author did not make: no member key, no valid signature.

    Raised by the core on input from a peer; the node logs and drops it, changing nothing.
    """

    code = "forged"


class Timeout(ZmqexError, TimeoutError):
    """A node did not answer in time."""

    code = "timeout"


class RemoteError(ZmqexError):
    """An error reply from a node whose code has no class of its own.

    For example ``busy``, ``unknown_op`` or ``unsupported_version``; ``code`` is
    the node's code as it sent it.
    """

    code = "remote"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Busy(ZmqexError):
    """The node has too many client requests in flight; try again shortly."""

    code = "busy"


class RateLimited(ZmqexError):
    """A trader sent more requests per second than the node allows; slow down."""

    code = "rate_limited"


class LimitReached(ZmqexError):
    """A trader (or the node) has as many open orders as allowed; cancel some first."""

    code = "limit"
