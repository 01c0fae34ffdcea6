"""A replica's timing and size settings, in integer milliseconds and counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    heartbeat_ms: int = 500
    peer_timeout_ms: int = 2000
    retry_ms: int = 1000  # resend an unanswered take, or a sync request, after this long
    sync_page: int = 500
    repair_after_ms: int = 200  # a gap may close by gossip this long before we ask a peer for it
    compact_after: int = 100_000  # stable events held before a checkpoint lets them go
    compact_every_ms: int = 5_000
    sync_serve_ms: int = 20  # sync pages served to one peer: one per this long on average ...
    sync_burst: int = 50  # ... and at most this many at once
    snapshot_every_ms: int = 10_000  # at most one snapshot served to a peer per this long
    max_snapshot_pages: int = 2_000  # a bigger snapshot is refused (1M items at the default page)
    snapshot_wait_ms: int = 10_000  # a snapshot nobody vouches for is dropped after this long
    hold_wait_ms: int = 2_000  # a fill-or-kill's owner waits this long for holds, then kills it
    inquire_after_ms: int = 5_000  # a hold this old makes its holder ask the coordinator's decision
    audit_every_ms: int = 10_000  # a peer whose state differs at our clock is compared at most this often
    park_ms: int = 10_000  # a take waits this long for its taker order, then its taker must ask again
    disclose_desks: bool = False  # whether this desk allows both desks' names on its private trades' public reports
    require_funding: bool = False  # a trader without an account (zmqex.core.balances) may not place
    credit_retry_ms: int = 10_000  # a desk that refused us for credit is not asked again for this long
