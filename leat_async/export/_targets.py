"""Where an export goes, checked before anything is sent: the format for it, a dataset's
directory, what a stream can take."""

from __future__ import annotations

import os
from pathlib import Path

from ..files import Destination
from ._formats import PARTITIONS, Compression, ExportFormat, format_of

__all__ = ["check_streamable", "dataset_dir", "format_for"]


def format_for(
    name: str, format: str | None, compression: str | None, partition_by: str | None
) -> tuple[ExportFormat, Compression]:
    if partition_by is None:
        return format_of(name, format, compression)
    if partition_by not in PARTITIONS:
        raise ValueError(f"partition_by must be day or month, got {partition_by!r:.40}")
    if format not in (None, "parquet") or compression not in (None, "none"):
        raise ValueError("a partitioned dataset is Parquet: leave out the format and compression")
    if not name:
        raise ValueError("a partitioned dataset is a directory: give its path, not a stream")
    return "parquet", "none"


def dataset_dir(path: str | os.PathLike[str], *, adding: bool) -> Destination:
    """The directory of a partitioned export (through a symlink: its target)."""
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise ValueError(f"the directory of {os.fspath(path)} does not exist")
    if target.exists() and not target.is_dir():
        raise ValueError(f"{os.fspath(path)} is not a directory: --partition-by writes one")
    if not adding and target.is_dir() and any(target.iterdir()):
        raise ValueError(
            f"{os.fspath(path)} is not empty: a partitioned export writes a new or empty "
            "directory (or adds to one with --incremental)"
        )
    return Destination(target)


def check_streamable(fmt: str, *, resume: bool, incremental: bool, what: str = "a stream") -> None:
    if fmt == "parquet":
        raise ValueError(f"{what}: Parquet is written whole, not as a stream; give a file")
    if resume or incremental:
        raise ValueError(f"{what}: it cannot be resumed or appended to; give a regular file")
