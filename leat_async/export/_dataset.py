"""Day- or month-partitioned Parquet datasets: ``DIR/created_date=2024-03-01/part-….parquet``.

Hive-style folders that DuckDB (``read_parquet('DIR/**/*.parquet', hive_partitioning =
true)``), pyarrow.dataset, Spark and pandas read as one table, the partition's value coming from
the folder's name (the files hold the other columns). A row's partition is the UTC date (or
month) of its ``created_at``.

A run stages its files in ``DIR.partial/`` beside ``DIR`` (so that no reader's glob sees them),
as finished parts counted by the checkpoint, like a single Parquet file's parts (see
``export/_parquet.py``); each part is one partition's rows since the last checkpoint. The commit:

- a first run (``DIR`` absent or empty) renames ``DIR.partial`` to ``DIR``: the whole dataset
  appears at once;
- a later ``--incremental`` run moves each staged file into its partition's folder. The names
  carry the run's id, so a run only ever adds files, never rewrites or deletes one; a crash in
  the middle of the moves is finished by the next run (the checkpoint says ``done``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
import pyarrow as pa
import pyarrow.parquet as pq

from .. import GiftcardTransaction
from ._arrow_rows import DICTIONARY_COLUMNS, table_of
from ._checkpoints import CheckpointError, Progress, fsync_dir, write_atomically
from ._output import Start
from ._parquet import ParquetOutput, fsync_file

__all__ = ["DatasetOutput", "partition_of"]

_KEYS: Final = {"day": ("created_date", "%Y-%m-%d"), "month": ("created_month", "%Y-%m")}


def partition_of(by: str, created_at: datetime) -> str:
    """The folder of a row created at ``created_at`` (UTC), e.g. ``created_date=2024-03-01``."""
    key, form = _KEYS[by]
    return f"{key}={created_at.astimezone(UTC).strftime(form)}"


class DatasetOutput(ParquetOutput):
    """One run's staged partition files in ``DIR.partial/``: saved, committed, or abandoned."""

    def __init__(
        self,
        target: Path,
        progress: Progress,
        *,
        start: Start,
        partition_by: str,
        checkpoint_every: float = 1.0,
    ) -> None:
        super().__init__(target, progress, start=start, checkpoint_every=checkpoint_every)
        self._by = partition_by
        self._held: dict[str, list[pa.Table]] = {}
        if not progress.run_id:
            progress.run_id = secrets.token_hex(6)

    def _hold(self, rows: Sequence[GiftcardTransaction]) -> None:
        groups: dict[str, list[GiftcardTransaction]] = {}
        for tx in rows:
            groups.setdefault(partition_of(self._by, tx.created_at), []).append(tx)
        for folder, group in groups.items():
            self._held.setdefault(folder, []).append(table_of(group))

    def _take(self) -> tuple[Any, Progress]:
        held, self._held = self._held, {}
        self._pending = 0
        first = self.progress.parts + 1
        self.progress.parts += len(held)
        return (first, held), attrs.evolve(self.progress)

    def _write_parts(self, taken: Any, state: Progress) -> None:
        first, held = taken
        for n, (folder, tables) in enumerate(sorted(held.items()), first):
            directory = self._dir / folder
            directory.mkdir(exist_ok=True)
            path = directory / f"part-{state.run_id}-{n:06d}.parquet"
            tmp = path.with_name(path.name + ".tmp")
            table = pa.concat_tables(tables)
            pq.write_table(table, tmp, compression="zstd", use_dictionary=DICTIONARY_COLUMNS)
            fsync_file(tmp)
            os.replace(tmp, path)
            fsync_dir(directory)

    def _staged(self) -> dict[int, Path]:
        """The staged files, by their number."""
        return {int(p.stem.rsplit("-", 1)[1]): p for p in self._dir.glob("*/part-*.parquet")}

    def _check_parts(self, parts: int) -> None:
        staged = self._staged()
        missing = [n for n in range(1, parts + 1) if n not in staged]
        if missing:
            raise CheckpointError(
                f"{self._dir} lacks part {missing[0]} of the {parts} its checkpoint counts; "
                "delete it and the checkpoint to start over"
            )
        for n, path in staged.items():
            if n > parts:  # written after the last checkpoint: written again
                path.unlink()
        for tmp in self._dir.glob("*/*.tmp"):
            tmp.unlink()

    def _put_in_place(self, state: Progress) -> None:
        """DIR appears whole (a first run), or gains the staged files (a later one)."""
        if not state.done:
            state.done = True
            write_atomically(self._checkpoint, state.dump())
        self.progress.done = True
        target = self.target
        if self._dir.exists():
            if not target.exists() or (target.is_dir() and not any(target.iterdir())):
                if target.exists():
                    target.rmdir()
                os.replace(self._dir, target)  # the whole dataset at once
            else:
                for path in sorted(self._dir.glob("*/part-*.parquet")):
                    folder = target / path.parent.name
                    folder.mkdir(exist_ok=True)
                    os.replace(path, folder / path.name)
                    fsync_dir(folder)
            fsync_dir(target.parent)
