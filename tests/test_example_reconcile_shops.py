"""``examples/reconcile_shops.py`` does what its docstring says, on one client and across
processes sharing a Redis budget."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from .test_redis import running_redis

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "reconcile_shops.py"
SHOPS, ROWS = 5, 120  # two pages per shop


def run_example(out: Path, *extra: str) -> list[str]:
    proc = subprocess.run(  # noqa: S603 - our own example
        [
            sys.executable,
            str(EXAMPLE),
            "--shops",
            str(SHOPS),
            "--rows",
            str(ROWS),
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def check(out: Path, lines: list[str]) -> None:
    *jobs, last = lines
    assert sorted(jobs) == [
        f"shop-{n:02d}: {ROWS - 1} matched, 1 missing_in_leat, 1 unexpected_in_leat -> "
        f"{out}/shop-{n:02d}.csv"
        for n in range(SHOPS)
    ]
    for n in range(SHOPS):
        with (out / f"shop-{n:02d}.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert [(r["status"], r["reference"], r["amount_in_cents"]) for r in rows] == [
            ("unexpected_in_leat", "", "-100"),  # the shop's first transaction
            ("missing_in_leat", f"shop-{n:02d}-lost", "-99"),
        ]
    found = re.fullmatch(
        rf"{SHOPS} jobs: (\d+) rate-limited \(429\) of (\d+) requests, at most (\d+) in any second",
        last,
    )
    assert found, last
    refused, requests, peak = map(int, found.groups())
    assert refused == 0 and requests == 2 * SHOPS and peak <= 20


def test_one_job_per_shop_on_one_client(tmp_path: Path) -> None:
    check(tmp_path / "out", run_example(tmp_path / "out"))


def test_jobs_across_processes_share_a_redis_budget(tmp_path: Path) -> None:
    with running_redis() as redis:
        lines = run_example(tmp_path / "out", "--redis", redis.url, "--processes", "2")
    check(tmp_path / "out", lines)
