"""A ledger file read and sorted in a process of its own, on a second core, while the job reads
the transactions: ``main([LEDGER, DIRECTORY, MEMORY_ROWS])`` in ``python -I`` (see ``_BOOT``).

The worker writes the ledger's records into sorted run files in DIRECTORY and tells its parent
on stdout, one line each: ``read N`` now and then, then ``run PATH`` for each run and
``done ROWS``; or
``error input MESSAGE`` for a ledger that cannot be read as one (exit 2), ``error os MESSAGE``
(exit 3). It runs in a session of its own (a Ctrl-C at the terminal is its parent's to handle),
and gives up when its parent is gone. :class:`LedgerWorker` is the parent's side.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

__all__ = ["WORKER_MIN_BYTES", "LedgerWorker"]

#: smaller ledger files are read in the job's own process: a worker costs ~0.5 s to start
WORKER_MIN_BYTES: Final = 16 * 1024 * 1024
_CHUNK: Final = 8192
_REPORT_EVERY: Final = 64  # chunks between ``read N`` lines (few: the pipe must never fill)
_PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent
_BOOT: Final = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from leat_async.reconcile._ledger_worker import main; sys.exit(main(sys.argv[2:]))"
)


def main(argv: Sequence[str]) -> int:
    from ._job import ReconcileJob
    from ._ledger import InputError, read_ledger_fields

    ledger, directory, memory_rows = argv[0], Path(argv[1]), int(argv[2])
    parent = os.getppid()
    try:
        job = ReconcileJob(directory, tolerance=0.0, memory_rows=memory_rows)
        rows = read_ledger_fields(ledger)
        for n in itertools.count(1):
            if not job.add_ledger(itertools.islice(rows, _CHUNK)):
                break
            if os.getppid() != parent:  # orphaned: nobody wants the result
                return 3
            if not n % _REPORT_EVERY:
                _say(f"read {job.ledger_rows}")
        runs = job.ledger_to_runs()
    except (InputError, UnicodeDecodeError) as exc:
        _say(f"error input {_one_line(exc)}")
        return 2
    except (OSError, ValueError) as exc:
        _say(f"error os {_one_line(exc)}")
        return 3
    for run in runs:
        _say(f"run {run}")
    _say(f"done {job.ledger_rows}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class LedgerWorker:
    """The parent's side: start the worker, follow its progress, get its run, or stop it."""

    def __init__(self, ledger: Path, directory: Path, memory_rows: int) -> None:
        # isolated (-I): this very package, whatever the working directory or PYTHONPATH hold
        self._args = [
            sys.executable,
            "-I",
            "-c",
            _BOOT,
            str(_PACKAGE_ROOT),
            str(ledger.resolve()),
            str(directory.resolve()),
            str(memory_rows),
        ]
        self._proc: asyncio.subprocess.Process | None = None
        self.rows = 0

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

    async def result(self, on_read: Callable[[], None]) -> tuple[list[Path], int]:
        """Wait for the sorted runs; ``on_read()`` hears of each ``read N``."""
        from ._ledger import InputError

        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        runs: list[Path] = []
        async for raw in proc.stdout:
            word, _, rest = raw.decode().rstrip("\n").partition(" ")
            if word == "read":
                self.rows = int(rest)
                on_read()
            elif word == "run":
                runs.append(Path(rest))
            elif word == "done":
                self.rows = int(rest)
                await proc.wait()
                return runs, self.rows
            elif word == "error":
                kind, _, message = rest.partition(" ")
                await proc.wait()
                raise (InputError if kind == "input" else OSError)(message)
        raise RuntimeError(f"the ledger worker ended without a result ({await proc.wait()})")

    async def stop(self) -> None:
        """Kill it (if it still runs) and wait for it: then its files can be removed."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
