"""Issue 11: reconciliation at any size, and 20 per-shop jobs on one rate budget.

**files**: ``python -m leat_async reconcile --ledger L --transactions E -o R`` as a user runs it,
on inputs with a known answer (``_reconcile_inputs``: a shuffled ledger, planted discrepancies,
no ambiguous pairs); the report is checked row by row. The same command of the code before
issue 11 (``BASELINE_REV``, unpacked with ``git archive``) runs on the same files as the
baseline. Rows/s counts both sides over the command's wall time; peak RSS and CPU are the
command's own, from ``os.wait4``. Sizes: 1,000,000 payments (``--quick``: 100,000); the
10,000,000 case runs on its own: ``python -m benchmarks.bench_reconcile --rows 10000000``.

**jobs**: 20 shops on a fake limited to 20 requests per 1-second window; each shop's listing
has 1 to 12 pages (120 in all). One ``LeatClient(rate_limit=20)`` runs
``reconcile_to_csv_async`` for every shop at once (ledgers from CSV files). Counted at the
server: requests, 429s, and the sustained rate: the requests that arrived in the first ``k``
whole seconds after the first one, over ``k`` (``k`` = the whole seconds the run spans), so a
last, partly filled window does not count against it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leat_async import CreatedAt, LeatClient
from leat_async.reconcile import read_ledger, reconcile_to_csv_async
from leat_async.testing import FakeLeat

from ._common import Config, Goal, Section, fmt_int, fmt_ratio, measured_run, median
from ._reconcile_inputs import Truth, inputs, report_rows

__all__ = ["run"]

FULL_ROWS = 1_000_000
QUICK_ROWS = 100_000
BASELINE_REV = "e939f46"  # main before issue 11: the ledger held in memory
ROOT = Path(__file__).resolve().parents[1]
LIMIT = 20
PAGES = (*range(1, 9), *range(1, 9), 12, 12, 12, 12)  # per shop: 120 pages for 20 shops
SHOPS = len(PAGES)


# -- files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    wall: float
    max_rss_mib: float  # the larger of the command and its ledger worker
    tree_rss_mib: float  # the two together, sampled
    cpu: float
    exact: bool
    status: int


def baseline_tree(dest: Path) -> Path | None:
    """The package as it was at ``BASELINE_REV``, unpacked under ``dest`` (None without git)."""
    try:
        archive = subprocess.run(  # noqa: S603 - our own fixed git command
            ["git", "archive", BASELINE_REV, "leat_async"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def reconcile_once(truth: Truth, work: Path, pythonpath: Path | None) -> Outcome:
    report = work / "report.csv"
    args = [sys.executable, "-m", "leat_async", "reconcile", "--ledger", str(truth.ledger)]
    args += ["--transactions", str(truth.export), "-o", str(report)]
    if pythonpath is None:
        args += ["--tmp-dir", str(work)]
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    # in the baseline's own directory: "python -m" looks in the working directory first
    done = measured_run(args, env, cwd=None if pythonpath is None else str(pythonpath))
    if done.code not in (0, 1):
        raise RuntimeError(f"leat-async reconcile failed ({done.code}): {done.stderr[-500:]}")
    exact = report.exists() and list(report_rows(report)) == truth.report
    report.unlink(missing_ok=True)
    return Outcome(done.wall, done.max_rss_mib, done.tree_rss_mib, done.cpu, exact, done.code)


def files_section(rows: int, repeats: int, baseline: bool) -> Section:
    truth = inputs(rows)
    both = truth.ledger_rows + truth.transactions
    results: dict[str, list[Outcome]] = {"ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_tree(Path(tmp) / "baseline") if baseline else None
        if old is not None:
            results["baseline"] = []
        for _ in range(repeats):
            for variant, runs in results.items():
                runs.append(
                    reconcile_once(truth, Path(tmp), old if variant == "baseline" else None)
                )
    table = []
    for variant, runs in results.items():
        wall = median([r.wall for r in runs])
        table.append(
            [
                f"{variant}: leat-async reconcile"
                + (f" @ {BASELINE_REV}" if variant == "baseline" else ""),
                f"{truth.ledger_rows:,} x {truth.transactions:,}",
                fmt_int(both / wall),
                f"{wall:.1f}",
                f"{max(r.max_rss_mib for r in runs):.0f}",
                f"{max(r.tree_rss_mib for r in runs):.0f}",
                f"{median([r.cpu for r in runs]):.1f}",
                "yes" if all(r.exact for r in runs) else "NO",
            ]
        )
    ours = results["ours"]
    ours_speed = both / median([r.wall for r in ours])
    ours_rss = max(r.max_rss_mib for r in ours)
    ours_tree = max(r.tree_rss_mib for r in ours) or ours_rss
    goals = [
        Goal("reconcile", f"rows/s at {rows:,} / 100,000", ours_speed / 100_000, 1.0),
        Goal("reconcile", f"256 MiB / peak RSS at {rows:,}", 256 / ours_rss, 1.0),
        Goal("reconcile", f"256 MiB / both processes' RSS at {rows:,}", 256 / ours_tree, 1.0),
    ]
    notes = [
        f"{rows:,} payments: {len(truth.report):,} discrepancies planted; medians of {repeats} "
        "run(s). Peak RSS: the larger of the command and its ledger worker process (wait4); "
        "'both processes': the largest sum of the two, sampled every 0.2 s. Rows/s counts both "
        "sides over the command's wall time, interpreter start-up included. 'exact': the report "
        "equals the planted truth row by row."
    ]
    if "baseline" in results:
        old_runs = results["baseline"]
        speed = median([r.wall for r in old_runs]) / median([r.wall for r in ours])
        rss = max(r.max_rss_mib for r in old_runs) / ours_rss
        notes.append(
            f"ours / baseline: {fmt_ratio(speed)} the throughput, 1/{rss:.1f} the peak RSS."
        )
    headers = [
        "command",
        "ledger x transactions",
        "rows/s",
        "wall s",
        "peak RSS MiB",
        "both processes MiB",
        "CPU s",
        "exact",
    ]
    return Section(f"reconcile: files, {rows:,} payments", headers, table, notes=notes, goals=goals)


# -- jobs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobsOutcome:
    pages: int
    requests: int
    refused: int
    sustained: float
    wall: float
    clean: bool
    stall_ms: float  # the longest the event loop was held up while the jobs ran


async def _watch_loop(stalls: list[float], every: float = 0.005) -> None:
    """Sleep ``every`` seconds again and again; note how late each wake-up is."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        stalls.append(loop.time() - due)


START = datetime(2024, 3, 1, tzinfo=UTC)


async def jobs_once(work: Path, *, bounded: bool) -> JobsOutcome:
    async with FakeLeat(rate_limit=LIMIT) as fake:
        shops = []
        pages = 0
        for n in range(SHOPS):
            shop, card = fake.add_shop(name=f"shop-{n}"), fake.add_card(balance_in_cents=10**8)
            count = 100 * PAGES[n] - 50
            pages += -(-count // 100)
            rows = []
            for i in range(count):
                at = START + timedelta(minutes=i)
                fake.add_transaction(card=card, shop=shop, amount_in_cents=-1 - i, created_at=at)
                rows.append([f"{n}-{i}", card.uuid, shop.uuid, -1 - i, at.isoformat()])
            ledger = work / f"shop-{n}.csv"
            with ledger.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(
                    ["reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at"]
                )
                w.writerows(rows)
            shops.append((str(shop.uuid), ledger))
        period = CreatedAt(gte=START, lt=START + timedelta(days=30)) if bounded else None
        async with LeatClient(fake.token, base_url=fake.url, rate_limit=LIMIT) as client:

            async def job(uuid: str, ledger: Path) -> bool:
                pager = client.giftcard_transactions.list(shop_uuid=uuid, created_at=period)
                summary = await reconcile_to_csv_async(
                    read_ledger(ledger), pager, ledger.with_suffix(".report")
                )
                return summary.clean

            stalls: list[float] = []
            watcher = asyncio.create_task(_watch_loop(stalls))
            started = time.perf_counter()
            clean = all(await asyncio.gather(*(job(u, p) for u, p in shops)))
            wall = time.perf_counter() - started
            watcher.cancel()
        arrivals = sorted(r.at for r in fake.requests)
        whole = int(arrivals[-1] - arrivals[0])
        in_whole = sum(1 for a in arrivals if a < arrivals[0] + whole)
        sustained = in_whole / whole if whole else float("nan")
        refused = fake.status_counts[429]
        stall = 1000 * max(stalls, default=0.0)
        return JobsOutcome(pages, len(arrivals), refused, sustained, wall, clean, stall)


def jobs_section(repeats: int) -> Section:
    table, goals = [], []
    for bounded in (True, False):
        runs = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(asyncio.run(jobs_once(Path(tmp), bounded=bounded)))
        share = 100 * median([r.sustained for r in runs]) / LIMIT
        what = "a past period (created_at bounded)" if bounded else "no period (open listing)"
        table.append(
            [
                what,
                fmt_int(runs[0].pages),
                f"{median([r.requests for r in runs]):.0f}",
                f"{max(r.refused for r in runs)}",
                f"{median([r.sustained for r in runs]):.2f}",
                f"{share:.1f} %",
                f"{median([r.wall for r in runs]):.1f}",
                f"{max(r.stall_ms for r in runs):.0f}",
                "yes" if all(r.clean for r in runs) else "NO",
            ]
        )
        goals.append(Goal("reconcile", f"20 jobs, {what}: share of the limit", share, 90.0, "%"))
    headers = [
        "20 per-shop jobs, one client",
        "pages",
        "requests",
        "429s (max)",
        "sustained req/s",
        "share of limit",
        "wall s",
        "max loop stall ms",
        "all clean",
    ]
    notes = [
        f"Fake limited to {LIMIT} requests per 1 s window, in this process; LeatClient(rate_limit="
        f"{LIMIT}); each shop 1-12 pages of 100 rows, its ledger a CSV file read by the job; "
        f"medians of {repeats} run(s). Requests above pages: what each walk spends to take its "
        "snapshot (the pager's part, issue 11's last point, lands on another branch). Max loop "
        "stall: the latest a 5 ms sleep woke up while the jobs ran (the fake answers on the same "
        "loop)."
    ]
    return Section(
        "reconcile: 20 per-shop jobs on one rate budget", headers, table, notes=notes, goals=goals
    )


def run(config: Config) -> list[Section]:
    rows = QUICK_ROWS if config.quick else FULL_ROWS
    repeats = 1 if config.quick else min(config.repeats, 3)
    return [files_section(rows, repeats, baseline=True), jobs_section(repeats)]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_reconcile")
    p.add_argument("--rows", type=int, default=FULL_ROWS, help="payments (default 1,000,000)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--baseline", action="store_true", help="also run the code before issue 11")
    args = p.parse_args()
    section = files_section(args.rows, args.repeats, baseline=args.baseline)
    print(section.render())
    print()
    from ._common import render

    print(
        render(["scenario", "goal", "value", "target", "status"], [g.row() for g in section.goals])
    )


if __name__ == "__main__":
    main()
