"""Real node processes on loopback, always cleaned up."""

from __future__ import annotations

import pytest

from zmqex.local import LocalNetwork


@pytest.fixture
def net(tmp_path):
    network = LocalNetwork(tmp_path)
    try:
        yield network
    finally:
        network.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
