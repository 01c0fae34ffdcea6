"""What a run creates outside its own process, undone however the run ends.

Node processes, network namespaces, links and mounts outlive the process that made them.  Each
run records them, as it makes them, in a state file named by the run's token
(under the temporary directory, with the run's pid); ``release`` undoes them in
reverse order (at the end of the run, and at exit via atexit, whichever comes
first), and ``sweep`` undoes those of runs whose process is gone (killed before
it could clean up), including node processes still running in their namespaces.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

STATE_DIR = Path(tempfile.gettempdir()) / "zmqex-nemesis"
NETNS, LINK, MOUNT, PROCESS = "netns", "link", "mount", "process"


def run(*argv: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run a system command (ip, tc, mount); raise with its stderr if it fails and ``check``."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class Resources:
    """The namespaces, links and mounts of one run, in the order they were made."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.path = STATE_DIR / f"{token}.json"
        self._items: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        atexit.register(self.release)

    def add(self, kind: str, name: str) -> None:
        with self._lock:
            self._items.append((kind, name))
            self._save()

    def forget(self, kind: str, name: str) -> None:
        with self._lock:
            if (kind, name) in self._items:
                self._items.remove((kind, name))
            self._save()

    def release(self) -> list[str]:
        """Undo everything (best effort, newest first); the errors met, for the caller to report."""
        with self._lock:
            errors = undo(list(reversed(self._items)))
            self._items.clear()
            self.path.unlink(missing_ok=True)
        return errors

    def _save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "items": self._items}))
        tmp.replace(self.path)


def undo(items: list[tuple[str, str]]) -> list[str]:
    errors = []
    for kind, name in items:
        try:
            if kind == PROCESS:
                pid, _, workdir = name.partition(" ")
                _kill_node(int(pid), workdir)
            elif kind == MOUNT:
                run("umount", "-l", name, check=False)  # lazy: a dying node may still hold a file open
            elif kind == LINK:
                if run("ip", "link", "show", name, check=False).returncode == 0:
                    run("ip", "link", "del", name)
            elif kind == NETNS:
                if run("ip", "netns", "pids", name, check=False).returncode == 0:
                    for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                        _kill(int(pid))  # a node left running in it by a run that was killed
                    run("ip", "netns", "del", name)
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
            errors.append(f"cleaning up {kind} {name}: {exc}")
    return errors


def sweep() -> list[str]:
    """Undo what runs whose process is gone left behind; what could not be undone."""
    errors: list[str] = []
    if not STATE_DIR.is_dir():
        return errors
    for path in sorted(STATE_DIR.glob("*.json")):
        try:
            state = json.loads(path.read_text())
            pid, items = int(state["pid"]), [(str(kind), str(name)) for kind, name in state["items"]]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if _alive(pid):
            continue  # another run, in progress
        errors += undo(list(reversed(items)))
        path.unlink(missing_ok=True)
    return errors


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_node(pid: int, workdir: str) -> None:
    """SIGKILL ``pid`` if it still is a node of the run in ``workdir`` (no other process that got its pid since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"zmqex.cli" in cmdline and workdir.encode() in cmdline:
        _kill(pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
