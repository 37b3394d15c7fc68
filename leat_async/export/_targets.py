"""Where an export goes, checked before anything is sent: a dataset's directory, what a stream
can take."""

from __future__ import annotations

import os
from pathlib import Path

from ..files import Destination

__all__ = ["check_streamable", "dataset_dir"]


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
