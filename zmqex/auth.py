"""CurveZMQ on a node's sockets, and ZAP deciding who may connect as what.

Every socket of a keyed node speaks CURVE: its ROUTER and PUB as servers
with the node's own key pair, every DEALER and SUB towards a peer as a client
that insists on that peer's public key (so a link reaches the member it names
or nobody).  Which client keys may connect is decided by ZAP, in pyzmq's
authenticator thread, from the node's :class:`~zmqex.keys.Keyring`:

* the ROUTER (domain ``zmqex``) admits members, traders and operators;
* the PUB (domain ``zmqex-gossip``) admits members only: nobody else reads the book.

The authenticator names each connection by its key (the ZAP user id:
``m:ID``, ``t:NAME`` or ``o:NAME``) and the node reads that name from every
message it receives (``frame.get("User-Id")``), never from what a message or
a routing id claims.  :meth:`Authenticator.reload` swaps the keyring in one
assignment (SIGHUP): new connections see the new lists at once, and the node
checks the name of every message against the current keyring, so a removed
key is refused on the connections it already has too.
"""

from __future__ import annotations

import logging
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from zmqex import keys
from zmqex.keys import Keyring, PublicKey

log = logging.getLogger(__name__)


class Authenticator(ThreadAuthenticator):
    """pyzmq's ZAP handler thread, answering from a keyring that may be replaced at any time."""

    def __init__(self, context: zmq.Context[Any], keyring: Keyring) -> None:
        super().__init__(context, log=logging.getLogger(__name__ + ".zap"))
        self.keyring = keyring
        self.start()
        for domain in (keys.ROUTER_DOMAIN, keys.GOSSIP_DOMAIN):
            self.configure_curve_callback(domain, credentials_provider=self)

    def reload(self, keyring: Keyring) -> None:
        self.keyring = keyring  # one assignment: the ZAP thread sees the old or the new keyring, whole

    # The two hooks pyzmq's authenticator calls, in its own thread.

    def callback(self, domain: str, key: bytes) -> bool:
        principal = self.keyring.principals.get(key)
        if principal is None:
            log.info("refused a connection with an unknown key %s (%s)", key.decode(errors="replace")[:12], domain)
            return False
        if domain == keys.GOSSIP_DOMAIN and not principal.startswith(keys.MEMBER):
            log.info("refused %s on the gossip socket: members only", principal)
            return False
        return True

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.keyring.principals.get(z85.encode(client_public_key), "")


def serve(sock: zmq.Socket[Any], own: keys.SecretKey, domain: str) -> None:
    """Make ``sock`` (before it binds) a CURVE server whose clients ZAP checks in ``domain``."""
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, own.curve_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, own.curve_secret)


def connect_to(sock: zmq.Socket[Any], own: keys.SecretKey, server: PublicKey) -> None:
    """Make ``sock`` (before it connects) a CURVE client that talks only to ``server``."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, server.curve)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, own.curve_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, own.curve_secret)
