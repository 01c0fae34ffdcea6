"""msgpack itself, typed: the benchmark's comparators and its clients pack with it directly.

The comparators measure plain msgpack, so they cannot go through
:mod:`zmqex.core.wire`.  msgpack ships no type hints; this is the one module of
the benchmark that imports it, and the rest is checked against the signatures
below (the functions themselves, not wrappers: the comparators time them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack  # untyped (pyproject.toml's mypy overrides): typed by the names below

packb: Callable[[Any], bytes] = msgpack.packb
unpackb: Callable[[bytes], Any] = msgpack.unpackb
version: tuple[int, ...] = msgpack.version
