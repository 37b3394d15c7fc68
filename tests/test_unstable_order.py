"""Every row once against a server whose order of equal seconds changes on every request.

Issue 19, point 4: MySQL with ``ORDER BY created_at`` and ``LIMIT/OFFSET`` may return the rows
of one second in a different order on every request, so page offsets skip some and repeat
others. ``FakeLeat(unstable_ties=True)`` does that; walks must still hand out every row of
their snapshot once, and say so when they cannot prove it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import leat_async as la
from leat_async import CreatedAt, LeatClient, Position
from leat_async.export import export_transactions
from leat_async.reconcile import read_export
from leat_async.testing import FakeLeat, Fault
from leat_async.testing._records import transaction_json

from ._command import cli
from .conftest import FAST_RETRY, LONG_AGO, TOKEN

DENSE = 3000  # rows ...
SECONDS = 50  # ... in 50 seconds: 60 a second, so nearly every page boundary splits a second


def dense(fake: FakeLeat, n: int = DENSE, seconds: int = SECONDS) -> list[int]:
    fake.seed(n, start=LONG_AGO, end=LONG_AGO + timedelta(seconds=seconds))
    return [t.id for t in fake.transactions]


@pytest.fixture
async def unstable() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN, unstable_ties=1) as server:
        yield server


@pytest.fixture
async def client(unstable: FakeLeat) -> AsyncIterator[LeatClient]:
    async with LeatClient(TOKEN, base_url=unstable.url, retry=FAST_RETRY, timeout=5.0) as c:
        yield c


def lists(fake: FakeLeat) -> int:
    return sum(1 for r in fake.requests if r.method == "GET")


async def test_the_fake_reorders_a_second_on_every_request(unstable: FakeLeat) -> None:
    dense(unstable)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    url = f"{unstable.url}{FakeLeat.PREFIX}/giftcard-transactions"
    query = {"perPage": "100", "page": "2", "sort": "created_at"}
    async with aiohttp.ClientSession(headers=headers) as http:
        pages = []
        for _ in range(3):
            async with http.get(url, params=query) as resp:
                pages.append((await resp.json())["data"])
    assert len({tuple(row["id"] for row in page) for page in pages}) > 1
    stamps = [[row["created_at"] for row in page] for page in pages]
    assert stamps[0] == stamps[1] == stamps[2]  # the order of the seconds holds


@pytest.mark.parametrize("sort", [None, "created_at", "-created_at"])
async def test_a_walk_hands_out_every_row_once(
    client: LeatClient, unstable: FakeLeat, sort: Any
) -> None:
    made = dense(unstable)
    await client.giftcard_transactions.list(per_page=1)  # the client learns the clock
    unstable.reset_requests()
    seen = [tx.id async for tx in client.giftcard_transactions.list(sort=sort)]
    assert Counter(seen) == Counter(made)
    pages = -(-DENSE // 100)
    assert lists(unstable) <= 2 * pages  # at most one more request a page


async def test_a_stable_server_costs_no_extra_request(fake: FakeLeat) -> None:
    made = dense(fake)
    async with LeatClient(TOKEN, base_url=fake.url) as client:
        await client.giftcard_transactions.list(per_page=1)
        fake.reset_requests()
        seen = [tx.id async for tx in client.giftcard_transactions.list(sort="created_at")]
    assert seen == made and lists(fake) == DENSE // 100


@pytest.mark.parametrize("stop_after", [1, 99, 100, 101, 1234, 2950])
async def test_a_resumed_walk_hands_out_the_rest_once(
    client: LeatClient, unstable: FakeLeat, stop_after: int
) -> None:
    made = dense(unstable)
    pager = client.giftcard_transactions.list(sort="created_at")
    first: list[int] = []
    async for tx in pager:
        first.append(tx.id)
        if len(first) == stop_after:
            break
    position = pager.position
    assert position is not None
    saved = Position.from_dict(json.loads(json.dumps(position.to_dict())))
    async with LeatClient(TOKEN, base_url=unstable.url, retry=FAST_RETRY) as other:
        rest = [
            tx.id async for tx in other.giftcard_transactions.list(sort="created_at", resume=saved)
        ]
    assert Counter(first + rest) == Counter(made)


async def test_pages_walk_and_prefetch_alike_hand_out_every_row_once(
    unstable: FakeLeat,
) -> None:
    made = dense(unstable)
    assert crowding(unstable) <= 90
    for concurrency in (1, 8):
        async with LeatClient(TOKEN, base_url=unstable.url, max_concurrency=concurrency) as c:
            pages = c.giftcard_transactions.list(per_page=90, sort="-created_at").pages()
            seen = [tx.id async for page in pages for tx in page.data]
        assert Counter(seen) == Counter(made)


def crowding(fake: FakeLeat) -> int:
    """The most rows of any one second."""
    return max(Counter(t.created_at for t in fake.transactions).values())


def crowd(fake: FakeLeat) -> datetime:
    """250 rows in one second, and a server that, asked for that second alone, always shows
    the same 100 of them: nothing can prove a walk saw each once."""
    crowded = LONG_AGO.replace(microsecond=0)
    fake.seed(250, start=crowded, end=crowded)
    fake.seed(50, start=crowded + timedelta(seconds=1), end=crowded + timedelta(seconds=9))
    shown = {
        "data": [transaction_json(t) for t in fake.transactions[:100]],
        "meta": {
            "page": 1,
            "limit": 100,
            "viewing_from": 1,
            "viewing_to": 100,
            "last_page": 3,
            "total": 250,
        },
    }
    gte = crowded.astimezone(UTC).isoformat()
    fake.add_fault(
        Fault(method="GET", query={"created_at[gte]": gte}, status=200, body=shown, times=None)
    )
    return crowded


async def test_an_export_that_cannot_be_proven_exits_3_resumable(
    unstable: FakeLeat, tmp_path: Path
) -> None:
    crowd(unstable)
    out = tmp_path / "all.jsonl"
    done = await cli("export", "--base-url", unstable.url, "-o", str(out), "-q")
    assert done.status == 3 and "cannot prove" in done.line
    assert not out.exists() and (tmp_path / "all.jsonl.checkpoint.json").exists()


async def test_a_second_that_cannot_be_proven_complete_says_so(
    client: LeatClient, unstable: FakeLeat
) -> None:
    crowd(unstable)
    pager = client.giftcard_transactions.list(sort="created_at")
    with pytest.raises(la.IncompleteWalkError) as info:
        _ = [tx async for tx in pager]
    assert "2024-03-01T12:00:00" in str(info.value) and "per_page" in str(info.value)
    assert isinstance(info.value, la.LeatError) and info.value.expected == 250


async def test_bounds_go_out_in_whole_utc_seconds_meaning_what_was_asked(
    fake: FakeLeat,
) -> None:
    half = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC).astimezone()
    cases = {
        CreatedAt(gte=half): ("created_at[gte]", "2024-05-01T12:00:01+00:00"),
        CreatedAt(gt=half): ("created_at[gt]", "2024-05-01T12:00:00+00:00"),
        CreatedAt(lt=half): ("created_at[lt]", "2024-05-01T12:00:01+00:00"),
        CreatedAt(lte=half): ("created_at[lte]", "2024-05-01T12:00:00+00:00"),
    }
    async with LeatClient(TOKEN, base_url=fake.url) as client:
        for bound, sent in cases.items():
            fake.reset_requests()
            await client.giftcard_transactions.list(created_at=bound)
            assert sent in fake.requests[0].query


async def test_an_export_writes_every_row_once(
    client: LeatClient, unstable: FakeLeat, tmp_path: Path
) -> None:
    made = dense(unstable)
    out = tmp_path / "all.jsonl"
    result = await export_transactions(client, out)
    assert Counter(t.id for t in read_export(out)) == Counter(made)
    assert result.rows == DENSE


async def test_the_command_line_export_and_reconcile_see_every_row_once(
    unstable: FakeLeat, tmp_path: Path
) -> None:
    made = dense(unstable)
    out = tmp_path / "all.csv"
    done = await cli("export", "--base-url", unstable.url, "-o", str(out), "-q")
    assert done.status == 0, done.err
    assert Counter(t.id for t in read_export(out)) == Counter(made)
    ledger = tmp_path / "ledger.csv"
    lines = ["reference,giftcard_uuid,shop_uuid,amount_in_cents,created_at"]
    lines += [
        f"r{t.id},{t.card.uuid},{t.shop.uuid},{t.amount_in_cents},{t.created_at.isoformat()}"
        for t in read_export(out)
        if t.card.uuid is not None and t.shop.uuid is not None
    ]
    ledger.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.csv"
    args = ("reconcile", "--ledger", str(ledger), "--base-url", unstable.url, "-o", str(report))
    done = await cli(*args, "-q")
    unexpected = [line for line in report.read_text().splitlines()[1:] if "missing" in line]
    assert unexpected == [] and done.status in (0, 1), done.err


async def test_incremental_runs_see_every_row_once(tmp_path: Path) -> None:
    now = [LONG_AGO + timedelta(days=1)]
    async with FakeLeat(token=TOKEN, unstable_ties=2, clock=lambda: now[0]) as unstable:
        dense(unstable)
        out = tmp_path / "inc.jsonl"
        async with LeatClient(TOKEN, base_url=unstable.url) as client:
            await export_transactions(client, out, incremental=True, settle=0)
        later = now[0] + timedelta(seconds=10)
        now[0] += timedelta(hours=1)  # a night later, in a new process
        unstable.seed(600, start=later, end=later + timedelta(seconds=10))
        async with LeatClient(TOKEN, base_url=unstable.url) as client:
            await export_transactions(client, out, incremental=True, settle=0)
        made = Counter(t.id for t in unstable.transactions)
    assert Counter(t.id for t in read_export(out)) == made and len(made) == DENSE + 600


async def test_many_seeds_many_sizes() -> None:
    """Every row once whatever the shuffles and the page size, as long as a page holds a
    second; with smaller pages, every row once or an IncompleteWalkError, never a row less."""
    for seed in range(3):
        async with FakeLeat(token=TOKEN, unstable_ties=seed) as unstable:
            made = Counter(dense(unstable, n=1500, seconds=40))
            async with LeatClient(TOKEN, base_url=unstable.url) as client:
                for per_page in (7, 25, crowding(unstable), 100):
                    pager = client.giftcard_transactions.list(per_page=per_page, sort="created_at")
                    try:
                        seen = Counter([tx.id async for tx in pager])
                    except la.IncompleteWalkError:
                        assert per_page < crowding(unstable)
                    else:
                        assert seen == made, (seed, per_page)
