"""Walking the listing: order, snapshots, prefetch, early exit, resume."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from leat_async import (
    CreatedAt,
    InvalidInputError,
    LeatClient,
    merge_by_created_at,
    split_created_at,
)
from leat_async.testing import FakeLeat, Fault

from .conftest import LONG_AGO, TOKEN, seed_rows


def list_requests(fake: FakeLeat) -> list[dict[str, str]]:
    return [dict(r.query) for r in fake.requests if r.method == "GET"]


async def test_walks_every_row_once_in_order(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 250)
    ids = [tx.id async for tx in client.giftcard_transactions.list()]
    assert ids == [t.id for t in fake.transactions]
    pages = [p async for p in client.giftcard_transactions.list(per_page=100).pages()]
    assert [len(p.data) for p in pages] == [100, 100, 50]
    assert [p.meta.page for p in pages] == [1, 2, 3]


async def test_descending_walk(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 120)
    ids = [tx.id async for tx in client.giftcard_transactions.list(per_page=50, sort="-created_at")]
    assert ids == [t.id for t in reversed(fake.transactions)]


async def test_empty_listing_costs_one_request(client: LeatClient, fake: FakeLeat) -> None:
    assert [tx async for tx in client.giftcard_transactions.list()] == []
    assert len(fake.requests) == 1


async def test_first_page_alone(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 30)
    page = await client.giftcard_transactions.list(per_page=10)
    assert len(page.data) == 10 and page.meta.last_page == 3
    assert len(fake.requests) == 1


async def test_window_filter_walk(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 300, step=60.0)
    window = CreatedAt(gte=LONG_AGO + timedelta(minutes=10), lt=LONG_AGO + timedelta(minutes=260))
    rows = [tx async for tx in client.giftcard_transactions.list(per_page=20, created_at=window)]
    assert len(rows) == 250 and all(window.contains(tx.created_at) for tx in rows)


@pytest.mark.parametrize("sort", [None, "created_at", "-created_at"])
async def test_rows_arriving_during_the_walk_cause_no_dupes_or_skips(
    client: LeatClient, fake: FakeLeat, sort: str | None
) -> None:
    seed_rows(fake, 95)
    before = {t.id for t in fake.transactions}
    shop, card = fake.shops[0], fake.cards[0]

    def arrive(_: Any) -> None:  # two new rows after every request, created "now"
        for _ in range(2):
            fake.add_transaction(card=card, shop=shop, amount_in_cents=-1)

    fake.add_hook(arrive)
    ids = [
        tx.id async for tx in client.giftcard_transactions.list(per_page=10, sort=sort, prefetch=3)
    ]
    assert len(ids) == len(set(ids))
    assert set(ids) == before


async def test_prefetched_pages_overtaking_each_other_stay_in_order(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 60)
    fake.add_fault(Fault(method="GET", query={"page": "2"}, delay=0.3))
    ids = [tx.id async for tx in client.giftcard_transactions.list(per_page=10, prefetch=4)]
    assert ids == [t.id for t in fake.transactions]
    order = [r.query for r in fake.requests]
    assert [dict(q)["page"] for q in order].index("2") > [dict(q)["page"] for q in order].index("3")


async def test_breaking_early_stops_requests() -> None:
    sent = 0

    async def count(*_: Any) -> None:
        nonlocal sent
        sent += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    async with (
        FakeLeat(token=TOKEN, latency=0.01) as fake,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        LeatClient(TOKEN, base_url=fake.url, session=session, max_concurrency=4) as client,
    ):
        seed_rows(fake, 1000)
        n = 0
        async for _ in client.giftcard_transactions.list(per_page=10):
            n += 1
            if n == 25:
                break
        at_break = sent
        # the prefetches were cancelled: their slots are free at once, nothing more is sent
        page = await asyncio.wait_for(client.giftcard_transactions.list(per_page=1), 2.0)
    assert page.meta.total == 1000
    assert at_break <= 3 + 4 + 1  # the pages read, the prefetch window, and no more
    assert sent == at_break + 1


async def test_resume_from_a_position_with_the_same_snapshot(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 55)
    pager = client.giftcard_transactions.list(per_page=10)
    first: list[int] = []
    async for page in pager.pages():
        first.extend(tx.id for tx in page.data)
        if page.meta.page == 2:
            break
    pos = pager.position
    assert pos.page == 3 and pos.snapshot is not None
    seed_rows(fake, 5, start=datetime.now(UTC) + timedelta(hours=1))  # later rows: not in snapshot
    fake.reset_requests()
    rest = [
        tx.id
        async for tx in client.giftcard_transactions.list(
            per_page=10, page=pos.page, snapshot=pos.snapshot
        )
    ]
    assert first + rest == [t.id for t in fake.transactions[:55]]
    assert dict(fake.requests[0].query)["page"] == "3"
    assert dict(fake.requests[0].query)["created_at[lt]"] == pos.snapshot.isoformat()


async def test_snapshot_bound_comes_from_the_server_date(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 15)
    pager = client.giftcard_transactions.list(per_page=10)
    assert len([tx async for tx in pager]) == 15
    snap = pager.position.snapshot
    assert snap is not None and snap.microsecond == 0
    assert abs((snap - datetime.now(UTC)).total_seconds()) < 5
    assert list_requests(fake)[1]["created_at[lt]"] == snap.isoformat()


async def test_a_failing_page_raises_in_order_after_the_pages_before_it(
    client: LeatClient, fake: FakeLeat, caplog: Any
) -> None:
    seed_rows(fake, 100)
    fake.add_fault(
        Fault(
            method="GET",
            query={"page": "3"},
            status=400,
            body={"message": "No", "code": 1003},
            times=None,
        )
    )
    got: list[int] = []

    async def walk() -> None:
        async for page in client.giftcard_transactions.list(per_page=10, prefetch=5).pages():
            got.append(page.meta.page)

    with pytest.raises(InvalidInputError):
        await walk()
    assert got == [1, 2]
    assert "never retrieved" not in caplog.text


async def test_windows_shard_and_merge_back_in_order(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 240, step=90.0)
    start, end = LONG_AGO, LONG_AGO + timedelta(hours=6)
    windows = split_created_at(start, end, timedelta(hours=1))
    assert len(windows) == 6 and windows[0].gte == start and windows[-1].lt == end
    walks = [
        aiter(client.giftcard_transactions.list(per_page=25, created_at=w, sort="created_at"))
        for w in windows[::-1]  # any order of walks merges into one order
    ]
    merged = [tx.id async for tx in merge_by_created_at(*walks)]
    assert merged == [t.id for t in fake.transactions]


async def test_backdated_rows_arriving_mid_walk_are_survived(
    client: LeatClient, fake: FakeLeat, caplog: Any
) -> None:
    seed_rows(fake, 50)
    shop, card = fake.shops[0], fake.cards[0]
    inserted: list[int] = []

    def backdate(_: Any) -> None:  # rows that land inside the snapshot, at its very start
        if len(inserted) < 15:
            for _ in range(5):
                tx = fake.add_transaction(
                    card=card, shop=shop, amount_in_cents=-1, created_at=LONG_AGO
                )
                inserted.append(tx.id)

    fake.add_hook(backdate)
    pager = client.giftcard_transactions.list(per_page=10, sort="created_at", prefetch=0)
    ids = [tx.id async for tx in pager]
    assert len(ids) == len(set(ids))  # shifted rows are not yielded twice
    assert {t.id for t in fake.transactions[:50]} <= set(ids)  # the original rows all came
    assert pager.total_drift > 0 and "listing changed during the walk" in caplog.text


async def test_a_future_upper_bound_is_cut_at_the_snapshot(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 45)
    before = [t.id for t in fake.transactions]
    shop, card = fake.shops[0], fake.cards[0]
    fake.add_hook(lambda _: fake.add_transaction(card=card, shop=shop, amount_in_cents=-1))
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    pager = client.giftcard_transactions.list(per_page=10, created_at=CreatedAt(lt=tomorrow))
    assert [tx.id async for tx in pager] == before
    assert pager.position.snapshot is not None and pager.position.snapshot < tomorrow


async def test_an_earlier_caller_bound_wins_over_a_resumed_snapshot(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 30, step=60.0)
    cut = LONG_AGO + timedelta(minutes=10)
    pager = client.giftcard_transactions.list(
        created_at=CreatedAt(lt=cut), snapshot=datetime.now(UTC).replace(microsecond=0)
    )
    assert len([tx async for tx in pager]) == 10
    assert dict(fake.requests[0].query)["created_at[lt]"] == cut.isoformat()


async def test_a_lower_bound_in_the_current_second_is_an_empty_walk(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 5)
    now = datetime.now(UTC)
    for lower in (now, now + timedelta(hours=1)):
        assert [
            tx async for tx in client.giftcard_transactions.list(created_at=CreatedAt(gte=lower))
        ] == []
    pos = datetime.now(UTC).replace(microsecond=0)
    page = await client.giftcard_transactions.list(created_at=CreatedAt(gte=pos), snapshot=pos)
    assert list(page.data) == [] and page.meta.total == 0


async def test_a_walk_that_failed_can_go_on_without_skipping(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 60)
    fake.add_fault(
        Fault(method="GET", query={"page": "2"}, status=400, body={"message": "No", "code": 1003})
    )
    walk = client.giftcard_transactions.list(per_page=10, prefetch=3).pages()
    got = [(await anext(walk)).meta.page]
    with pytest.raises(InvalidInputError):
        await anext(walk)
    got += [page.meta.page async for page in walk]  # asking again refetches page 2
    assert got == [1, 2, 3, 4, 5, 6]


async def test_a_descending_walk_rereads_its_first_page_within_the_snapshot(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 30)
    shop, card = fake.shops[0], fake.cards[0]
    added: list[int] = []

    def made_between_query_and_date(_: Any) -> None:
        # the server ran page 1's query, then a row was made, then it stamped Date a second
        # later: the row is older than the snapshot, so the walk must yield it
        if not added:
            when = datetime.now(UTC) - timedelta(seconds=1)
            added.append(
                fake.add_transaction(card=card, shop=shop, amount_in_cents=-1, created_at=when).id
            )

    fake.add_hook(made_between_query_and_date)
    ids = [tx.id async for tx in client.giftcard_transactions.list(per_page=10, sort="-created_at")]
    assert ids == [added[0], *(t.id for t in reversed(fake.transactions[:30]))]
