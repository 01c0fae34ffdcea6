"""``zmqex.ccxt.async_support.zmqex``: the async exchange under ccxt's other name for it (``ccxt.async_support``).

The same class as :class:`zmqex.ccxt.pro.zmqex`, as a ccxt.pro exchange is its
async_support exchange with ``watch_*``: code that imports either runs unchanged.
"""

from __future__ import annotations

from zmqex.ccxt.pro import zmqex

__all__ = ["zmqex"]
