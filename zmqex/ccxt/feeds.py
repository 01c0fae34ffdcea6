"""A node subscription read in the background, for ccxt.pro's ``watch_*`` (zmqex.ccxt.pro).

ccxt.pro's model: a connection's messages are applied to caches as they come,
whether or not anyone is watching, and a ``watch_*`` call waits for the next
one, then reads the cache.  A :class:`Feed` is that for one zmqex stream: its
:class:`zmqex.client.Subscription` (blocking) is polled on a thread of its
own, so its sockets never change threads, and a task on the event loop hands
each update to ``on_update`` and wakes the watchers.  One difference: if
updates came while nobody was waiting, the next call returns at once (ccxt.pro
would wait for yet another message, and a bot whose last updates came between
two calls would not see them until something else changed).

When the stream ends (the node ended it, a message went missing, the node fell
silent) the error, as ccxt's exception, goes to the watchers, or to the next
one: updates were lost, and the caller must know before it subscribes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ccxt.base.errors import ExchangeClosedByUser

from zmqex.ccxt.errors import translated
from zmqex.client import Client, Subscription

log = logging.getLogger(__name__)

#: How long one poll on the feed's thread waits: how late a closed feed's thread finishes.
POLL_S = 0.25


class Feed:
    """One subscription (``stream``, ``depth``) on a connection of its own, read in the background."""

    def __init__(self, connect: Callable[[], Client], stream: str, depth: int | None,
                 on_update: Callable[[Any], None]) -> None:
        self.stream = stream
        self.error: Exception | None = None
        self.reported = False  # whether a watcher has been given ``error``
        self._unread = False  # an update came while nobody was waiting
        self._connect = connect
        self._depth = depth
        self._on_update = on_update
        self._client: Client | None = None
        self._subscription: Subscription | None = None
        self._waiters: list[asyncio.Future[None]] = []
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"zmqex-ccxt-{stream}")
        self._executor: ThreadPoolExecutor | None = executor  # None once closed
        self._task = asyncio.get_running_loop().create_task(self._pump(executor), name=f"zmqex-ccxt-{stream}")

    async def next(self) -> None:
        """Return once an update came that no call has returned for (applied by then): at once if one
        came since the last call returned, else the next.  Raise the stream's error if it ended."""
        if self.error is not None:
            self.reported = True
            raise self.error
        if self._unread:
            self._unread = False
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def close(self) -> None:
        """Stop reading, close the connection (on its thread, after the poll under way), wake the watchers."""
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(executor, self._close_connection)
        executor.shutdown(wait=False)
        if self.error is None:
            self.error = ExchangeClosedByUser(f"zmqex: the {self.stream} feed was closed")
        self._wake(self.error)

    async def _pump(self, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                update = await loop.run_in_executor(executor, self._poll)
                if update is not None:
                    self._on_update(update)
                    self._unread = not self._wake(None)
        except Exception as error:  # the stream's end, as ccxt's exception (or a bug: the watcher sees it too)
            log.info("zmqex %s feed ended: %r", self.stream, error)
            self.error = error
            self._wake(error)

    def _poll(self) -> Any:
        """On the feed's thread: subscribe (the first time), then the next update within POLL_S, or None."""
        with translated("subscribe"):
            if self._subscription is None:
                self._client = self._connect()
                self._subscription = self._client.subscribe(self.stream, self._depth)
            return self._subscription.poll(POLL_S)

    def _close_connection(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._client is not None:
            self._client.close()

    def _wake(self, error: Exception | None) -> bool:
        """Resolve every waiting watcher with ``error``, or with the update; whether there was one."""
        waiters, self._waiters = self._waiters, []
        woken = False
        for waiter in waiters:
            if waiter.done():  # its watcher was cancelled
                continue
            woken = True
            if error is None:
                waiter.set_result(None)
            else:
                self.reported = True
                waiter.set_exception(error)
        return woken
