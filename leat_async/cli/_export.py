"""``leat-async export``: its arguments, the run, and its summary line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Any

from .. import CreatedAt, LeatError
from ..export import (
    COMPRESSIONS,
    CSV_COLUMNS,
    DEFAULT_SETTLE,
    FORMATS,
    PARTITIONS,
    CheckpointError,
    Compression,
    ExportFormat,
    ExportResult,
    OutputBusyError,
    export_transactions,
    format_of,
    is_remote,
    require_extra,
    require_fsspec,
    saved_rows,
)
from ..signals import run_job
from ._common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_OK,
    STDOUT,
    Commands,
    UsageError,
    _add_fetch_options,
    _cause,
    _check_output,
    _client,
    _created_at,
    _decided,
    _Failed,
    _is_stream,
    _one_line,
    _Progress,
    _say,
    _seconds,
)


def add_export(commands: Commands) -> argparse.ArgumentParser:
    """The ``export`` command's parser, added to ``commands``."""
    export = commands.add_parser(
        "export",
        help="write every transaction to a JSONL, CSV or Parquet file",
        description="Write every transaction (with the filters) to FILE, in the API's order. "
        "Rows go to FILE.partial first, with a checkpoint in FILE.checkpoint.json; FILE is "
        "replaced only when the export is complete. An interrupted or failed export keeps both: "
        "run the same command with --resume to continue it. Without --resume, an unfinished "
        "export in the way is an error (resume it, or delete its two files). While an export "
        "runs it holds a lock on FILE.lock: a second one to the same FILE is refused at once "
        "(exit 2). Ctrl-C or SIGTERM stops it resumably. A progress bar is shown on a "
        "terminal; a summary line is always printed to stderr.",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="the file to write (through a symlink: its target; the link stays); - writes "
        "the rows to standard output as they arrive (no checkpoint, no resume), and so does "
        "a named pipe or a device such as /dev/stdout",
    )
    export.add_argument(
        "--format",
        choices=FORMATS,
        help="jsonl: one transaction per line with the API's field names; csv (RFC 4180): the "
        f"columns {', '.join(CSV_COLUMNS)}, a text cell that a spreadsheet would run as a "
        "formula (starting with = + - @, a tab or CR) written with a leading '; parquet: "
        "those columns typed, and settlements as JSON text, in zstd row groups (needs "
        "'leat-async[parquet]'). Default: what FILE's suffix says (.csv, .parquet; else jsonl)",
    )
    export.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        help="for jsonl and csv: gzip, or zstd (needs 'leat-async[zstd]'); the file stays "
        "resumable (default: gzip if FILE ends in .gz, zstd if in .zst, else none)",
    )
    export.add_argument(
        "--partition-by",
        choices=PARTITIONS,
        help="write -o DIR as a Hive-style Parquet dataset, a folder per UTC day "
        "(created_date=YYYY-MM-DD) or month (created_month=YYYY-MM), which DuckDB, pyarrow, "
        "Spark and pandas read as one table; DIR must be new or empty (with --incremental, "
        "each run adds new files to it and never rewrites one)",
    )
    export.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished export of FILE; give the same options as before",
    )
    export.add_argument(
        "--incremental",
        action="store_true",
        help="the first run exports everything and remembers how far FILE goes (in "
        "FILE.incremental.json); each later run with the same options appends only the rows "
        "created since, and first finishes a run that was cut short (so after a crash, just "
        "run it again). settled and settlements of rows already in FILE are not updated: "
        "export a window again (--since/--until, to another file) to refresh them",
    )
    export.add_argument(
        "--settle",
        metavar="SECONDS",
        type=_seconds,
        help="with --incremental: rows younger than this wait for the next run, so that a "
        f"row committed a little after its created_at is not skipped (default {DEFAULT_SETTLE:g})",
    )
    _add_fetch_options(export)
    export.set_defaults(run=_run_export)
    return export


# -- export -----------------------------------------------------------------------------------


def _run_export(args: argparse.Namespace) -> int:
    if args.settle is not None and not args.incremental:
        raise UsageError("--settle goes with --incremental")
    if args.incremental and args.resume:
        raise UsageError("--incremental finishes an unfinished run by itself: leave out --resume")
    if args.output == STDOUT:
        if args.resume or args.incremental:
            flag = "--resume" if args.resume else "--incremental"
            raise UsageError(f"-o - (standard output) cannot be used with {flag}")
        chosen = _chosen_format(args, "")
        return run_job(_export(args, None, chosen, _created_at(args)))
    chosen = _chosen_format(args, args.output)
    if is_remote(args.output):
        try:
            require_fsspec(args.output)
        except ValueError as exc:
            raise UsageError(_one_line(exc)) from None
        return run_job(_export(args, args.output, chosen, _created_at(args)))
    if args.partition_by is not None:  # a directory: the export checks it
        return run_job(_export(args, Path(args.output), chosen, _created_at(args)))
    target = _check_output(args.output)
    return run_job(_export(args, target, chosen, _created_at(args)))


def _chosen_format(args: argparse.Namespace, name: str) -> tuple[ExportFormat, Compression]:
    """What ``-o NAME`` (and --format, --compression) asks for, installed: else exit 2."""
    try:
        chosen = format_of(name, args.format, args.compression, partition_by=args.partition_by)
        require_extra(*chosen)
    except ValueError as exc:
        raise UsageError(_one_line(exc)) from None
    return chosen


class _BrokenPipe(Exception):
    """The reader of standard output went away (exit 141, quietly)."""


async def _export(
    args: argparse.Namespace,
    target: Path | str | None,
    chosen: tuple[ExportFormat, Compression],
    created_at: CreatedAt | None,
) -> int:
    progress = _Progress(bar=sys.stderr.isatty() and not args.quiet)
    started = time.monotonic()
    destination: Path | str | IO[bytes] = target if target is not None else sys.stdout.buffer
    async with _client(args) as (client, job_id):
        try:
            result = await export_transactions(
                client,
                destination,
                format=chosen[0],
                compression=chosen[1],
                partition_by=args.partition_by,
                created_at=created_at,
                shop_uuid=args.shop_uuid,
                giftcard_program_uuid=args.giftcard_program_uuid,
                giftcard_hash=args.giftcard_hash,
                resume=args.resume,
                incremental=args.incremental,
                settle=args.settle if args.settle is not None else DEFAULT_SETTLE,
                progress=progress,
                job_id=job_id,
            )
        except BrokenPipeError:
            _decided(EXIT_BROKEN_PIPE)
            raise _BrokenPipe from None
        except (CheckpointError, OutputBusyError, ValueError, TypeError) as exc:
            if isinstance(exc, CheckpointError) or not progress.started:
                raise UsageError(_one_line(exc)) from None  # refused before anything was done
            _decided(EXIT_FAILED)
            raise _Failed(_failure(args, target, progress, client.stats, exc)) from None
        except (LeatError, OSError) as exc:
            _decided(EXIT_FAILED)
            raise _Failed(_failure(args, target, progress, client.stats, exc)) from None
        finally:
            progress.close()
        _decided(EXIT_OK)
        stats = client.stats
    seconds = time.monotonic() - started
    if not args.quiet:
        _say(_summary(result, target, seconds, stats, incremental=args.incremental))
    return EXIT_OK


def _failure(
    args: argparse.Namespace,
    target: Path | str | None,
    progress: _Progress,
    stats: Any,
    exc: Exception,
) -> str:
    """The line for a failed export: the rows it keeps for a resume, what went wrong, what next."""
    counts = f"{stats.retries} retries, {stats.rate_limited} rate-limited"
    if target is None or (isinstance(target, Path) and _is_stream(target)):
        return f"export failed after {progress.rows} rows ({counts}): {_cause(exc)}"
    saved = saved_rows(target)
    again = ""
    if saved is not None:
        again = "; run the same command " + ("again" if args.incremental else "with --resume")
        again += " to continue"
    return f"export failed after {saved or 0} rows ({counts}): {_cause(exc)}{again}"


def _many(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _summary(
    result: ExportResult,
    target: Path | str | None,
    seconds: float,
    stats: Any,
    *,
    incremental: bool,
) -> str:
    where = str(target) if target is not None else "standard output"
    if result.was_complete:
        return (
            f"{where} was already complete ({result.rows} rows); removed the checkpoint "
            "a crash had left beside it"
        )
    resumed = f", resumed at page {result.resumed_from_page}" if result.resumed_from_page else ""
    counts = (
        f"({_many(result.pages, 'page')}, {_many(result.requests, 'request')}{resumed}; "
        f"{stats.retries} retries, {stats.rate_limited} rate-limited)"
    )
    if incremental:
        through = result.through.isoformat() if result.through is not None else None
        holds = f"every row created before {through}" if through else "no row yet"
        return (
            f"appended {result.rows_this_run} rows to {where} in {seconds:.1f} s {counts}; "
            f"it holds {result.rows} rows, {holds}"
        )
    drift = (
        f"; the listing said {result.expected} rows"
        if result.expected is not None and result.expected != result.rows
        else ""
    )
    return f"exported {result.rows} rows to {where} in {seconds:.1f} s {counts}{drift}"
