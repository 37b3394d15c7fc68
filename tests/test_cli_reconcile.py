"""``leat-async reconcile`` as a scheduler runs it: exit codes, the summary, progress on a
terminal, its temporary files, Ctrl-C, and ``-o -``."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from leat_async.testing import FakeLeat

from .test_cli import ledger_from
from .test_reconcile import CARD, SHOP, write_ledger

HEADER = "status,reference,transaction_id,transaction_uuid,giftcard_uuid,shop_uuid"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "leat_async", "reconcile", *args]


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LEAT_TOKEN"}
    return {**env, **extra}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        command(*args), capture_output=True, text=True, env=environ(**env), timeout=60, check=False
    )


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def ledger_file(path: Path, n: int, *, bad_at: int | None = None) -> Path:
    rows = [
        [
            f"R{i}",
            CARD,
            SHOP,
            "100",
            f"2024-06-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00",
        ]
        for i in range(n)
    ]
    if bad_at is not None:
        rows[bad_at][3] = "12.50"
    return write_ledger(path, rows)


def export_file(path: Path, n: int) -> Path:
    """The ledger's first ``n`` rows as Leat has them, 10 s later."""
    lines = []
    for i in range(n):
        at = f"2024-06-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:10+00:00"
        lines.append(
            f'{{"id":{i + 1},"uuid":"t{i}","amount_in_cents":100,"type":"STANDARD",'
            f'"settled":false,"card":{{"id":1,"uuid":"{CARD}"}},'
            f'"shop":{{"id":1,"uuid":"{SHOP}","name":"S"}},"settlements":[],"created_at":"{at}"}}\n'
        )
    path.write_text("".join(lines))
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "tmp").mkdir()
    return tmp_path


def test_clean_and_discrepancies_exit_0_and_1_with_a_summary_line(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 300)
    report = work / "report.csv"
    base = ["--ledger", str(ledger), "-o", str(report), "--tmp-dir", str(work / "tmp")]
    clean = run(*base, "--transactions", str(export_file(work / "all.jsonl", 300)))
    assert clean.returncode == 0, clean.stderr
    assert clean.stderr.startswith("leat-async: reconciled 300 ledger rows with 300 transactions")
    assert clean.stderr.rstrip().endswith(
        f"300 matched, 0 missing_in_leat, 0 unexpected_in_leat; report: {report}"
    )
    assert len(clean.stderr.splitlines()) == 1 and clean.stdout.split()[:2] == ["matched", "300"]

    short = run(*base, "--transactions", str(export_file(work / "short.jsonl", 290)))
    assert short.returncode == 1, short.stderr
    assert "290 matched, 10 missing_in_leat, 0 unexpected_in_leat" in short.stderr
    assert len(report.read_text().splitlines()) == 11
    assert names(work / "tmp") == []


def test_a_bad_ledger_row_is_exit_2_and_leaves_nothing(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 5000, bad_at=4000)
    export = export_file(work / "e.jsonl", 10)
    proc = run(
        *("--ledger", str(ledger), "--transactions", str(export), "-o", str(work / "r.csv")),
        *("--tmp-dir", str(work / "tmp"), "--memory-rows", "500"),  # runs on disk by then
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"leat-async: error: {ledger} line 4002: amount_in_cents '12.50' is not a whole number "
        "of cents (digits 0-9 with an optional sign) (see leat-async reconcile --help)"
    ]
    assert names(work) == ["e.jsonl", "ledger.csv", "tmp"] and names(work / "tmp") == []


def test_a_missing_tmp_dir_is_exit_2(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 3)
    proc = run("--ledger", str(ledger), "--fake", "5", "-o", "r.csv", "--tmp-dir", "nope/x")
    assert proc.returncode == 2 and "--tmp-dir nope/x: no such directory" in proc.stderr


async def test_a_failed_fetch_is_exit_3(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 3)
    async with FakeLeat(token="right-token") as fake:
        proc = await asyncio_run(
            "--ledger",
            str(ledger),
            "--base-url",
            fake.url,
            "-o",
            str(work / "r.csv"),
            env=environ(LEAT_TOKEN="wrong-token"),
        )
    assert proc[1].splitlines()[-1].startswith("leat-async: error: authentication failed")
    assert names(work) == ["ledger.csv", "tmp"]
    assert proc[0] == 3


async def asyncio_run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The command while this process's loop serves the fake."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        *command(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return await proc.wait(), err.decode()


def test_ctrl_c_is_130_and_removes_the_temporary_files(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 20_000)
    args = ["--ledger", str(ledger), "--fake", "50000", "--rate", "20", "-o", str(work / "r.csv")]
    proc = subprocess.Popen(  # noqa: S603 - our own command
        command(*args, "--tmp-dir", str(work / "tmp"), "--memory-rows", "1000"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environ(),
    )
    try:
        deadline = time.monotonic() + 30
        while not any((work / "tmp").rglob("*.run")) and time.monotonic() < deadline:
            time.sleep(0.02)  # wait until sorted runs are on disk: the job is under way
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.splitlines()[-1] == "leat-async: interrupted"
    assert names(work) == ["ledger.csv", "tmp"] and names(work / "tmp") == []


def test_report_to_stdout(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 5)
    proc = run(
        "--ledger", str(ledger), "--transactions", str(export_file(work / "e.jsonl", 4)), "-o", "-"
    )
    assert proc.returncode == 1
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert ",".join(rows[0]).startswith(HEADER) and [r[1] for r in rows[1:]] == ["R4"]
    assert "4 matched, 1 missing_in_leat" in proc.stderr and "report:" not in proc.stderr
    assert names(work) == ["e.jsonl", "ledger.csv", "tmp"]


def test_progress_bars_per_phase_on_a_terminal(work: Path) -> None:
    ledger = ledger_file(work / "ledger.csv", 3000)
    export = export_file(work / "e.jsonl", 3000)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        proc = subprocess.run(  # noqa: S603 - our own command
            command(
                "--ledger", str(ledger), "--transactions", str(export), "-o", str(work / "r.csv")
            ),
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env=environ(),
            timeout=60,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the pty's other side is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    text = shown.decode()
    for phase in ("read", "sort", "match"):
        assert f"{phase:<5}: 100%" in text and "6.00k/6.00k" in text, text[-2000:]


# -- the inputs (issue 19) --------------------------------------------------------------------


def test_a_doubled_export_is_exit_2_and_leaves_nothing(work: Path) -> None:
    """The issue: a ledger that books 100 payments twice, against two overlapping exports
    joined (ids 101-200 in both). Leat holds each once: 100 missing_in_leat, never a clean run."""
    ledger = ledger_file(work / "ledger.csv", 300)
    booked = ledger.read_text().splitlines(keepends=True)
    ledger.write_text("".join(booked + [r.replace("R", "again-R", 1) for r in booked[101:201]]))
    single = export_file(work / "all.jsonl", 300)
    once = run("--ledger", str(ledger), "--transactions", str(single), "-o", str(work / "r.csv"))
    assert once.returncode == 1
    assert "300 matched, 100 missing_in_leat, 0 unexpected_in_leat" in once.stderr
    (work / "r.csv").unlink()

    lines = single.read_text().splitlines(keepends=True)
    joined = work / "joined.jsonl"
    joined.write_text("".join(lines[:200] + lines[100:]))
    base = ["--ledger", str(ledger), "--transactions", str(joined), "--tmp-dir", str(work / "tmp")]
    proc = run(*base, "-o", str(work / "r.csv"))
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(
        f"leat-async: error: --transactions {joined}: transaction id 101 appears twice"
    )
    assert "the same payment each time" in line and "99 more ids repeat" in line
    assert names(work) == ["all.jsonl", "joined.jsonl", "ledger.csv", "tmp"]
    assert names(work / "tmp") == []
    to_stdout = run(*base, "-o", "-")
    assert to_stdout.returncode == 2 and to_stdout.stdout == ""


def test_since_until_filter_a_transactions_file(work: Path) -> None:
    """A day's ledger against an export of three days (one transaction a minute, at :10)."""
    export = export_file(work / "days.jsonl", 3 * 1440)
    day = [
        [f"R{i}", CARD, SHOP, "100", f"2024-06-02T{i // 60:02d}:{i % 60:02d}:00"]
        for i in range(1440)
    ]
    ledger = write_ledger(work / "day.csv", day)
    base = ["--transactions", str(export), "-o", str(work / "r.csv")]
    whole = run("--ledger", str(ledger), *base)
    assert whole.returncode == 1
    assert "1,440 matched, 0 missing_in_leat, 2,880 unexpected_in_leat" in whole.stderr
    one_day = run("--ledger", str(ledger), *base, "--since", "2024-06-02", "--until", "2024-06-03")
    assert one_day.returncode == 0, one_day.stderr
    assert "1,440 ledger rows with 1,440 transactions" in one_day.stderr

    # --since takes its bound, --until does not; no zone is UTC, whatever the machine's zone
    hour = write_ledger(work / "hour.csv", day[:60])
    bounds = ["--since", "2024-06-02T02:00:10+02:00", "--until", "2024-06-02T01:00:10"]
    edges = run("--ledger", str(hour), *base, *bounds, TZ="America/New_York")
    assert edges.returncode == 0, edges.stderr
    assert "60 matched, 0 missing_in_leat, 0 unexpected_in_leat" in edges.stderr

    backwards = run("--ledger", str(hour), *base, "--since", "2024-06-03", "--until", "2024-06-02")
    assert backwards.returncode == 2
    assert backwards.stderr.splitlines() == [
        "leat-async: error: --since must be before --until (see leat-async reconcile --help)"
    ]
    other = run("--ledger", str(hour), *base, "--shop-uuid", SHOP)
    assert other.returncode == 2 and "exclude each other" in other.stderr
    assert names(work) == ["day.csv", "days.jsonl", "hour.csv", "r.csv", "tmp"]


def test_a_filtered_export_reconciles_as_the_fetch_of_that_period(work: Path) -> None:
    """``--transactions`` with ``--since/--until``: the report a fetch of the period makes."""
    export = work / "year.jsonl"
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "leat_async", "export", "--fake", "2000", "-o", str(export)],
        capture_output=True,
        env=environ(),
        timeout=60,
        check=True,
    )
    assert done.returncode == 0
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    since, until = rows[700]["created_at"], rows[1100]["created_at"]
    period = [r for r in rows if since <= r["created_at"] < until and r["card"]["uuid"]]
    ledger = ledger_from(period[5:], work / "ledger.csv")  # five unexpected_in_leat
    base = ["--ledger", str(ledger), "--since", since, "--until", until]
    fetched = run(*base, "--fake", "2000", "-o", str(work / "fetched.csv"))
    filtered = run(*base, "--transactions", str(export), "-o", str(work / "filtered.csv"))
    assert fetched.returncode == filtered.returncode == 1, filtered.stderr
    assert fetched.stdout.splitlines()[:3] == filtered.stdout.splitlines()[:3]
    assert (work / "filtered.csv").read_bytes() == (work / "fetched.csv").read_bytes()
    unbounded = run("--ledger", str(ledger), "--transactions", str(export), "-o", "-")
    assert f"{len(rows) - len(period) + 5:,} unexpected_in_leat" in unbounded.stderr


@pytest.mark.parametrize("amount", ["-1_250", "\u0661\u0662\u0665\u0660"])
def test_a_ledger_amount_in_other_than_ascii_digits_is_exit_2(work: Path, amount: str) -> None:
    ledger = ledger_file(work / "ledger.csv", 3)
    text = ledger.read_text().replace(",100,", f",{amount},", 1)
    ledger.write_text(text, encoding="utf-8")
    export = export_file(work / "e.jsonl", 3)
    proc = run("--ledger", str(ledger), "--transactions", str(export), "-o", str(work / "r.csv"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"leat-async: error: {ledger} line 2: amount_in_cents {amount!r} is not a whole number "
        "of cents (digits 0-9 with an optional sign) (see leat-async reconcile --help)"
    ]
    assert names(work) == ["e.jsonl", "ledger.csv", "tmp"]
