"""What every ``leat-async`` command shares: exit statuses, argument types, the fetch options,
the client (real or fake), messages and the progress bar.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from .. import (
    DEFAULT_BASE_URL,
    AuthenticationError,
    CreatedAt,
    LeatClient,
)
from ..export import parse_datetime
from ..files import destination
from ..signals import decided

PROG = "leat-async"
TOKEN_ENV = "LEAT_TOKEN"  # noqa: S105 - the variable's name, not a token
#: ``--fake N`` seeds the same N rows every run: the year before this instant
FAKE_END = datetime(2025, 1, 1, tzinfo=UTC)
DEFAULT_CONCURRENCY = 8
EXIT_OK, EXIT_DISCREPANCIES, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process that SIGTERM ended
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, as for any command whose reader went away
EXIT_STATUS_HELP = (
    f"Exit status: {EXIT_OK} done; {EXIT_DISCREPANCIES} reconcile found discrepancies; "
    f"{EXIT_USAGE} bad arguments (nothing is left behind); {EXIT_FAILED} the job failed (an "
    f"export keeps what it saved for a resume); {EXIT_INTERRUPTED} interrupted (Ctrl-C), "
    f"{EXIT_TERMINATED} terminated (SIGTERM), both after cleaning up; "
    f"{EXIT_BROKEN_PIPE} the reader of -o - went away (a broken pipe, e.g. | head)."
)
STDOUT = "-"
#: what ``ArgumentParser.add_subparsers()`` returns: each command adds its parser to it
Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


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


class _Failed(Exception):
    """The job failed (exit 3); the text is the whole message."""


def _decided(status: int) -> int:
    """From here the exit status is ``status``: a signal while the process winds down (closing
    connections, joining threads) ends it at once with that status, not with another one."""
    return decided(status)


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
    group.add_argument(
        "--giftcard-hash",
        metavar="H",
        help="only this giftcard's rows (the card's code; '-' reads it from standard input, "
        "which keeps it out of the process list)",
    )
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


#: the arguments that may be given as ``-`` to come from standard input, as the help shows them;
#: a card code must not be empty
_FROM_STDIN = {"giftcard_hash": "--giftcard-hash", "code": "CODE", "secret": "--secret"}


def read_secrets(args: argparse.Namespace) -> None:
    """Card codes and secrets given as ``-`` are read from standard input (one line each, in
    the order of ``_FROM_STDIN``): a code is enough to spend a card, and a command line is
    visible to every user of the machine. ``--secret`` takes nothing else."""
    if getattr(args, "secret", None) not in (None, STDOUT):
        raise UsageError("--secret takes only - (the secret from standard input, never argv)")
    for name, shown in _FROM_STDIN.items():
        if getattr(args, name, None) != STDOUT:
            continue
        value = sys.stdin.readline().rstrip("\r\n")
        if not value and name != "secret":
            raise UsageError(f"{shown} -: standard input held no card code")
        setattr(args, name, value)


# -- shared plumbing --------------------------------------------------------------------------


def _created_at(args: argparse.Namespace) -> CreatedAt | None:
    if args.since is None and args.until is None:
        return None
    try:
        return CreatedAt(gte=args.since, lt=args.until)
    except ValueError:
        raise UsageError("--since must be before --until") from None


def _check_output(path: str) -> Path:
    """``-o FILE``: a regular file (through a symlink: its target), a pipe or a device."""
    if path == STDOUT:
        raise UsageError("-o - (standard output) works only for export")
    try:
        where = destination(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # e.g. a directory on the way that may not be searched
        raise UsageError(f"cannot write {path}: {_one_line(exc)}") from None
    if where.stream is None and not where.path.parent.is_dir():
        raise UsageError(f"the directory of {path} does not exist")
    if where.stream is None:
        _can_write_in(where.path.parent, path)
    return Path(path)


def _can_write_in(directory: Path, shown: str) -> None:
    """Exit 2 now, before any request, if no file can be made in ``directory`` (read-only,
    not ours, or a file system like /proc that takes none): asking the OS is the only sure way,
    as root passes every permission check."""
    try:
        try:  # a file without a name: nothing is left behind, whenever the process dies
            os.close(os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600))
        except (AttributeError, OSError) as exc:  # no O_TMPFILE here, or not on this file system
            if isinstance(exc, OSError) and exc.errno != errno.EOPNOTSUPP:
                raise
            tempfile.NamedTemporaryFile(dir=directory, prefix=".leat-async-probe-").close()
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {_one_line(exc)}") from None


def _is_stream(path: Path) -> bool:
    """Whether ``-o path`` (checked) is written as a stream: a pipe or a device."""
    try:
        return destination(path).stream is not None
    except (OSError, ValueError):
        return False


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
    from ..testing import FakeLeat  # only --fake pays for the fake's import

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
