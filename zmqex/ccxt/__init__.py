"""ccxt's unified API on a zmqex node: code written against ccxt runs on zmqex with only its constructor changed.

    pip install 'zmqex[ccxt]'

    from zmqex.ccxt import zmqex                   # blocking, like ccxt.binance
    from zmqex.ccxt.pro import zmqex as zmqex_pro  # async, with watch_*, like ccxt.pro.binance

    exchange = zmqex({"node": "127.0.0.1:7001", "trader": "alice"})

The exchange subclasses ccxt's own ``Exchange``: ``describe()``, ``has``,
``markets``, the precision helpers and the unified structures are ccxt's. Its
one market is ``BTC/USD`` (tick 0.01 USD, lot 0.00000001 BTC).  Config:
``node`` (``HOST:PORT``), ``trader`` (whom the orders belong to), ``timeout``
(ccxt's, in ms), and for a keyed node ``secret`` (the path of the trader's
``NAME.key_secret``) and ``nodeKey`` (the node's public ``ID.key``).

Numbers: amounts go in as ``str``, ``Decimal``, ``int`` or ``float`` and must
sit on the tick and lot (InvalidOrder otherwise; never rounded).  They come
back as ccxt's number type (``float`` by default), each converted from the
node's exact decimal string or from exact integer arithmetic on those strings;
``info`` holds the node's own strings.  ``exchange.number = str`` makes orders,
trades and balances exact strings (ccxt's books are always floats).

Errors are ccxt's unified exceptions, from one table: :data:`zmqex.ccxt.errors.ERRORS`.

``fetch_balance`` is the trader's balance at its node (``free``: available,
``used``: what its orders reserve, ``total``) once an operator funded it; for a
trader never funded, only ``used`` (what its open orders commit), ``free`` and
``total`` None.
"""

from __future__ import annotations

try:
    import ccxt  # noqa: F401  # the extra: say how to get it, rather than fail deep inside
except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
    raise ImportError("zmqex.ccxt needs ccxt: pip install 'zmqex[ccxt]'") from None

from zmqex.ccxt.exchange import zmqex

__all__ = ["zmqex"]
