"""``leat-async reconcile``: its arguments, the run, what it shows while it works and when it is
done (the job itself is :func:`leat_async.reconcile.reconcile_to_csv_async`)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .. import AuthenticationError, CreatedAt, LeatError
from ..reconcile import (
    DEFAULT_MEMORY_ROWS,
    DEFAULT_TOLERANCE,
    LEDGER_COLUMNS,
    REPORT_COLUMNS,
    InputError,
    OutputBusyError,
    Phase,
    ReconcileSummary,
    RepeatedTransactionError,
    read_export,
    read_ledger,
    reconcile_to_csv_async,
)
from ..signals import run_job
from ._common import (
    _FETCH_OPTIONS,
    EXIT_DISCREPANCIES,
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    UsageError,
    _add_fetch_options,
    _cause,
    _check_output,
    _client,
    _created_at,
    _decided,
    _Failed,
    _one_line,
    _positive_int,
    _say,
    _seconds,
)

__all__ = ["PhaseBars", "print_counts", "summary_line"]

_LABELS: dict[Phase, str] = {"read": "read", "sort": "sort", "match": "match"}
#: the fetch options that also apply to a --transactions file: they filter it
_PERIOD = ("since", "until")


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


def add_reconcile(commands: Commands) -> argparse.ArgumentParser:
    """The ``reconcile`` command's parser, added to ``commands``."""
    rec = commands.add_parser(
        "reconcile",
        help="compare a ledger CSV with Leat's transactions",
        description="Match each ledger row to at most one transaction with the same giftcard "
        "uuid, shop uuid and amount and the nearest created_at within the tolerance (the most "
        "matches first, then the closest times; ties go to the earlier rows). Writes one report "
        "row per discrepancy: missing_in_leat (a ledger row without a transaction) or "
        "unexpected_in_leat (a transaction without a ledger row); an amount that differs is "
        "one of each. Transactions come from --transactions, or are fetched with the fetch "
        "options; either way --since/--until bound their period (a file's transactions outside "
        "it are left out; the ledger is taken whole), or every transaction outside the ledger "
        "shows up as unexpected. A transaction id that appears twice (overlapping exports "
        "joined) is an input error: Leat holds each once. Any size: both sides are sorted on "
        "disk in a temporary directory (removed however the command ends) and matched as they "
        "stream, in bounded memory. Progress bars (read, sort, match) on a terminal; the counts "
        "on stdout and a summary line on stderr.",
        epilog="Exit status: 0 everything matched; 1 discrepancies found (see the report); "
        "2 bad arguments or an unreadable input (no report is left); 3 the job failed (e.g. "
        "the fetch); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM): the temporary "
        "directory and the unfinished report are removed either way.",
    )
    rec.add_argument(
        "--ledger",
        metavar="LEDGER.csv",
        required=True,
        help=f"columns {', '.join(LEDGER_COLUMNS)} (amount_in_cents in digits 0-9 with an "
        "optional sign; created_at in ISO 8601, no zone = UTC)",
    )
    rec.add_argument(
        "--transactions",
        metavar="EXPORT.jsonl",
        help="an export file (JSONL, or CSV if it ends in .csv) instead of fetching; "
        "--since/--until filter it",
    )
    rec.add_argument(
        "-o",
        "--output",
        metavar="REPORT.csv",
        required=True,
        help=f"the report: {', '.join(REPORT_COLUMNS)}; - for standard output. Through a "
        "symlink its target is written; a named pipe gets the report as a stream. Another "
        "reconcile (or export) writing the same file is refused (exit 2)",
    )
    rec.add_argument(
        "--tolerance",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_TOLERANCE,
        help=f"how far apart matching times may be (default {DEFAULT_TOLERANCE:g} s)",
    )
    rec.add_argument(
        "--tmp-dir",
        metavar="DIR",
        help="where the sorted runs go while the job runs (default: the system's temporary "
        "directory; give one with room for about the size of both inputs)",
    )
    rec.add_argument(
        "--memory-rows",
        metavar="N",
        type=_positive_int,
        default=DEFAULT_MEMORY_ROWS,
        help=f"rows held in memory before a sorted run goes to disk (default "
        f"{DEFAULT_MEMORY_ROWS:,}, about 100 MB)",
    )
    _add_fetch_options(rec)
    rec.set_defaults(run=_run_reconcile)
    return rec


# -- reconcile --------------------------------------------------------------------------------


def _run_reconcile(args: argparse.Namespace) -> int:
    target = None if args.output == "-" else _check_output(args.output)
    fetching = [
        name for name in _FETCH_OPTIONS if name not in _PERIOD and getattr(args, name) is not None
    ]
    if args.transactions is not None and fetching:
        flags = ", ".join("--" + name.replace("_", "-") for name in fetching)
        raise UsageError(
            f"--transactions and {flags} exclude each other (only --since/--until filter a file)"
        )
    created_at = _created_at(args)
    if args.tmp_dir is not None and not Path(args.tmp_dir).is_dir():
        raise UsageError(f"--tmp-dir {args.tmp_dir}: no such directory")
    try:
        read_ledger(args.ledger)  # its header, checked now; the job reads the rows
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the ledger: {_one_line(exc)}") from None
    except InputError as exc:
        raise UsageError(_one_line(exc)) from None
    source: Iterable[Any] | None = None
    if args.transactions is not None:
        if not Path(args.transactions).is_file():
            raise UsageError(f"cannot read {args.transactions}: no such file")
        source = read_export(args.transactions, created_at=created_at)
    started = time.monotonic()
    bars = PhaseBars(enabled=sys.stderr.isatty() and not args.quiet)
    try:
        summary = run_job(_fetch_and_reconcile(args, args.ledger, source, target, created_at, bars))
    finally:
        bars.close()
    _print_summary(summary, target, time.monotonic() - started, quiet=args.quiet)
    return EXIT_OK if summary.clean else EXIT_DISCREPANCIES


async def _fetch_and_reconcile(
    args: argparse.Namespace,
    ledger: str,
    source: Iterable[Any] | None,
    target: Path | None,
    created_at: CreatedAt | None,
    bars: PhaseBars,
) -> ReconcileSummary:
    """Reconcile against ``source`` (an export file), or else a listing fetched with ``args``."""
    options: dict[str, Any] = {
        "tolerance": args.tolerance,
        "tmp_dir": args.tmp_dir,
        "memory_rows": max(2, args.memory_rows),
    }
    report = sys.stdout if target is None else target
    try:
        if source is not None:
            try:
                summary = await reconcile_to_csv_async(
                    ledger, source, report, progress=bars, **options
                )
            except RepeatedTransactionError as exc:  # the file's, so a bad argument: exit 2
                raise UsageError(f"--transactions {args.transactions}: {_one_line(exc)}") from None
        else:
            async with _client(args) as (client, _):
                pager = client.giftcard_transactions.list(
                    per_page=100,
                    created_at=created_at,
                    shop_uuid=args.shop_uuid,
                    giftcard_program_uuid=args.giftcard_program_uuid,
                    giftcard_hash=args.giftcard_hash,
                )
                summary = await reconcile_to_csv_async(
                    ledger, pager, report, progress=bars, **options
                )
    except OutputBusyError as exc:  # another job writes this report: this one did nothing
        raise UsageError(_one_line(exc)) from None
    except LeatError as exc:
        _decided(EXIT_FAILED)
        if isinstance(exc, AuthenticationError):
            raise _Failed(_cause(exc)) from None
        raise _Failed(f"fetching the transactions failed: {_cause(exc)}") from None
    except OSError as exc:  # the disk: the temporary directory or the report
        _decided(EXIT_FAILED)
        raise _Failed(f"reconcile failed: {_one_line(exc)}") from None
    _decided(EXIT_OK if summary.clean else EXIT_DISCREPANCIES)  # the report is in place
    return summary


def _print_summary(
    summary: ReconcileSummary, report: Path | None, seconds: float, *, quiet: bool
) -> None:
    """The counts on stdout (unless the report goes there), one summary line on stderr;
    ``quiet``: neither (the exit status says whether everything matched)."""
    if report is not None and not quiet:
        print_counts(summary, report)
    if not quiet:
        _say(summary_line(summary, seconds, report))
