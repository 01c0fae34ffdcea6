"""``zmqex-demo`` runs end to end, with and without keys (small sizes)."""

from __future__ import annotations

import re

import pytest

from zmqex import demo


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
def test_demo_runs(keyed: bool, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--traders", "3", "--orders", "8", *(["--keys"] if keyed else [])]) == 0
    out = capsys.readouterr().out
    assert ("keyed: every node and trader has its own key, under " in out) is keyed
    assert "every replica converged" in out and out.rstrip().endswith("nodes stopped.")
    assert " refused" not in out  # every trader's order was taken: with keys, each connected with its own
    assert len(re.findall(r"^  t\d@[abc]: ", out, re.M)) == 3 * 8
    hashes = re.findall(r"^  [abc]: hash (\w+) ", out, re.M)
    assert len(hashes) == 3 and len(set(hashes)) == 1
