"""The simulator, with every replica's ``_check()`` run after every step.

Tests that drive replicas through :class:`zmqex.sim.Network` import this
``Network`` instead: each place, cancel, delivered message, tick, crash and
restart is followed by :meth:`Replica._check` on every live replica, so an
invariant broken in passing is caught at the step that broke it, not at the
end of the scenario (when it may have healed).
"""

from __future__ import annotations

from typing import Any

from zmqex import sim


class Network(sim.Network):
    def check(self) -> None:
        for replica in self.live():
            replica._check()

    def place(self, *args: Any, **kwargs: Any) -> str:
        try:
            return super().place(*args, **kwargs)
        finally:
            self.check()

    def cancel(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return super().cancel(*args, **kwargs)
        finally:
            self.check()

    def amend(self, *args: Any, **kwargs: Any) -> str:
        try:
            return super().amend(*args, **kwargs)
        finally:
            self.check()

    def cancel_all(self, *args: Any, **kwargs: Any) -> list[str]:
        try:
            return super().cancel_all(*args, **kwargs)
        finally:
            self.check()

    def act(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().act(*args, **kwargs)
        finally:
            self.check()

    def fund(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().fund(*args, **kwargs)
        finally:
            self.check()

    def set_credit(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().set_credit(*args, **kwargs)
        finally:
            self.check()

    def settle_credit(self, *args: Any, **kwargs: Any) -> int:
        try:
            return super().settle_credit(*args, **kwargs)
        finally:
            self.check()

    def deliver(self, *args: Any, **kwargs: Any) -> bool:
        delivered = super().deliver(*args, **kwargs)
        self.check()
        return delivered

    def tick(self, *args: Any, **kwargs: Any) -> None:
        super().tick(*args, **kwargs)
        self.check()

    def crash(self, node: str) -> None:
        super().crash(node)
        self.check()

    def restart(self, node: str) -> None:
        super().restart(node)
        self.check()

    def add_node(self, node: str) -> None:
        super().add_node(node)
        self.check()
