"""msgpack framing and the strict field checks every decoder shares.

Encoding is canonical: the same value always packs to the same bytes (lists,
not maps, for records; maps only with sorted keys), so an event has one byte
form on every node.  Decoding trusts nothing: every check raises
:class:`~zmqex.errors.DecodeError` naming the field at fault.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgpack

from zmqex.errors import DecodeError

#: Version of the peer protocol; bumped on any change.
VERSION = 5  # 5: envelopes (zmqex.core.envelope)

#: Version of the event encoding, apart: stores keep events, and an event alone is
#: still encoded as under protocol 4 (an envelope is a new form beside it).
EVENT_VERSION = 4  # 4: the cancel reason credit (zmqex.core.credit)

#: Largest frame a node accepts (also set as ZMQ_MAXMSGSIZE on its sockets).
MAX_FRAME = 4 * 1024 * 1024

#: Upper bound of any integer on the wire: larger values are malformed, not big.
MAX_INT = 2**63 - 1

_NODE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,32}\Z")

# Node ids already matched: every event names a few of them, and a set look-up
# is far cheaper than the regex.  Bounded, so a hostile peer naming endless
# ids only costs us the regex again, never memory.
_known_ids: Final[set[str]] = set()  # Final: see core/tif.py
_KNOWN_IDS_MAX: Final = 4096

_packer_options = {"use_bin_type": True}


def pack(obj: Any) -> bytes:
    """Pack ``obj`` with msgpack (str as str, bytes as bin)."""
    data: bytes = msgpack.packb(obj, **_packer_options)
    return data


def unpack(data: Any, max_size: int = MAX_FRAME) -> Any:
    """Unpack one complete msgpack value, refusing anything malformed or huge.

    ``data: Any``, checked here: compiled with mypyc, a ``bytes`` parameter would
    raise TypeError for anything else before this could raise DecodeError.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"frame of {len(data)} bytes is over the limit of {max_size}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
        )
    except Exception as exc:  # msgpack documents that "other exceptions can be raised"
        raise DecodeError(f"not a valid msgpack frame: {exc.__class__.__name__}") from None


def need_list(value: Any, what: str, length: int | None = None) -> list[Any]:
    if type(value) is not list:
        raise DecodeError(f"{what} must be an array, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what} must have {length} elements, got {len(value)}")
    return value


def need_int(value: Any, what: str, lo: int = 0, hi: int = MAX_INT) -> int:
    if type(value) is not int:
        raise DecodeError(f"{what} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise DecodeError(f"{what} {value} is out of range {lo}..{hi}")
    return value


def need_str(value: Any, what: str, max_len: int = 128) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what} must be a string, got {type(value).__name__}")
    if not value or len(value) > max_len:
        raise DecodeError(f"{what} must be 1..{max_len} characters")
    return value


def brief(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about untrusted values.

    A list or map is named by its type, never repr'd: msgpack nests up to 1024 deep, and
    repr() of that raises RecursionError (a huge one would cost its whole size first).
    """
    if type(value) in (str, bytes):
        return repr(value[:limit])[:limit]
    if type(value) in (int, float, bool, type(None)):
        return repr(value)[:limit]
    return f"<{type(value).__name__}>"


def need_node_id(value: Any, what: str = "node id") -> str:
    if not is_node_id(value):
        raise DecodeError(f"{what} must be 1-32 characters of A-Z a-z 0-9 _ . -, got {brief(value, 40)}")
    node: str = value
    return node


def is_node_id(value: object) -> bool:
    if type(value) is not str:
        return False
    if value in _known_ids:
        return True
    if _NODE_ID.match(value) is None:
        return False
    if len(_known_ids) < _KNOWN_IDS_MAX:
        _known_ids.add(value)
    return True
