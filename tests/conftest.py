from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings

from leat_async import GiftcardTransaction, LeatClient, RetryPolicy
from leat_async.testing import FakeLeat

TOKEN = "s3cr3t-t0ken-value"
#: quick retries, so tests that provoke them stay fast
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, max_pause=5.0)
#: no retries: a fault fails the call at once
ONE_TRY = RetryPolicy(max_attempts=1)
LONG_AGO = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)

# property tests assert what is right, never how fast (speed is for benchmarks/): hypothesis's
# per-example deadline would fail them on a busy CI machine
settings.register_profile("leat", deadline=None)
settings.load_profile("leat")


@pytest.fixture
async def fake() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN) as server:
        yield server


@pytest.fixture
async def client(fake: FakeLeat) -> AsyncIterator[LeatClient]:
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY, timeout=5.0) as c:
        yield c


def seed_rows(fake: FakeLeat, n: int, *, start: datetime = LONG_AGO, step: float = 1.0) -> None:
    """``n`` history rows on one card in one shop, ``step`` seconds apart, long before now."""
    shop = fake.add_shop(name="Krusty Krab")
    card = fake.add_card(balance_in_cents=10**9, reincrementable=True)
    for i in range(n):
        fake.add_transaction(
            card=card,
            shop=shop,
            amount_in_cents=100 + i,
            created_at=start + timedelta(seconds=step * i),
        )


@pytest.fixture
def shop(fake: FakeLeat) -> Any:
    return fake.add_shop(name="Krusty Krab")


def posts(fake: FakeLeat) -> int:
    """POSTs the fake has answered (or dropped)."""
    return sum(1 for r in fake.requests if r.method == "POST")


async def charge(
    client: LeatClient, card: Any, shop: Any, amount: int = -500, **kw: Any
) -> GiftcardTransaction:
    """A redemption of ``amount`` cents on ``card`` in ``shop``."""
    return await client.giftcard_transactions.create(
        giftcard_uuid=card.uuid, amount_in_cents=amount, shop_uuid=shop.uuid, **kw
    )


@pytest.fixture
async def brittle(fake: FakeLeat) -> AsyncIterator[LeatClient]:
    """A client that never retries, so a fault fails the export at once."""
    async with LeatClient(TOKEN, base_url=fake.url, retry=ONE_TRY, timeout=5.0) as c:
        yield c
