"""The one exception hierarchy of zmqex.

Every error the package raises on purpose is a :class:`ZmqexError`, in one of
three families that say whose fault it is, because each is handled differently:

* :class:`LocalError`: what this process was asked to do, by its caller (a
  trader's request, an operator's command line) or its environment (its store,
  its key files), cannot be done.  The caller gets the error; nothing changed.
* :class:`RemoteError`: another party sent what we cannot accept (malformed
  bytes, a forged signature, an event no honest peer makes) or did not answer.
  A node logs it and drops the input, changing nothing, and keeps running:
  hostile input is always one of these, never an assertion.
* :class:`InvariantViolation`: our own state broke one of its invariants, a
  bug in zmqex.  Only the ``_check()`` methods raise it; it is an
  ``AssertionError``, and nothing catches it to carry on.

Each class names one kind of failure and carries a message a trader or
operator can act on; ``code`` is the stable, machine-readable name used in
protocol error replies (:mod:`zmqex.protocol`).
"""

from __future__ import annotations


class ZmqexError(Exception):
    """Base of every deliberate zmqex error."""

    code = "error"


class LocalError(ZmqexError):
    """A request to this process, or its environment, cannot be served; nothing changed."""


class RemoteError(ZmqexError):
    """Another party sent what we cannot accept, or did not answer; nothing changed here."""


class InvariantViolation(ZmqexError, AssertionError):
    """Our own state broke an invariant: a bug in zmqex, found by a ``_check()``.

    Never raised for anything a peer or a client sent (that is a
    :class:`RemoteError` or a :class:`LocalError`); the test suite treats it as
    a failure, and a node does not carry on past it.
    """

    code = "bug"


class InvalidAmount(LocalError, ValueError):
    """A price or quantity is not an exact, positive, in-range decimal."""

    code = "invalid_amount"


class InvalidRequest(LocalError, ValueError):
    """A request is well-formed on the wire but asks for something impossible."""

    code = "invalid_request"


class DecodeError(RemoteError, ValueError):
    """Bytes on the wire are not a valid message or event of this version."""

    code = "malformed"


class UnknownOrder(LocalError, KeyError):
    """An order id that this replica has never seen."""

    code = "unknown_order"

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown order"


class NotOwner(LocalError):
    """Only the node that placed an order may cancel it or grant fills on it."""

    code = "not_owner"


class OrderClosed(LocalError):
    """The order is already filled, cancelled or expired."""

    code = "order_closed"


class Rejected(LocalError):
    """The order was refused as a whole (for example a post-only that would cross)."""

    code = "rejected"


class InsufficientBalance(Rejected):
    """The order, fill or withdrawal would spend more than the trader has available (funded minus reserved)."""

    code = "insufficient_balance"


class CreditRefused(Rejected):
    """A trade with a counterparty desk would go past the credit one of the two desks grants the other."""

    code = "credit"


class BadEvent(RemoteError):
    """A replicated event that no honest peer makes: an over-fill, a cancel by another's node, an id reused.

    Raised by the ledger before it changes anything; the node logs and drops the
    event (and the message that carried it).
    """

    code = "bad_event"


class Forged(RemoteError):
    """A message or event that its claimed author did not make: no member key, no valid signature.

    Raised by the core on input from a peer; the node logs and drops it, changing nothing.
    """

    code = "forged"


class Timeout(RemoteError, TimeoutError):
    """A node did not answer in time."""

    code = "timeout"


class ErrorReply(RemoteError):
    """An error reply from a node whose code has no class of its own.

    For example ``busy``, ``unknown_op`` or ``unsupported_version``; ``code`` is
    the node's code as it sent it.
    """

    code = "error_reply"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Busy(LocalError):
    """The node has too many client requests in flight; try again shortly."""

    code = "busy"


class RateLimited(LocalError):
    """A trader sent more requests per second than the node allows; slow down."""

    code = "rate_limited"


class LimitReached(LocalError):
    """A trader (or the node) has as many open orders as allowed; cancel some first."""

    code = "limit"


class StoreError(LocalError):
    """The store cannot be opened or read: corrupt, from a newer version, or another node's."""

    code = "store"


class StoreLocked(StoreError):
    """Another running process has the store open: two nodes started on one data directory."""

    code = "store_locked"


class StoreUnavailable(StoreError):
    """The node cannot write its store now (a full disk, an I/O error): it takes no new work until it can.

    Raised by the store when a commit fails (rolled back whole: nothing of it was kept),
    and answered to clients for what would need a write meanwhile; reads still work, and
    the node resumes by itself once a commit succeeds again.  Try again later.
    """

    code = "store_unavailable"


class KeyFileError(LocalError):
    """A key file or key directory is missing, malformed, or inconsistent."""

    code = "keys"


class StreamEnded(RemoteError):
    """A subscription ended without the client asking: the node ended it, or the client saw it break.

    ``code`` says why: a node's end code (``slow_reader``, ``stopping``, ``revoked``),
    or the client's own finding (``gap``: a message is missing; ``silent``: no message,
    not even a heartbeat, for too long).  Subscribe again to carry on.
    """

    code = "stream_ended"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
