"""zmqex's errors as ccxt's unified exceptions: one table, and the one place that raises them.

A zmqex error carries a stable ``code`` (the node's wire code, or the Python
client's own: ``timeout``, a stream's end); :data:`ERRORS` gives the ccxt class
for each.  One code reads differently on an order op than on any other:
``invalid_request`` on ``place`` is a bad order (a tif this node does not know,
post-only without a price), on ``cancel`` a bad request.  So each row has two
columns.  A code not in the table (a later version's) raises ``ExchangeError``.

``insufficient_balance`` is ``InsufficientFunds``: an order (or a withdrawal)
that would spend more than a funded trader has available.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ccxt.base.errors import (AuthenticationError, BadRequest, BadResponse, BaseError, ExchangeError,
                              ExchangeNotAvailable, InvalidOrder, NetworkError, NotSupported, OperationRejected,
                              OrderNotFound, PermissionDenied, RateLimitExceeded, RequestTimeout)
from ccxt.base.errors import InsufficientFunds

from zmqex.errors import ZmqexError

#: The ops that place or change an order: their bad arguments are a bad order.
ORDER_OPS = frozenset({"place", "amend"})

#: code -> (ccxt class on an order op, ccxt class on any other op).
ERRORS: dict[str, tuple[type[BaseError], type[BaseError]]] = {
    # the node's error replies (docs/protocol.md, "Replies")
    "malformed": (BadResponse, BadResponse),  # a reply we cannot read (we never send a malformed request)
    "unsupported_version": (NotSupported, NotSupported),
    "unknown_op": (NotSupported, NotSupported),  # an older node
    "invalid_amount": (InvalidOrder, BadRequest),  # off tick or lot, zero, too large
    "invalid_request": (InvalidOrder, BadRequest),  # on place: a tif the node lacks (fok before it lands), ...
    "unknown_order": (OrderNotFound, OrderNotFound),
    "not_owner": (PermissionDenied, PermissionDenied),  # another trader's order, or a trader not ours (keys)
    "order_closed": (OrderNotFound, OrderNotFound),  # as ccxt exchanges answer a cancel of a filled order
    "rejected": (InvalidOrder, InvalidOrder),  # post-only that would cross, market order into an empty book
    "busy": (ExchangeNotAvailable, ExchangeNotAvailable),  # try again: a NetworkError, which bots retry
    "store_unavailable": (ExchangeNotAvailable, ExchangeNotAvailable),  # its disk is full: try again later
    "rate_limited": (RateLimitExceeded, RateLimitExceeded),
    "limit": (OperationRejected, OperationRejected),  # as many open orders / subscriptions as allowed
    "insufficient_balance": (InsufficientFunds, InsufficientFunds),  # more than the funded trader has available
    "credit": (InvalidOrder, OperationRejected),  # a market order with only makers of desks beyond credit
    # the Python client's own
    "timeout": (RequestTimeout, RequestTimeout),  # a create_order that timed out may still have placed
    "keys": (AuthenticationError, AuthenticationError),  # key files missing, unreadable or half given
    # why a stream ended (watch_*): the next watch_* call subscribes again
    "slow_reader": (NetworkError, NetworkError),
    "gap": (NetworkError, NetworkError),
    "silent": (NetworkError, NetworkError),
    "stopping": (ExchangeNotAvailable, ExchangeNotAvailable),
    "revoked": (AuthenticationError, AuthenticationError),
}


def unified(error: ZmqexError, op: str) -> BaseError:
    """The ccxt exception for ``error``, raised by ``op`` (a protocol op, or ``subscribe``)."""
    on_order, otherwise = ERRORS.get(error.code, (ExchangeError, ExchangeError))
    cls = on_order if op in ORDER_OPS else otherwise
    return cls(f"zmqex {op}: {error} ({error.code})")


@contextmanager
def translated(op: str) -> Iterator[None]:
    """Raise any zmqex error of the block as its ccxt exception (the zmqex one as its cause)."""
    try:
        yield
    except ZmqexError as error:
        raise unified(error, op) from error
