"""Raw ZeroMQ sockets for tests that speak to a node by hand (hostile frames, rogue members)."""

from __future__ import annotations

from typing import Any

import zmq

from zmqex.keys import SecretKey


class Sockets:
    """Every socket a test makes, all closed (and their context ended) by ``close``.

    ``socket(kind, own=..., server=...)`` is a CURVE client with key pair ``own`` that
    accepts only the server key ``server`` (Z85); other options are socket options by
    name (``ROUTING_ID=b"x"``), set before it connects to ``connect``.
    """

    def __init__(self, endpoint: str | None = None) -> None:
        self.context: zmq.Context[Any] = zmq.Context()
        self.endpoint = endpoint
        self.made: list[zmq.Socket[Any]] = []

    def socket(self, kind: int, *, own: SecretKey | None = None, server: bytes | None = None,
               connect: str | None = None, **options: Any) -> zmq.Socket[Any]:
        sock = self.context.socket(kind)
        self.made.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        if own is not None and server is not None:
            sock.setsockopt(zmq.CURVE_SERVERKEY, server)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, own.curve_public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, own.curve_secret)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name), value)
        if connect is not None:
            sock.connect(connect)
        return sock

    def dealer(self, routing_id: bytes | None = None, **options: Any) -> zmq.Socket[Any]:
        """A DEALER connected to ``endpoint``; a send never blocks longer than 5 s."""
        if routing_id is not None:
            options["ROUTING_ID"] = routing_id
        return self.socket(zmq.DEALER, connect=self.endpoint, SNDTIMEO=5000, **options)

    def close(self) -> None:
        for sock in self.made:
            sock.close(0)
        self.context.term()
