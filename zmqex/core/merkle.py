"""A Merkle tree over the events of one envelope, so one signature vouches for each.

An envelope's origin signs the root of a tree whose leaves are digests of its
events, each encoded alone.  Any one event can then travel without its siblings
(in a snapshot, an audit, a take) with the path from its leaf to the root:
``ceil(log2 n)`` digests.  Leaves and inner nodes are hashed under different
prefixes, so no inner node can pass for a leaf.

The tree: each level pairs neighbours left to right; an odd last node moves up
unchanged.  Costs: :func:`levels` O(n) digests; :func:`path` O(log n);
:func:`root_from` O(log n) digests.
"""

from __future__ import annotations

import hashlib
from typing import Final

DIGEST_BYTES: Final = 32
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"


def leaf(data: bytes) -> bytes:
    return hashlib.blake2b(_LEAF + data, digest_size=DIGEST_BYTES).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.blake2b(_NODE + left + right, digest_size=DIGEST_BYTES).digest()


def levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree over ``leaves`` (at least one), leaves first, the root last."""
    out = [leaves]
    while len(out[-1]) > 1:
        below = out[-1]
        out.append([_node(below[i], below[i + 1]) if i + 1 < len(below) else below[i]
                    for i in range(0, len(below), 2)])
    return out


def path(tree: list[list[bytes]], index: int) -> list[bytes]:
    """The siblings on the way from leaf ``index`` to the root."""
    out = []
    for level in tree[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            out.append(level[sibling])
        index //= 2
    return out


def root_from(digest: bytes, index: int, width: int, siblings: list[bytes]) -> bytes | None:
    """The root that leaf ``digest`` at ``index`` of ``width`` leaves reaches by ``siblings``;
    None if the path does not fit a tree of that width."""
    used = 0
    while width > 1:
        if index ^ 1 < width:
            if used == len(siblings):
                return None
            sibling = siblings[used]
            used += 1
            digest = _node(digest, sibling) if index % 2 == 0 else _node(sibling, digest)
        index //= 2
        width = (width + 1) // 2
    return digest if used == len(siblings) else None


def depth(width: int) -> int:
    """Most siblings a path in a tree of ``width`` leaves has."""
    n = 0
    while width > 1:
        width = (width + 1) // 2
        n += 1
    return n
