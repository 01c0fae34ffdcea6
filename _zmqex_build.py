"""The build backend: setuptools' own, plus mypy as a build requirement when ``ZMQEX_COMPILE`` asks for mypyc.

``pyproject.toml`` names this module (``backend-path = ["."]``) so that the
``[build-system] requires`` stay light: a plain ``pip install .`` or ``pip install -e .``
needs setuptools and wheel only.  With ``ZMQEX_COMPILE=1`` a wheel build also asks
for :data:`MYPYC_REQUIREMENT` (which ships mypyc), and ``setup.py`` compiles
:data:`COMPILED_MODULES`.  An editable build never compiles (see setup.py), so it
never needs mypy either.

Which modules: every module of ``zmqex/core`` that runs (the whole hot path: a place
walks replica, taker, maker, takes, ledger, book, clock, causal, log, events, outputs,
tif and money; compiling only the leaves gains nothing, since most of the time is in
the calls between modules).  Not compiled: ``__init__.py`` (empty) and ``context.py``,
which holds only the ``Context`` Protocol: mypyc would compile it as a plain Python
class whose methods are never called (the desks call the Replica itself through
it), so it would gain nothing, and as a Python class it stays what desk tests
implement with fakes.
"""

from __future__ import annotations

import glob
import os
import shutil
import sysconfig
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (the hooks this module does not override)

#: What a compiling build needs beyond setuptools and wheel (mypy ships mypyc).
MYPYC_REQUIREMENT = "mypy>=2.4,<3"

_HERE = os.path.dirname(os.path.abspath(__file__))
_NOT_COMPILED = {"__init__.py", "context.py"}

#: Source files compiled with mypyc when asked, relative to this directory.
COMPILED_MODULES = tuple(sorted(
    os.path.relpath(path, _HERE).replace(os.sep, "/")
    for path in glob.glob(os.path.join(_HERE, "zmqex", "core", "*.py"))
    if os.path.basename(path) not in _NOT_COMPILED
))


def compile_requested() -> bool:
    """Whether ``ZMQEX_COMPILE`` asks for the compiled core (anything but unset, empty, 0, no, false)."""
    return os.environ.get("ZMQEX_COMPILE", "").strip().lower() not in ("", "0", "no", "false")


def has_c_compiler() -> bool:
    """Whether the C compiler a build would use (``$CC``, else Python's own) is on the PATH."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) is not None


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    requires: list[str] = list(_setuptools.get_requires_for_build_wheel(config_settings))
    # Without a C compiler setup.py builds pure Python (with a warning): no need for mypy then.
    return requires + [MYPYC_REQUIREMENT] if compile_requested() and has_c_compiler() else requires
