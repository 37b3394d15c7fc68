"""Issue 19, point 4: what "every row once" costs against an order of equal seconds that changes
on every request.

The same walk (``sort="created_at"``, 100-row pages, on a client that already knows the
server's clock) over listings of one density after another (rows per ``created_at`` second),
against the bundled fake in this process: once with a stable order, once with
``FakeLeat(unstable_ties=...)``, which reorders each second on every request. For each: the
requests the walk made, the pages the listing has, the page boundaries that fall inside a
second, and whether every row came once. The goal: on a stable order no request beyond the
pages; on an unstable one every row once, with at most one more request per boundary inside
a second (about twice the pages at 60 rows a second).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from leat_async import LeatClient
from leat_async.testing import FakeLeat

from ._common import Config, Goal, Section

__all__ = ["run"]

START = datetime(2024, 3, 1, tzinfo=UTC)
PER_PAGE = 100


async def _walk(rows: int, per_second: int, *, unstable: bool) -> tuple[int, int, int, bool]:
    """Requests of one walk, pages, boundaries inside a second, and every row once."""
    async with FakeLeat(token="ties", unstable_ties=7 if unstable else False) as fake:
        seconds = max(1, rows // per_second)
        fake.seed(rows, start=START, end=START + timedelta(seconds=seconds - 1))
        made = Counter(t.id for t in fake.transactions)
        stamps = sorted(t.created_at for t in fake.transactions)
        cut = sum(
            1
            for boundary in range(PER_PAGE, len(stamps), PER_PAGE)
            if stamps[boundary - 1] == stamps[boundary]
        )
        async with LeatClient("ties", base_url=fake.url) as client:
            await client.giftcard_transactions.list(per_page=1)  # the client learns the clock
            fake.reset_requests()
            gtx = client.giftcard_transactions
            seen = Counter([tx.id async for tx in gtx.list(per_page=PER_PAGE, sort="created_at")])
        return len(fake.requests), -(-rows // PER_PAGE), cut, seen == made


def run(config: Config) -> list[Section]:
    rows = 5_000 if config.quick else 20_000
    table: list[list[str]] = []
    goals: list[Goal] = []
    for per_second in (1, 10, 60):
        for unstable in (False, True):
            requests, pages, cut, once = asyncio.run(_walk(rows, per_second, unstable=unstable))
            table.append(
                [
                    f"{per_second}/s",
                    "unstable" if unstable else "stable",
                    str(pages),
                    str(cut),
                    str(requests),
                    f"{requests / pages:.2f}",
                    "yes" if once else "NO",
                ]
            )
            label = f"{per_second}/s {'unstable' if unstable else 'stable'}"
            most = pages + cut if unstable else pages  # one more per cut second at the most
            goals.append(Goal("ties", f"{label}: requests", requests, most, " req", True))
            goals.append(Goal("ties", f"{label}: every row once", 100.0 * once, 100, "%"))
    notes = [
        f"{rows:,} rows in 100-row pages, sort=created_at, a client that knows the server's "
        "clock. 'cut': page boundaries that fall inside a second. Under an unstable order a "
        "second is fetched whole only where the walk saw one of its rows twice."
    ]
    headers = ["density", "order", "pages", "cut", "requests", "per page", "every row once"]
    return [Section("walks against an unstable order (issue 19)", headers, table, notes, goals)]
