"""Leases every SharedStore must grant the same way (storage/sharing.py), whatever the
backend: two stores on one file or one server play two broker processes.

Subclasses provide the ``pair`` fixture: two open stores sharing their data, one
per process (tests/test_sqlite_feed.py, tests/test_mongo_feed.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from subscriptions.ownership import LeaseOwner


class LeaseContract:
    """Leases: one holder at a time, expiry, release, and fair sharing by LeaseOwner."""

    async def test_a_lease_has_one_holder_until_it_expires_or_is_released(
            self, pair: tuple[Any, Any]) -> None:
        a, b = pair
        assert await a.acquire_lease("sub:1", "a", 0.3)
        assert not await b.acquire_lease("sub:1", "b", 0.3)
        assert await a.acquire_lease("sub:1", "a", 0.3)  # ours: renewed
        assert await a.lease_holders("sub:") == {"sub:1": "a"}
        assert await a.renew_leases("a", 0.3) == ["sub:1"]
        await asyncio.sleep(0.4)
        assert await a.lease_holders("sub:") == {}
        assert await b.acquire_lease("sub:1", "b", 5)  # expired: B takes it over
        assert await a.renew_leases("a", 5) == []  # and A learns it lost it
        await b.release_leases("b", ["sub:1"])
        assert await a.acquire_lease("sub:1", "a", 5)
        await b.drop_lease("sub:1")
        assert await b.lease_holders("") == {}

    async def test_leases_share_subscriptions_fairly(self, pair: tuple[Any, Any]) -> None:
        a, b = pair
        keys = [f"t\x00urn:s:{n}" for n in range(10)]
        first, second = LeaseOwner(a, "a", ttl=5), LeaseOwner(b, "b", ttl=5)
        await b.acquire_lease("process:b", "b", 5)  # B is alive
        gained_a, lost_a = await first.round(keys, set())
        gained_b, lost_b = await second.round(keys, set())
        assert len(gained_a) == 5 and gained_b == set(keys) - gained_a
        assert lost_a == lost_b == set()
        await first.close()  # A stops: its subscriptions are free for B
        gained, _ = await second.round(keys, gained_b)
        assert gained == gained_a
