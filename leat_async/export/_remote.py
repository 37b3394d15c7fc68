"""Exports to object storage: built in a local staging file, then uploaded whole.

An export to ``s3://bucket/key.jsonl`` (or another fsspec URL: ``gs://``, ``memory://``, ...) is
written like one to a local file, with its ``FILE.partial`` and ``FILE.checkpoint.json``, at
:func:`staging_path`; so it resumes as a local one does. Once complete, :func:`upload` streams
the file to the URL, one block at a time: with s3fs a multipart upload that S3 shows as an
object only when it completes, and that is aborted if anything fails on the way, so that a
failed upload leaves neither a partial object nor its parts behind.

fsspec and the URL's implementation (s3fs for ``s3://``) are imported only here, and only when
an export asks for a URL: without them, :func:`require_fsspec` raises
:class:`ExtraMissingError`, naming the extra to install. Credentials and the endpoint come from
where botocore finds them (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL``, a profile, an instance role) or from ``storage_options``
(``endpoint_url=``, ``key=``, ``secret=``, ...). No message of ours holds a credential: a URL is
shown without its user part and its query.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ._formats import ExtraMissingError

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "ExtraMissingError",
    "is_remote",
    "require_fsspec",
    "staging_path",
    "upload",
]

log = logging.getLogger("leat_async")

#: the part size of an upload (S3 asks at least 5 MiB of every part but the last)
DEFAULT_BLOCK_SIZE: Final = 8 * 2**20
#: the protocols that our extras bring, and the extra that brings each
_EXTRAS: Final = {"s3": "s3", "s3a": "s3"}
#: the protocols whose URL has no bucket or host before the path
_NO_HOST: Final = frozenset({"memory"})
# a scheme of two or more characters (RFC 3986), so that ``C://data`` stays a Windows path
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
_USER_PART: Final = re.compile(r"^([^/]*://)[^/@]*@")


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL to upload to: a string ``scheme://...`` other than ``file://``.

    A :class:`~os.PathLike` is always local, whatever its text.
    """
    if not isinstance(path, str):
        return False
    found = _SCHEME.match(path)
    return found is not None and found[1].lower() != "file"


def require_fsspec(url: str) -> None:
    """Check, without any network I/O, that fsspec and the implementation of ``url``'s protocol
    can be imported; else :class:`ExtraMissingError`."""
    protocol = _protocol(url)
    extra = _EXTRAS.get(protocol)
    install = f"the {extra} extra: pip install 'leat-async[{extra}]'" if extra else None
    try:
        import fsspec
    except ImportError:
        wanted = install or f"fsspec and its {protocol} implementation: pip install fsspec"
        raise ExtraMissingError(f"{_shown(url)} needs {wanted}") from None
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        # fsspec's own message names the package (``Install gcsfs to access Google Storage``)
        wanted = install or f"the fsspec implementation of {protocol}:// ({exc})"
        raise ExtraMissingError(f"{_shown(url)} needs {wanted}") from None
    except ValueError:
        raise ExtraMissingError(
            f"{_shown(url)}: fsspec knows no {protocol}:// (see fsspec's known implementations)"
        ) from None


def staging_path(url: str, staging: str | os.PathLike[str] | None = None) -> Path:
    """Where the export of ``url`` is built before it is uploaded (the directory is created).

    ``<root>/<16 hex digits of the URL's SHA-256>/<the key's last part>``; the root is
    ``staging``, else ``LEAT_ASYNC_STAGING``, else ``$XDG_CACHE_HOME/leat-async/staging`` (by
    default ``~/.cache/leat-async/staging``). Directories are created readable by their owner
    only: the rows are a business's transactions.
    """
    name = _file_name(url)
    root = Path(staging) if staging is not None else _default_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = root / hashlib.sha256(url.encode()).hexdigest()[:16]
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory / name


def upload(
    local: Path,
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> int:
    """Copy the file ``local`` to ``url``; the bytes uploaded.

    Blocking (the export runs it in a thread), in a few blocks of memory whatever the file's
    size. The object appears only once complete; one whose size then differs from the bytes
    sent is an ``OSError``. A failure aborts the upload and raises :class:`OSError`, saying why
    in one line. After a success, every multipart upload of exactly this key still open is
    aborted: an earlier attempt's that crashed (one writer per URL is assumed: the staging file
    is one job's).
    """
    require_fsspec(url)
    from fsspec.core import url_to_fs

    shown = _shown(url)
    try:
        fs, path = url_to_fs(url, **dict(storage_options or {}))
        target = fs.open(path, "wb", block_size=block_size, autocommit=False)
    except Exception as exc:
        raise _failed(shown, exc) from exc
    sent = 0
    try:
        with local.open("rb") as source:
            while chunk := source.read(block_size):
                target.write(chunk)
                sent += len(chunk)
        target.close()  # the last part, still not the object
        target.commit()  # S3: CompleteMultipartUpload (or one PUT when empty)
    except BaseException as exc:
        _discard(target)
        if isinstance(exc, Exception):
            raise _failed(shown, exc) from exc
        raise
    try:
        fs.invalidate_cache(path)
        size = fs.info(path)["size"]
    except Exception as exc:
        raise _failed(shown, exc) from exc
    if size != sent:
        raise OSError(f"upload to {shown} failed: the object has {size} bytes, {sent} were sent")
    _abort_stale_uploads(fs, path, shown)
    return sent


def _discard(target: Any) -> None:
    """Throw away an unfinished upload (S3: AbortMultipartUpload) and the file object with it."""
    from fsspec.spec import AbstractBufferedFile

    with contextlib.suppress(Exception):  # the failure that brought us here is the one to tell
        target.discard()
    if isinstance(target, AbstractBufferedFile):
        # else the file's finaliser would flush the rest as a last part of an aborted upload
        target.closed = True


def _abort_stale_uploads(fs: Any, path: str, shown: str) -> None:
    """Abort S3's multipart uploads of exactly ``path``'s key (earlier attempts that crashed
    before they could abort their own); never another key's."""
    if not set(_EXTRAS) & set(_protocols(fs)):
        return
    bucket, key, _ = fs.split_path(path)
    query: dict[str, str] = {"Bucket": bucket, "Prefix": key}
    try:
        while True:
            page = fs.call_s3("list_multipart_uploads", **query)
            for started in page.get("Uploads", []):
                if started["Key"] == key:
                    fs.call_s3(
                        "abort_multipart_upload",
                        Bucket=bucket,
                        Key=key,
                        UploadId=started["UploadId"],
                    )
            if not page.get("IsTruncated"):
                return
            query["KeyMarker"] = page["NextKeyMarker"]
            query["UploadIdMarker"] = page["NextUploadIdMarker"]
    except Exception as exc:
        # the object is complete; without s3:ListBucketMultipartUploads a policy may forbid this
        log.warning("%s is uploaded; stale multipart uploads stay: %s", shown, _reason(exc))


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _protocol(url: str) -> str:
    found = _SCHEME.match(url)
    if found is None:
        raise ValueError(f"not a URL: {_shown(url)!r}")
    return found[1].lower()


def _file_name(url: str) -> str:
    """The last part of ``url``'s key (without a query): the name of the file to build."""
    protocol = _protocol(url)
    rest = url.split("://", 1)[1]
    key = rest if protocol in _NO_HOST else rest.partition("/")[2]
    name = key.partition("?")[0].rpartition("/")[2]
    if not name or name in (".", "..") or Path(name).name != name:
        raise ValueError(
            f"{_shown(url)} names no object to write: give a key that ends in a file name,"
            " such as s3://bucket/exports/transactions.jsonl"
        )
    return name


def _default_root() -> Path:
    if env := os.environ.get("LEAT_ASYNC_STAGING"):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec: a relative XDG_CACHE_HOME is to be ignored
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "leat-async" / "staging"


def _shown(url: str) -> str:
    """``url`` as messages show it: no ``user:password@``, no query (a signature may be there)."""
    return _USER_PART.sub(r"\1", url).partition("?")[0]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text[:300]}"


def _failed(shown: str, exc: BaseException) -> OSError:
    return OSError(f"upload to {shown} failed: {_reason(exc)}")
