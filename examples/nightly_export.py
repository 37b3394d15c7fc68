"""A nightly export job in Python: yesterday's transactions to a JSONL file, resumable.

Try it against the bundled fake Leat server (no token, no network)::

    python examples/nightly_export.py --fake 2000 -o out.jsonl --crash-after 700   # dies
    python examples/nightly_export.py --fake 2000 -o out.jsonl                     # resumes
    wc -l out.jsonl                                                                # 2000

Against Leat: ``LEAT_TOKEN=... python examples/nightly_export.py --date 2024-05-01 -o may1.jsonl``.

How it stays exact when killed at any moment:

- rows are appended to the output file as they arrive;
- every ``--every`` rows the file is flushed and fsynced, then a checkpoint is written beside it
  (``OUT.checkpoint.json``): ``pager.position.to_dict()``, which names exactly the rows handed
  out so far, and the file's byte length at that moment. The checkpoint is replaced atomically
  (a temporary file, fsync, ``os.replace``): a crash leaves the old one or the new one, whole;
- on start, a checkpoint means "resume": the file is cut back to the recorded length (rows
  written after the checkpoint are dropped) and the walk goes on from the recorded position
  (``list(created_at=..., resume=position)``), which hands out exactly the rows not yet in the
  file, within the first run's snapshot. Every row ends up in the file exactly once.

A finished export marks its checkpoint ``complete``: running the job again does nothing. A
checkpoint names its range: one of another day (``--date``) is refused, complete or not, and
the file is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from leat_async import CreatedAt, LeatClient, LeatError, Position
from leat_async.export import transaction_json

EVERY = 500  # rows between checkpoints: a crash costs at most this many rows fetched again


@dataclass
class Checkpoint:
    position: dict[str, Any] | None  # Position.to_dict(); None before the first row
    length: int  # bytes of the output file that hold checkpointed rows
    rows: int
    complete: bool = False
    range: str = ""  # the range exported (day_label): a checkpoint names what it is of


@dataclass
class ExportResult:
    rows: int  # rows in the file
    resumed_from: int | None  # rows the file already held (a resumed run), or None
    complete: bool


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoint.json")


def load_checkpoint(path: Path) -> Checkpoint | None:
    try:
        doc = json.loads(path.read_bytes())
        return Checkpoint(
            doc["position"], doc["length"], doc["rows"], doc["complete"], doc.get("range", "")
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a checkpoint of this job: move it away") from None


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically: the old checkpoint or the new one survives a crash, never half of one."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as f:
        f.write(json.dumps(vars(checkpoint)).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)  # (a stricter job also fsyncs the directory here)


def range_label(created_at: CreatedAt) -> str:
    """The range as a checkpoint names it: its bounds in UTC."""
    bounds = [
        f"{name} {when.astimezone(UTC).isoformat()}"
        for name, when in (("from", created_at.lower), ("before", created_at.upper))
        if when is not None
    ]
    return ", ".join(bounds)


def day_range(day: date) -> CreatedAt:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return CreatedAt(gte=start, lt=start + timedelta(days=1))


async def export(
    client: LeatClient,
    out: Path,
    created_at: CreatedAt,
    *,
    every: int = EVERY,
    on_row: Callable[[int], None] | None = None,
) -> ExportResult:
    """Export the range to ``out`` (JSONL), resuming from ``out``'s checkpoint if there is one.

    ``on_row(rows)`` is called after each row is written (the tests use it to crash mid-way).
    """
    checkpoint_file = checkpoint_path(out)
    saved = load_checkpoint(checkpoint_file)
    label = range_label(created_at)
    if saved is not None and saved.range != label:
        # another range's file, complete or not: never called done, never overwritten
        raise ValueError(
            f"{out} holds the export of another range ({saved.range or 'unknown'}), not "
            f"{label}: write to another file"
        )
    if saved is not None and saved.complete:
        return ExportResult(saved.rows, saved.rows, complete=True)
    resume = Position.from_dict(saved.position) if saved and saved.position else None
    # made before the file is touched: a checkpoint of another range is refused (ValueError)
    pager = client.giftcard_transactions.list(created_at=created_at, resume=resume)
    rows = saved.rows if saved else 0
    with open_output(out, saved) as f:

        def checkpoint(complete: bool = False) -> None:
            f.flush()
            os.fsync(f.fileno())  # the rows first, then the checkpoint that counts them
            position = pager.position
            state = position.to_dict() if position is not None else None
            saved = Checkpoint(state, f.tell(), rows, complete, label)
            save_checkpoint(checkpoint_file, saved)

        async for tx in pager:
            f.write(json.dumps(transaction_json(tx), separators=(",", ":")).encode() + b"\n")
            rows += 1
            if on_row is not None:
                on_row(rows)
            if rows % every == 0:
                checkpoint()
        checkpoint(complete=True)
    return ExportResult(rows, saved.rows if saved else None, complete=True)


def open_output(out: Path, saved: Checkpoint | None) -> BinaryIO:
    """A fresh file, or the old one cut back to what its checkpoint counts."""
    if saved is None:
        return out.open("wb")
    f = out.open("r+b")
    f.truncate(saved.length)
    f.seek(saved.length)
    return f


# -- the command line ------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> ExportResult:
    day = args.date or (datetime.now(UTC) - timedelta(days=1)).date()
    out = Path(args.output)
    on_row = crash_after(args.crash_after) if args.crash_after else None
    if args.fake is None:
        token = os.environ["LEAT_TOKEN"]
        async with LeatClient(token, base_url=args.base_url, rate_limit=args.rate) as client:
            return await export(client, out, day_range(day), every=args.every, on_row=on_row)
    from leat_async.testing import FakeLeat

    async with FakeLeat() as fake:
        # the same rows on every run for the same --date: a rerun sees what the crashed run saw
        start = datetime.combine(day, time(), tzinfo=UTC)
        fake.seed(args.fake, start=start, end=start + timedelta(days=1) - timedelta(seconds=1))
        async with LeatClient(fake.token, base_url=fake.url) as client:
            return await export(client, out, day_range(day), every=args.every, on_row=on_row)


def crash_after(n: int) -> Callable[[int], None]:
    def on_row(rows: int) -> None:
        if rows == n:
            print(f"crashing after {n} rows (as kill -9 would)", file=sys.stderr)
            os._exit(70)  # no cleanup, no flush: what a power cut leaves

    return on_row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", required=True, help="the JSONL file")
    parser.add_argument("--date", type=date.fromisoformat, help="the day (UTC); yesterday")
    parser.add_argument("--every", type=int, default=EVERY, help="rows between checkpoints")
    parser.add_argument("--fake", type=int, metavar="N", help="a fake Leat with N rows that day")
    parser.add_argument("--crash-after", type=int, metavar="N", help="die after N rows (demo)")
    parser.add_argument("--base-url", default="https://api.piggy.eu")
    parser.add_argument("--rate", type=int, default=5, help="requests per second at most")
    args = parser.parse_args(argv)
    if args.fake is None and not os.environ.get("LEAT_TOKEN"):
        parser.error("set LEAT_TOKEN in the environment (or use --fake N)")
    if args.every < 1:
        parser.error("--every must be 1 or more")
    try:
        result = asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except ValueError as error:  # a checkpoint of another day, or not one at all
        print(f"cannot resume: {error}", file=sys.stderr)
        return 2
    except (LeatError, OSError) as error:  # one line, never a traceback
        print(f"export failed: {error}; run the same command again to resume", file=sys.stderr)
        return 3
    if result.resumed_from == result.rows:
        print(f"{args.output} was complete already ({result.rows} rows)", file=sys.stderr)
    else:
        again = f", resumed after {result.resumed_from}" if result.resumed_from else ""
        print(f"{result.rows} rows in {args.output}{again}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
