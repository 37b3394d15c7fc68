"""Issue 3, pacing: N requests against a fake limited to 20 requests per 1-second window.

Variants, each firing all N requests at once (``asyncio.gather``) and waiting for all answers:

- ours, default settings: no ``rate_limit=``; the client paces itself from the server's
  ``X-RateLimit-*`` headers and any 429's ``Retry-After``;
- ours with ``rate_limit=20`` set client-side as well;
- naive aiohttp: 8 workers; on a 429 a worker sleeps ``Retry-After`` and sends again.

The fake counts 429s in-process only, so they are counted here, client-side: ours from
``client.stats.rate_limited``, the naive one as it sees them. The server's window is fixed and
opens at the first request after the last one expired, so a perfect client puts ``limit``
requests into each window, back to back. The sustained rate therefore leaves out the first
window's burst: ``(N - limit) / (last answer - first answer)``; a perfect client scores 100 %.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from leat_async import LeatClient

from ._common import TOKEN, Config, FakeServer, Goal, Section, median

__all__ = ["run"]

PATH = "/api/v3/oauth/clients/giftcard-transactions"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
PARAMS = {"perPage": "1", "page": "1"}
LIMIT = 20
WINDOW = 1.0
NAIVE_CONCURRENCY = 8


@dataclass(frozen=True)
class Outcome:
    """One run: when each request's answer arrived, how many 429s and attempts it took."""

    started: float
    done: list[float]
    rate_limited: int
    attempts: int

    @property
    def wall(self) -> float:
        return max(self.done) - self.started

    @property
    def sustained(self) -> float:
        """Requests per second after the first window's burst (see the module docstring)."""
        done = sorted(self.done)
        span = done[-1] - done[0]
        return (len(done) - LIMIT) / span if span > 0 else float("nan")


async def ours(url: str, n: int, *, rate_limit: int | None) -> Outcome:
    async with LeatClient(TOKEN, base_url=url, rate_limit=rate_limit) as client:

        async def one() -> float:
            await client.giftcard_transactions.list(per_page=1)
            return time.perf_counter()

        started = time.perf_counter()
        done = await asyncio.gather(*(one() for _ in range(n)))
        stats = client.stats
    return Outcome(started, list(done), stats.rate_limited, stats.requests)


async def naive(url: str, n: int) -> Outcome:
    slots = asyncio.Semaphore(NAIVE_CONCURRENCY)
    counts = {"429": 0, "attempts": 0}
    async with aiohttp.ClientSession(headers=HEADERS) as session:

        async def one() -> float:
            async with slots:
                while True:
                    async with session.get(url + PATH, params=PARAMS) as resp:
                        counts["attempts"] += 1
                        await resp.read()
                        if resp.status != 429:
                            resp.raise_for_status()
                            return time.perf_counter()
                        counts["429"] += 1
                        delay = float(resp.headers.get("Retry-After", "1"))
                    await asyncio.sleep(delay)

        started = time.perf_counter()
        done = await asyncio.gather(*(one() for _ in range(n)))
    return Outcome(started, list(done), counts["429"], counts["attempts"])


async def _measure(
    runs: dict[str, Callable[[], Awaitable[Outcome]]], repeats: int
) -> dict[str, list[Outcome]]:
    results: dict[str, list[Outcome]] = {name: [] for name in runs}
    for _ in range(repeats):  # interleaved
        for name, fn in runs.items():
            await asyncio.sleep(WINDOW + 0.1)  # every run starts on a fresh server window
            results[name].append(await fn())
    return results


def run(config: Config) -> list[Section]:
    n = 60 if config.quick else 200
    repeats = min(config.repeats, 3)
    default = "ours, default (paced by server headers)"
    capped = f"ours, rate_limit={LIMIT} client-side"
    naive_name = f"naive aiohttp, {NAIVE_CONCURRENCY} workers, sleep Retry-After"
    with FakeServer(seed=1_000, rate_limit=LIMIT, rate_window=WINDOW) as server:
        url = server.url
        runs: dict[str, Callable[[], Awaitable[Outcome]]] = {
            default: lambda: ours(url, n, rate_limit=None),
            capped: lambda: ours(url, n, rate_limit=LIMIT),
            naive_name: lambda: naive(url, n),
        }
        results = asyncio.run(_measure(runs, repeats))

    rows = []
    shares: dict[str, float] = {}
    for name, outcomes in results.items():
        sustained = median([o.sustained for o in outcomes])
        shares[name] = sustained / LIMIT * 100
        limited = [o.rate_limited for o in outcomes]
        rows.append(
            [
                name,
                f"{shares[name]:.1f} %",
                f"{sustained:.2f}",
                f"{median([n / o.wall for o in outcomes]):.2f}",
                f"{median([o.wall for o in outcomes]):.2f}",
                f"{median(limited):.0f} ({min(limited)}-{max(limited)})",
                f"{median([o.attempts for o in outcomes]):.0f}",
            ]
        )
    headers = [
        "variant",
        "share of limit",
        "sustained req/s",
        "N / wall, req/s",
        "wall s",
        "429s (min-max)",
        "attempts",
    ]
    ideal = (-(-n // LIMIT) - 1) * WINDOW
    notes = [
        f"{n} list calls (page 1, per_page=1) fired at once; fake limited to {LIMIT} requests per "
        f"{WINDOW:g} s fixed window; medians of {repeats} interleaved runs. Share of limit = "
        f"sustained req/s / {LIMIT}. A perfect client finishes in about {ideal:.1f} s "
        f"({n // LIMIT} windows, the last one entered at {ideal:.0f} s).",
    ]
    goal = Goal("rate", "ours default: sustained share of the limit", shares[default], 95, "%")
    return [Section("rate: pacing under a 20 req/s limit", headers, rows, notes, [goal])]
