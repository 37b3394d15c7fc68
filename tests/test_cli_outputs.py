"""Where ``-o`` leads (issue 20): one writer per output, symlinks, named pipes.

The commands run as subprocesses (``tests/_cli_harness.py``) against a fake this process serves;
a held page keeps a first writer under way for exactly as long as a test needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leat_async import LeatClient
from leat_async.export import (
    OutputBusyError,
    checkpoint_path,
    export_transactions,
    partial_path,
)
from leat_async.reconcile import read_export, reconcile_to_csv
from leat_async.testing import FakeLeat

from ._command import cli, export, held_page, names, start, written
from .conftest import TOKEN, seed_rows
from .test_reconcile import write_ledger

BUSY = "is being written by another process"


@pytest.fixture
async def fake() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN) as server:
        yield server


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


async def reference(fake: FakeLeat, directory: Path, *, incremental: bool = False) -> bytes:
    """What an undisturbed export writes (by the library, in this process)."""
    directory.mkdir()  # noqa: ASYNC240 - a test's own temporary directory
    async with LeatClient(TOKEN, base_url=fake.url) as client:
        await export_transactions(client, directory / "tx.jsonl", incremental=incremental)
    return (directory / "tx.jsonl").read_bytes()


def settled_names(directory: Path) -> list[str]:
    """The files in ``directory``, but a checkpoint that is being replaced at this moment."""
    return [name for name in names(directory) if not name.endswith(".tmp")]


def ledger(path: Path) -> Path:
    return write_ledger(path, [["R1", "no-such-card", "no-such-shop", "100", "2024-06-01"]])


# -- one writer per output --------------------------------------------------------------------


@pytest.mark.parametrize("first_mode", ["plain", "incremental"])
async def test_a_second_writer_exits_2_at_once_and_the_first_is_unharmed(
    fake: FakeLeat, tmp_path: Path, first_mode: str
) -> None:
    seed_rows(fake, 450)
    flags = ["--incremental"] if first_mode == "incremental" else []
    expected = await reference(fake, tmp_path / "ref", incremental=bool(flags))
    _, hold = held_page(fake, "3")
    where = tmp_path / "out"
    where.mkdir()
    out = where / "tx.jsonl"
    first = await start(*export(fake, out, *flags))
    try:
        await written(partial_path(out), first)  # and it waits for page 3
        before = settled_names(where)
        for again in ([], ["--resume"], ["--incremental"]):
            second = await cli(*export(fake, out, *again))  # the first waits: a wait would hang
            assert second.status == 2, (again, second.err)
            assert BUSY in second.line and second.line.startswith("leat-async: error: ")
        async with LeatClient(TOKEN, base_url=fake.url) as client:  # the library holds it too
            with pytest.raises(OutputBusyError, match=BUSY):
                await export_transactions(client, out, resume=True)
        assert settled_names(where) == before  # nothing made or removed
    finally:
        hold.set()
        _, err = await asyncio.wait_for(first.communicate(), 60)
    assert first.returncode == 0, err
    assert out.read_bytes() == expected
    assert names(where) == sorted([out.name, *(["tx.jsonl.incremental.json"] if flags else [])])


async def test_a_killed_writer_leaves_no_stale_lock(fake: FakeLeat, tmp_path: Path) -> None:
    """kill -9 (no cleanup at all): the kernel lets the lock go, the resume takes over."""
    seed_rows(fake, 250)
    expected = await reference(fake, tmp_path / "ref")
    _, hold = held_page(fake, "3")
    out = tmp_path / "tx.jsonl"
    first = await start(*export(fake, out))
    try:
        await written(partial_path(out), first)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        await asyncio.wait_for(first.communicate(), 30)
        hold.set()
    resumed = await cli(*export(fake, out, "--resume"))
    assert resumed.status == 0, resumed.err
    assert out.read_bytes() == expected
    assert names(tmp_path) == ["ref", out.name]


async def test_a_second_reconcile_to_the_same_report_exits_2(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 250)
    book = ledger(tmp_path / "ledger.csv")
    report = tmp_path / "report.csv"
    rec = ["reconcile", "--ledger", str(book), "--base-url", fake.url, "-o", str(report)]
    applied, hold = held_page(fake, "2")
    first = await start(*rec)
    try:
        await asyncio.wait_for(applied.wait(), 30)
        before = files(tmp_path)
        assert partial_path(report).name in before  # the first one's report is under way
        second = await cli(*rec)
        assert second.status == 2 and BUSY in second.line, second.err
        with pytest.raises(OutputBusyError, match=BUSY):
            reconcile_to_csv(book, [], report)
        assert files(tmp_path) == before
    finally:
        hold.set()
        _, err = await asyncio.wait_for(first.communicate(), 60)
    assert first.returncode == 1, err  # discrepancies: R1, and every transaction
    lines = report.read_text().splitlines()
    assert len(lines) == 1 + 1 + 250 and lines[-1].startswith("missing_in_leat,R1,")
    assert names(tmp_path) == ["ledger.csv", "report.csv"]


# -- symlinks and named pipes -----------------------------------------------------------------


async def test_export_through_a_symlink_writes_its_target_and_keeps_the_link(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 250)
    expected = await reference(fake, tmp_path / "ref")
    data, links = tmp_path / "data", tmp_path / "links"
    data.mkdir()
    links.mkdir()
    (data / "tx.jsonl").write_bytes(b"yesterday's\n")
    link = links / "tx.jsonl"
    link.symlink_to(data / "tx.jsonl")
    done = await cli(*export(fake, link))
    assert done.status == 0, done.err
    assert link.is_symlink() and link.readlink() == data / "tx.jsonl"
    assert (data / "tx.jsonl").read_bytes() == expected

    nightly = links / "all.jsonl"  # a link to a file that does not exist yet
    nightly.symlink_to(data / "all.jsonl")
    for _ in range(2):
        done = await cli(*export(fake, nightly, "--incremental"))
        assert done.status == 0, done.err
    assert nightly.is_symlink() and (data / "all.jsonl").read_bytes() == expected
    assert names(links) == ["all.jsonl", "tx.jsonl"]  # the files beside go beside the target
    assert names(data) == ["all.jsonl", "all.jsonl.incremental.json", "tx.jsonl"]


@contextlib.asynccontextmanager
async def pipe_reader(pipe: Path) -> AsyncIterator[asyncio.Task[bytes]]:
    """A reader at the other end of ``pipe`` (``cat``), reading all the while: the task
    gives what it read once the writer closes the pipe."""
    reader = await asyncio.create_subprocess_exec("cat", str(pipe), stdout=asyncio.subprocess.PIPE)
    assert reader.stdout is not None
    got = asyncio.create_task(reader.stdout.read())
    try:
        yield got
    finally:  # a reader nobody wrote to would wait in open() for ever
        if reader.returncode is None:
            reader.kill()
        await reader.wait()
        got.cancel()


async def test_export_to_a_named_pipe_streams_into_it(fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 250)
    expected = await reference(fake, tmp_path / "ref")
    where = tmp_path / "out"
    where.mkdir()
    pipe = where / "tx.jsonl"
    os.mkfifo(pipe)
    async with pipe_reader(pipe) as got:
        done = await cli(*export(fake, pipe))
        assert done.status == 0, done.err
        assert done.line.startswith(f"leat-async: exported 250 rows to {pipe} in ")
        assert await asyncio.wait_for(got, 30) == expected
    for flag in ("--resume", "--incremental"):
        refused = await cli(*export(fake, pipe, flag))
        assert refused.status == 2 and "named pipe" in refused.line, refused.err
    assert stat.S_ISFIFO(pipe.stat().st_mode) and names(where) == [pipe.name]
    assert not checkpoint_path(pipe).exists()


async def test_a_reconcile_report_through_a_symlink_or_into_a_named_pipe(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 120)
    await reference(fake, tmp_path / "ref")
    export_file, book = tmp_path / "ref" / "tx.jsonl", ledger(tmp_path / "ledger.csv")
    rec = ["reconcile", "--ledger", str(book), "--transactions", str(export_file), "-o"]
    plain = await cli(*rec, str(tmp_path / "plain.csv"))
    assert plain.status == 1, plain.err
    expected = (tmp_path / "plain.csv").read_bytes()
    assert len(expected.splitlines()) == 1 + 1 + len(list(read_export(export_file)))

    work = tmp_path / "work"
    work.mkdir()
    (work / "real.csv").write_text("last month's\n")
    (work / "link.csv").symlink_to("real.csv")
    through = await cli(*rec, str(work / "link.csv"))
    assert through.status == 1, through.err
    assert (work / "link.csv").is_symlink() and (work / "real.csv").read_bytes() == expected

    os.mkfifo(work / "pipe.csv")
    async with pipe_reader(work / "pipe.csv") as got:
        piped = await cli(*rec, str(work / "pipe.csv"))
        assert piped.status == 1, piped.err
        assert await asyncio.wait_for(got, 30) == expected
    assert stat.S_ISFIFO((work / "pipe.csv").stat().st_mode)
    assert names(work) == ["link.csv", "pipe.csv", "real.csv"]
