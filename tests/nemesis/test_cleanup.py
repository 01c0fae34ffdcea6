"""What a nemesis run makes outside its process is undone, even when the run is killed."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.nemesis import cleanup, netns
from zmqex.local import wait_for

pytestmark = pytest.mark.nemesis


def exists(*argv: str) -> bool:
    return cleanup.run(*argv, check=False).returncode == 0


def test_a_killed_runs_namespace_link_and_node_are_swept(tmp_path):
    why = netns.unavailable()
    if why:
        pytest.skip(why)
    token = secrets.token_hex(4)
    ns, link = f"zmqex-{token}-x", f"zn{token[:5]}t"
    # A run that makes a namespace, a link and a "node" (a process named like one, running in the
    # namespace and naming its work directory), then is killed before it can clean up.
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        from tests.nemesis.cleanup import LINK, NETNS, PROCESS, Resources, run
        res = Resources({token!r})
        run("ip", "netns", "add", {ns!r}); res.add(NETNS, {ns!r})
        run("ip", "link", "add", {link!r}, "type", "bridge"); res.add(LINK, {link!r})
        node = subprocess.Popen(["ip", "netns", "exec", {ns!r}, sys.executable, "-c",
                                 "import time; time.sleep(600)", "zmqex.cli", {str(tmp_path)!r}])
        res.add(PROCESS, f"{{node.pid}} {str(tmp_path)}")
        print(node.pid, flush=True)
        time.sleep(600)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        node = int(run.stdout.readline())
        assert exists("ip", "netns", "pids", ns) and exists("ip", "link", "show", link)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    assert (cleanup.STATE_DIR / f"{token}.json").exists()
    assert cleanup.sweep() == []
    assert not exists("ip", "netns", "pids", ns) and not exists("ip", "link", "show", link)
    assert not (cleanup.STATE_DIR / f"{token}.json").exists()
    wait_for(lambda: not os.path.exists(f"/proc/{node}") or b"Z" in _state(node), 10, "the node to be killed")


def _state(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().split(b") ")[1][:1]
    except OSError:
        return b"Z"
