"""Warehouse exports (issue 23): Parquet and compressed files next to plain JSONL, in one run.

``leat-async export`` in its own process against a fake in a third one (as ``bench_export``),
each format in turn, the same listing; rows/s from the command's wall time, peak RSS and CPU
the command's own (``os.wait4``), bytes the finished file's. Then a day-partitioned
``--incremental`` dataset after 1 % more rows: the requests of the later run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ._common import (
    TOKEN,
    Config,
    FakeServer,
    Goal,
    Section,
    fmt_int,
    fmt_ratio,
    measured_run,
    median,
)
from .bench_export import _grow, available

__all__ = ["run"]

FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
#: (what is shown, -o's name, extra arguments); the first is the baseline
VARIANTS = (
    ("jsonl [baseline]", "tx.jsonl", ()),
    ("jsonl.gz", "tx.jsonl.gz", ()),
    ("jsonl.zst", "tx.jsonl.zst", ()),
    ("csv.zst", "tx.csv.zst", ()),
    ("parquet", "tx.parquet", ()),
)
_ROWS = re.compile(r"(?:exported|appended) (\d+) rows")
_REQUESTS = re.compile(r"(\d+) requests?")


@dataclass(frozen=True)
class Run:
    wall: float
    rows: int
    rss: float
    cpu: float
    size: int
    requests: int


def export(server: FakeServer, out: Path, *more: str) -> Run:
    args = [sys.executable, "-m", "leat_async", "export", "--base-url", server.url]
    done = measured_run([*args, "-o", str(out), *more], {**os.environ, "LEAT_TOKEN": TOKEN})
    if done.code != 0:
        raise RuntimeError(f"leat-async export failed ({done.code}): {done.stderr[-500:]}")
    rows = _ROWS.search(done.stderr)
    requests = _REQUESTS.search(done.stderr)
    size = sum(p.stat().st_size for p in out.rglob("*")) if out.is_dir() else out.stat().st_size
    return Run(
        wall=done.wall,
        rows=int(rows.group(1)) if rows else 0,
        rss=done.max_rss_mib,
        cpu=done.cpu,
        size=size,
        requests=int(requests.group(1)) if requests else 0,
    )


def run(config: Config) -> list[Section]:
    title = "warehouse: Parquet and compressed exports next to JSONL"
    if not available():
        return [Section(title, [], [], notes=["pending: the export command does not work yet"])]
    n = QUICK_ROWS if config.quick else FULL_ROWS
    repeats = 1 if config.quick else min(config.repeats, 3)
    runs: dict[str, list[Run]] = {name: [] for name, _, _ in VARIANTS}
    with FakeServer(seed=n) as server, tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name, file, more in VARIANTS:  # taking turns, so that drift hits them alike
                out = Path(tmp) / file
                runs[name].append(export(server, out, *more))
                out.unlink()
    base = runs[VARIANTS[0][0]]
    base_rate = median([r.rows / r.wall for r in base])
    base_size = base[0].size
    rows = []
    for name, measured in runs.items():
        rate = median([r.rows / r.wall for r in measured])
        rows.append(
            [
                name,
                fmt_int(measured[0].rows),
                fmt_int(rate),
                fmt_ratio(rate / base_rate),
                f"{max(r.rss for r in measured):.0f}",
                f"{median([r.cpu for r in measured]):.1f}",
                f"{measured[0].size / 2**20:.1f}",
                fmt_ratio(measured[0].size / base_size),
            ]
        )
    parquet, zst = runs["parquet"], runs["jsonl.zst"]
    goals = [
        Goal("warehouse", "parquet rows/s / jsonl's", _rate(parquet) / base_rate, 0.9),
        Goal(
            "warehouse",
            "parquet peak RSS, MiB / 128",
            max(r.rss for r in parquet) / 128,
            1.0,
            at_most=True,
        ),
        Goal(
            "warehouse", "parquet bytes / jsonl's", parquet[0].size / base_size, 0.25, at_most=True
        ),
        Goal("warehouse", "jsonl.zst rows/s / jsonl's", _rate(zst) / base_rate, 0.9),
    ]
    headers = ["-o", "rows", "rows/s", "vs jsonl", "peak RSS MiB", "CPU s", "MiB", "bytes vs jsonl"]
    notes = [
        f"Fake seeded with {n:,} rows, in its own process; medians of {repeats} run(s) per "
        "variant, taking turns; rows/s includes the interpreter's start-up (and Parquet's "
        "final assembly of its parts)."
    ]
    section = Section(title, headers, rows, notes=notes, goals=goals)
    return [section, partitioned(n)]


def _rate(runs: list[Run]) -> float:
    return median([r.rows / r.wall for r in runs])


def partitioned(n: int) -> Section:
    """A day-partitioned dataset made with --incremental, then 1 % more rows and a later run."""
    grow = max(n // 100, 1)
    with FakeServer(seed=n) as server, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dataset"
        nightly = ("--partition-by", "day", "--incremental", "--settle", "0")
        first = export(server, out, *nightly)
        files = sum(1 for _ in out.rglob("*.parquet"))
        asyncio.run(_grow(server.url, grow))
        time.sleep(1.1)  # --settle 0 still leaves the rows of the current second for later
        later = export(server, out, *nightly)
        added = sum(1 for _ in out.rglob("*.parquet")) - files
    rows = [
        [
            "first run (everything)",
            fmt_int(first.rows),
            fmt_int(first.requests),
            f"{first.wall:.1f}",
            f"{first.rss:.0f}",
            fmt_int(files),
        ],
        [
            f"later run (+{grow:,} rows)",
            fmt_int(later.rows),
            fmt_int(later.requests),
            f"{later.wall:.1f}",
            f"{later.rss:.0f}",
            fmt_int(added),
        ],
    ]
    pages = -(-grow // 100)
    notes = [
        f"The later run sent {later.requests} requests for {later.rows:,} new rows "
        f"({pages} pages of 100), {fmt_ratio(later.requests / max(first.requests, 1))} of the "
        "first run's; it added files and rewrote none."
    ]
    headers = ["run", "rows fetched", "requests", "wall s", "peak RSS MiB", "files added"]
    return Section(
        "warehouse: --partition-by day --incremental after 1 % more rows",
        headers,
        rows,
        notes=notes,
    )
