"""What ``leat-async reconcile`` shows while it works and when it is done (no job logic here)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import IO, Any

from ._reconcile_job import Phase
from ._report import ReconcileSummary

__all__ = ["PhaseBars", "print_counts", "summary_line"]

_LABELS: dict[Phase, str] = {"read": "read", "sort": "sort", "match": "match"}


class PhaseBars:
    """A :data:`~leat_async.reconcile.Progress` that draws one tqdm bar per phase (read, sort,
    match) with row counts, when ``enabled`` (stderr is a terminal). Safe to call from the
    job's worker threads."""

    def __init__(self, *, enabled: bool, file: IO[str] | None = None) -> None:
        self._enabled = enabled
        self._file = file or sys.stderr
        self._bars: dict[Phase, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, phase: Phase, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        with self._lock:
            bar = self._bars.get(phase)
            if bar is None:
                from tqdm import tqdm

                bar = self._bars[phase] = tqdm(
                    desc=f"{_LABELS[phase]:<5}",
                    total=total,
                    unit=" rows",
                    unit_scale=True,
                    position=len(self._bars),
                    file=self._file,
                    leave=True,
                )
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    def close(self) -> None:
        with self._lock:
            bars, self._bars = self._bars, {}
        for bar in bars.values():
            bar.close()


def summary_line(summary: ReconcileSummary, seconds: float, report: Path | None) -> str:
    """One line with the counts, e.g. for stderr at the end of the command."""
    where = f"; report: {report}" if report is not None else ""
    return (
        f"reconciled {summary.ledger_rows:,} ledger rows with {summary.transactions:,} "
        f"transactions in {seconds:.1f} s: {summary.matched:,} matched, "
        f"{summary.missing_in_leat:,} missing_in_leat, "
        f"{summary.unexpected_in_leat:,} unexpected_in_leat{where}"
    )


def print_counts(summary: ReconcileSummary, report: Path) -> None:
    """The counts on stdout, one per line, then where the report is."""
    rows = [
        ("matched", summary.matched),
        ("missing_in_leat", summary.missing_in_leat),
        ("unexpected_in_leat", summary.unexpected_in_leat),
    ]
    width = max(len(str(n)) for _, n in rows)
    for name, n in rows:
        print(f"{name:<20}{n:>{width}}")
    print(f"report: {report}")
