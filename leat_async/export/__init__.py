"""Bulk export of giftcard transactions: streaming, atomic, resumable, incremental.

JSONL or CSV (plain, gzip or zstd) and Parquet, chosen by the output's suffix or asked for.

::

    async with LeatClient(token) as client:
        result = await export_transactions(client, "transactions.jsonl")

Rows are written page by page, in the API's order, to ``FILE.partial`` beside the target, and a
checkpoint ``FILE.checkpoint.json`` records how far the walk got: the snapshot bound, the next
page, the rows written and the byte length of the partial file after the last complete page.
Only a finished export is renamed to ``FILE`` (``os.replace``); then the checkpoint is removed.
A failed or interrupted export keeps both, and ``resume=True`` continues where it stopped: it cuts
the partial file back to the checkpoint's length and asks for the checkpoint's page within the
same snapshot, so every row ends up in the file exactly once.

``incremental=True`` (see :mod:`leat_async.export._incremental`) appends to ``FILE`` only the rows
created since the previous run; a binary stream instead of a path gets the rows as they arrive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import attrs

from .. import CreatedAt, GiftcardTransaction, LeatClient
from ..files import OutputBusyError, destination, one_writer, open_stream
from ._checkpoints import (
    CheckpointError,
    Progress,
    checkpoint_path,
    incremental_path,
    job_of,
    partial_path,
    read_checkpoint,
)
from ._formats import (
    COMPRESSIONS,
    FORMATS,
    PARTITIONS,
    Compression,
    ExportFormat,
    ExtraMissingError,
    PartitionBy,
    format_of,
    open_compressed,
    require_extra,
)
from ._incremental import export_increment
from ._output import in_thread, plan_run, tidy_complete
from ._remote import is_remote, require_fsspec, staging_path, upload
from ._rows import CSV_COLUMNS, CSV_TEXT_COLUMNS, transaction_json
from ._run import (
    PER_PAGE,
    ExportResult,
    Walked,
    commit,
    file_output,
    resuming,
    stream_output,
    walk_into,
)
from ._targets import check_streamable, dataset_dir

DEFAULT_SETTLE: Final = 60.0
_NOTHING_WALKED: Final = Walked(0, None)

__all__ = [
    "COMPRESSIONS",
    "CSV_COLUMNS",
    "CSV_TEXT_COLUMNS",
    "FORMATS",
    "PARTITIONS",
    "CheckpointError",
    "Compression",
    "ExportFormat",
    "ExportResult",
    "ExtraMissingError",
    "OutputBusyError",
    "PartitionBy",
    "checkpoint_path",
    "export_transactions",
    "format_of",
    "incremental_path",
    "is_remote",
    "open_compressed",
    "parquet_rows",
    "parse_datetime",
    "partial_path",
    "require_extra",
    "require_fsspec",
    "saved_rows",
    "transaction_json",
]


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or datetime; a date, or a datetime without a zone, is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or datetime: {text!r:.60}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value


def saved_rows(path: str | os.PathLike[str]) -> int | None:
    """Rows an unfinished export of ``path`` keeps for its resume (an incremental one: its new
    rows only); None when there is nothing to resume (a pipe or a device: never)."""
    try:
        if isinstance(path, str) and is_remote(path):
            path = staging_path(path)
        target = destination(path)
    except (OSError, ValueError):
        return None
    if target.stream or not partial_path(target.path).exists():
        return None
    try:
        progress = read_checkpoint(checkpoint_path(target.path), None)
    except CheckpointError:
        return None
    return progress.rows - progress.base_rows


def parquet_rows(path: str | os.PathLike[str]) -> Iterator[GiftcardTransaction]:
    """The transactions of a Parquet export, read a row group at a time (needs pyarrow)."""
    require_extra("parquet", "none")
    from ._parquet import read_transactions

    return read_transactions(path)


# -- the export -------------------------------------------------------------------------------


async def export_transactions(
    client: LeatClient,
    path: str | os.PathLike[str] | IO[bytes],
    *,
    format: ExportFormat | None = None,
    compression: Compression | None = None,
    partition_by: PartitionBy | None = None,
    created_at: CreatedAt | None = None,
    shop_uuid: str | None = None,
    giftcard_program_uuid: str | None = None,
    giftcard_hash: str | None = None,
    resume: bool = False,
    incremental: bool = False,
    settle: float = DEFAULT_SETTLE,
    progress: Callable[[int, int | None], None] | None = None,
    checkpoint_every: float = 1.0,
    job_id: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    staging: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Export every transaction of the listing (with these filters) to ``path``.

    - ``path``: a file, replaced only when the export is complete (through a symlink: the
      link's target, and the files beside it go beside the target); or a binary stream
      (``sys.stdout.buffer``), which gets the rows as they arrive (no checkpoint, no resume).
      A path to a named pipe or a character device is written as such a stream, never
      replaced. While an export writes a file, it holds an OS lock on ``FILE.lock`` beside
      it: another export (or reconcile) of the same file raises :class:`OutputBusyError`
      before it touches anything.
    - ``format``: ``"jsonl"`` (one transaction per line, the API's field names), ``"csv"``
      (RFC 4180, the columns of :data:`CSV_COLUMNS`; text cells a spreadsheet would execute
      get a leading ``'``, which :func:`~leat_async.reconcile.read_export` takes off again)
      or ``"parquet"`` (typed columns, zstd row groups; extra ``leat-async[parquet]``).
      ``None``: what the file's suffix says (``.csv``, ``.parquet``; else JSONL).
    - ``compression``: ``"gzip"`` or ``"zstd"`` (extra ``leat-async[zstd]``) for JSONL and
      CSV, or ``"none"``; ``None``: what the suffix says (``.gz``, ``.zst``). Asking for what
      is not installed raises :class:`ExtraMissingError` before anything is sent.
    - ``partition_by``: ``"day"`` or ``"month"``: ``path`` is a directory, written as a
      Hive-style Parquet dataset (``created_date=2024-03-01/`` or ``created_month=2024-03/``
      folders, by the UTC ``created_at``). A plain export needs a new or empty directory and
      makes it appear whole; ``incremental=True`` runs each add new files, never rewriting one.
    - ``resume``: continue the unfinished export recorded in ``checkpoint_path(path)``; its
      format, filters and base URL must be these (else :class:`CheckpointError`). Without
      ``resume``, an unfinished export in the way raises :class:`CheckpointError` too: resume
      it, or delete its ``.partial`` and ``.checkpoint.json`` files.
    - ``incremental``: the first run exports everything and remembers, in
      ``incremental_path(path)``, how far the file goes; each later run with the same options
      appends the rows created since, and first finishes a run that was cut short. Rows
      younger than ``settle`` seconds wait for the next run, so that a row committed a little
      after its ``created_at`` is not skipped.
    - ``progress(rows_done, expected_total)``: called once before the first request (with
      the rows a resumed export already has, and ``None``) and after every page, with the
      first page's ``meta.total`` (incremental: this run's new rows, of its window).
    - ``checkpoint_every``: seconds between checkpoints (``0``: after every page). A failure
      or cancellation writes one more for the last complete page, when it can (and removes
      both files when no checkpoint holds a row).
    - ``job_id``: stands in for the client's base URL in the checkpoint (for example for a
      server whose address changes between runs but whose data does not).
    - ``path`` as a URL (``s3://bucket/key.parquet``, any fsspec URL; extra
      ``leat-async[s3]``): the export is built in a local staging file, resumable as any
      (``staging`` or ``LEAT_ASYNC_STAGING``, else ``~/.cache/leat-async/staging``), then
      uploaded, the object appearing only when complete (a multipart upload, aborted on a
      failure). ``storage_options`` go to fsspec (``endpoint_url=``, ...); credentials come from
      the usual AWS environment. An incremental export keeps its staging file for the next run.

    Every argument is checked before a file is touched. Network errors raise the client's
    :class:`~leat_async.LeatError`; file errors raise ``OSError``.
    """
    name = os.fspath(path) if isinstance(path, str | os.PathLike) else ""
    fmt, comp = format_of(name, format, compression, partition_by=partition_by)
    require_extra(fmt, comp)
    url = path if isinstance(path, str) and is_remote(path) else None
    if url is not None:
        require_fsspec(url)
        if partition_by is not None:
            raise ValueError("a partitioned dataset is written to a local directory, not a URL")
    query = _checked_query(
        client,
        created_at=created_at,
        shop_uuid=shop_uuid,
        giftcard_program_uuid=giftcard_program_uuid,
        giftcard_hash=giftcard_hash,
        settle=settle,
    )
    job = job_of(
        format=fmt,
        compression=comp,
        partition_by=partition_by,
        base_url=job_id if job_id is not None else client.base_url,
        per_page=PER_PAGE,
        # the files beside the output never hold a card's code: its fingerprint names it
        **{**query, "giftcard_hash": giftcard_hash and client.fingerprint(giftcard_hash)},
    )
    if not isinstance(path, str | os.PathLike):
        check_streamable(fmt, resume=resume, incremental=incremental)
        return await _export_to_stream(client, path, job, query, progress)
    if resume and incremental:
        raise ValueError("an incremental export resumes by itself: leave out resume")
    publish = _no_publishing
    if url is not None:
        local = await in_thread(lambda: staging_path(url, staging))
        path = local

        def publish() -> None:
            upload(local, url, storage_options=storage_options)

    if partition_by is not None:
        target = dataset_dir(path, adding=incremental or resume)
    else:
        target = destination(path)
    if target.stream is not None:
        check_streamable(
            fmt, resume=resume, incremental=incremental, what=f"{name} is {target.stream}"
        )
        with await open_stream(target.path) as stream:
            result = await _export_to_stream(client, stream, job, query, progress)
        return attrs.evolve(result, path=Path(path))
    with one_writer(target.path, shown=url or path):
        if incremental:
            result = await export_increment(
                client,
                target.path,
                job,
                query,
                settle=settle,
                progress=progress,
                checkpoint_every=checkpoint_every,
                publish=publish,
            )
        else:
            result = await _export_to_file(
                client, target.path, job, query, resume, progress, checkpoint_every, publish
            )
            if url is not None:  # uploaded: the staging file has done its work
                await in_thread(lambda: target.path.unlink(missing_ok=True))
    return result if url is None else attrs.evolve(result, path=None, url=url)


def _no_publishing() -> None:
    pass


def _checked_query(client: LeatClient, *, settle: float, **query: Any) -> dict[str, Any]:
    """The listing's filters, checked (a pager is made, nothing is sent)."""
    if isinstance(settle, bool) or not isinstance(settle, int | float) or not 0 <= settle < 1e9:
        raise ValueError(f"settle must be a number of seconds >= 0, got {settle!r:.40}")
    client.giftcard_transactions.list(per_page=PER_PAGE, **query)
    return query


async def _export_to_file(
    client: LeatClient,
    target: Path,
    job: dict[str, Any],
    query: dict[str, Any],
    resume: bool,
    progress: Callable[[int, int | None], None] | None,
    checkpoint_every: float,
    publish: Callable[[], None],
) -> ExportResult:
    started, requests = time.monotonic(), client.stats.requests
    plan = await in_thread(lambda: plan_run(target, job, resume=resume, incremental=False))

    def after_rename() -> None:  # step 4: FILE is complete
        incremental_path(target).unlink(missing_ok=True)  # no incremental state holds now
        publish()

    state = plan.progress or Progress(job)
    done = _Summary(target, job, state, started, client, requests)
    if plan.complete:
        await in_thread(lambda: tidy_complete(target, after_rename))
        return done.result(first_rows=state.rows, was_complete=True)
    first_rows, first_page = state.rows, state.next_page
    output = file_output(
        target,
        state,
        start="resume" if plan.progress else "new",
        checkpoint_every=checkpoint_every,
    )
    if progress is not None:
        progress(state.rows, None)
    walked = _NOTHING_WALKED
    if not state.done:
        pager = client.giftcard_transactions.list(per_page=PER_PAGE, **resuming(state), **query)
        walked = await walk_into(pager, output, progress=progress)
    await commit(output, after_rename)
    return done.result(
        first_rows=first_rows,
        walked=walked,
        resumed_from_page=first_page if resume else None,
    )


async def _export_to_stream(
    client: LeatClient,
    stream: IO[bytes],
    job: dict[str, Any],
    query: dict[str, Any],
    progress: Callable[[int, int | None], None] | None,
) -> ExportResult:
    started, requests = time.monotonic(), client.stats.requests
    state = Progress(job)
    output = stream_output(stream, state)
    if progress is not None:
        progress(0, None)
    pager = client.giftcard_transactions.list(per_page=PER_PAGE, **query)
    walked = await walk_into(pager, output, progress=progress)
    await output.commit(lambda: None)
    done = _Summary(None, job, state, started, client, requests)
    return done.result(first_rows=0, walked=walked)


@attrs.frozen
class _Summary:
    """Makes the :class:`ExportResult` of a run from where it began."""

    target: Path | None
    job: dict[str, Any]
    state: Progress
    started: float
    client: LeatClient
    requests: int

    def result(
        self,
        *,
        first_rows: int,
        walked: Walked = _NOTHING_WALKED,
        resumed_from_page: int | None = None,
        was_complete: bool = False,
    ) -> ExportResult:
        return ExportResult(
            path=self.target,
            format=self.job["format"],
            compression=self.job.get("compression", "none"),
            rows=self.state.rows,
            rows_this_run=self.state.rows - first_rows,
            pages=walked.pages,
            resumed_from_page=resumed_from_page,
            expected=walked.expected,
            seconds=time.monotonic() - self.started,
            through=self.state.through,
            was_complete=was_complete,
            requests=self.client.stats.requests - self.requests,
        )
