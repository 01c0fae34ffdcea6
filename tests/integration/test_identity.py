"""One id, one store, one process (real node processes): a node that lost its store never founds a
mesh again unless told to."""

from __future__ import annotations

import shutil

from zmqex.cli import EX_USAGE
from zmqex.local import wait_for


def test_a_founder_that_lost_its_data_dir_is_refused_unless_told_it_founds_a_new_mesh(net):
    net.start_mesh(["a", "b"])
    with net.nodes["a"].client() as a:
        a.place("sell", "1", "50000")  # a:1, which b keeps
    net.wait_converged()
    net.nodes["a"].kill()
    shutil.rmtree(net.workdir / "a")  # its data directory is lost
    lost = net.restart("a", wait=False)  # as it was started, less --new-mesh: no --join
    assert lost.proc.wait(30) == EX_USAGE
    said = lost.log()[lost._log_start:].splitlines()
    assert len(said) == 1 and "node a has an empty store and nothing to join" in said[0], said
    assert "--new-mesh" in said[0]
    # Told it founds a new mesh (of its own: it names no peer), it starts and takes orders.
    founder = net.start("a", join=[], args=["--data-dir", str(net.workdir / "a-new")])
    assert "--new-mesh" in founder.args
    with founder.client() as a:
        wait_for(lambda: a.status()["ready"], 10, "the new founder to be ready")
        assert a.place("sell", "1", "50000")["order_id"] == "a:1"
