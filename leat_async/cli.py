"""The ``leat-async`` command: arguments, progress and exit codes around the library's jobs.

Exit status: 0 success (reconcile: everything matched), 1 an export failed or reconcile found
discrepancies, 2 bad arguments, 130 interrupted. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

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
    CheckpointError,
    ExportFormat,
    checkpoint_path,
    export_transactions,
    parse_datetime,
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
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_DISCREPANCIES = 1  # reconcile: the job ran and found discrepancies


class UsageError(Exception):
    """Bad arguments found after parsing (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line: ``leat-async: error: ...``."""

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
        epilog="Exit status: 0 done; 1 the export failed (the partial file and its checkpoint "
        "are kept for --resume); 2 bad arguments; 130 interrupted.",
    )
    export.add_argument("-o", "--output", metavar="FILE", required=True, help="the file to write")
    export.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="jsonl: one transaction per line with the API's field names; csv: the columns "
        f"{', '.join(CSV_COLUMNS)} (default: csv if FILE ends in .csv, else jsonl)",
    )
    export.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished export of FILE; give the same options as before",
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
    return parser


# -- shared plumbing --------------------------------------------------------------------------


def _created_at(args: argparse.Namespace) -> CreatedAt | None:
    if args.since is None and args.until is None:
        return None
    try:
        return CreatedAt(gte=args.since, lt=args.until)
    except ValueError:
        raise UsageError("--since must be before --until") from None


def _check_output(path: str) -> Path:
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
        self._want_bar = bar
        self._bar: Any = None

    def __call__(self, rows: int, total: int | None) -> None:
        self.rows = rows
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
    target = _check_output(args.output)
    fmt: ExportFormat = args.format or ("csv" if target.suffix.lower() == ".csv" else "jsonl")
    return asyncio.run(_export(args, target, fmt, _created_at(args)))


async def _export(
    args: argparse.Namespace, target: Path, fmt: ExportFormat, created_at: CreatedAt | None
) -> int:
    progress = _Progress(bar=sys.stderr.isatty())
    started = time.monotonic()
    async with _client(args) as (client, job_id):
        try:
            result = await export_transactions(
                client,
                target,
                format=fmt,
                created_at=created_at,
                shop_uuid=args.shop_uuid,
                giftcard_program_uuid=args.giftcard_program_uuid,
                giftcard_hash=args.giftcard_hash,
                resume=args.resume,
                progress=progress,
                job_id=job_id,
            )
        except (LeatError, OSError) as exc:
            stats = client.stats
            cause = _cause(exc)
            again = (
                "; run the same command with --resume to continue"
                if checkpoint_path(target).exists()
                else ""
            )
            raise _Failed(
                f"export failed after {progress.rows} rows ({stats.retries} retries, "
                f"{stats.rate_limited} rate-limited): {cause}{again}"
            ) from None
        finally:
            progress.close()
        stats = client.stats
    resumed = f", resumed at page {result.resumed_from_page}" if result.resumed_from_page else ""
    drift = (
        f"; the listing said {result.expected} rows"
        if result.expected is not None and result.expected != result.rows
        else ""
    )
    _say(
        f"exported {result.rows} rows to {target} in {time.monotonic() - started:.1f} s "
        f"({result.pages} pages{resumed}; {stats.retries} retries, "
        f"{stats.rate_limited} rate-limited){drift}"
    )
    return EXIT_OK


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
    bars = PhaseBars(enabled=sys.stderr.isatty())
    try:
        summary = asyncio.run(
            _fetch_and_reconcile(args, args.ledger, source, target, created_at, bars)
        )
    finally:
        bars.close()
    _print_summary(summary, target, time.monotonic() - started)
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


def _print_summary(summary: ReconcileSummary, report: Path | None, seconds: float) -> None:
    """The counts on stdout (unless the report goes there), one summary line on stderr."""
    if report is not None:
        print_counts(summary, report)
    _say(summary_line(summary, seconds, report))


# -- entry point ------------------------------------------------------------------------------


class _Failed(Exception):
    """The job failed (exit 1); the text is the whole message."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format=f"{PROG}: %(message)s", level=logging.WARNING)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (UsageError, CheckpointError, InputError, UnicodeDecodeError) as exc:
        _say(f"error: {_one_line(exc)}")
        return EXIT_USAGE
    except _Failed as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        resumable = args.command == "export" and checkpoint_path(args.output).exists()
        _say("interrupted" + ("; run the same command with --resume to continue" * resumable))
        return EXIT_INTERRUPTED
    except LeatError as exc:
        _say(f"error: {_one_line(exc)}")
        return EXIT_FAILED
    except OSError as exc:
        _say(f"error: {_one_line(exc)}")
        return EXIT_FAILED
    except ValueError as exc:  # arguments the library refused before sending anything
        _say(f"error: {_one_line(exc)}")
        return EXIT_USAGE
    except Exception as exc:  # a case nobody foresaw: still one line, never a traceback
        _say(f"error: unexpected {type(exc).__name__}: {_one_line(exc)}")
        return EXIT_FAILED
