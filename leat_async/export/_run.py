"""What a plain export and an incremental run share: the result, and the walk into an output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

import attrs

from .. import GiftcardTransaction, Pager, Position
from ._checkpoints import Progress
from ._formats import Compression, ExportFormat, codec_for
from ._output import FileOutput, Output, Start, StreamOutput
from ._rows import ENCODERS, HEADERS

__all__ = [
    "PER_PAGE",
    "ExportResult",
    "Keep",
    "Walked",
    "commit",
    "file_output",
    "resuming",
    "stream_output",
    "walk_into",
]

PER_PAGE: Final = 100

#: ``keep(rows, position)``: the rows of a page that go into the file
Keep = Callable[[Sequence[GiftcardTransaction], Position], Sequence[GiftcardTransaction]]


@attrs.frozen(kw_only=True)
class ExportResult:
    """What :func:`export_transactions` did."""

    path: Path | None  # the file written (symlinks followed), or the pipe; None: a stream
    format: ExportFormat
    compression: Compression = "none"
    url: str | None = None  # exported to object storage: the object (``path`` is None)
    rows: int  # rows in the finished file
    rows_this_run: int
    pages: int  # pages fetched by this run
    resumed_from_page: int | None  # None for a fresh export
    expected: int | None  # the listing's ``meta.total`` on the first page of this run
    seconds: float
    #: incremental: the file now holds every row created before this (None: no row yet)
    through: datetime | None = None
    #: the export had already finished; a crash had only kept it from removing its checkpoint
    was_complete: bool = False
    requests: int = 0  # requests this run sent (retries included)


@attrs.frozen
class Walked:
    """What one walk into an output did."""

    pages: int
    expected: int | None


async def walk_into(
    pager: Pager[GiftcardTransaction],
    output: Output,
    *,
    keep: Keep | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Walked:
    """Write every page of ``pager`` (the rows ``keep`` keeps) to ``output``, then commit it
    elsewhere: on a failure or a cancel the output is abandoned (kept for a resume)."""
    state = output.progress
    pages = 0
    expected: int | None = None
    try:
        async for page in pager.pages():
            if expected is None:
                expected = page.meta.total
            position = pager.position
            assert position is not None  # a page was handed out: the snapshot is fixed
            rows = page.data if keep is None else keep(page.data, position)
            await output.write(rows, position)
            pages += 1
            if progress is not None:
                progress(state.rows - state.base_rows, expected)
    except BaseException:
        output.abandon()
        raise
    return Walked(pages, expected)


def resuming(state: Progress) -> dict[str, Any]:
    """Where a run's walk starts: after exactly what its checkpoint says was written."""
    if state.position is not None:
        return {"resume": state.position}
    return {"page": state.next_page, "snapshot": state.snapshot}


async def commit(output: Output, after_rename: Callable[[], None]) -> None:
    try:
        await output.commit(after_rename)
    except BaseException:
        output.abandon()  # a no-op once the rename has begun
        raise


def file_output(target: Path, state: Progress, *, start: Start, checkpoint_every: float) -> Output:
    """Where a run of ``state.job`` writes ``target``: its format's partial file."""
    job = state.job
    if "partition_by" in job:
        from ._dataset import DatasetOutput

        return DatasetOutput(
            target,
            state,
            start=start,
            partition_by=job["partition_by"],
            checkpoint_every=checkpoint_every,
        )
    if job["format"] == "parquet":
        from ._parquet import ParquetOutput

        return ParquetOutput(target, state, start=start, checkpoint_every=checkpoint_every)
    return FileOutput(target, state, start=start, checkpoint_every=checkpoint_every, **_bytes(job))


def stream_output(stream: IO[bytes], state: Progress) -> Output:
    """Where a run of ``state.job`` writes a stream (JSONL or CSV, maybe compressed)."""
    return StreamOutput(stream, state, **_bytes(state.job))


def _bytes(job: dict[str, Any]) -> dict[str, Any]:
    """How a JSONL or CSV job's rows become bytes: its encoder, header and codec."""
    fmt = job["format"]
    return {
        "encode": ENCODERS[fmt],
        "header": HEADERS[fmt],
        "codec": codec_for(job.get("compression", "none")),
    }
