"""Bulk export of giftcard transactions to JSONL or CSV: streaming, atomic, resumable.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeVar

import attrs

from . import CreatedAt, GiftcardTransaction, LeatClient

__all__ = [
    "CSV_COLUMNS",
    "CheckpointError",
    "ExportFormat",
    "ExportResult",
    "checkpoint_path",
    "export_transactions",
    "parse_datetime",
    "partial_path",
    "transaction_json",
]

T = TypeVar("T")
ExportFormat = Literal["jsonl", "csv"]
FORMATS: Final = ("jsonl", "csv")
CSV_COLUMNS: Final = (
    "id",
    "uuid",
    "amount_in_cents",
    "type",
    "settled",
    "card_id",
    "card_uuid",
    "shop_id",
    "shop_uuid",
    "shop_name",
    "created_at",
)
PER_PAGE: Final = 100
_CHECKPOINT_VERSION: Final = 1


class CheckpointError(ValueError):
    """A resume that cannot be done as asked: no checkpoint, another job's, or a damaged one.

    Also raised when an unfinished export is in the way of a fresh one.
    """


@attrs.frozen(kw_only=True)
class ExportResult:
    """What :func:`export_transactions` did."""

    path: Path
    format: ExportFormat
    rows: int  # rows in the finished file
    rows_this_run: int
    pages: int  # pages fetched by this run
    resumed_from_page: int | None  # None for a fresh export
    expected: int | None  # the listing's ``meta.total`` on the first page of this run
    seconds: float


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Where rows go while the export of ``path`` runs."""
    p = Path(path)
    return p.with_name(p.name + ".partial")


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """The checkpoint of the export of ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".checkpoint.json")


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or datetime; a date, or a datetime without a zone, is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or datetime: {text!r:.60}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value


def _row(tx: GiftcardTransaction, created_at: Any) -> dict[str, Any]:
    card, shop = tx.card, tx.shop
    return {
        "id": tx.id,
        "uuid": tx.uuid,
        "amount_in_cents": tx.amount_in_cents,
        "type": tx.type,
        "settled": tx.settled,
        "card": {"id": card.id, "uuid": card.uuid},
        "shop": {"id": shop.id, "uuid": shop.uuid, "name": shop.name},
        "settlements": tx.settlements,
        "created_at": created_at,
    }


def transaction_json(tx: GiftcardTransaction) -> dict[str, Any]:
    """The transaction with the API's own field names and ``created_at`` in ISO 8601."""
    return _row(tx, tx.created_at.isoformat())


try:
    import orjson
except ImportError:  # pragma: no cover - orjson is the optional "fast" extra

    def _jsonl(rows: Sequence[GiftcardTransaction]) -> bytes:
        lines = [
            json.dumps(transaction_json(tx), ensure_ascii=False, separators=(",", ":"))
            for tx in rows
        ]
        return "".join(line + "\n" for line in lines).encode()

else:
    _LINE: Final = orjson.OPT_APPEND_NEWLINE

    def _jsonl(rows: Sequence[GiftcardTransaction]) -> bytes:
        # orjson writes a datetime as isoformat() does and a tuple as a list: no conversions
        dumps = orjson.dumps
        return b"".join([dumps(_row(tx, tx.created_at), option=_LINE) for tx in rows])


def _csv_header() -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(CSV_COLUMNS)
    return buf.getvalue().encode()


def _csv(rows: Sequence[GiftcardTransaction]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        (
            tx.id,
            tx.uuid or "",
            tx.amount_in_cents,
            tx.type,
            "true" if tx.settled else "false",
            tx.card.id,
            tx.card.uuid or "",
            tx.shop.id,
            tx.shop.uuid or "",
            tx.shop.name,
            tx.created_at.isoformat(),
        )
        for tx in rows
    )
    return buf.getvalue().encode()


_ENCODERS: Final[dict[str, Callable[[Sequence[GiftcardTransaction]], bytes]]] = {
    "jsonl": _jsonl,
    "csv": _csv,
}


# -- the checkpoint ---------------------------------------------------------------------------


def _job(
    *,
    format: str,
    base_url: str,
    created_at: CreatedAt | None,
    shop_uuid: str | None,
    giftcard_program_uuid: str | None,
    giftcard_hash: str | None,
) -> dict[str, Any]:
    """What identifies an export: a resume must ask for exactly this again."""
    bounds = {}
    if created_at is not None:
        for name in ("gt", "gte", "lt", "lte"):
            value = getattr(created_at, name)
            if value is not None:
                bounds[name] = value.astimezone(UTC).isoformat()
    return {
        "format": format,
        "base_url": base_url,
        "per_page": PER_PAGE,
        "filters": {
            "created_at": bounds,
            "shop_uuid": shop_uuid,
            "giftcard_program_uuid": giftcard_program_uuid,
            "giftcard_hash": giftcard_hash,
        },
    }


@attrs.define
class _State:
    job: dict[str, Any]
    snapshot: datetime | None = None
    next_page: int = 1
    rows: int = 0
    length: int = 0  # bytes of the partial file after the last complete page

    def dump(self) -> bytes:
        doc = {
            "version": _CHECKPOINT_VERSION,
            **self.job,
            "snapshot": self.snapshot.isoformat() if self.snapshot is not None else None,
            "next_page": self.next_page,
            "rows": self.rows,
            "bytes": self.length,
        }
        return json.dumps(doc, indent=2).encode() + b"\n"


def _write_checkpoint(path: Path, state: _State) -> None:
    """Atomically: a temporary file beside it, fsynced, then ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(state.dump())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_checkpoint(path: Path, job: dict[str, Any]) -> _State:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"nothing to resume: {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != _CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} is not a checkpoint of this version of leat-async")
    try:
        saved = {key: doc[key] for key in job}
        snapshot = doc["snapshot"]
        state = _State(
            job,
            snapshot=datetime.fromisoformat(snapshot) if snapshot is not None else None,
            next_page=int(doc["next_page"]),
            rows=int(doc["rows"]),
            length=int(doc["bytes"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint {path} is damaged ({exc!r:.80})") from None
    differs = [key for key in job if key != "filters" and saved[key] != job[key]]
    filters = saved["filters"] if isinstance(saved["filters"], dict) else {}
    differs += [key for key, value in job["filters"].items() if filters.get(key) != value]
    if differs:
        raise CheckpointError(
            f"the checkpoint {path} is for another export (different {', '.join(differs)}); "
            "resume with the same options, or delete it to start over"
        )
    if state.next_page < 1 or state.rows < 0 or state.length < 0:
        raise CheckpointError(f"the checkpoint {path} is damaged (negative counts)")
    return state


# -- the export -------------------------------------------------------------------------------


async def export_transactions(
    client: LeatClient,
    path: str | os.PathLike[str],
    *,
    format: ExportFormat = "jsonl",
    created_at: CreatedAt | None = None,
    shop_uuid: str | None = None,
    giftcard_program_uuid: str | None = None,
    giftcard_hash: str | None = None,
    resume: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    checkpoint_every: float = 1.0,
    job_id: str | None = None,
) -> ExportResult:
    """Export every transaction of the listing (with these filters) to ``path``.

    - ``format``: ``"jsonl"`` (one transaction per line, the API's field names) or ``"csv"``
      (the columns of :data:`CSV_COLUMNS`).
    - ``resume``: continue the unfinished export recorded in ``checkpoint_path(path)``; its
      format, filters and base URL must be these (else :class:`CheckpointError`). Without
      ``resume``, an unfinished export in the way raises :class:`CheckpointError` too: resume
      it, or delete its ``.partial`` and ``.checkpoint.json`` files.
    - ``progress(rows_done, expected_total)``: called once before the first request (with
      the rows a resumed export already has, and ``None``) and after every page, with the
      first page's ``meta.total``.
    - ``checkpoint_every``: seconds between checkpoints (``0``: after every page). A failure
      or cancellation writes one more for the last complete page, when it can (and removes
      both files when no row was written).
    - ``job_id``: stands in for the client's base URL in the checkpoint (for example for a
      server whose address changes between runs but whose data does not).

    ``path`` is replaced only when the export is complete. Network errors raise the client's
    :class:`~leat_async.LeatError`; file errors raise ``OSError``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r:.40}")
    if created_at is not None and not isinstance(created_at, CreatedAt):
        raise TypeError(f"created_at must be a CreatedAt, got {type(created_at).__name__}")
    target = Path(path)
    partial, checkpoint = partial_path(target), checkpoint_path(target)
    job = _job(
        format=format,
        base_url=job_id if job_id is not None else client.base_url,
        created_at=created_at,
        shop_uuid=shop_uuid,
        giftcard_program_uuid=giftcard_program_uuid,
        giftcard_hash=giftcard_hash,
    )
    started = time.monotonic()
    out, state = await _in_thread(
        lambda: _open_output(target, job, resume=resume),
        undo=lambda opened: _abandon(opened[0], partial, checkpoint, opened[1]),
    )
    first_page, first_rows = state.next_page, state.rows
    encode = _ENCODERS[format]
    pages = 0
    expected: int | None = None
    saved_at = time.monotonic()
    finishing = False
    if progress is not None:
        progress(state.rows, None)
    pager = client.giftcard_transactions.list(
        per_page=PER_PAGE,
        page=state.next_page,
        snapshot=state.snapshot,
        created_at=created_at,
        shop_uuid=shop_uuid,
        giftcard_program_uuid=giftcard_program_uuid,
        giftcard_hash=giftcard_hash,
    )
    try:
        async for page in pager.pages():
            if expected is None:
                expected = page.meta.total
            blob = encode(page.data)
            out.write(blob)  # buffered: one page, well under a millisecond
            state.length += len(blob)
            state.rows += len(page.data)
            state.next_page, state.snapshot = pager.position.page, pager.position.snapshot
            pages += 1
            if time.monotonic() - saved_at >= checkpoint_every:
                await _save(out, checkpoint, state)
                saved_at = time.monotonic()
            if progress is not None:
                progress(state.rows, expected)
        finishing = True  # from here the thread renames; a failure must not re-checkpoint
        await _finish(out, partial, target, checkpoint)
    except BaseException:
        if not finishing:
            _abandon(out, partial, checkpoint, state)
        raise
    return ExportResult(
        path=target,
        format=format,
        rows=state.rows,
        rows_this_run=state.rows - first_rows,
        pages=pages,
        resumed_from_page=first_page if resume else None,
        expected=expected,
        seconds=time.monotonic() - started,
    )


def _open_output(target: Path, job: dict[str, Any], *, resume: bool) -> tuple[IO[bytes], _State]:
    """The partial file, ready for the next page, and the state the checkpoint has."""
    partial, checkpoint = partial_path(target), checkpoint_path(target)
    if resume:
        state = _read_checkpoint(checkpoint, job)
        return _reopen(partial, state), state
    if checkpoint.exists():
        raise CheckpointError(
            f"an unfinished export of {target} is in the way ({checkpoint.name}): "
            "resume it (--resume), or delete it and its .partial file to start over"
        )
    state = _State(job)
    out = open(partial, "wb")  # noqa: SIM115 - closed by _finish or _abandon
    try:
        if job["format"] == "csv":
            header = _csv_header()
            out.write(header)
            state.length = len(header)
        _sync(out, checkpoint, state)
    except BaseException:
        out.close()
        raise
    return out, state


def _reopen(partial: Path, state: _State) -> IO[bytes]:
    """The partial file, cut back to the last complete page the checkpoint knows."""
    try:
        out = open(partial, "r+b")  # noqa: SIM115 - closed by _finish or _abandon
    except FileNotFoundError:
        raise CheckpointError(f"nothing to resume: {partial} does not exist") from None
    try:
        size = os.fstat(out.fileno()).st_size
        if size < state.length:
            raise CheckpointError(
                f"{partial} is shorter ({size} bytes) than its checkpoint says ({state.length});"
                " delete it and the checkpoint to start over"
            )
        out.truncate(state.length)
        out.seek(state.length)
    except BaseException:
        out.close()
        raise
    return out


def _sync(out: IO[bytes], checkpoint: Path, state: _State) -> None:
    out.flush()
    os.fsync(out.fileno())
    _write_checkpoint(checkpoint, state)


async def _in_thread(fn: Callable[[], T], *, undo: Callable[[T], None] | None = None) -> T:
    """``fn()`` in a thread. Cancelled meanwhile, it still waits for the thread (which touches
    the files and cannot be stopped), undoes its result if asked, then lets the cancel through.
    """
    job = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        result = await job
        if undo is not None:
            undo(result)
        raise


async def _save(out: IO[bytes], checkpoint: Path, state: _State) -> None:
    """Flush the rows, then record them; in a thread, as fsync may take a while."""
    copy = attrs.evolve(state)
    await _in_thread(lambda: _sync(out, checkpoint, copy))


async def _finish(out: IO[bytes], partial: Path, target: Path, checkpoint: Path) -> None:
    def finish() -> None:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        os.replace(partial, target)
        checkpoint.unlink(missing_ok=True)
        _fsync_dir(target.parent)

    await _in_thread(finish)


def _abandon(out: IO[bytes], partial: Path, checkpoint: Path, state: _State) -> None:
    """After a failure: record the last complete page if possible, keep the files to resume.

    If the rows cannot be flushed (a full disk), the previous checkpoint stays: its byte length
    still marks a complete page, and a resume cuts the partial file back to it. With no row
    written there is nothing to resume: both files go, so that running again just starts.
    """
    if out.closed:
        return
    try:
        if state.rows == 0:
            out.close()
            checkpoint.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
        else:
            _sync(out, checkpoint, state)
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            out.close()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse it
        pass
    finally:
        os.close(fd)
