"""Keys: who may talk to a node, and how events are signed.

One key pair per member node, trader and operator.  It is an Ed25519 signing
key; the CurveZMQ key pair that encrypts and authenticates its connections is
derived from it (libsodium's Ed25519 -> X25519 conversion), so one secret
stands for one party both on the wire and in the events it signs, and a
public certificate cannot name a CURVE key and a signing key of two different
parties: :func:`load_public` checks that they belong together.

Files are pyzmq's certificate format (``zmq.auth.load_certificate`` reads
them): ``NAME.key`` holds the CURVE public key and, as metadata, the Ed25519
verify key (``sign-key``); ``NAME.key_secret`` holds both halves of the CURVE
pair and the Ed25519 seed (``sign-seed``), and is written readable by its
owner only.  All keys are Z85 text, as ZeroMQ writes them.

A node's key directory (``zmqex-node --keys DIR``)::

    DIR/ID.key_secret          this node's own secret (ID is its --id)
    DIR/members/ID.key         every member node, by node id (its own may be there too)
    DIR/traders/NAME.key       traders allowed to use this node, by name
    DIR/operators/NAME.key     operators: may act on every order of this node

:class:`Keyring` is that directory loaded; :meth:`Keyring.load` is called at
start and again on SIGHUP.  :func:`make_network` writes the directories of a
whole local network (the demo, tests and benchmark use it).
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zmq.utils import z85
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from zmqex.core.wire import is_node_id
from zmqex.errors import KeyFileError

#: ZAP domains: a node's ROUTER (members, traders, operators) and its PUB (members only).
ROUTER_DOMAIN = "zmqex"
GOSSIP_DOMAIN = "zmqex-gossip"

#: Prefixes of the ZAP user id a node's authenticator gives each kind of key.
MEMBER, TRADER, OPERATOR = "m:", "t:", "o:"


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A party's public half: its CURVE key (Z85) and its Ed25519 verify key (raw 32 bytes)."""

    curve: bytes
    sign: bytes


class Verifier:
    """Checks ``(origin, data, signature)`` against the members' keys (what ``Replica`` takes as ``verifier``).

    The VerifyKeys are built once: building one costs as much as a verification.
    """

    __slots__ = ("_keys",)

    def __init__(self, members: dict[str, PublicKey]) -> None:
        self._keys = {node: VerifyKey(key.sign) for node, key in members.items()}

    def __call__(self, origin: str, data: bytes, signature: bytes) -> bool:
        """True if ``origin`` is a member and ``signature`` is its Ed25519 signature of ``data``."""
        key = self._keys.get(origin)
        if key is None:
            return False
        try:
            key.verify(data, signature)
            return True
        except (BadSignatureError, ValueError, TypeError):
            return False


@dataclass(frozen=True, slots=True)
class SecretKey:
    """A party's secret: its CURVE pair (Z85) and its Ed25519 signing key."""

    curve_public: bytes
    curve_secret: bytes
    seed: bytes  # Ed25519 seed, 32 bytes

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.curve_public, bytes(SigningKey(self.seed).verify_key))

    def signer(self) -> Signer:
        return Signer(SigningKey(self.seed))


class Signer:
    """Signs with one Ed25519 key; deterministic (same data, same signature), so the core may call it."""

    __slots__ = ("_key",)

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def __call__(self, data: bytes) -> bytes:
        return self._key.sign(data).signature


def new_secret() -> SecretKey:
    return secret_from_seed(SigningKey.generate().encode())


def secret_from_seed(seed: bytes) -> SecretKey:
    """The key pair of a 32-byte Ed25519 seed (the simulator makes deterministic keys with it)."""
    signing = SigningKey(seed)
    curve_secret = z85.encode(bytes(signing.to_curve25519_private_key()))
    curve_public = z85.encode(bytes(signing.verify_key.to_curve25519_public_key()))
    return SecretKey(curve_public, curve_secret, seed)


# --- files -----------------------------------------------------------------------------

_BANNER = "#   ****  Generated on {now} by zmqex-keygen  ****\n#   ZeroMQ CURVE {what} Certificate, with an Ed25519 signing key\n"


def write(directory: str | os.PathLike[str], name: str, secret: SecretKey | None = None) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` in ``directory``; returns both paths."""
    if not is_node_id(name):
        raise KeyFileError(f"key name {name!r} must be 1-32 characters of A-Z a-z 0-9 _ . -")
    secret = secret or new_secret()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now().isoformat(timespec="seconds")
    public_path, secret_path = directory / f"{name}.key", directory / f"{name}.key_secret"
    sign_key = z85.encode(secret.public.sign).decode()
    public_path.write_text(
        _BANNER.format(now=now, what="Public")
        + f'metadata\n    sign-key = "{sign_key}"\ncurve\n    public-key = "{secret.curve_public.decode()}"\n')
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_BANNER.format(now=now, what="**Secret**")
                + f'metadata\n    sign-key = "{sign_key}"\n    sign-seed = "{z85.encode(secret.seed).decode()}"\n'
                + f'curve\n    public-key = "{secret.curve_public.decode()}"\n'
                + f'    secret-key = "{secret.curve_secret.decode()}"\n')
    return public_path, secret_path


def _fields(path: Path) -> dict[str, bytes]:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    out: dict[str, bytes] = {}
    for line in text.splitlines():
        key, eq, value = line.strip().partition(b"=")
        if eq and not key.startswith(b"#"):
            out[key.strip().decode(errors="replace")] = value.strip(b' \t\'"')
    return out


def _z85(fields: dict[str, bytes], name: str, path: Path, size: int) -> bytes:
    value = fields.get(name)
    if value is None:
        raise KeyFileError(f"key file {path} has no {name}")
    try:
        raw = z85.decode(value)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != size:
        raise KeyFileError(f"key file {path}: {name} is not a {size}-byte Z85 key")
    return raw


def load_public(path: str | os.PathLike[str]) -> PublicKey:
    """A public certificate (``NAME.key``, or the public half of a secret one)."""
    path = Path(path)
    fields = _fields(path)
    curve = _z85(fields, "public-key", path, 32)
    sign = _z85(fields, "sign-key", path, 32)
    try:
        derived = bytes(VerifyKey(sign).to_curve25519_public_key())
    except Exception:  # a point not on the curve: nacl raises its own RuntimeError
        derived = b""
    if derived != curve:
        raise KeyFileError(f"key file {path}: its CURVE key and signing key do not belong together")
    return PublicKey(z85.encode(curve), sign)


def load_secret(path: str | os.PathLike[str]) -> SecretKey:
    """A secret certificate (``NAME.key_secret``) as :func:`write` makes it."""
    path = Path(path)
    fields = _fields(path)
    seed = _z85(fields, "sign-seed", path, 32)
    secret = secret_from_seed(seed)
    if z85.encode(_z85(fields, "secret-key", path, 32)) != secret.curve_secret:
        raise KeyFileError(f"key file {path}: its CURVE secret does not come from its signing seed")
    return secret


def _load_dir(directory: Path) -> dict[str, PublicKey]:
    if not directory.is_dir():
        return {}
    keys: dict[str, PublicKey] = {}
    for path in sorted(directory.glob("*.key")):
        name = path.name[:-len(".key")]
        if not is_node_id(name):
            raise KeyFileError(f"key file {path}: the name before .key must be 1-32 characters of A-Z a-z 0-9 _ . -")
        keys[name] = load_public(path)
    return keys


@dataclass(frozen=True)
class Keyring:
    """A node's key directory, loaded: its own secret, and who may connect as what.

    Invariant: one CURVE key names one party: a key listed twice (as two
    members, or as a member and a trader) is refused at load.
    """

    node_id: str
    own: SecretKey
    members: dict[str, PublicKey]  # node id -> key; always includes this node
    traders: dict[str, PublicKey] = field(default_factory=dict)
    operators: dict[str, PublicKey] = field(default_factory=dict)
    principals: dict[bytes, str] = field(default_factory=dict)  # CURVE key (Z85) -> "m:ID" / "t:NAME" / "o:NAME"

    @classmethod
    def load(cls, directory: str | os.PathLike[str], node_id: str) -> Keyring:
        directory = Path(directory)
        own = load_secret(directory / f"{node_id}.key_secret")
        members = _load_dir(directory / "members")
        if node_id in members and members[node_id] != own.public:
            raise KeyFileError(f"{directory}/members/{node_id}.key is not this node's public key")
        members[node_id] = own.public
        traders = _load_dir(directory / "traders")
        operators = _load_dir(directory / "operators")
        principals: dict[bytes, str] = {}
        for prefix, keys in ((MEMBER, members), (TRADER, traders), (OPERATOR, operators)):
            for name, key in keys.items():
                other = principals.setdefault(key.curve, prefix + name)
                if other != prefix + name:
                    raise KeyFileError(f"one key is listed as both {other} and {prefix + name} in {directory}")
        return cls(node_id, own, members, traders, operators, principals)

    def verify(self, origin: str, data: bytes, signature: bytes) -> bool:
        """True if ``origin`` is a member and ``signature`` is its signature of ``data``."""
        return self._verifier(origin, data, signature)

    @functools.cached_property
    def _verifier(self) -> Verifier:
        return Verifier(self.members)


def make_network(directory: str | os.PathLike[str], nodes: Sequence[str], traders: Sequence[str] = (),
                 operators: Sequence[str] = ()) -> Path:
    """Write key directories for a whole network: ``DIR/ID/`` per node, ``DIR/NAME/`` per trader.

    Every node knows every node, trader and operator; each trader's directory
    holds its own secret and every node's public key, so it can connect anywhere.
    """
    directory = Path(directory)
    public: dict[str, dict[str, Path]] = {"members": {}, "traders": {}, "operators": {}}
    for kind, names in (("members", nodes), ("traders", traders), ("operators", operators)):
        for name in names:
            public[kind][name], _ = write(directory / name, name)
    for node in nodes:
        for kind, paths in public.items():
            for name, path in paths.items():
                if kind == "members" and name == node:
                    continue
                (directory / node / kind).mkdir(exist_ok=True)
                (directory / node / kind / f"{name}.key").write_bytes(path.read_bytes())
    for party in (*traders, *operators):
        (directory / party / "members").mkdir(exist_ok=True)
        for name, path in public["members"].items():
            (directory / party / "members" / f"{name}.key").write_bytes(path.read_bytes())
    return directory


def keygen_main(argv: list[str] | None = None) -> int:
    """``zmqex-keygen DIR NAME``: write NAME.key and NAME.key_secret in DIR.

    ``zmqex-keygen DIR --nodes a b c --traders alice bob``: a whole network's key
    directories at once (:func:`make_network`), for a test network on one machine.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="zmqex-keygen",
        description="Write a CurveZMQ certificate pair with an Ed25519 signing key: DIR/NAME.key (public, "
                    "give it to the nodes that should admit NAME) and DIR/NAME.key_secret (keep it). "
                    "With --nodes, write every key directory of a network on one machine instead.")
    parser.add_argument("dir", help="directory to write into (created if missing)")
    parser.add_argument("name", nargs="?", help="node id, trader or operator name: 1-32 of A-Z a-z 0-9 _ . -")
    parser.add_argument("--nodes", nargs="+", metavar="ID", help="a network: DIR/ID/ for each node ...")
    parser.add_argument("--traders", nargs="*", default=[], metavar="NAME", help="... and DIR/NAME/ per trader")
    parser.add_argument("--operators", nargs="*", default=[], metavar="NAME", help="... and per operator")
    args = parser.parse_args(argv)
    if (args.name is None) == (args.nodes is None):
        parser.error("give either NAME (one key pair) or --nodes (a network's key directories)")
    try:
        if args.nodes:
            if Path(args.dir).exists() and any(Path(args.dir).iterdir()):
                parser.error(f"{args.dir} is not empty; refusing to overwrite keys")
            make_network(args.dir, args.nodes, args.traders, args.operators)
            print(f"wrote the keys of nodes {', '.join(args.nodes)}"
                  + (f", traders {', '.join(args.traders)}" if args.traders else "")
                  + (f", operators {', '.join(args.operators)}" if args.operators else "")
                  + f" under {args.dir}/: run node ID with --keys {args.dir}/ID")
            return 0
        secret_path = Path(args.dir) / f"{args.name}.key_secret"
        if secret_path.exists():
            parser.error(f"{secret_path} exists; refusing to overwrite a secret key")
        public_path, secret_path = write(args.dir, args.name)
    except KeyFileError as exc:
        parser.error(str(exc))
    print(f"wrote {public_path} (public) and {secret_path} (secret)")
    return 0
