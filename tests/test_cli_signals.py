"""Stopping a command (issue 20): SIGTERM as Ctrl-C, at any moment, without a traceback.

systemd, Kubernetes and ``timeout`` send SIGTERM; a terminal sends SIGINT. Either one cleans up
(temporary files go, an export stays resumable), prints one line and exits 128 + the signal.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from leat_async import LeatClient
from leat_async.export import checkpoint_path, export_transactions, partial_path
from leat_async.testing import FakeLeat

from ._command import cli, environ, names, start, written
from ._command import held_page as hold_page
from .conftest import TOKEN, seed_rows
from .test_reconcile import write_ledger

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN) as server:
        yield server


@pytest.fixture
def held_page(fake: FakeLeat) -> Iterator[Callable[[str], asyncio.Event]]:
    """``held_page(page)``: the first request for ``page`` gets no answer while the test runs;
    the event returned is set when that request arrives."""
    holds: list[asyncio.Event] = []

    def held(page: str) -> asyncio.Event:
        applied, hold = hold_page(fake, page)
        holds.append(hold)
        return applied

    yield held
    for hold in holds:
        hold.set()


@SIGNALS
@pytest.mark.parametrize("mode", ["plain", "incremental"])
async def test_a_signal_mid_export_leaves_it_resumable(
    fake: FakeLeat,
    held_page: Callable[[str], asyncio.Event],
    tmp_path: Path,
    sig: signal.Signals,
    mode: str,
) -> None:
    seed_rows(fake, 450)
    incremental = mode == "incremental"
    (tmp_path / "ref").mkdir()
    async with LeatClient(TOKEN, base_url=fake.url) as client:
        await export_transactions(client, tmp_path / "ref" / "tx.jsonl", incremental=incremental)
    expected = (tmp_path / "ref" / "tx.jsonl").read_bytes()
    where = tmp_path / "out"
    where.mkdir()
    out = where / "tx.jsonl"
    command = ["export", "--base-url", fake.url, "-o", str(out)]
    if incremental:
        command.append("--incremental")
    held_page("3")
    proc = await start(*command)
    try:
        await written(partial_path(out), proc)  # and it waits for page 3
    finally:
        os.kill(proc.pid, sig)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 128 + sig
    how = "again" if incremental else "with --resume"
    assert err.decode() == f"leat-async: {WORD[sig]}; run the same command {how} to continue\n"
    assert names(where) == [checkpoint_path(out).name, partial_path(out).name]
    assert json.loads(checkpoint_path(out).read_text())["rows"] in (100, 200)

    again = await cli(*command, *([] if incremental else ["--resume"]))
    assert again.status == 0, again.err
    assert out.read_bytes() == expected


@SIGNALS
async def test_a_signal_mid_reconcile_removes_its_files(
    fake: FakeLeat, held_page: Callable[[str], asyncio.Event], tmp_path: Path, sig: signal.Signals
) -> None:
    seed_rows(fake, 250)
    rows = [[f"R{i}", "card", "shop", "100", f"2024-06-01T00:00:{i:02d}"] for i in range(20)]
    ledger = write_ledger(tmp_path / "ledger.csv", rows)
    tmp, report = tmp_path / "tmp", tmp_path / "report.csv"
    tmp.mkdir()
    arrived = held_page("2")
    proc = await start(
        *("reconcile", "--ledger", str(ledger), "--base-url", fake.url, "-o", str(report)),
        *("--tmp-dir", str(tmp), "--memory-rows", "4"),
    )
    try:
        await asyncio.wait_for(arrived.wait(), 30)
        assert partial_path(report).exists() and any(tmp.rglob("*.run"))  # under way
    finally:
        os.kill(proc.pid, sig)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 128 + sig and out == b""
    assert err.decode() == f"leat-async: {WORD[sig]}\n"
    assert names(tmp_path) == ["ledger.csv", "tmp"] and names(tmp) == []


def _entry_points() -> list[list[str]]:
    script = shutil.which("leat-async", path=str(Path(sys.executable).parent))
    return [[sys.executable, "-m", "leat_async"], *([[script]] if script else [])]


@SIGNALS
@pytest.mark.parametrize("entry", _entry_points(), ids=lambda e: Path(e[-1]).name)
async def test_a_signal_during_start_up_is_one_line_without_a_traceback(
    tmp_path: Path, sig: signal.Signals, entry: list[str]
) -> None:
    """The signal comes while the package is still importing aiohttp, long before ``main()``:
    ``-X importtime`` lines on stderr say how far the imports have come."""
    proc = await asyncio.create_subprocess_exec(
        *entry,
        *("export", "--fake", "100", "-o", str(tmp_path / "tx.jsonl")),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=environ(PYTHONPROFILEIMPORTTIME="1"),
    )
    assert proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert line, "the command ended before aiohttp's imports began"
        if line.rsplit(b"|", 1)[-1].strip() == b"multidict":  # one of aiohttp's first
            break
    os.kill(proc.pid, sig)
    rest = await asyncio.wait_for(proc.stderr.read(), 30)
    assert await proc.wait() == 128 + sig
    said = [x for x in rest.decode().splitlines() if not x.startswith("import time:")]
    assert said == [f"leat-async: {WORD[sig]}"] and "Traceback" not in rest.decode()
    assert names(tmp_path) == []
