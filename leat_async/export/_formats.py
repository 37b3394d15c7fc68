"""What an export writes: its format and compression, from the output's name or asked for.

``.jsonl``, ``.csv`` and ``.parquet`` name a format; ``.gz`` or ``.zst`` after ``.jsonl``/``.csv``
(or alone: JSONL) a compression. Another suffix is JSONL, uncompressed, as it always was. What
needs an extra (pyarrow, zstandard) is checked here, before any request: a missing one is an
:class:`ExtraMissingError` naming what to install.

A compressed export is a series of complete gzip members or zstd frames, one ended at every
checkpoint: a resume cuts the file back to the last one and appends more, and every reader
(``gzip``, ``zcat``, ``zstd -d``, DuckDB, pandas) reads the series as one stream.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import zlib
from collections.abc import Callable
from pathlib import PurePath
from typing import IO, Any, Final, Literal, Protocol, cast

__all__ = [
    "COMPRESSIONS",
    "FORMATS",
    "PARTITIONS",
    "Codec",
    "Compression",
    "ExportFormat",
    "ExtraMissingError",
    "PartitionBy",
    "codec_for",
    "format_of",
    "open_compressed",
    "require_extra",
]

ExportFormat = Literal["jsonl", "csv", "parquet"]
PartitionBy = Literal["day", "month"]
PARTITIONS: Final = ("day", "month")
Compression = Literal["none", "gzip", "zstd"]
FORMATS: Final = ("jsonl", "csv", "parquet")
COMPRESSIONS: Final = ("none", "gzip", "zstd")

_FORMAT_SUFFIXES: Final[dict[str, ExportFormat]] = {
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
_COMPRESSION_SUFFIXES: Final[dict[str, Compression]] = {".gz": "gzip", ".zst": "zstd"}
#: the module an extra brings, and the extra's name
_EXTRAS: Final = {"parquet": ("pyarrow", "parquet"), "zstd": ("zstandard", "zstd")}
GZIP_LEVEL: Final = 6  # gzip's own default
ZSTD_LEVEL: Final = 1  # on exports: 0.56x level 3's CPU, and 8 % smaller (benchmarks/README.md)


class ExtraMissingError(ValueError):
    """What the export was asked to write needs an extra that is not installed."""


def format_of(
    name: str,
    format: str | None = None,
    compression: str | None = None,
    *,
    partition_by: str | None = None,
) -> tuple[ExportFormat, Compression]:
    """The format and compression of an export to a file called ``name``: what is asked for,
    else what its suffixes say (a partitioned dataset: Parquet, whatever its name).
    ``ValueError`` for what cannot be written."""
    if partition_by is not None:
        return _dataset_format(name, format, compression, partition_by)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r:.40}")
    if compression is not None and compression not in COMPRESSIONS:
        raise ValueError(
            f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r:.40}"
        )
    suffixes = [s.lower() for s in PurePath(name).suffixes[-2:]]
    named_compression = _COMPRESSION_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if named_compression is not None:
        suffixes.pop()
    named_format = _FORMAT_SUFFIXES.get(suffixes[-1]) if suffixes else None
    fmt: ExportFormat = format or named_format or "jsonl"  # type: ignore[assignment]
    comp: Compression = compression or named_compression or "none"  # type: ignore[assignment]
    if fmt == "parquet" and comp != "none":
        raise ValueError(
            "Parquet compresses its row groups itself (zstd): leave out the compression "
            f"({comp}) or choose jsonl or csv"
        )
    return fmt, comp


def _dataset_format(
    name: str, format: str | None, compression: str | None, partition_by: str
) -> tuple[ExportFormat, Compression]:
    if partition_by not in PARTITIONS:
        raise ValueError(f"partition_by must be day or month, got {partition_by!r:.40}")
    if format not in (None, "parquet") or compression not in (None, "none"):
        raise ValueError(
            "a partitioned dataset (--partition-by writes Parquet): leave out the format and "
            "compression"
        )
    if not name or name == "-":
        raise ValueError(
            "a partitioned dataset is a directory: give its path (-o DIR), not a stream"
        )
    return "parquet", "none"


def require_extra(format: str, compression: str) -> None:
    """``ExtraMissingError`` unless what ``format`` and ``compression`` need is installed."""
    for wanted in (format, compression):
        if wanted in _EXTRAS:
            module, extra = _EXTRAS[wanted]
            if not _installed(module):
                raise ExtraMissingError(
                    f"{wanted} needs {module}, which is not installed: "
                    f"pip install 'leat-async[{extra}]'"
                )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. blocked: sys.modules[module] = None
        return False


# -- compressing a file as a series of members ----------------------------------------------


class Codec(Protocol):
    """Bytes in, compressed bytes out; ``end()`` completes the current member (or frame), and
    ``end(last=True)`` too, making one (empty) if nothing was ever written: a valid file.
    ``slow``: a page takes it long enough (about a millisecond) to go to a thread."""

    slow: bool

    def compress(self, data: bytes) -> bytes: ...

    def end(self, *, last: bool = False) -> bytes: ...


class _Gzip:
    slow = True

    def __init__(self) -> None:
        self._member: Any = None
        self._members = 0

    def compress(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._member is None:  # wbits 31: a gzip member, header and trailer
            self._member = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            self._members += 1
        out: bytes = self._member.compress(data)
        return out

    def end(self, *, last: bool = False) -> bytes:
        if last and self._members == 0:  # an empty member: a valid, empty file
            self._member = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            self._members += 1
        member, self._member = self._member, None
        return b"" if member is None else member.flush()


class _Zstd:
    slow = False

    def __init__(self) -> None:
        import zstandard

        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        self._finish = zstandard.COMPRESSOBJ_FLUSH_FINISH
        self._frame: Any = None
        self._frames = 0

    def compress(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._frame is None:
            self._frame = self._compressor.compressobj()
            self._frames += 1
        out: bytes = self._frame.compress(data)
        return out

    def end(self, *, last: bool = False) -> bytes:
        if last and self._frames == 0:  # an empty frame: a valid, empty file
            self._frame = self._compressor.compressobj()
            self._frames += 1
        frame, self._frame = self._frame, None
        return b"" if frame is None else frame.flush(self._finish)


_CODECS: Final[dict[str, Callable[[], Codec]]] = {"gzip": _Gzip, "zstd": _Zstd}


def codec_for(compression: str) -> Codec | None:
    """A fresh codec for ``compression``; None: the bytes go to the file as they are."""
    make = _CODECS.get(compression)
    return make() if make is not None else None


def open_compressed(path: str | os.PathLike[str], compression: str) -> IO[bytes]:
    """``path`` opened for reading, decompressed: every member or frame, one after another."""
    if compression == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if compression == "zstd":
        import zstandard

        raw = open(path, "rb")  # noqa: SIM115 - closed with the reader
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return cast(IO[bytes], io.BufferedReader(reader))
    return open(path, "rb")
