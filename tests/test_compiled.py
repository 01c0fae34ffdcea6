"""The optional mypyc-compiled core: the build's module list, what the benchmark reports,
and inputs that compiled code would check differently from Python (run in both builds:
CI runs the tests against the compiled core too, see .ci/run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zmqex import bench
from zmqex.bench import compiled
from zmqex.core.events import Side, Tif, decode
from zmqex.core.replica import Replica
from zmqex.errors import DecodeError, InvalidAmount

ROOT = Path(__file__).resolve().parent.parent


def test_the_build_compiles_what_the_benchmark_checks() -> None:
    import _zmqex_build  # the in-tree build backend, at the repository root

    assert [f"zmqex.core.{Path(p).stem}" for p in _zmqex_build.COMPILED_MODULES] == compiled.core_modules(ROOT)
    assert "zmqex.core.replica" in compiled.core_modules(ROOT) and "zmqex.core.context" not in compiled.core_modules(ROOT)


@pytest.mark.parametrize("value, asked", [("", False), ("0", False), ("no", False), ("false", False),
                                          ("1", True), ("yes", True)])
def test_zmqex_compile_values(monkeypatch: pytest.MonkeyPatch, value: str, asked: bool) -> None:
    import _zmqex_build

    monkeypatch.setenv("ZMQEX_COMPILE", value)
    # setuptools' own answer would run setup.py here: stand in for it
    monkeypatch.setattr(_zmqex_build._setuptools, "get_requires_for_build_wheel", lambda settings=None: ["wheel"])
    assert _zmqex_build.compile_requested() is asked
    requires = _zmqex_build.get_requires_for_build_wheel()
    assert requires == ["wheel", _zmqex_build.MYPYC_REQUIREMENT] if asked and _zmqex_build.has_c_compiler() else ["wheel"]


def test_core_build_is_what_was_imported() -> None:
    build = compiled.core_build()
    assert build in ("pure", "compiled")
    assert build == ("compiled" if compiled.is_extension(__import__("zmqex.core.replica").core.replica) else "pure")
    if os.environ.get("ZMQEX_EXPECT_COMPILED"):
        assert build == "compiled"


def test_a_build_needs_a_source_tree(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not a zmqex source tree"):
        compiled.build_compiled(tmp_path / "out", root=tmp_path)


def test_the_table_shows_the_build_and_the_ratio() -> None:
    r = {**bench.bench_core(200), "core_build": "pure", "core_orders_per_s_pure": 30_000.0,
         "core_orders_per_s_compiled": 48_000.0, "compiled_vs_pure": 1.6,
         "core_vs_plain_pure": 0.07, "core_vs_plain_compiled": 0.16}
    r["targets"] = bench._targets(r)
    text = bench.table(r)
    assert "core replica (pure core)" in text and "compiled (mypyc)" in text and "1.600x" in text
    assert r["targets"]["compiled core >= 0.15x plain book"]["met"] is True
    assert r["targets"]["pure core >= 0.08x plain book"]["met"] is False


# Compiled code checks arguments against their annotations: the core's checked inputs are
# typed Any/object so that both builds refuse bad input alike, with the project's errors.

@pytest.mark.parametrize("qty", [True, 1.0, "5", None])
def test_place_refuses_a_bad_quantity_alike(qty: object) -> None:
    with pytest.raises(InvalidAmount):
        Replica("a").place(Side.BUY, qty, 100)


@pytest.mark.parametrize("price", [True, 1.5, "100"])
def test_place_refuses_a_bad_price_alike(price: object) -> None:
    with pytest.raises(InvalidAmount):
        Replica("a").place(Side.BUY, 5, price)


def test_place_takes_side_and_tif_as_text() -> None:
    r = Replica("a")
    oid = r.place("buy", 5, 100, "ioc")  # type: ignore[arg-type]
    assert r.ledger.orders[oid].side is Side.BUY and r.ledger.orders[oid].tif is Tif.IOC


@pytest.mark.parametrize("data", ["text", None, 7, [b"x"]])
def test_decoders_refuse_non_bytes_with_decode_error(data: object) -> None:
    from zmqex.core import messages

    for decoder in (decode, messages.decode, messages.decode_batch):
        with pytest.raises(DecodeError):
            decoder(data)
