"""The pure core against the mypyc-compiled core, on the same core benchmark.

* :func:`core_build`: whether this process runs the pure core (``"pure"``), the
  compiled one (``"compiled"``: every module of ``zmqex/core`` that a compiling
  build compiles is an extension module), or a mix (a stale or partial build).
* :func:`build_compiled`: ``ZMQEX_COMPILE=1 pip install --no-deps --target DIR``
  of this source tree (``setup.py``): a whole zmqex package whose core is
  compiled, beside the pure tree, never in it (an editable install stays pure).
  Rebuilt only when the core's sources changed since the last build.
* :func:`compare_core`: :func:`~zmqex.bench.core.bench_core` in subprocesses, one
  with the pure tree first on ``PYTHONPATH`` and one with the compiled build,
  taking turns (5 a side); each keeps its best run.  The ratio compiled/pure is the figure.

``zmqex-bench --compare-compiled`` runs it (``--core`` for that section alone).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from importlib import import_module
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import zmqex

#: Modules of zmqex/core a compiling build leaves as Python (see _zmqex_build.py).
NOT_COMPILED = ("__init__", "context")
#: What a compiled core must beat the pure one by, on the core benchmark.
TARGET_RATIO = 1.4

_STAMP = ".zmqex-core-sources"  # in a build dir: the hash of the core sources it was built from


def source_root() -> Path:
    """The tree this zmqex was imported from (the pure tree, or a compiled build's target)."""
    return Path(zmqex.__file__).resolve().parent.parent


def core_modules(root: Path | None = None) -> list[str]:
    """The modules of zmqex/core a compiling build compiles, by name (``zmqex.core.replica``, ...)."""
    core = (root or source_root()) / "zmqex" / "core"
    return sorted(f"zmqex.core.{p.stem}" for p in core.glob("*.py") if p.stem not in NOT_COMPILED)


def core_build() -> str:
    """``"compiled"``, ``"pure"`` or ``"mixed"``: what the zmqex.core modules imported here are."""
    compiled = [name for name in core_modules() if is_extension(import_module(name))]
    if not compiled:
        return "pure"
    return "compiled" if len(compiled) == len(core_modules()) else "mixed"


def is_extension(module: Any) -> bool:
    return any(str(getattr(module, "__file__", "")).endswith(suffix) for suffix in EXTENSION_SUFFIXES)


def _sources_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "zmqex").rglob("*.py")) + [root / "setup.py", root / "_zmqex_build.py",
                                                            root / "pyproject.toml"]:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_compiled(target: Path, root: Path | None = None, log: Any = None) -> Path:
    """Build this tree with ``ZMQEX_COMPILE=1`` into ``target`` (unless it is up to date); returns ``target``.

    Uses this interpreter's mypy and wheel if it has both (no download), else pip's
    isolated build (which fetches them, as ``_zmqex_build`` asks).  Raises RuntimeError if the
    build fails or comes out without a compiled core (no C compiler).
    """
    root = root or source_root()
    if not (root / "setup.py").exists():
        raise RuntimeError(f"{root} is not a zmqex source tree (no setup.py): cannot build the compiled core")
    target = target.resolve()
    stamp = target / _STAMP
    want = _sources_hash(root)
    if stamp.exists() and stamp.read_text() == want and _build_kind(target) == "compiled":
        return target
    if log:
        log(f"building the compiled core into {target} (mypyc, about a minute) ...")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-cache-dir", "--upgrade",
               "--target", str(target), str(root)]
    if importlib.util.find_spec("mypyc") and importlib.util.find_spec("wheel"):
        command.insert(4, "--no-build-isolation")
    env = {**os.environ, "ZMQEX_COMPILE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"building the compiled core failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    kind = _build_kind(target)
    if kind != "compiled":
        raise RuntimeError(f"the build in {target} holds a {kind} core (no C compiler?):\n{done.stderr[-2000:]}")
    stamp.write_text(want)
    return target


def _build_kind(path: Path) -> str:
    """What core a subprocess with ``path`` first on its import path would run."""
    done = subprocess.run([sys.executable, "-P", "-c", "from zmqex.bench.compiled import core_build; "
                           "print(core_build())"], env=_env(path), capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unbuilt"


def _env(path: Path) -> dict[str, str]:
    rest = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(path) + (os.pathsep + rest if rest else "")}


_CHILD = """
import json, sys
from zmqex.bench.compiled import core_build, source_root
from zmqex.bench.core import bench_core
result = bench_core(int(sys.argv[1]), rounds=int(sys.argv[2]))
print(json.dumps({"build": core_build(), "root": str(source_root()), **result}))
"""


def _run_child(path: Path, n: int, rounds: int) -> dict[str, Any]:
    # -P: not the current directory first on the path, so PYTHONPATH decides which zmqex runs.
    done = subprocess.run([sys.executable, "-P", "-c", _CHILD, str(n), str(rounds)], env=_env(path),
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"core benchmark in {path} failed:\n{done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def compare_core(n: int, target: Path, turns: int = 5, rounds: int = 1, log: Any = None) -> dict[str, Any]:
    """The core benchmark on ``n`` ops, pure and compiled, each in its own process, ``turns`` times each.

    Each process runs :func:`~zmqex.bench.core.bench_core` (its best of ``rounds``);
    the two take turns and each keeps its best, so a slow moment of a shared
    machine does not decide the ratio.  On a loaded 2-core VM one process's figure
    moves by a third from turn to turn (its plain book's figure, the same code in
    both, moves with it), so the turns are short and many; every turn is kept in
    the detail.
    """
    root = source_root()
    compiled_dir = build_compiled(target, log=log)
    runs: dict[str, list[dict[str, Any]]] = {"pure": [], "compiled": []}
    for _ in range(turns):
        for name, path in (("pure", root), ("compiled", compiled_dir)):
            r = _run_child(path, n, rounds)
            if r["build"] != name:
                raise RuntimeError(f"the {name} run imported a {r['build']} core from {r['root']}")
            runs[name].append(r)
    pure, compiled = (max(runs[name], key=lambda r: float(r["core_orders_per_s"])) for name in ("pure", "compiled"))
    return {
        "core_orders_per_s_pure": pure["core_orders_per_s"],
        "core_orders_per_s_compiled": compiled["core_orders_per_s"],
        "compiled_vs_pure": compiled["core_orders_per_s"] / pure["core_orders_per_s"],
        # each against the plain book of its own turn (the same Python code, the same moment)
        "core_vs_plain_pure": pure["core_orders_per_s"] / pure["plain_book_orders_per_s"],
        "core_vs_plain_compiled": compiled["core_orders_per_s"] / compiled["plain_book_orders_per_s"],
        "compiled_fills_match": all(r["core_plain_fills_match"] for rs in runs.values() for r in rs),
        "compiled_detail": {
            "ops": n, "turns": turns, "rounds": rounds, "pure_root": pure["root"], "compiled_root": compiled["root"],
            # every turn: (core, plain book) ops/s; the plain book is the same Python code in both processes
            **{f"{name}_turns": [(round(r["core_orders_per_s"]), round(r["plain_book_orders_per_s"])) for r in rs]
               for name, rs in runs.items()},
        },
    }


def default_compiled_dir() -> Path:
    """``build/compiled`` in the source tree (ignored by git, like all of ``build/``)."""
    return source_root() / "build" / "compiled"
