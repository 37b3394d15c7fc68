"""Incremental export: a file that each run extends with the rows created since the last one.

``FILE.incremental.json`` says how far ``FILE`` goes: it holds every row (with the job's
filters) created before ``through``. A run walks the rows created from ``through`` on, within a
snapshot taken when it starts, and keeps those created more than ``settle`` seconds before the
snapshot: a row is committed a moment after its ``created_at``, and one still in flight when the
walk passes its second would be skipped for good. The next run's walk starts where this one's
``through`` ends, so every row is appended once, in the API's order within each run.

A run appends atomically from a reader's view: ``FILE`` is copied to ``FILE.partial`` (at its
first new row), extended there, and renamed over ``FILE`` (see ``export/_output.py``). A run
that was cut short is finished by the next one, with its own snapshot and bounds, before that
one starts its own; so a crash at any point, then the same command again, gives the file an
uninterrupted run would have given.

A row's ``settled`` and ``settlements`` may change after it was exported; an incremental file
keeps the values of the night it was appended (re-export a window to refresh it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .. import CreatedAt, GiftcardTransaction, LeatClient, Position
from ._checkpoints import (
    CheckpointError,
    IncrementalState,
    Progress,
    incremental_path,
    read_incremental,
    write_atomically,
)
from ._output import in_thread, plan_run, size_of, tidy_complete
from ._run import PER_PAGE, ExportResult, Keep, commit, file_output, resuming, walk_into

__all__ = ["export_increment", "through_of", "window_from"]


def through_of(snapshot: datetime, settle: float, since: datetime | None) -> datetime:
    """The run's bound: ``settle`` seconds before the snapshot, in whole seconds (as rows are
    stored), and never before where the run starts."""
    through = (snapshot - timedelta(seconds=settle)).replace(microsecond=0)
    return max(through, since) if since is not None else through


def window_from(created_at: CreatedAt | None, since: datetime | None) -> CreatedAt | None:
    """The caller's range, from ``since`` on. ``ValueError`` when nothing of it is left."""
    if since is None:
        return created_at
    given = created_at or CreatedAt()
    if given.lower is not None and given.lower >= since:
        return given
    return CreatedAt(gte=since, lt=given.lt, lte=given.lte)  # raises when it holds nothing


def _settled_rows(state: Progress, settle: float) -> Keep:
    """The rows of a page created before the run's ``through`` (fixed by its first page)."""

    def keep(rows: Sequence[GiftcardTransaction], position: Position) -> list[GiftcardTransaction]:
        if state.through is None:
            assert position.snapshot is not None  # set by the walk's first page
            state.through = through_of(position.snapshot, settle, state.since)
        through = state.through
        return [tx for tx in rows if tx.created_at < through]

    return keep


def _remember(
    target: Path,
    job: dict[str, Any],
    state: Progress,
    publish: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """Step 4 of the commit: record how far FILE now goes (its length known only by then:
    the last compressed member, a Parquet file's assembly), then ``publish()`` it if asked."""

    def remember() -> None:
        known = IncrementalState(through=state.through, rows=state.rows, length=state.length)
        write_atomically(incremental_path(target), known.dump(job))
        if publish is not None:
            publish()

    return remember


def _state_of(target: Path, job: dict[str, Any]) -> IncrementalState | None:
    """How far FILE goes (None: no FILE yet, the first run); it must be what the state says."""
    path = incremental_path(target)
    if not path.exists():
        if target.exists():
            raise CheckpointError(
                f"{target} exists but was not written by --incremental; give another file, "
                "or delete it to start over"
            )
        return None
    known = read_incremental(path, job)
    size = size_of(target)
    if size != known.length:
        now = "is missing" if size is None else f"has {size} bytes, not {known.length}"
        raise CheckpointError(
            f"{target} changed since its last incremental run (it {now}); "
            f"delete it and {path.name} to start over"
        )
    return known


class _Totals:
    """What the (one or two) walks of a run add up to."""

    def __init__(self) -> None:
        self.new_rows = 0
        self.pages = 0
        self.expected: int | None = None
        self.resumed_from_page: int | None = None


async def export_increment(
    client: LeatClient,
    target: Path,
    job: dict[str, Any],
    query: dict[str, Any],
    *,
    settle: float,
    progress: Callable[[int, int | None], None] | None,
    checkpoint_every: float,
    publish: Callable[[], None] = lambda: None,
) -> ExportResult:
    """One incremental run (see the module's docstring); the arguments are checked already.
    ``publish()`` runs after each commit has put FILE in place (an upload, for a URL)."""

    started, requests = time.monotonic(), client.stats.requests
    totals = _Totals()

    def report(rows: int, expected: int | None) -> None:
        if progress is not None:
            progress(totals.new_rows + rows, expected)

    async def run(state: Progress, start: Any, created_at: CreatedAt | None) -> bool:
        """Walk into FILE's partial copy; commit when a row was written or FILE is new."""
        output = file_output(target, state, start=start, checkpoint_every=checkpoint_every)
        if not state.done:
            pager = client.giftcard_transactions.list(
                per_page=PER_PAGE, **resuming(state), **{**query, "created_at": created_at}
            )
            walked = await walk_into(
                pager, output, keep=_settled_rows(state, settle), progress=report
            )
            totals.pages += walked.pages
            totals.expected = walked.expected if totals.expected is None else totals.expected
        wrote = output.opened or start != "copy"
        if wrote:
            await commit(output, _remember(target, job, state, publish))
        totals.new_rows += state.rows - state.base_rows
        return wrote

    report(0, None)
    plan = await in_thread(lambda: plan_run(target, job, resume=False, incremental=True))
    if plan.progress is not None:  # the last run was cut short: finish it first
        last = plan.progress
        if plan.complete:
            await in_thread(lambda: tidy_complete(target, _remember(target, job, last, publish)))
        else:
            totals.resumed_from_page = last.next_page
            await run(last, "resume", window_from(query["created_at"], last.since))
    known = await in_thread(lambda: _state_of(target, job))
    since = known.through if known is not None else None
    state = Progress(job, incremental=True, since=since, through=None)
    if known is not None:
        state.rows = state.base_rows = known.rows
        state.length = known.length
    try:
        window = window_from(query["created_at"], since)
    except ValueError:  # the caller's range ends before ``since``: nothing can be new
        state.through = since
    else:
        wrote = await run(state, "copy" if known is not None else "new", window)
        if not wrote and state.through is not None and state.through != since:
            remember = _remember(target, job, state)  # no new row, but FILE goes further
            await in_thread(remember)
    return ExportResult(
        path=target,
        format=job["format"],
        compression=job.get("compression", "none"),
        rows=state.rows,
        rows_this_run=totals.new_rows,
        pages=totals.pages,
        resumed_from_page=totals.resumed_from_page,
        expected=totals.expected,
        seconds=time.monotonic() - started,
        through=state.through if state.through is not None else since,
        requests=client.stats.requests - requests,
    )
