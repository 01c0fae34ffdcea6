"""zmqex-node's command line: what it refuses before it binds anything, and how it exits."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from zmqex import keys
from zmqex.cli import EX_DUPLICATE, EX_SOFTWARE, EX_USAGE, node_main
from zmqex.errors import InvariantViolation
from zmqex.node import Node
from zmqex.store import SqliteStore


def refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        node_main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_without_keys_a_node_binds_only_loopback(capsys):
    err = refused(["--id", "a", "--port", "0", "--host", "0.0.0.0", "--ephemeral"], capsys)
    assert "not loopback" in err and "--keys" in err


def test_with_keys_a_join_must_name_the_peer(tmp_path, capsys):
    keys.make_network(tmp_path, ["a", "b"])
    err = refused(["--id", "a", "--port", "0", "--keys", str(tmp_path / "a"), "--join", "127.0.0.1:7002",
                   "--ephemeral"], capsys)
    assert "ID@HOST:PORT" in err


def test_a_missing_key_directory_is_a_one_line_error(tmp_path, capsys):
    assert node_main(["--id", "a", "--port", "0", "--keys", str(tmp_path / "nowhere"), "--ephemeral",
                      "--new-mesh"]) == 1
    assert "cannot read key file" in capsys.readouterr().err


def test_a_node_that_stops_on_a_bug_exits_with_ex_software(monkeypatch):
    def run(node: Node) -> None:  # what Node.run does on a bug: close, then raise (it logged it)
        node.close()
        raise InvariantViolation("a bug")

    monkeypatch.setattr(Node, "run", run)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        assert node_main(["--id", "a", "--port", "0", "--ephemeral", "--new-mesh"]) == EX_SOFTWARE == 70
    finally:
        for sig, handler in handlers.items():  # node_main installed its own
            signal.signal(sig, handler)


# --- a brand-new mesh is explicit -------------------------------------------------------------


def test_an_empty_store_with_nothing_to_join_is_refused_in_one_line(tmp_path, capsys):
    for store in (["--ephemeral"], ["--data-dir", str(tmp_path / "a")]):
        assert node_main(["--id", "a", "--port", "0", *store]) == EX_USAGE == 2
        [line] = capsys.readouterr().err.splitlines()
        assert "node a has an empty store and nothing to join" in line and "--new-mesh" in line
    assert not SqliteStore(tmp_path / "a", "a").has_history()  # refused: nothing marked


def test_new_mesh_is_for_a_first_start_only(tmp_path, capsys):
    store = SqliteStore(tmp_path, "a")
    store.mark_in_mesh("founded")  # what a first start with --new-mesh leaves behind
    store.close()
    assert node_main(["--id", "a", "--port", "0", "--data-dir", str(tmp_path), "--new-mesh"]) == EX_USAGE
    [line] = capsys.readouterr().err.splitlines()
    assert "already belongs to a mesh" in line and "drop it" in line
    assert refused(["--id", "a", "--port", "0", "--ephemeral", "--new-mesh", "--join", "127.0.0.1:1"], capsys)


def test_a_data_directory_in_use_is_refused_with_its_own_exit_code(tmp_path):
    held = SqliteStore(tmp_path, "a")  # as a running node holds it (tests/test_store.py: across processes)
    try:
        done = subprocess.run([sys.executable, "-c", "import sys; from zmqex.cli import node_main; sys.exit("
                               f"node_main(['--id', 'a', '--port', '0', '--data-dir', {str(tmp_path)!r}]))"],
                              capture_output=True, text=True, timeout=60)
    finally:
        held.close()
    assert done.returncode == EX_DUPLICATE == 78, done
    [line] = done.stderr.splitlines()
    assert "is in use by another running node" in line and "Traceback" not in done.stdout
