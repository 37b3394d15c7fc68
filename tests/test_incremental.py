"""Incremental export against the fake over loopback, with a clock of its own (so "a night
later" is one assignment): the library, then ``leat-async export --incremental`` as a
subprocess, nightly and killed at every phase."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from leat_async import CreatedAt, LeatClient
from leat_async.export import (
    CheckpointError,
    checkpoint_path,
    export_transactions,
    incremental_path,
    partial_path,
)
from leat_async.reconcile import read_export
from leat_async.testing import FakeLeat, RecordedRequest

from ._command import cli, start
from .conftest import FAST_RETRY, LONG_AGO, TOKEN, seed_rows

T0 = LONG_AGO + timedelta(days=30)  # the clock at the first run
T1 = T0 + timedelta(hours=20)  # ... and at the second (a night later)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN, clock=clock) as server:
        yield server


@pytest.fixture
async def client(fake: FakeLeat) -> AsyncIterator[LeatClient]:
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY, timeout=5.0) as c:
        yield c


def ids(path: Path) -> list[int]:
    return [t.id for t in read_export(path)]


def add_rows(fake: FakeLeat, n: int, start: datetime) -> list[int]:
    card, shop = fake.cards[0], fake.shops[0]
    return [
        fake.add_transaction(
            card=card, shop=shop, amount_in_cents=1 + i, created_at=start + timedelta(seconds=i)
        ).id
        for i in range(n)
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_later_runs_append_only_new_rows(
    client: LeatClient, fake: FakeLeat, clock: Clock, tmp_path: Path, fmt: str
) -> None:
    seed_rows(fake, 250)
    old = [t.id for t in fake.transactions]
    young = add_rows(fake, 2, T0 - timedelta(seconds=30))  # within --settle: they wait
    out = tmp_path / f"nightly.{fmt}"

    first = await export_transactions(client, out, format=fmt, incremental=True)  # type: ignore[arg-type]
    assert ids(out) == old and first.rows == first.rows_this_run == 250
    assert first.through == T0 - timedelta(seconds=60)
    state = json.loads(incremental_path(out).read_text())
    assert state["through"] == first.through.isoformat() and state["rows"] == 250
    assert TOKEN not in incremental_path(out).read_text()

    new = add_rows(fake, 120, T0 + timedelta(minutes=5))
    clock.now = T1
    fake.reset_requests()
    second = await export_transactions(client, out, format=fmt, incremental=True)  # type: ignore[arg-type]
    assert ids(out) == old + young + new  # each row once, in order
    assert second.rows_this_run == 122 and second.rows == 372
    # the pages of the new rows, and once more the first: the fake's clock jumped hours ahead
    # of what the client knew of it, so the walk took the snapshot the server's answer told
    assert second.requests == len(fake.requests) == 3
    assert {"page": "1", "created_at[gte]": first.through.isoformat()}.items() <= dict(
        fake.requests[0].query
    ).items()
    if fmt == "csv":
        assert out.read_text().count("id,uuid,") == 1  # one header

    before = out.read_bytes()
    clock.now = T1 + timedelta(hours=1)
    third = await export_transactions(client, out, format=fmt, incremental=True)  # type: ignore[arg-type]
    assert out.read_bytes() == before and third.rows_this_run == 0
    assert third.through == second.through and third.requests == 2  # an empty page (twice)
    assert sorted(os.listdir(tmp_path)) == [out.name, incremental_path(out).name]


async def test_settle_and_an_empty_start(
    client: LeatClient, fake: FakeLeat, clock: Clock, tmp_path: Path
) -> None:
    out = tmp_path / "n.jsonl"
    empty = await export_transactions(client, out, incremental=True)
    assert out.read_bytes() == b"" and empty.through is None and empty.rows == 0
    seed_rows(fake, 3, start=T0 - timedelta(seconds=100))  # 100, 99, 98 s before T0
    done = await export_transactions(client, out, incremental=True, settle=99)
    assert len(ids(out)) == 1 and done.through == T0 - timedelta(seconds=99)
    clock.now = T1
    await export_transactions(client, out, incremental=True, settle=0)
    assert ids(out) == [t.id for t in fake.transactions]


async def test_a_finished_range_costs_no_request(
    client: LeatClient, fake: FakeLeat, clock: Clock, tmp_path: Path
) -> None:
    seed_rows(fake, 20)
    window = CreatedAt(lt=LONG_AGO + timedelta(seconds=10))
    out = tmp_path / "w.jsonl"
    await export_transactions(client, out, incremental=True, created_at=window)
    fake.reset_requests()
    clock.now = T1
    again = await export_transactions(client, out, incremental=True, created_at=window)
    assert len(ids(out)) == 10 and again.rows_this_run == 0 and fake.requests == []


async def test_refusals(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 5)
    out = tmp_path / "n.jsonl"
    await export_transactions(client, out, incremental=True)
    with pytest.raises(CheckpointError, match="different shop_uuid"):
        await export_transactions(client, out, incremental=True, shop_uuid=fake.shops[0].uuid)
    with pytest.raises(CheckpointError, match="different format"):
        await export_transactions(client, out, incremental=True, format="csv")
    with pytest.raises(ValueError, match="resume"):
        await export_transactions(client, out, incremental=True, resume=True)
    with out.open("ab") as f:
        f.write(b"{}\n")  # someone else wrote to it
    with pytest.raises(CheckpointError, match="changed since its last incremental run"):
        await export_transactions(client, out, incremental=True)
    plain = tmp_path / "plain.jsonl"
    await export_transactions(client, plain)
    with pytest.raises(CheckpointError, match="not written by --incremental"):
        await export_transactions(client, plain, incremental=True)
    await export_transactions(client, out)  # a plain export replaces FILE: the state goes
    assert not incremental_path(out).exists() and not partial_path(out).exists()


# -- the command, in a subprocess ---------------------------------------------------------------


def nightly(fake: FakeLeat, out: Path) -> list[str]:
    return ["export", "--base-url", fake.url, "-o", str(out), "--incremental"]


async def test_nightly_runs(fake: FakeLeat, clock: Clock, tmp_path: Path) -> None:
    seed_rows(fake, 150)
    add_rows(fake, 3, T0 - timedelta(seconds=20))  # younger than --settle's 60 s: they wait
    out = tmp_path / "nightly.csv"
    first = await cli(*nightly(fake, out))
    assert first.status == 0, first.err
    through = (T0 - timedelta(seconds=60)).isoformat()
    assert first.line.startswith(f"leat-async: appended 150 rows to {out} in ")
    assert first.line.endswith(f"; it holds 150 rows, every row created before {through}")

    add_rows(fake, 120, T0 + timedelta(hours=1))
    clock.now = T1
    fake.reset_requests()
    second = await cli(*nightly(fake, out))
    assert second.status == 0 and "appended 123 rows" in second.line
    assert "(2 pages, 2 requests;" in second.line and len(fake.requests) == 2
    assert [t.id for t in read_export(out)] == [t.id for t in fake.transactions]
    assert out.read_text().count("id,uuid") == 1

    other = await cli(*nightly(fake, out), "--shop-uuid", fake.shops[0].uuid)
    assert other.status == 2 and "different shop_uuid" in other.line


def steps_of(log: Path) -> list[str]:
    steps = log.read_text().splitlines()
    log.unlink()
    return steps


#: the later run's phases, each by the file step a kill comes just before (its nth such step)
LATER_PHASES = {
    "FILE copied, no checkpoint yet": ("fsync tx.jsonl.partial", 1),
    "first checkpoint being put in place": ("replace tx.jsonl.checkpoint.json.tmp", 1),
    "new rows written, commit begins": ("fsync tx.jsonl.partial", 2),
    "done checkpoint being put in place": ("replace tx.jsonl.checkpoint.json.tmp", 2),
    "complete, before the rename": ("replace tx.jsonl.partial", 1),
    "renamed, how far FILE goes not yet recorded": ("replace tx.jsonl.incremental.json.tmp", 1),
    "recorded, checkpoint not yet removed": ("unlink tx.jsonl.checkpoint.json", 1),
}


def index_of(steps: list[str], step: str, nth: int) -> int:
    """The 1-based number of the ``nth`` ``step`` in ``steps``."""
    found = [i for i, s in enumerate(steps, 1) if s == step]
    return found[nth - 1]


async def together(scenarios: Iterable[Awaitable[None]], at_once: int = 3) -> None:
    """Run independent scenarios a few at a time (each is mostly a child's start-up)."""
    gate = asyncio.Semaphore(at_once)

    async def one(scenario: Awaitable[None]) -> None:
        async with gate:
            await scenario

    await asyncio.gather(*(one(s) for s in scenarios))


async def kill_and_rerun(
    args: list[str], kill: dict[str, str], on_request: Callable[[int], None] | None = None
) -> int:
    """Run ``args`` until it is SIGKILLed (before a file step, or by ``on_request(pid)``)."""
    proc = await start(*args, **kill)
    if on_request is not None:
        on_request(proc.pid)
    await asyncio.wait_for(proc.communicate(), 60)
    return await proc.wait()


async def test_killed_at_any_point_the_same_command_again_gives_the_same_file(
    fake: FakeLeat, clock: Clock, tmp_path: Path
) -> None:
    """The first run and a later one, each killed (kill -9) before one of its file steps or
    while it waits for a page; then the same command again. The file equals an uninterrupted
    run's byte for byte, and a reader never sees anything but a complete run's file."""
    seed_rows(fake, 230)
    add_rows(fake, 2, T0 - timedelta(seconds=30))
    reference, log = tmp_path / "reference", tmp_path / "steps.log"
    reference.mkdir()
    ref_file = reference / "tx.jsonl"
    assert (await cli(*nightly(fake, ref_file), HARNESS_LOG=str(log))).status == 0
    first_steps = steps_of(log)
    after_first = {p.name: p.read_bytes() for p in reference.iterdir()}
    rng = random.Random(12)
    killer: dict[str, int] = {}

    def kill_at_page(page: str) -> Callable[[int], None]:
        def hook(rec: RecordedRequest) -> None:
            if dict(rec.query).get("page") == page and "pid" in killer:
                os.kill(killer.pop("pid"), signal.SIGKILL)

        fake.add_hook(hook)
        return lambda pid: killer.update(pid=pid)

    async def scenario(name: str, base: dict[str, bytes], expected: bytes, **how: str) -> None:
        where = tmp_path / name
        where.mkdir()
        for file, data in base.items():
            (where / file).write_bytes(data)
        out = where / "tx.jsonl"
        page = how.pop("page", None)
        status = await kill_and_rerun(nightly(fake, out), how, kill_at_page(page) if page else None)
        assert status == -signal.SIGKILL, (name, status)  # killed where asked
        seen = out.read_bytes() if out.exists() else None
        assert seen in (base.get(out.name), expected), name  # atomic for a reader
        again = await cli(*nightly(fake, out))
        assert again.status == 0, (name, again.err)
        assert out.read_bytes() == expected, name
        assert sorted(os.listdir(where)) == [out.name, incremental_path(out).name], name
        assert not checkpoint_path(out).exists()

    first = after_first[ref_file.name]
    await together(
        scenario(f"first-{at}", {}, first, HARNESS_KILL_AT=str(at))
        for at in rng.sample(range(1, len(first_steps) + 1), 2)
    )
    await scenario("first-page-2", {}, first, page="2")

    add_rows(fake, 140, T0 + timedelta(minutes=30))  # a night's new rows
    clock.now = T1
    assert (await cli(*nightly(fake, ref_file), HARNESS_LOG=str(log))).status == 0
    later_steps = steps_of(log)
    later = ref_file.read_bytes()
    assert later.startswith(first) and len(later.splitlines()) == 230 + 2 + 140
    await together(
        scenario(phase, after_first, later, HARNESS_KILL_AT=str(index_of(later_steps, *step)))
        for phase, step in LATER_PHASES.items()
    )
    await scenario("later-page-2", after_first, later, page="2")
