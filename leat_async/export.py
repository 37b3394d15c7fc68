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

import csv
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import attrs

from . import CreatedAt, GiftcardTransaction, LeatClient
from ._export_files import (
    CheckpointError,
    abandon,
    checkpoint_path,
    finish,
    in_thread,
    job_of,
    open_output,
    partial_path,
    save,
)

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


_HEADERS: Final = {"jsonl": b"", "csv": _csv_header()}
_ENCODERS: Final[dict[str, Callable[[Sequence[GiftcardTransaction]], bytes]]] = {
    "jsonl": _jsonl,
    "csv": _csv,
}


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
    job = job_of(
        format=format,
        base_url=job_id if job_id is not None else client.base_url,
        per_page=PER_PAGE,
        created_at=created_at,
        shop_uuid=shop_uuid,
        giftcard_program_uuid=giftcard_program_uuid,
        giftcard_hash=giftcard_hash,
    )
    started = time.monotonic()
    out, state = await in_thread(
        lambda: open_output(target, job, resume=resume, header=_HEADERS[format]),
        undo=lambda opened: abandon(opened[0], partial, checkpoint, opened[1]),
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
            position = pager.position
            assert position is not None  # a page was handed out, so the snapshot is fixed
            state.next_page, state.snapshot = position.page, position.snapshot
            pages += 1
            if time.monotonic() - saved_at >= checkpoint_every:
                await save(out, checkpoint, state)
                saved_at = time.monotonic()
            if progress is not None:
                progress(state.rows, expected)
        finishing = True  # from here the thread renames; a failure must not re-checkpoint
        await finish(out, partial, target, checkpoint)
    except BaseException:
        if not finishing:
            abandon(out, partial, checkpoint, state)
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
