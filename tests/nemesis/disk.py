"""A node's data directory on a tmpfs of its own, which the nemesis can fill.

``fill`` shrinks the tmpfs to what it holds (a remount; rounding leaves a few
pages) and writes a filler file into what is left, so the node's next write fails
with ENOSPC without the test holding megabytes of memory; ``free`` removes the
filler and gives the size back.  The mount is made before the node starts (a node
under ``ip netns exec`` has a mount namespace of its own, copied at its start, and
a remount changes the one filesystem both see).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import tempfile
from pathlib import Path

from tests.nemesis.cleanup import MOUNT, Resources, run

FILLER = "nemesis-filler"


def unavailable() -> str | None:
    """Why a tmpfs cannot be mounted here, or None if it can."""
    if os.geteuid() != 0:
        return "a full disk needs a tmpfs mount, which needs root (this process is not root)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "a full disk needs the mount and umount commands, not found"
    probe = Path(tempfile.mkdtemp(prefix=f"zmqex-probe-{random.getrandbits(24):06x}-"))
    try:
        made = run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe), check=False)
        if made.returncode != 0:
            return f"cannot mount a tmpfs: {made.stderr.strip()}"
        run("umount", str(probe), check=False)
    finally:
        probe.rmdir()
    return None


class Tmpfs:
    def __init__(self, path: Path, size_mb: int, resources: Resources) -> None:
        self.path, self.size_mb, self.res = path, size_mb, resources
        path.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path))
        self.res.add(MOUNT, str(path))
        self.full = False

    def fill(self) -> None:
        stat = os.statvfs(self.path)
        used_kb = (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024
        # Never below what it holds (the remount would fail); a little slack, which the filler takes.
        run("mount", "-o", f"remount,size={used_kb + 64}k", str(self.path))
        self.full = True
        chunk = b"\0" * 4096
        with open(self.path / FILLER, "ab", buffering=0) as filler:  # unbuffered: ENOSPC here, not at close
            for _ in range(100_000):  # bounded: the slack is a few dozen pages
                try:
                    filler.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)
        run("mount", "-o", f"remount,size={self.size_mb}m", str(self.path))
        self.full = False

    def wipe(self) -> None:
        """Remove what the node keeps here (restart without its store); the mount stays."""
        for entry in self.path.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def close(self) -> None:
        run("umount", "-l", str(self.path), check=False)
        self.res.forget(MOUNT, str(self.path))
