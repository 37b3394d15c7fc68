"""The ``leat-async`` command: arguments, progress and exit codes around the library's jobs.

Exit status: see :data:`EXIT_STATUS_HELP`. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn

from . import (
    DEFAULT_BASE_URL,
    AuthenticationError,
    CreatedAt,
    LeatClient,
    LeatError,
    __version__,
)
from ._reconcile_cli import PhaseBars, print_counts, summary_line
from .export import (
    CSV_COLUMNS,
    DEFAULT_SETTLE,
    CheckpointError,
    ExportFormat,
    ExportResult,
    export_transactions,
    parse_datetime,
    saved_rows,
)
from .reconcile import (
    DEFAULT_MEMORY_ROWS,
    DEFAULT_TOLERANCE,
    LEDGER_COLUMNS,
    REPORT_COLUMNS,
    InputError,
    ReconcileSummary,
    read_export,
    read_ledger,
    reconcile_to_csv_async,
)

__all__ = ["main"]

PROG = "leat-async"
TOKEN_ENV = "LEAT_TOKEN"  # noqa: S105 - the variable's name, not a token
#: ``--fake N`` seeds the same N rows every run: the year before this instant
FAKE_END = datetime(2025, 1, 1, tzinfo=UTC)
DEFAULT_CONCURRENCY = 8
EXIT_OK, EXIT_DISCREPANCIES, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, as for any command whose reader went away
EXIT_STATUS_HELP = (
    f"Exit status: {EXIT_OK} done; {EXIT_DISCREPANCIES} reconcile found discrepancies; "
    f"{EXIT_USAGE} bad arguments (nothing is left behind); {EXIT_FAILED} the job failed (an "
    f"export keeps what it saved for a resume); {EXIT_INTERRUPTED} interrupted; "
    f"{EXIT_BROKEN_PIPE} the reader of -o - went away (a broken pipe, e.g. | head)."
)
STDOUT = "-"


class UsageError(Exception):
    """Bad arguments found after parsing (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line: ``leat-async: error: ...``; every
    command's ``--help`` ends with the exit statuses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", EXIT_STATUS_HELP)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see {self.prog} --help)\n")


# -- argument types ---------------------------------------------------------------------------


def _when(text: str) -> datetime:
    try:
        return parse_datetime(text).astimezone(UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the first UTC instant
        raise argparse.ArgumentTypeError(f"{text!r:.40} is out of range in UTC") from None


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= {minimum}, got {text!r:.30}"
            )
        return value

    return parse


_positive_int = _whole_number(1)
_count = _whole_number(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r:.30}")
    return value


# -- the parser -------------------------------------------------------------------------------

_FETCH_OPTIONS = (
    "base_url",
    "since",
    "until",
    "shop_uuid",
    "giftcard_program_uuid",
    "giftcard_hash",
    "rate",
    "concurrency",
    "fake",
)


def _add_fetch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "fetching", f"The token comes from the environment variable {TOKEN_ENV}."
    )
    group.add_argument(
        "--base-url", metavar="URL", help=f"the API's address (default {DEFAULT_BASE_URL})"
    )
    group.add_argument(
        "--since",
        metavar="ISO",
        type=_when,
        help="only rows created at or after this time (a date or a datetime; no zone = UTC)",
    )
    group.add_argument(
        "--until",
        metavar="ISO",
        type=_when,
        help="only rows created before this time (exclusive; no zone = UTC)",
    )
    group.add_argument("--shop-uuid", metavar="U", help="only this shop's rows")
    group.add_argument("--giftcard-program-uuid", metavar="U", help="only this program's rows")
    group.add_argument("--giftcard-hash", metavar="H", help="only this giftcard's rows")
    group.add_argument(
        "--rate",
        metavar="REQUESTS_PER_S",
        type=_positive_int,
        help="never more requests than this in any second (default: paced by the server)",
    )
    group.add_argument(
        "--concurrency",
        metavar="N",
        type=_positive_int,
        help=f"requests in flight at once, pages fetched ahead (default {DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--fake",
        metavar="N",
        type=_count,
        help="use the bundled fake server instead, in this process on loopback, seeded with "
        f"N transactions from the year before {FAKE_END:%Y-%m-%d} (the same ones every run); "
        f"no {TOKEN_ENV}, no network",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Bulk jobs on Leat's giftcard transactions: export and reconcile.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser(
        "export",
        help="write every transaction to a JSONL or CSV file",
        description="Write every transaction (with the filters) to FILE, in the API's order. "
        "Rows go to FILE.partial first, with a checkpoint in FILE.checkpoint.json; FILE is "
        "replaced only when the export is complete. An interrupted or failed export keeps both: "
        "run the same command with --resume to continue it. Without --resume, an unfinished "
        "export in the way is an error (resume it, or delete its two files). A progress bar "
        "is shown on a terminal; a summary line is always printed to stderr.",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="the file to write; - writes the rows to standard output as they arrive "
        "(no checkpoint, no resume)",
    )
    export.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="jsonl: one transaction per line with the API's field names; csv (RFC 4180): the "
        f"columns {', '.join(CSV_COLUMNS)}, a text cell that a spreadsheet would run as a "
        "formula (starting with = + - @, a tab or CR) written with a leading ' (default: csv "
        "if FILE ends in .csv, else jsonl)",
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

    rec = commands.add_parser(
        "reconcile",
        help="compare a ledger CSV with Leat's transactions",
        description="Match each ledger row to at most one transaction with the same giftcard "
        "uuid, shop uuid and amount and the nearest created_at within the tolerance (the most "
        "matches first, then the closest times; ties go to the earlier rows). Writes one report "
        "row per discrepancy: missing_in_leat (a ledger row without a transaction) or "
        "unexpected_in_leat (a transaction without a ledger row); an amount that differs is "
        "one of each. Transactions come from --transactions, or are fetched with the fetch "
        "options (bound the period with --since/--until, or every transaction outside the "
        "ledger shows up as unexpected). Any size: both sides are sorted on disk in a "
        "temporary directory (removed however the command ends) and matched as they stream, "
        "in bounded memory. Progress bars (read, sort, match) on a terminal; the counts on "
        "stdout and a summary line on stderr.",
        epilog="Exit status: 0 everything matched; 1 discrepancies found (see the report); "
        "2 bad arguments or an unreadable input (no report is left); 3 the job failed (e.g. "
        "the fetch); 130 interrupted.",
    )
    rec.add_argument(
        "--ledger",
        metavar="LEDGER.csv",
        required=True,
        help=f"columns {', '.join(LEDGER_COLUMNS)} (created_at in ISO 8601; no zone = UTC)",
    )
    rec.add_argument(
        "--transactions",
        metavar="EXPORT.jsonl",
        help="an export file (JSONL, or CSV if it ends in .csv) instead of fetching",
    )
    rec.add_argument(
        "-o",
        "--output",
        metavar="REPORT.csv",
        required=True,
        help=f"the report: {', '.join(REPORT_COLUMNS)}; - for standard output",
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
    _add_verbosity(parser, default=None)
    for command in (export, rec):
        _add_verbosity(command, default=argparse.SUPPRESS)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, default: object) -> None:
    """``-v``/``-q``, before or after the command (a command's own default leaves the top's)."""
    group = parser.add_argument_group("output").add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default if default is not None else 0,
        help="-v: also retries, pauses and recoveries; -vv: one line per request (never the token)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if default is not None else False,
        help="errors only: no progress bar, no summary line",
    )


def _log_level(args: argparse.Namespace) -> int:
    if args.quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)


# -- shared plumbing --------------------------------------------------------------------------


def _created_at(args: argparse.Namespace) -> CreatedAt | None:
    if args.since is None and args.until is None:
        return None
    try:
        return CreatedAt(gte=args.since, lt=args.until)
    except ValueError:
        raise UsageError("--since must be before --until") from None


def _check_output(path: str) -> Path:
    if path == STDOUT:
        raise UsageError("-o - (standard output) works only for export")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"the directory of {path} does not exist")
    return target


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[tuple[LeatClient, str | None]]:
    """A client for the real API (token from the environment) or a fresh fake server."""
    options: dict[str, Any] = {
        "max_concurrency": args.concurrency or DEFAULT_CONCURRENCY,
        "rate_limit": args.rate,
    }
    if args.fake is None:
        token = os.environ.get(TOKEN_ENV, "")
        if not token:
            raise UsageError(f"{TOKEN_ENV} is not set (or try --fake N for the fake server)")
        async with LeatClient(token, base_url=args.base_url or DEFAULT_BASE_URL, **options) as c:
            yield c, None
        return
    if args.base_url is not None:
        raise UsageError("--fake and --base-url exclude each other")
    from .testing import FakeLeat  # only --fake pays for the fake's import

    async with FakeLeat() as fake:
        fake.seed(args.fake, end=FAKE_END)
        async with LeatClient(fake.token, base_url=fake.url, **options) as client:
            yield client, f"fake:{args.fake}"


def _say(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _cause(error: BaseException) -> str:
    """What went wrong, in one line; a refused token says where the token comes from."""
    if isinstance(error, AuthenticationError):
        return f"authentication failed, check {TOKEN_ENV} ({_one_line(error)})"
    return _one_line(error)


class _Progress:
    """Counts rows for the summary; draws a tqdm bar when stderr is a terminal."""

    def __init__(self, *, bar: bool) -> None:
        self.rows = 0
        self.started = False  # the job has begun: its arguments were all accepted
        self._want_bar = bar
        self._bar: Any = None

    def __call__(self, rows: int, total: int | None) -> None:
        self.rows = rows
        self.started = True
        if not self._want_bar or total is None:  # a bar starts with the first page's total
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=" rows", unit_scale=True, file=sys.stderr)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(rows - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
        fmt: ExportFormat = args.format or "jsonl"
        return asyncio.run(_export(args, None, fmt, _created_at(args)))
    target = _check_output(args.output)
    fmt = args.format or ("csv" if target.suffix.lower() == ".csv" else "jsonl")
    return asyncio.run(_export(args, target, fmt, _created_at(args)))


class _BrokenPipe(Exception):
    """The reader of standard output went away (exit 141, quietly)."""


async def _export(
    args: argparse.Namespace,
    target: Path | None,
    fmt: ExportFormat,
    created_at: CreatedAt | None,
) -> int:
    progress = _Progress(bar=sys.stderr.isatty() and not args.quiet)
    started = time.monotonic()
    destination: Path | IO[bytes] = target if target is not None else sys.stdout.buffer
    async with _client(args) as (client, job_id):
        try:
            result = await export_transactions(
                client,
                destination,
                format=fmt,
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
        except (CheckpointError, ValueError, TypeError) as exc:
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
    args: argparse.Namespace, target: Path | None, progress: _Progress, stats: Any, exc: Exception
) -> str:
    """The line for a failed export: the rows it keeps for a resume, what went wrong, what next."""
    counts = f"{stats.retries} retries, {stats.rate_limited} rate-limited"
    if target is None:
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
    result: ExportResult, target: Path | None, seconds: float, stats: Any, *, incremental: bool
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


# -- reconcile --------------------------------------------------------------------------------


def _run_reconcile(args: argparse.Namespace) -> int:
    target = None if args.output == "-" else _check_output(args.output)
    fetching = [name for name in _FETCH_OPTIONS if getattr(args, name) is not None]
    if args.transactions is not None and fetching:
        flags = ", ".join("--" + name.replace("_", "-") for name in fetching)
        raise UsageError(f"--transactions and {flags} exclude each other")
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
        source = read_export(args.transactions)
    started = time.monotonic()
    bars = PhaseBars(enabled=sys.stderr.isatty() and not args.quiet)
    try:
        summary = asyncio.run(
            _fetch_and_reconcile(args, args.ledger, source, target, created_at, bars)
        )
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
            return await reconcile_to_csv_async(ledger, source, report, progress=bars, **options)
        async with _client(args) as (client, _):
            pager = client.giftcard_transactions.list(
                per_page=100,
                created_at=created_at,
                shop_uuid=args.shop_uuid,
                giftcard_program_uuid=args.giftcard_program_uuid,
                giftcard_hash=args.giftcard_hash,
            )
            return await reconcile_to_csv_async(ledger, pager, report, progress=bars, **options)
    except LeatError as exc:
        if isinstance(exc, AuthenticationError):
            raise _Failed(_cause(exc)) from None
        raise _Failed(f"fetching the transactions failed: {_cause(exc)}") from None
    except OSError as exc:  # the disk: the temporary directory or the report
        raise _Failed(f"reconcile failed: {_one_line(exc)}") from None


def _print_summary(
    summary: ReconcileSummary, report: Path | None, seconds: float, *, quiet: bool
) -> None:
    """The counts on stdout (unless the report goes there), one summary line on stderr."""
    if report is not None:
        print_counts(summary, report)
    if not quiet:
        _say(summary_line(summary, seconds, report))


# -- entry point ------------------------------------------------------------------------------


class _Failed(Exception):
    """The job failed (exit 3); the text is the whole message."""


def _decided(status: int) -> int:
    """From here the exit status is ``status``: a Ctrl-C while the process winds down (closing
    connections, joining threads) ends it at once with that status, not with another one."""

    def exit_now(signum: int, frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    with contextlib.suppress(ValueError):  # not the main thread: leave the signals alone
        signal.signal(signal.SIGINT, exit_now)
    return status


def _interrupted(args: argparse.Namespace) -> str:
    output = getattr(args, "output", STDOUT)
    if args.command != "export" or output == STDOUT or saved_rows(output) is None:
        return "interrupted"
    how = "again" if args.incremental else "with --resume"
    return f"interrupted; run the same command {how} to continue"


def _outcome(args: argparse.Namespace, exc: BaseException) -> tuple[int, str | None]:
    """The exit status and the one line to print for a command that raised ``exc``."""
    if isinstance(exc, _BrokenPipe | BrokenPipeError):
        # quietly, as any command whose reader went away; and no second error at exit
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE, None
    if isinstance(exc, UsageError | CheckpointError | InputError | UnicodeDecodeError):
        return EXIT_USAGE, f"error: {_one_line(exc)}"
    if isinstance(exc, _Failed):
        return EXIT_FAILED, f"error: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, _interrupted(args)
    if isinstance(exc, LeatError | OSError):
        return EXIT_FAILED, f"error: {_one_line(exc)}"
    if isinstance(exc, ValueError):  # arguments the library refused before sending anything
        return EXIT_USAGE, f"error: {_one_line(exc)}"
    if isinstance(exc, Exception):  # a case nobody foresaw: still one line, never a traceback
        return EXIT_FAILED, f"error: unexpected {type(exc).__name__}: {_one_line(exc)}"
    raise exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status (the console script exits with it).

    Once the status is known, a Ctrl-C no longer changes it (SIGINT stays ignored after this
    returns: the process is about to exit).
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(format=f"{PROG}: %(message)s", level=logging.WARNING)
    logging.getLogger("leat_async").setLevel(_log_level(args))
    run: Callable[[argparse.Namespace], int] = args.run
    message: str | None = None
    try:
        status = run(args)
    except BaseException as exc:  # each kind gets its status in _outcome
        status, message = _outcome(args, exc)
    _decided(status)
    if message is not None:
        _say(message)
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return status
