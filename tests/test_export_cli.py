"""``leat-async export`` as a subprocess against a fake served by this process, at its edges:
odd text in CSV, deep rows, crashes and full disks, standard output, exit statuses.

The command runs through ``tests/_cli_harness.py`` (``python -m leat_async`` plus, where a test
asks, a SIGKILL before a chosen file step, a disk that fills up, or no orjson).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leat_async import LeatClient
from leat_async.export import (
    CSV_COLUMNS,
    ExportFormat,
    checkpoint_path,
    export_transactions,
    partial_path,
)
from leat_async.reconcile import read_export
from leat_async.testing import FakeLeat, Fault

from ._command import HARNESS, cli, environ, start
from .conftest import LONG_AGO, TOKEN, seed_rows


@pytest.fixture
async def fake() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(token=TOKEN) as server:
        yield server


def export(fake: FakeLeat, out: Path, *more: str) -> list[str]:
    return ["export", "--base-url", fake.url, "-o", str(out), *more]


async def library_export(fake: FakeLeat, out: Path, format: ExportFormat = "jsonl") -> Path:
    """What the command writes, as the library writes it in this process (no start-up)."""
    async with LeatClient(TOKEN, base_url=fake.url) as client:
        await export_transactions(client, out, format=format)
    return out


# -- 1. CSV: any reader gets the rows back; no cell runs as a formula -------------------------


async def test_csv_any_reader_gets_the_rows_back(fake: FakeLeat, tmp_path: Path) -> None:
    names = ["Ship\rShape", '=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1:A2)", "\tx", "'q"]
    card = fake.add_card(balance_in_cents=0)
    for i, name in enumerate(names):
        shop = fake.add_shop(name=name)
        when = LONG_AGO + timedelta(seconds=i)
        fake.add_transaction(card=card, shop=shop, amount_in_cents=-500, created_at=when)
    out = tmp_path / "odd.csv"
    done = await cli(*export(fake, out))
    assert done.status == 0, done.err
    with out.open(newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    assert records[0] == list(CSV_COLUMNS) and len(records) == 1 + len(names)
    cells = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in records[1:]]
    assert all(not c["shop_name"].startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert {c["amount_in_cents"] for c in cells} == {"-500"}  # numbers are never touched
    assert [t.shop.name for t in read_export(out)] == names  # the exact text back


# -- 3. whatever the client accepted can be written -------------------------------------------


@pytest.mark.parametrize("orjson", ["with orjson", "without orjson"])
async def test_deep_settlements(fake: FakeLeat, tmp_path: Path, orjson: str) -> None:
    seed_rows(fake, 3)
    deep: Any = [1]
    for _ in range(299):
        deep = [deep]
    fake.add_transaction(
        card=fake.cards[0],
        shop=fake.shops[0],
        amount_in_cents=5,
        settlements=[{"deep": deep}],
        created_at=LONG_AGO + timedelta(days=1),
    )
    out = tmp_path / "deep.jsonl"
    no_orjson = {"HARNESS_NO_ORJSON": "1"} if orjson == "without orjson" else {}
    done = await cli(*export(fake, out), **no_orjson)
    assert done.status == 0, done.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and rows[-1]["settlements"] == [{"deep": deep}]


# -- 4. the edges of the crash story ----------------------------------------------------------


async def test_a_crash_between_rename_and_tidying(fake: FakeLeat, tmp_path: Path) -> None:
    """FILE is complete, its checkpoint still there: --resume and a fresh run both tidy up."""
    seed_rows(fake, 250)
    out, log = tmp_path / "tx.jsonl", tmp_path / "steps.log"
    assert (await cli(*export(fake, out), HARNESS_LOG=str(log))).status == 0
    reference = out.read_bytes()
    steps = log.read_text().splitlines()
    last_step = len(steps) - steps[::-1].index(f"unlink {checkpoint_path(out).name}")
    out.unlink()

    for again in (["--resume"], []):
        killed = await cli(*export(fake, out), HARNESS_KILL_AT=str(last_step))
        assert killed.status == -signal.SIGKILL
        assert out.read_bytes() == reference and checkpoint_path(out).exists()
        done = await cli(*export(fake, out, *again))
        assert done.status == 0, done.err
        if again:
            assert done.line.endswith(
                f"{out} was already complete (250 rows); removed the "
                "checkpoint a crash had left beside it"
            )
        assert out.read_bytes() == reference
        assert sorted(os.listdir(tmp_path)) == sorted([out.name, log.name])


async def test_a_full_disk_at_the_start_leaves_nothing(fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 250)
    out = tmp_path / "tx.jsonl"
    done = await cli(*export(fake, out), HARNESS_DISK="100")
    assert done.status == 3 and "No space left on device" in done.line
    assert "export failed after 0 rows" in done.line and "--resume" not in done.line
    assert os.listdir(tmp_path) == []  # no .partial, no checkpoint, no .tmp


async def test_a_full_disk_later_keeps_what_the_checkpoint_holds(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 650)
    reference = await library_export(fake, tmp_path / "reference.jsonl")
    room = sum(len(line) for line in reference.read_bytes().splitlines(keepends=True)[:450])
    # page 2 comes a second late: the periodic checkpoint after it is the last that fits
    fake.add_fault(Fault(method="GET", query={"page": "2"}, delay=1.1))
    out = tmp_path / "tx.jsonl"
    done = await cli(*export(fake, out), HARNESS_DISK=str(room))
    assert done.status == 3 and "No space left on device" in done.line
    saved = json.loads(checkpoint_path(out).read_text())["rows"]
    assert 0 < saved < 400 and f"export failed after {saved} rows" in done.line
    assert done.line.endswith("; run the same command with --resume to continue")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [reference.name, partial_path(out).name, checkpoint_path(out).name]
    )
    resumed = await cli(*export(fake, out, "--resume"))
    assert resumed.status == 0 and out.read_bytes() == reference.read_bytes()


async def test_ctrl_c_after_the_summary_keeps_exit_0(fake: FakeLeat, tmp_path: Path) -> None:
    """Ctrl-C while the command winds down changes nothing: the export is done."""
    seed_rows(fake, 300)
    statuses = []
    for i in range(2):
        proc = await start(*export(fake, tmp_path / f"tx{i}.jsonl"))
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert line.startswith(b"leat-async: exported 300 rows")
        while proc.returncode is None:
            try:  # not proc.send_signal: its poll() would reap the child behind asyncio's back
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                break
            with contextlib.suppress(TimeoutError):  # Ctrl-C again and again until it exits
                await asyncio.wait_for(proc.wait(), 0.002)
        rest = await proc.stderr.read()
        assert b"Traceback" not in rest and rest == b""
        statuses.append(await proc.wait())
    assert statuses == [0, 0]


# -- 5. -o -: rows to standard output as they arrive ------------------------------------------


async def test_stdout_gets_the_rows_as_they_arrive(fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 450)
    reference = await library_export(fake, tmp_path / "reference.csv", format="csv")
    whole = await cli("export", "--base-url", fake.url, "-o", "-", "--format", "csv")
    assert whole.status == 0 and whole.out == reference.read_bytes()
    assert whole.line.startswith("leat-async: exported 450 rows to standard output in ")

    fake.add_fault(Fault(method="GET", query={"page": "3"}, delay=60))  # the export waits here
    proc = await start("export", "--base-url", fake.url, "-o", "-", "--format", "csv")
    assert proc.stdout is not None
    lines = [await asyncio.wait_for(proc.stdout.readline(), 30) for _ in range(201)]
    expected = reference.read_bytes().splitlines(keepends=True)[:201]
    assert lines == expected and proc.returncode is None  # header and pages 1-2, still running
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert await proc.wait() == 130 and err == b"leat-async: interrupted\n"
    assert sorted(os.listdir(tmp_path)) == [reference.name]  # no checkpoint, no file named -


async def test_stdout_into_head_ends_quietly(fake: FakeLeat) -> None:
    seed_rows(fake, 900)  # far more than a pipe holds
    read_end, write_end = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        HARNESS,
        *("export", "--base-url", fake.url, "-o", "-"),
        stdout=write_end,
        stderr=asyncio.subprocess.PIPE,
        env=environ(),
    )
    os.close(write_end)
    with open(read_end, "rb") as head:  # noqa: ASYNC230 - a pipe; like "| head -n 3"
        first = [await asyncio.to_thread(head.readline) for _ in range(3)]
    assert [json.loads(line)["id"] for line in first] == [1, 2, 3]
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 141 and err == b""  # 128 + SIGPIPE, as for any command


# -- 6. exit statuses -------------------------------------------------------------------------


async def test_a_failed_export_exits_3(fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 250)
    fake.add_fault(Fault(method="GET", query={"page": "2"}, status=400, body={"message": "no"}))
    done = await cli(*export(fake, tmp_path / "tx.jsonl"))
    assert done.status == 3 and "export failed after 100 rows" in done.line


async def test_help_states_the_exit_statuses() -> None:
    done = await cli("--help")  # and each command's --help (tests/test_cli.py)
    text = " ".join(done.out.decode().split())
    assert done.status == 0 and "Exit status: 0 done; 1 reconcile found discrepancies;" in text
    assert "2 bad arguments" in text and "3 the job failed" in text and "130 interrupted" in text
