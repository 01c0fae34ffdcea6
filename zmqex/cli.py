"""Command lines: ``zmqex-node``.

A node starts in one of three ways: from its own store (it ran before); joining
a mesh (``--join``), with an empty store; or founding a new mesh
(``--new-mesh``), with an empty store.  An empty store and neither flag is
refused (exit 2): it is a brand-new node nobody told what to do, or a node
that lost its store, and one that lost its store must not found a mesh again,
since it would hand out the order ids it handed out before.  So ``--new-mesh``
is for a founder's very first start only, and a store that belongs to a mesh
refuses it too (drop the flag after the first start; as etcd's
``--initial-cluster-state new``).  An ``--ephemeral`` node has an empty store
at every start, so it needs one of the two flags every time.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys

from zmqex.core.replica import Config
from zmqex.errors import KeyFileError, StoreError, StoreLocked
from zmqex.core.wire import is_node_id
from zmqex.node import Node
from zmqex.store import MemoryStore, SqliteStore, default_data_dir


EX_USAGE = 2  # as argparse: the command line does not say what to do
EX_SOFTWARE = 70  # sysexits.h: the node stopped on an internal error (a supervisor restarts it)
#: sysexits.h EX_CONFIG: another live process is this node (its id in the mesh, or its data directory).
#: Restarting will not help until that one stops (systemd: RestartPreventExitStatus=78).
EX_DUPLICATE = 78


def node_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zmqex-node", description="Run one zmqex node.")
    parser.add_argument("--id", required=True, help="this node's id: 1-32 of A-Z a-z 0-9 _ . -")
    parser.add_argument("--port", type=int, required=True, help="port for clients and peers (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind and announce (default 127.0.0.1)")
    parser.add_argument("--join", action="append", default=[], metavar="[ID@]HOST:PORT",
                        help="a peer to join; repeat for several (with --keys: ID@HOST:PORT, ID its node id)")
    parser.add_argument("--new-mesh", action="store_true",
                        help="found a new mesh: only for a founder's first start, with an empty store (without "
                             "it, an empty store needs --join: a node that lost its store must not found a mesh "
                             "again, it would reuse its order ids)")
    parser.add_argument("--keys", metavar="DIR",
                        help="key directory: DIR/ID.key_secret and DIR/members|traders|operators/*.key "
                             "(see zmqex-keygen); CURVE on every socket; reloaded on SIGHUP")
    parser.add_argument("--insecure", action="store_true",
                        help="without --keys, allow a --host other than loopback (anyone who reaches the "
                             "port can then trade, read the book and join)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the node keeps its store (default: $XDG_DATA_HOME/zmqex/ID)")
    parser.add_argument("--ephemeral", action="store_true",
                        help="keep nothing on disk: a restart forgets everything (demos, tests)")
    parser.add_argument("--sync", choices=["full", "normal"], default="full",
                        help="full: fsync every commit that backs a promise (survives power loss); "
                             "normal: survives kill -9")
    parser.add_argument("--disclose-desks", action="store_true",
                        help="allow both desks' names on the public reports of this desk's private trades "
                             "(shown only if the other desk allows it too)")
    parser.add_argument("--compact-after", type=int, default=Config().compact_after, metavar="N",
                        help="checkpoint once N events are known to every member (default %(default)s)")
    parser.add_argument("--require-funding", action="store_true",
                        help="a trader an operator never funded (op fund) may not place orders here")
    parser.add_argument("--drop-gossip", type=int, default=0, metavar="N",
                        help="testing: drop every Nth gossip message received, to exercise repair")
    parser.add_argument("--metrics", metavar="HOST:PORT", type=_host_port,
                        help="serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (PORT 0: any free "
                             "port, logged); no authentication: bind where only the monitoring reaches")
    parser.add_argument("--profile", metavar="FILE", help="run under cProfile and write its stats to FILE at exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every event and message problem")
    args = parser.parse_args(argv)
    if not is_node_id(args.id):
        parser.error(f"--id {args.id!r} must be 1-32 characters of A-Z a-z 0-9 _ . -")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if args.compact_after < 1:
        parser.error("--compact-after must be at least 1")
    if args.keys is None and not _is_loopback(args.host) and not args.insecure:
        parser.error(f"--host {args.host} is not loopback: give --keys DIR (or --insecure to run unauthenticated)")
    if args.keys is not None:
        bad = [j for j in args.join if "@" not in j]
        if bad:
            parser.error(f"with --keys, join as ID@HOST:PORT (the node id picks the key to expect): {bad[0]}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s {args.id} %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    if args.ephemeral and args.data_dir:
        parser.error("--ephemeral keeps nothing on disk; it cannot go with --data-dir")
    if args.new_mesh and args.join:
        parser.error("--new-mesh founds a mesh of its own; it cannot go with --join")
    if args.keys is None and args.insecure and not _is_loopback(args.host):
        logging.getLogger("zmqex").warning(
            "running WITHOUT KEYS on %s: anyone who reaches this port can trade, read the book and join", args.host)
    store: MemoryStore | SqliteStore
    try:
        if args.ephemeral:
            store = MemoryStore()
        else:
            store = SqliteStore(args.data_dir or default_data_dir(args.id), args.id, synchronous=args.sync.upper())
        refusal = _how_to_start(args, store)
        if refusal is not None:
            store.close()
            print(f"zmqex-node: {refusal}", file=sys.stderr)
            return EX_USAGE
        node = Node(args.id, host=args.host, port=args.port, join=args.join, store=store,
                    config=Config(compact_after=args.compact_after, require_funding=args.require_funding,
                                  disclose_desks=args.disclose_desks),
                    keys_dir=args.keys,
                    drop_gossip=args.drop_gossip)
    except StoreLocked as exc:
        print(f"zmqex-node: {exc}", file=sys.stderr)
        return EX_DUPLICATE
    except (StoreError, KeyFileError) as exc:
        print(f"zmqex-node: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. the port is taken: say so, no traceback
        print(f"zmqex-node: cannot start {args.id}: {exc}", file=sys.stderr)
        return 1
    exporter = None
    if args.metrics:
        from zmqex import metrics  # here: a node without --metrics does not load prometheus_client
        from zmqex.probe import Probe

        node.probe = Probe(node)
        try:
            exporter = metrics.Exporter(node.probe, *args.metrics)
        except OSError as exc:
            node.close()
            print(f"zmqex-node: cannot serve metrics at {args.metrics[0]}:{args.metrics[1]}: {exc}", file=sys.stderr)
            return 1
    signal.signal(signal.SIGINT, lambda *_: node.stop())
    signal.signal(signal.SIGTERM, lambda *_: node.stop())
    signal.signal(signal.SIGHUP, lambda *_: node.request_reload())
    try:
        if args.profile:
            import cProfile

            cProfile.runctx("node.run()", globals(), {"node": node}, args.profile)
        else:
            node.run()
    except Exception:  # node.run logged it with its traceback, and why it stopped
        return EX_SOFTWARE
    finally:
        if exporter is not None:
            exporter.close()
    return EX_DUPLICATE if node.duplicate else 0  # "": a serving node told so carries on, and stops as asked


def _how_to_start(args: argparse.Namespace, store: MemoryStore | SqliteStore) -> str | None:
    """Why the node must not start as the command line says (see the module docstring), or None;
    a store that joins or founds a mesh now is marked as belonging to one, for good."""
    if store.has_history():
        if args.new_mesh:
            return (f"node {args.id}'s store already belongs to a mesh: --new-mesh is only for a founder's "
                    "first start; drop it")
        return None
    if not args.join and not args.new_mesh:
        return (f"node {args.id} has an empty store and nothing to join: give --join HOST:PORT to join a mesh "
                "(also to rejoin after losing its store), or --new-mesh to found a new one")
    store.mark_in_mesh("founded" if args.new_mesh else "joined")
    return None


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for an IPv6 address) -> (host, port), for argparse."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (PORT 0..65535)")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(node_main())
