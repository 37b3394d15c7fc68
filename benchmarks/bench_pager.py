"""Issue 4, the pager: items/s walking a whole listing, ours next to what a user could write.

Variants, each walking every 100-row page of the same fake listing and touching every item:

- ours, sequential: ``LeatClient(max_concurrency=1)``, ``async for tx in list(per_page=100)``;
- ours, default: ``LeatClient()`` (8 in flight, the pager prefetches 8 pages);
- raw aiohttp + ``json.loads``: pages 1..last_page one after another, dicts only (the floor);
- raw aiohttp + ``orjson.loads``: the same with the parser our client uses when installed;
- httpx + pydantic v2: ``AsyncClient.get`` and ``Page.model_validate_json``, one after another;
- ours, sequential, reading ``pager.position`` after every row (what a per-row checkpoint costs).

And small walks: one-page walks on one client (requests per walk, time per walk), next to one
raw aiohttp GET each: a walk costs the pages it fetches once the client knows the server's clock.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import pstats
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import httpx
import orjson

from leat_async import CreatedAt, LeatClient

from ._common import (
    TOKEN,
    Config,
    FakeServer,
    Goal,
    Section,
    Timing,
    fmt_int,
    fmt_ratio,
    median,
    timed,
)
from ._pydantic import PydPage

__all__ = ["run"]

PATH = "/api/v3/oauth/clients/giftcard-transactions"
PER_PAGE = 100
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}

SEQ = "ours, sequential (max_concurrency=1)"
DEFAULT = "ours, default (8 in flight, prefetch 8)"
RAW = "raw aiohttp + json.loads, sequential"
RAW_OR = "raw aiohttp + orjson.loads, sequential"
HTTPX = "httpx + pydantic v2, sequential"
POSITIONS = "ours, sequential, pager.position read after every row"

Walk = Callable[[], Awaitable[int]]


async def ours(url: str, *, max_concurrency: int | None = None) -> int:
    options: dict[str, Any] = {}
    if max_concurrency is not None:
        options["max_concurrency"] = max_concurrency
    n = 0
    async with LeatClient(TOKEN, base_url=url, **options) as client:
        async for _tx in client.giftcard_transactions.list(per_page=PER_PAGE):
            n += 1
    return n


async def ours_reading_positions(url: str) -> int:
    n = 0
    async with LeatClient(TOKEN, base_url=url, max_concurrency=1) as client:
        pager = client.giftcard_transactions.list(per_page=PER_PAGE)
        async for _tx in pager:
            n += 1
            _position = pager.position
    return n


async def raw_aiohttp(url: str, *, loads: Callable[[bytes], Any]) -> int:
    n = 0
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        page, last = 1, 1
        while page <= last:
            params = {"perPage": str(PER_PAGE), "page": str(page)}
            async with session.get(url + PATH, params=params) as resp:
                resp.raise_for_status()
                doc = loads(await resp.read())
            for _row in doc["data"]:
                n += 1
            last = doc["meta"]["last_page"]
            page += 1
    return n


async def httpx_pydantic(url: str) -> int:
    n = 0
    async with httpx.AsyncClient(headers=HEADERS) as client:
        page, last = 1, 1
        while page <= last:
            params = {"perPage": str(PER_PAGE), "page": str(page)}
            resp = await client.get(url + PATH, params=params)
            resp.raise_for_status()
            parsed = PydPage.model_validate_json(resp.content)
            for _tx in parsed.data:
                n += 1
            last = parsed.meta.last_page
            page += 1
    return n


def _walks(url: str, *, positions: bool) -> dict[str, Walk]:
    walks: dict[str, Walk] = {
        SEQ: partial(ours, url, max_concurrency=1),
        DEFAULT: partial(ours, url),
        RAW: partial(raw_aiohttp, url, loads=json.loads),
        RAW_OR: partial(raw_aiohttp, url, loads=orjson.loads),
        HTTPX: partial(httpx_pydantic, url),
    }
    if positions:
        walks[POSITIONS] = partial(ours_reading_positions, url)
    return walks


async def _measure(
    server: FakeServer, repeats: int, *, positions: bool = False
) -> tuple[dict[str, list[Timing]], int]:
    walks = _walks(server.url, positions=positions)
    items = 0
    for walk in walks.values():  # warm-up: connections, pydantic's schema, the server's caches
        _, items = await timed(server, walk)
    timings: dict[str, list[Timing]] = {name: [] for name in walks}
    for _ in range(repeats):  # interleaved, so drift on a noisy box hits every variant alike
        for name, walk in walks.items():
            timing, n = await timed(server, walk)
            if n != items:
                raise RuntimeError(f"{name} walked {n} items, expected {items}")
            timings[name].append(timing)
    return timings, items


@dataclass(frozen=True)
class Rates:
    """Medians per variant: items per wall second, and items per second of our CPU."""

    wall: dict[str, float]
    cpu: dict[str, float]

    def ratio(self, a: str, b: str) -> tuple[float, float]:
        return self.wall[a] / self.wall[b], self.cpu[a] / self.cpu[b]


def _section(
    title: str, items: int, timings: dict[str, list[Timing]], repeats: int
) -> tuple[Section, Rates]:
    rates = Rates(
        wall={name: items / median([t.wall for t in ts]) for name, ts in timings.items()},
        cpu={name: items / median([t.cpu for t in ts]) for name, ts in timings.items()},
    )
    rows = []
    for name, ts in timings.items():
        per_run = [items / t.wall for t in ts]
        rows.append(
            [
                name,
                fmt_int(rates.wall[name]),
                f"{fmt_int(min(per_run))}-{fmt_int(max(per_run))}",
                f"{median([t.wall for t in ts]) * 1000:,.0f}",
                f"{1e6 / rates.cpu[name]:.1f}",
                fmt_int(rates.cpu[name]),
                f"{median([t.server_cpu for t in ts]) * 1000:,.0f}",
            ]
        )
    headers = [
        "variant",
        "items/s (wall)",
        "min-max",
        "wall ms",
        "client CPU us/item",
        "items/client-CPU-s",
        "server CPU ms",
    ]
    notes = [
        f"{items:,} items, {-(-items // PER_PAGE)} pages of {PER_PAGE}; medians of {repeats} "
        "interleaved runs after one warm-up run each. Wall time includes the fake server's "
        "own time per page (its CPU is the last column); client CPU is this process alone.",
    ]
    return Section(title, headers, rows, notes=notes), rates


#: (label, variant a, variant b, wall goal, client-CPU goal): each ratio is a's rate over b's
Pair = tuple[str, str, str, float | None, float | None]


def _ratio_section(
    title: str, rates: Rates, pairs: list[Pair], *, notes: list[str] | None = None
) -> Section:
    """The ratios of ``pairs``, each judged on wall items/s and on items per client-CPU second
    against its own goal (issue 4 set the wall goals, issue 13 the client-CPU ones)."""
    rows = []
    goals = []
    where = title.split(", ", 1)[1]
    for label, a, b, wall_goal, cpu_goal in pairs:
        wall, cpu = rates.ratio(a, b)
        rows.append(
            [
                label,
                fmt_ratio(wall),
                fmt_ratio(cpu),
                _target(wall_goal),
                _status(wall, wall_goal),
                _target(cpu_goal),
                _status(cpu, cpu_goal),
            ]
        )
        if wall_goal is not None:
            goals.append(Goal("pager", f"{label} ({where}), wall", wall, wall_goal))
        if cpu_goal is not None:
            goals.append(Goal("pager", f"{label} ({where}), client CPU", cpu, cpu_goal))
    headers = ["ratio", "items/s (wall)", "items/CPU-s", "wall goal", "wall", "CPU goal", "CPU"]
    return Section(title, headers, rows, notes=notes or [], goals=goals)


def _target(goal: float | None) -> str:
    return f">= {goal:g}x" if goal is not None else "-"


def _status(value: float, goal: float | None) -> str:
    if goal is None:
        return "-"
    return "met" if value >= goal else "MISSED"


async def _profile_sequential(url: str) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    await ours(url, max_concurrency=1)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def run(config: Config) -> list[Section]:
    sections: list[Section] = []
    repeats = config.repeats

    seed0 = 5_000 if config.quick else 20_000
    with FakeServer(seed=seed0) as server:
        timings, items = asyncio.run(_measure(server, repeats, positions=True))
        profile = asyncio.run(_profile_sequential(server.url)) if config.profile else None
        small = asyncio.run(_small_walks(server.url, 50 if config.quick else 200))
        gets = asyncio.run(_one_row_gets(server.url, 100 if config.quick else 300, repeats))
    section, rates = _section("pager, server latency 0", items, timings, repeats)
    sections.append(section)
    pairs: list[Pair] = [
        ("ours sequential / raw aiohttp + json.loads", SEQ, RAW, 0.9, 1.0),
        ("ours sequential / httpx + pydantic", SEQ, HTTPX, 3.0, 3.5),
        ("ours sequential / raw aiohttp + orjson.loads", SEQ, RAW_OR, None, None),
        ("ours default / ours sequential", DEFAULT, SEQ, None, None),
        ("ours reading position per row / ours sequential", POSITIONS, SEQ, None, None),
    ]
    sections.append(_ratio_section("pager ratios, latency 0", rates, pairs))
    sections.append(small)
    sections.append(gets)
    if profile is not None:
        title = "cProfile of one sequential walk (latency 0), top 25 by tottime"
        sections.append(Section(title, [], [], notes=["```", profile.rstrip(), "```"]))

    seed30 = 2_000 if config.quick else 5_000
    with FakeServer(seed=seed30, latency=0.03) as server:
        timings, items = asyncio.run(_measure(server, repeats))
    section, rates = _section("pager, server latency 30 ms per page", items, timings, repeats)
    sections.append(section)
    pairs = [
        ("ours default / raw aiohttp sequential loop", DEFAULT, RAW, 6.0, None),
        ("ours default / ours sequential", DEFAULT, SEQ, None, None),
        ("ours default / httpx + pydantic sequential loop", DEFAULT, HTTPX, None, None),
        ("ours sequential / raw aiohttp + json.loads", SEQ, RAW, None, None),
    ]
    pages = -(-items // PER_PAGE)
    ceiling = pages / (1 + -(-(pages - 1) // 8))
    notes = [
        f"Ceiling for {pages} pages: the first page goes alone (it fixes the snapshot and "
        f"last_page), then waves of 8, so even free servers and clients give at most "
        f"{ceiling:.2f}x over a sequential loop. The single-process fake also answers the 8 "
        "of a wave one after another (see its CPU per page above)."
    ]
    sections.append(_ratio_section("pager ratios, latency 30 ms", rates, pairs, notes=notes))
    return sections


async def _one_row_gets(url: str, calls: int, repeats: int) -> Section:
    """``get(uuid)`` on one client, next to a raw aiohttp GET + json.loads of the same row on
    one session: the client's cost per request, when parsing is next to nothing."""
    async with LeatClient(TOKEN, base_url=url, max_concurrency=1) as client:
        page = await client.giftcard_transactions.list(per_page=PER_PAGE, sort="-created_at")
        uuid = next(tx.uuid for tx in page.data if tx.uuid is not None)  # old rows have none
        async with aiohttp.ClientSession(headers=HEADERS) as session:

            async def ours_gets() -> int:
                for _ in range(calls):
                    await client.giftcard_transactions.get(uuid)
                return calls

            async def raw_gets() -> int:
                for _ in range(calls):
                    async with session.get(f"{url}{PATH}/{uuid}") as resp:
                        resp.raise_for_status()
                        json.loads(await resp.read())["data"]
                return calls

            variants = {"ours: client.giftcard_transactions.get(uuid)": ours_gets}
            variants["raw aiohttp GET + json.loads of the same row"] = raw_gets
            runs: dict[str, list[Timing]] = {name: [] for name in variants}
            for fn in variants.values():
                await timed(None, fn)  # warm-up
            for _ in range(repeats):
                for name, fn in variants.items():
                    runs[name].append((await timed(None, fn))[0])
    cpu = {name: median([t.cpu for t in ts]) / calls for name, ts in runs.items()}
    wall = {name: median([t.wall for t in ts]) / calls for name, ts in runs.items()}
    table = [[name, f"{wall[name] * 1e6:,.0f}", f"{cpu[name] * 1e6:,.0f}"] for name in runs]
    ours_cpu, raw_cpu = cpu.values()
    ratio = ours_cpu / raw_cpu
    notes = [
        f"{calls} calls per run, medians of {repeats} interleaved runs after a warm-up. Ours / "
        f"raw, client CPU per request: {ratio:.2f}x (goal: at most 1.3x)."
    ]
    goal = Goal("pager", "one-row get: ours / raw aiohttp, client CPU", ratio, 1.3, at_most=True)
    headers = ["variant", "wall us per request", "client CPU us per request"]
    return Section("one-row get, latency 0", headers, table, notes=notes, goals=[goal])


async def _small_walks(url: str, walks: int) -> Section:
    """One-page walks on one client, next to one raw GET of the same page each."""
    # the last 12 hours: one page (the seed has ~55 rows a day), cut at each walk's snapshot
    window = CreatedAt(gte=datetime.now(UTC) - timedelta(hours=12))
    async with LeatClient(TOKEN, base_url=url, max_concurrency=1) as client:
        gtx = client.giftcard_transactions

        async def walk_all() -> int:
            return sum(
                [len([tx async for tx in gtx.list(created_at=window)]) for _ in range(walks)]
            )

        rows = len([tx async for tx in gtx.list(created_at=window)])  # the client's first walk
        first = client.stats.requests
        timing, _ = await timed(None, walk_all)
        later = (client.stats.requests - first) / walks
    params = {"perPage": str(PER_PAGE), "page": "1", **dict(window.query())}
    async with aiohttp.ClientSession(headers=HEADERS) as session:

        async def get_all() -> int:
            n = 0
            for _ in range(walks):
                async with session.get(url + PATH, params=params) as resp:
                    n += len(json.loads(await resp.read())["data"])
            return n

        await get_all()  # warm-up
        raw, _ = await timed(None, get_all)
    body = [
        [f"ours: async for over list(created_at=<{rows} rows>)", f"{later:.2f}", timing],
        ["raw aiohttp GET + json.loads of the same page", "1.00", raw],
    ]
    table = [
        [name, requests, f"{t.wall / walks * 1000:.2f}", f"{t.cpu / walks * 1e6:,.0f}"]
        for name, requests, t in body
    ]
    notes = [
        f"{walks} walks of one page ({rows} rows, no upper bound of the caller's: the snapshot "
        f"bounds it) on one client, after its first walk, which cost {first} requests: it "
        "learnt the server's clock from its first answer, and re-read that page within it. "
        "Before walks bounded their first page by a clock known from earlier answers, every "
        f"such walk cost 2 requests. Ours / raw per walk, client CPU: {timing.cpu / raw.cpu:.2f}x."
    ]
    headers = ["variant", "requests per walk", "wall ms per walk", "client CPU us per walk"]
    return Section("small walks, latency 0", headers, table, notes=notes)
