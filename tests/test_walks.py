"""Walks: each its own, closed at once, merged from pagers, costing only the pages they fetch."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leat_async import (
    GiftcardNotFoundError,
    LeatAPIError,
    LeatClient,
    LeatError,
    Page,
    merge_by_created_at,
    split_created_at,
)
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY, LONG_AGO, ONE_TRY, TOKEN, seed_rows


def list_queries(fake: FakeLeat) -> list[dict[str, str]]:
    return [dict(r.query) for r in fake.requests if r.path == "/giftcard-transactions"]


def page_asked(fake: FakeLeat, page: int) -> asyncio.Event:
    """Set when the fake receives the first request for listing page ``page``."""
    asked = asyncio.Event()
    query = {"page": str(page)}
    fake.add_fault(Fault(method="GET", path="/giftcard-transactions", query=query, applied=asked))
    return asked


class SettableClock:
    """The fake server's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server_time() -> SettableClock:
    return SettableClock()


@pytest.fixture
async def timed_fake(server_time: SettableClock) -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN, clock=server_time) as server:
        yield server


async def test_walking_a_pager_again_takes_a_fresh_snapshot(
    timed_fake: FakeLeat, server_time: SettableClock
) -> None:
    fake = timed_fake
    seed_rows(fake, 30)
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY) as client:
        pager = client.giftcard_transactions.list(per_page=10)
        first = [tx.id async for tx in pager]
        first_snapshot = pager.position.snapshot if pager.position else None
        start = server_time.now
        server_time.now = start + timedelta(minutes=1)
        late = fake.add_transaction(
            card=fake.cards[0], shop=fake.shops[0], amount_in_cents=5, created_at=start
        )
        await client.giftcard_transactions.get(late.uuid)  # the user looks it up: a minute on
        second = [tx.id async for tx in pager]
    assert first == [t.id for t in fake.transactions[:30]]
    assert second == [*first, late.id]
    assert pager.position is not None and pager.position.snapshot != first_snapshot


async def test_each_walk_has_its_own_position_and_dedupe(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 40)
    pager = client.giftcard_transactions.list(per_page=10)
    one, two = aiter(pager), aiter(pager)
    a = [(await anext(one)).id for _ in range(15)]
    b = [(await anext(two)).id for _ in range(3)]
    assert two.position is not None and one.position is not None
    assert (one.position.page, len(one.position.seen)) == (2, 15)
    assert (two.position.page, len(two.position.seen)) == (1, 3)
    assert pager.position == two.position  # the pager tells its latest walk's
    assert a[:3] == b == [t.id for t in fake.transactions[:3]]
    await one.aclose()
    await two.aclose()


async def test_a_closed_iterator_stops_its_prefetches_while_still_referenced(
    fake: FakeLeat,
) -> None:
    seed_rows(fake, 1000)
    async with LeatClient(TOKEN, base_url=fake.url, max_concurrency=1) as client:
        gtx = client.giftcard_transactions
        rows = aiter(gtx.list(per_page=10, prefetch=9))
        async with rows:
            await anext(rows)
        # `rows` is still referenced; the next request does not queue behind 9 prefetches
        await gtx.list(per_page=1)
        assert len(fake.requests) == 2
        with pytest.raises(StopAsyncIteration):
            await anext(rows)

        fake.reset_requests()
        async with contextlib.aclosing(gtx.list(per_page=10, prefetch=9).pages()) as pages:
            async for _ in pages:
                break
        async with contextlib.aclosing(aiter(gtx.list(per_page=10, prefetch=9))) as items:
            async for _ in items:
                break
        await gtx.list(per_page=1)
        assert len(fake.requests) == 3


async def test_a_sequential_walk_prefetches_while_the_caller_awaits_its_own_work(
    fake: FakeLeat,
) -> None:
    seed_rows(fake, 50)
    asked = page_asked(fake, 2)
    async with (
        LeatClient(TOKEN, base_url=fake.url, max_concurrency=1) as client,
        aiter(client.giftcard_transactions.list(per_page=10)) as rows,
    ):
        first = await anext(rows)
        # the caller's own await (a database write, say): page 2 goes out meanwhile
        await asyncio.wait_for(asked.wait(), timeout=5)
        rest = [tx.id async for tx in rows]
    assert [first.id, *rest] == [t.id for t in fake.transactions]
    assert [dict(q)["page"] for q in list_queries(fake)] == [str(n) for n in range(1, 6)]


async def test_a_walk_never_queues_prefetches_ahead_of_the_clients_other_calls(
    fake: FakeLeat,
) -> None:
    seed_rows(fake, 300)
    under_way = page_asked(fake, 3)
    async with LeatClient(TOKEN, base_url=fake.url, max_concurrency=1) as client:
        gtx = client.giftcard_transactions

        async def export() -> int:
            n = 0
            async for _ in gtx.list(per_page=10, prefetch=8):
                await asyncio.sleep(0)  # the export's own work between rows
                n += 1
            return n

        job = asyncio.create_task(export())
        await under_way.wait()
        looked_up = await gtx.get(fake.transactions[0].uuid)  # a checkout, mid-export
        assert await job == 300
    paths = [(r.path, dict(r.query).get("page")) for r in fake.requests]
    waited_behind = paths.index((f"/giftcard-transactions/{looked_up.uuid}", None))
    waited_behind -= paths.index(("/giftcard-transactions", "3"))
    # the one page request that held the only slot, not a queue of the walk's prefetches
    assert waited_behind <= 2, paths[:15]


async def test_a_failed_page_stops_the_walk_until_the_caller_asks_again(
    fake: FakeLeat,
) -> None:
    seed_rows(fake, 300)
    boom = Fault(
        method="GET",
        path="/giftcard-transactions",
        query={"page": "3"},
        status=500,
        body={"message": "boom"},
        times=None,
    )
    fake.add_fault(boom)
    async with LeatClient(TOKEN, base_url=fake.url, retry=ONE_TRY) as client:
        gtx = client.giftcard_transactions
        rows = aiter(gtx.list(per_page=10))
        seen: list[int] = []

        async def read() -> None:
            async for tx in rows:
                seen.append(tx.id)

        with pytest.raises(LeatAPIError):
            await read()
        await gtx.get(fake.transactions[0].uuid)  # a round trip: what the walk sent has arrived
        pages = [int(q["page"]) for q in list_queries(fake)]
        # the failed walk did not start over on its own: no page was asked for twice
        assert len(pages) == len(set(pages)), pages
        fake.clear_faults()
        rest = [tx.id async for tx in rows]  # asking again: from the failed page, none lost
    assert seen + rest == [t.id for t in fake.transactions]


async def test_asking_again_at_once_after_a_failed_page_hands_out_every_row_once(
    fake: FakeLeat,
) -> None:
    seed_rows(fake, 200)
    later = asyncio.Event()
    boom = Fault(method="GET", path="/giftcard-transactions", query={"page": "3"}, status=500)
    fake.add_fault(boom)
    for page in (4, 5, 6):  # still out when page 3 fails
        query = {"page": str(page)}
        fake.add_fault(Fault(method="GET", path="/giftcard-transactions", query=query, hold=later))
    async with LeatClient(TOKEN, base_url=fake.url, max_concurrency=4, retry=ONE_TRY) as client:
        rows = aiter(client.giftcard_transactions.list(per_page=10))
        seen: list[int] = []
        while True:
            try:
                seen.append((await anext(rows)).id)
            except LeatAPIError:
                later.set()  # the held pages answer now: they were let go with the failure
            except StopAsyncIteration:
                break
    assert seen == [t.id for t in fake.transactions]


@pytest.mark.parametrize("seed", range(20))
async def test_every_row_once_whatever_fails_and_whoever_waits(seed: int) -> None:
    # pages that fail or answer late, callers that give up on a page (their own deadline) and
    # ask again, callers that await their own work, another user of the client: whatever the
    # timing, the walk hands out every row once, in order
    rnd = random.Random(seed)
    async with FakeLeat(token=TOKEN) as fake:
        seed_rows(fake, 120)
        for n in range(2, 13):
            query, roll = {"page": str(n)}, rnd.random()
            if roll < 0.4:
                status, body = (500, {"message": "boom"}) if roll < 0.15 else (None, None)
                delay = rnd.random() * 0.05
                fault = Fault(
                    method="GET", query=query, status=status, body=body, delay=delay, times=1
                )
                fake.add_fault(fault)
        async with LeatClient(
            TOKEN,
            base_url=fake.url,
            max_concurrency=rnd.choice([1, 1, 2, 4]),
            retry=ONE_TRY,
        ) as client:
            pager = client.giftcard_transactions.list(per_page=10, prefetch=rnd.choice([0, 1, 8]))
            by_page = rnd.random() < 0.5
            walk = pager.pages() if by_page else aiter(pager)

            async def other_user() -> None:
                for _ in range(4):
                    await asyncio.sleep(rnd.random() * 0.03)
                    with contextlib.suppress(LeatError):
                        await client.giftcard_transactions.get(fake.transactions[0].uuid)

            other = asyncio.create_task(other_user())
            seen: list[int] = []
            while True:
                try:
                    async with asyncio.timeout(rnd.choice([0.01, 1.0, 1.0])):
                        got = await anext(walk)
                except (TimeoutError, LeatAPIError):
                    continue  # ask again: from the page that failed
                except StopAsyncIteration:
                    break
                seen += [tx.id for tx in got.data] if isinstance(got, Page) else [got.id]
                if rnd.random() < 0.3:
                    await asyncio.sleep(rnd.choice([0.0, 0.005]))  # the caller's own work
            await other
    assert seen == [t.id for t in fake.transactions]


async def test_merge_by_created_at_takes_pagers(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 90, step=240.0)
    windows = split_created_at(LONG_AGO, LONG_AGO + timedelta(hours=6), timedelta(hours=3))
    gtx = client.giftcard_transactions
    pagers = [gtx.list(per_page=20, created_at=w, sort="created_at") for w in windows]
    merged = [tx.id async for tx in merge_by_created_at(*pagers[::-1])]
    assert merged == [t.id for t in fake.transactions]
    newest = [
        tx.id
        async for tx in merge_by_created_at(
            *(gtx.list(per_page=20, created_at=w, sort="-created_at") for w in windows),
            descending=True,
        )
    ]
    assert newest == merged[::-1]


async def test_leaving_a_merge_early_closes_the_walks_it_started(
    fake: FakeLeat,
) -> None:
    seed_rows(fake, 500)
    async with LeatClient(TOKEN, base_url=fake.url, max_concurrency=1) as client:
        gtx = client.giftcard_transactions
        pagers = [gtx.list(per_page=10, prefetch=5, sort="created_at") for _ in range(2)]
        async with contextlib.aclosing(merge_by_created_at(*pagers)) as merged:
            await anext(merged)
        fake.reset_requests()
        await gtx.list(per_page=1)
        assert len(fake.requests) == 1  # no prefetch of either walk went on


@pytest.mark.parametrize("sort", [None, "created_at", "-created_at"])
async def test_a_one_page_walk_after_any_answer_is_one_request(
    client: LeatClient, fake: FakeLeat, sort: Any
) -> None:
    seed_rows(fake, 30)
    with pytest.raises(GiftcardNotFoundError):  # an error answer has a Date too
        await client.giftcard_transactions.create(
            giftcard_uuid="no-such-card", amount_in_cents=5, shop_uuid=fake.shops[0].uuid or ""
        )
    fake.reset_requests()
    rows = [tx async for tx in client.giftcard_transactions.list(sort=sort)]
    assert len(rows) == 30
    (query,) = list_queries(fake)
    snapshot = datetime.fromisoformat(query["created_at[lt]"])
    assert snapshot <= datetime.now(UTC) and snapshot.microsecond == 0


async def test_walks_cost_their_pages_and_only_the_first_walk_may_spend_one_more(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 250)
    gtx = client.giftcard_transactions
    assert len([tx async for tx in gtx.list(per_page=100, sort="-created_at")]) == 250
    assert len(fake.requests) == 4  # a fresh client: the first page once more, within the bound
    for sort in ("-created_at", "created_at", None):
        fake.reset_requests()
        assert len([tx async for tx in gtx.list(per_page=100, sort=sort)]) == 250
        assert [q["page"] for q in list_queries(fake)] == ["1", "2", "3"]


async def test_rows_of_the_current_second_stay_out_of_a_walk_bounded_from_the_clock(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 25)
    before = [t.id for t in fake.transactions]
    await client.giftcard_transactions.get(fake.transactions[0].uuid or "")
    shop, card = fake.shops[0], fake.cards[0]
    # a row made "now" as every page is answered: its second is not over, it is not walked
    fake.add_hook(lambda _: fake.add_transaction(card=card, shop=shop, amount_in_cents=-1))
    for sort in ("-created_at", "created_at"):
        got = [tx.id async for tx in client.giftcard_transactions.list(per_page=10, sort=sort)]
        assert sorted(got) == before


async def test_a_walk_sees_what_was_made_while_the_client_slept() -> None:
    # the client's estimate of the server's clock stands still while its machine sleeps (and
    # a server's clock may jump): the first answer's Date tells, and the walk takes it
    now = [datetime(2024, 4, 1, 8, tzinfo=UTC)]
    async with FakeLeat(token=TOKEN, clock=lambda: now[0]) as fake:
        seed_rows(fake, 3, start=now[0] - timedelta(hours=1))
        async with LeatClient(TOKEN, base_url=fake.url) as client:
            assert len([tx async for tx in client.giftcard_transactions.list()]) == 3
            now[0] += timedelta(hours=2)
            card, shop = fake.cards[0], fake.shops[0]
            made = now[0] - timedelta(minutes=30)
            fake.add_transaction(card=card, shop=shop, amount_in_cents=5, created_at=made)
            rows = [tx async for tx in client.giftcard_transactions.list()]
    assert [tx.created_at for tx in rows][-1] == made and len(rows) == 4
