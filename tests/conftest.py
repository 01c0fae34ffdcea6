"""Shared test setup: hypothesis profiles, and no silent empty runs."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# default: what a developer runs.  ci: the same examples every run (a green main
# stays green), no example database.  stress: opt-in, long.
settings.register_profile("default", max_examples=200, stateful_step_count=50, **_common)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, database=None)
settings.register_profile("stress", max_examples=5000, stateful_step_count=50, **_common)
# mutation: the ci examples, stopping at the first failure without shrinking it; for
# checking that a deliberately broken core is caught (docs/design.md, "Invariants").
settings.register_profile("mutation", parent=settings.get_profile("ci"),
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # pytest exits 5 when it collected nothing; a test command that runs no test must fail.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header(config: pytest.Config) -> str:
    from zmqex.bench.compiled import core_build, source_root
    return f"zmqex core: {core_build()}, from {source_root()}"


def pytest_configure(config: pytest.Config) -> None:
    # .ci/run's second step runs the tests against the mypyc-compiled core, built outside
    # this tree: make sure they really import it, not the .py files of the tree.
    if os.environ.get("ZMQEX_EXPECT_COMPILED"):
        from zmqex.bench.compiled import core_build, source_root
        build = core_build()
        if build != "compiled":
            raise pytest.UsageError(f"ZMQEX_EXPECT_COMPILED is set but the zmqex core from {source_root()} is {build}")
