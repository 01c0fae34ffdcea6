"""zmqex-node's command line: what it refuses before it binds anything, and how it exits."""

from __future__ import annotations

import signal

import pytest

from zmqex import keys
from zmqex.cli import EX_SOFTWARE, node_main
from zmqex.errors import InvariantViolation
from zmqex.node import Node


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
    assert node_main(["--id", "a", "--port", "0", "--keys", str(tmp_path / "nowhere"), "--ephemeral"]) == 1
    assert "cannot read key file" in capsys.readouterr().err


def test_a_node_that_stops_on_a_bug_exits_with_ex_software(monkeypatch):
    def run(node: Node) -> None:  # what Node.run does on a bug: close, then raise (it logged it)
        node.close()
        raise InvariantViolation("a bug")

    monkeypatch.setattr(Node, "run", run)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        assert node_main(["--id", "a", "--port", "0", "--ephemeral"]) == EX_SOFTWARE == 70
    finally:
        for sig, handler in handlers.items():  # node_main installed its own
            signal.signal(sig, handler)
