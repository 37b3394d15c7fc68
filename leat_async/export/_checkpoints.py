"""The files beside an export, what they say, and writing them so that a crash cannot tear one.

- ``FILE.partial``: the rows while an export runs.
- ``FILE.checkpoint.json``: the job (format, filters, base URL; never the token, and a card's
  code only by its fingerprint), the snapshot,
  the next page, the rows and the byte length of the complete pages; ``done`` once the partial
  file is complete, just before it is renamed to ``FILE``.
- ``FILE.incremental.json`` (``--incremental`` only): the job, and ``through``: ``FILE`` holds
  every row created before it (and its ``rows`` and ``bytes``).

Each is replaced whole (a temporary file, fsync, ``os.replace``); a failed write removes its
temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from .. import CreatedAt, LeatClient, Position

__all__ = [
    "CheckpointError",
    "IncrementalState",
    "Progress",
    "checkpoint_path",
    "fsync_dir",
    "incremental_path",
    "job_of",
    "partial_path",
    "read_checkpoint",
    "read_incremental",
    "write_atomically",
]

_VERSION: Final = 1


class CheckpointError(ValueError):
    """A resume that cannot be done as asked: no checkpoint, another job's, or a damaged one.

    Also raised when an unfinished export is in the way of a fresh one, and when an
    ``--incremental`` file's state does not fit the file or the options.
    """


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Where rows go while the export of ``path`` runs."""
    p = Path(path)
    return p.with_name(p.name + ".partial")


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """The checkpoint of the export of ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".checkpoint.json")


def incremental_path(path: str | os.PathLike[str]) -> Path:
    """Where an incremental export of ``path`` remembers how far ``path`` goes."""
    p = Path(path)
    return p.with_name(p.name + ".incremental.json")


def job_of(
    *,
    format: str,
    compression: str = "none",
    partition_by: str | None = None,
    base_url: str,
    per_page: int,
    created_at: CreatedAt | None,
    shop_uuid: str | None,
    giftcard_program_uuid: str | None,
    giftcard_hash: str | None,
) -> dict[str, Any]:
    """What identifies an export: a resume (or a later incremental run) must ask for this again.

    ``giftcard_hash``: the card code's fingerprint (``LeatClient.fingerprint``), never the code.
    """
    bounds = {}
    if created_at is not None:
        for name in ("gt", "gte", "lt", "lte"):
            value = getattr(created_at, name)
            if value is not None:
                bounds[name] = value.astimezone(UTC).isoformat()
    return {
        "format": format,
        # absent when none: the checkpoints of earlier versions (all uncompressed) still fit
        **({"compression": compression} if compression != "none" else {}),
        **({"partition_by": partition_by} if partition_by is not None else {}),
        "base_url": base_url,
        "per_page": per_page,
        "filters": {
            "created_at": bounds,
            "shop_uuid": shop_uuid,
            "giftcard_program_uuid": giftcard_program_uuid,
            "giftcard_hash": giftcard_hash,
        },
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _when(doc: dict[str, Any], key: str) -> datetime | None:
    value = doc.get(key)
    return datetime.fromisoformat(value) if value is not None else None


@attrs.define
class Progress:
    """How far one export run got: what its checkpoint records."""

    job: dict[str, Any]
    incremental: bool = False
    snapshot: datetime | None = None
    next_page: int = 1
    rows: int = 0  # rows in the partial file after the last complete page
    length: int = 0  # its bytes
    base_rows: int = 0  # rows the partial file started with (an incremental run: FILE's)
    parts: int = 0  # Parquet: the finished parts in the FILE.partial directory
    run_id: str = ""  # a partitioned dataset: in the names of the files this run adds
    done: bool = False  # the partial file is complete (about to become FILE, or already)
    since: datetime | None = None  # incremental: the walk starts at rows created at this
    through: datetime | None = None  # incremental: and keeps the rows created before this
    #: exactly what the walk had handed out at the last complete page (a resume goes on from
    #: it: ``list(..., resume=position)``); ``snapshot``/``next_page`` say the same for people
    position: Position | None = None

    def dump(self) -> bytes:
        doc = {
            "version": _VERSION,
            **self.job,
            "incremental": self.incremental,
            "snapshot": _iso(self.snapshot),
            "next_page": self.next_page,
            "rows": self.rows,
            "bytes": self.length,
            "base_rows": self.base_rows,
            "parts": self.parts,
            "run_id": self.run_id,
            "done": self.done,
            "since": _iso(self.since),
            "through": _iso(self.through),
            "position": self.position.to_dict() if self.position is not None else None,
        }
        return json.dumps(doc, indent=2).encode() + b"\n"


@attrs.frozen
class IncrementalState:
    """What ``FILE.incremental.json`` says: FILE holds every row created before ``through``."""

    through: datetime | None  # None: FILE holds no row yet, the next run starts at the start
    rows: int
    length: int

    def dump(self, job: dict[str, Any]) -> bytes:
        doc = {
            "version": _VERSION,
            **job,
            "through": _iso(self.through),
            "rows": self.rows,
            "bytes": self.length,
        }
        return json.dumps(doc, indent=2).encode() + b"\n"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole: a temporary file beside it, fsynced, renamed.

    A failure (a full disk) removes the temporary file and leaves ``path`` as it was.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _load(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"nothing to resume: {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the {what} {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise CheckpointError(f"{path} is not a {what} of this version of leat-async")
    return doc


def _differences(path: Path, doc: dict[str, Any], job: dict[str, Any]) -> list[str]:
    differs = [key for key in job if key != "filters" and doc.get(key) != job[key]]
    if "compression" not in job and doc.get("compression", "none") != "none":
        differs.append("compression")  # a compressed export's, and this one is not
    filters = doc.get("filters") if isinstance(doc.get("filters"), dict) else {}
    assert isinstance(filters, dict)
    code = filters.get("giftcard_hash")
    if isinstance(code, str) and not LeatClient.is_fingerprint(code):
        raise CheckpointError(
            f"{path} was written by an older leat-async and holds a card's code in clear: "
            "delete it (and the export's .partial file), then export again"
        )
    return differs + [key for key, value in job["filters"].items() if filters.get(key) != value]


def read_checkpoint(path: Path, job: dict[str, Any] | None) -> Progress:
    """The checkpoint at ``path``; with ``job``, it must be that job's (else CheckpointError)."""
    doc = _load(path, "checkpoint")
    try:
        progress = Progress(
            job if job is not None else {},
            incremental=bool(doc.get("incremental", False)),
            snapshot=_when(doc, "snapshot"),
            next_page=int(doc["next_page"]),
            rows=int(doc["rows"]),
            length=int(doc["bytes"]),
            base_rows=int(doc.get("base_rows", 0)),
            parts=int(doc.get("parts", 0)),
            run_id=str(doc.get("run_id", "")),
            done=bool(doc.get("done", False)),
            since=_when(doc, "since"),
            through=_when(doc, "through"),
            position=Position.from_dict(doc["position"]) if doc.get("position") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint {path} is damaged ({exc!r:.80})") from None
    counts = (progress.rows, progress.length, progress.base_rows, progress.parts)
    if progress.next_page < 1 or min(counts) < 0:
        raise CheckpointError(f"the checkpoint {path} is damaged (negative counts)")
    differs = _differences(path, doc, job) if job is not None else []
    if differs:
        raise CheckpointError(
            f"the checkpoint {path} is for another export (different {', '.join(differs)}); "
            "resume with the same options, or delete it to start over"
        )
    return progress


def read_incremental(path: Path, job: dict[str, Any]) -> IncrementalState:
    """The state of an incremental export; it must be this job's (else CheckpointError)."""
    doc = _load(path, "incremental state")
    try:
        state = IncrementalState(
            through=_when(doc, "through"), rows=int(doc["rows"]), length=int(doc["bytes"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the incremental state {path} is damaged ({exc!r:.80})") from None
    differs = _differences(path, doc, job)
    if differs:
        target = path.name.removesuffix(".incremental.json")
        raise CheckpointError(
            f"{target} was exported with other options (different {', '.join(differs)}); "
            "give the same options, or another file"
        )
    return state


def fsync_dir(directory: Path) -> None:
    """Make renames and removals in ``directory`` durable (where the platform allows)."""
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
