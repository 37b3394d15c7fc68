"""The export's files: the partial output, its checkpoint, and moving them safely.

Rows go to ``FILE.partial``; ``FILE.checkpoint.json`` records the job (format, filters, base URL,
never the token), the snapshot, the next page and the byte length of the complete pages. File
work that may take a while (opening, fsync, the final rename) runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import attrs

from . import CreatedAt

__all__ = [
    "CheckpointError",
    "abandon",
    "checkpoint_path",
    "finish",
    "in_thread",
    "job_of",
    "open_output",
    "partial_path",
    "save",
]

T = TypeVar("T")

_CHECKPOINT_VERSION: Final = 1


class CheckpointError(ValueError):
    """A resume that cannot be done as asked: no checkpoint, another job's, or a damaged one.

    Also raised when an unfinished export is in the way of a fresh one.
    """


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Where rows go while the export of ``path`` runs."""
    p = Path(path)
    return p.with_name(p.name + ".partial")


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """The checkpoint of the export of ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".checkpoint.json")


def job_of(
    *,
    format: str,
    base_url: str,
    per_page: int,
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
        "per_page": per_page,
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


def open_output(
    target: Path, job: dict[str, Any], *, resume: bool, header: bytes = b""
) -> tuple[IO[bytes], _State]:
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
    out = open(partial, "wb")  # noqa: SIM115 - closed by finish or abandon
    try:
        if header:
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
        out = open(partial, "r+b")  # noqa: SIM115 - closed by finish or abandon
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


async def in_thread(fn: Callable[[], T], *, undo: Callable[[T], None] | None = None) -> T:
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


async def save(out: IO[bytes], checkpoint: Path, state: _State) -> None:
    """Flush the rows, then record them; in a thread, as fsync may take a while."""
    copy = attrs.evolve(state)
    await in_thread(lambda: _sync(out, checkpoint, copy))


async def finish(out: IO[bytes], partial: Path, target: Path, checkpoint: Path) -> None:
    """Flush, rename the complete file into place, drop the checkpoint; in a thread."""

    def rename_into_place() -> None:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        os.replace(partial, target)
        checkpoint.unlink(missing_ok=True)
        _fsync_dir(target.parent)

    await in_thread(rename_into_place)


def abandon(out: IO[bytes], partial: Path, checkpoint: Path, state: _State) -> None:
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
