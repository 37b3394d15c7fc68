"""The ``leat-async`` command: arguments, progress and exit codes around the library's jobs.

Exit status: see :data:`EXIT_STATUS_HELP`. Errors are one line on stderr, never a traceback.
The commands live in ``_cli_export`` and ``_cli_reconcile``, what they share in
``_cli_common``; this module builds the parser and turns every outcome into a status.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

import shtab

from .. import LeatError, __version__
from ..export import CheckpointError, OutputBusyError, saved_rows
from ..reconcile import InputError
from ..signals import Interrupted, take_over
from ._common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_USAGE,
    FAKE_END,
    PROG,
    STDOUT,
    UsageError,
    _decided,
    _Failed,
    _one_line,
    _Parser,
    _say,
    read_secrets,
)
from ._export import _BrokenPipe, add_export
from ._lookups import add_lookups
from ._reconcile import add_reconcile

__all__ = ["FAKE_END", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Leat's giftcard transactions from the command line: bulk jobs (export, "
        "reconcile), look-ups and a guarded refund (giftcards, transactions, webhooks).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # bash/zsh completion generated from these very parsers, so it cannot drift from them
    shtab.add_argument_to(
        parser, ["--print-completion"], help="print a bash or zsh completion script"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export, rec = add_export(commands), add_reconcile(commands)
    lookups = add_lookups(commands)
    _add_verbosity(parser, default=None)
    for command in (export, rec, *lookups):
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


# -- entry point ------------------------------------------------------------------------------


def _interrupted(args: argparse.Namespace | None, stop: Interrupted) -> str:
    output = getattr(args, "output", STDOUT)
    if args is None or args.command != "export" or output == STDOUT or saved_rows(output) is None:
        return stop.word
    how = "again" if args.incremental else "with --resume"
    return f"{stop.word}; run the same command {how} to continue"


def _usage(args: argparse.Namespace | None, exc: BaseException) -> str:
    """A usage error's line, with the hint argparse's own errors end with (see _Parser)."""
    words = [PROG, *(w for w in (getattr(args, n, None) for n in ("command", "action")) if w)]
    return f"error: {_one_line(exc)} (see {' '.join(words)} --help)"


def _outcome(args: argparse.Namespace | None, exc: BaseException) -> tuple[int, str | None]:
    """The exit status and the one line to print for a command that raised ``exc``."""
    if isinstance(exc, KeyboardInterrupt):  # SIGINT or SIGTERM (see _cli_signals)
        stop = exc if isinstance(exc, Interrupted) else Interrupted()
        return stop.status, _interrupted(args, stop)
    if isinstance(exc, _BrokenPipe | BrokenPipeError):
        # quietly, as any command whose reader went away; and no second error at exit
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE, None
    if isinstance(
        exc, UsageError | CheckpointError | InputError | UnicodeDecodeError | OutputBusyError
    ):
        return EXIT_USAGE, _usage(args, exc)
    if isinstance(exc, _Failed):
        return EXIT_FAILED, f"error: {exc}"
    if isinstance(exc, LeatError | OSError):
        return EXIT_FAILED, f"error: {_one_line(exc)}"
    if isinstance(exc, ValueError):  # arguments the library refused before sending anything
        return EXIT_USAGE, _usage(args, exc)
    if isinstance(exc, Exception):  # a case nobody foresaw: still one line, never a traceback
        return EXIT_FAILED, f"error: unexpected {type(exc).__name__}: {_one_line(exc)}"
    raise exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status (the console script exits with it).

    SIGINT (Ctrl-C) and SIGTERM stop any command the same way: what it made is cleaned up
    (an export keeps what a resume needs), one line, status 130 or 143 (see
    :mod:`leat_async.signals`). Once the status is known, a signal no longer changes it
    (both stay ignored after this returns: the process is about to exit).
    """
    take_over()
    args: argparse.Namespace | None = None
    message: str | None = None
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(format=f"{PROG}: %(message)s", level=logging.WARNING)
        logging.getLogger("leat_async").setLevel(_log_level(args))
        read_secrets(args)
        run: Callable[[argparse.Namespace], int] = args.run
        status = run(args)
    except BaseException as exc:  # each kind gets its status in _outcome
        status, message = _outcome(args, exc)
    _decided(status)
    if message is not None:
        _say(message)
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            signal.signal(signum, signal.SIG_IGN)
    return status
