"""Build: pure Python by default; ``ZMQEX_COMPILE=1`` compiles the core with mypyc.

    pip install -e .                                     # pure, always (development)
    ZMQEX_COMPILE=1 pip install .                        # the core as C extensions, if a C compiler is here
    ZMQEX_COMPILE=1 pip install --no-deps --upgrade --target build/compiled .   # beside the tree (zmqex-bench, CI)

Metadata is in setup.cfg.  mypy (which ships mypyc) is a build requirement only when
compiling: the in-tree backend ``_zmqex_build.py`` adds it then, and this file imports
mypyc only then.  Without a C compiler, a build asked to compile warns and stays pure.

An editable install never compiles: built ``.so`` files would shadow later edits of
the ``.py`` files beside them.  ``zmqex-bench --compare-compiled`` builds the compiled
core into a separate directory instead (:mod:`zmqex.bench.compiled`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _zmqex_build import COMPILED_MODULES, compile_requested, has_c_compiler  # noqa: E402


def _ext_modules() -> list[Any]:
    if not compile_requested():
        return []
    if any(arg in ("editable_wheel", "develop") for arg in sys.argv):
        print("zmqex: ZMQEX_COMPILE ignored for an editable install (the .so files would shadow "
              "edits of the .py files); building pure Python", file=sys.stderr)
        return []
    if any(arg in ("dist_info", "egg_info") for arg in sys.argv):
        return []  # metadata only: no need to type-check and generate C twice
    if not has_c_compiler():
        print("zmqex: ZMQEX_COMPILE set but no C compiler found; building pure Python", file=sys.stderr)
        return []
    from mypyc.build import mypycify  # only here: mypy is a build requirement only when compiling

    return mypycify(list(COMPILED_MODULES), opt_level=os.environ.get("ZMQEX_MYPYC_OPT", "3"))


setup(ext_modules=_ext_modules())
