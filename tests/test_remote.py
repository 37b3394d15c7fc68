"""Exports to object storage: the staging file, and the upload as S3 (moto's server) sees it.

The uploads go over loopback to a real S3 implementation and are looked at with boto3, not
with the s3fs that wrote them: an object is there with its exact bytes, or it is not there at
all, and no multipart upload of it is left behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from leat_async.export._remote import (
    ExtraMissingError,
    is_remote,
    require_fsspec,
    staging_path,
    upload,
)

from ._s3 import (  # noqa: F401 - the fixtures s3_endpoint, s3 and bucket
    SECRET,
    bucket_fixture,
    local_file,
    moto_s3,
    objects,
    s3_fixture,
    uploads,
)

MiB = 2**20
PART = 5 * MiB  # the smallest part S3 (and moto) takes, and s3fs's smallest block
ROOT = Path(__file__).resolve().parent.parent


# -- is_remote, staging_path: pure -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["s3://bucket/key.jsonl", "S3A://bucket/k", "gs://b/k.csv", "memory://x.jsonl", "az://c/k"],
)
def test_urls_are_remote(path: str) -> None:
    assert is_remote(path)


@pytest.mark.parametrize(
    "path",
    [
        "transactions.jsonl",
        "/srv/out.jsonl",
        "file:///srv/out.jsonl",
        "FILE://tmp/out.jsonl",
        r"C:\exports\out.jsonl",
        "C://exports/out.jsonl",  # a drive letter is not a scheme
        "-",
        "s3:/bucket/key",
        "./s3://bucket/key",
    ],
)
def test_paths_are_local(path: str) -> None:
    assert not is_remote(path)


def test_a_path_object_is_never_remote() -> None:
    assert not is_remote(Path("s3://bucket/key"))


def test_the_staging_file_is_named_after_the_url(tmp_path: Path) -> None:
    url = "s3://bucket/exports/2024/transactions.jsonl.gz"
    path = staging_path(url, tmp_path)
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    assert path == tmp_path / digest / "transactions.jsonl.gz"
    assert path.parent.is_dir() and not path.exists()
    assert staging_path(url, tmp_path) == path  # a resume finds it again
    # the same name in another bucket is another export
    other = staging_path("s3://other/exports/2024/transactions.jsonl.gz", tmp_path)
    assert other.name == path.name and other.parent != path.parent


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_the_staging_directories_are_the_owners_alone(tmp_path: Path) -> None:
    root = tmp_path / "new" / "staging"
    path = staging_path("s3://b/k.jsonl", root)
    assert root.stat().st_mode & 0o077 == 0
    assert path.parent.stat().st_mode & 0o077 == 0


def test_the_staging_root_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "memory://exports/t.csv"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEAT_ASYNC_STAGING", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    home_cache = tmp_path / "home" / ".cache" / "leat-async" / "staging"
    assert staging_path(url) == home_cache / digest / "t.csv"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert staging_path(url) == home_cache / digest / "t.csv"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert staging_path(url) == tmp_path / "xdg" / "leat-async" / "staging" / digest / "t.csv"
    monkeypatch.setenv("LEAT_ASYNC_STAGING", str(tmp_path / "env"))
    assert staging_path(url) == tmp_path / "env" / digest / "t.csv"
    assert staging_path(url, tmp_path / "arg") == tmp_path / "arg" / digest / "t.csv"


@pytest.mark.parametrize(
    "url",
    ["s3://bucket", "s3://bucket/", "s3://bucket/exports/", "s3://b/..", "s3://b/.", "memory://"],
)
def test_a_url_without_an_object_name_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="names no object to write"):
        staging_path(url, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_messages_leave_out_the_user_part_and_the_query(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="names no object") as caught:
        staging_path("ftp://me:hunter2@host/dir/?X-Amz-Signature=abc", tmp_path)
    assert "hunter2" not in str(caught.value) and "abc" not in str(caught.value)
    assert str(caught.value).startswith("ftp://host/dir/ names no object")


# -- the extras ------------------------------------------------------------------------------

WITHOUT = """
import sys
for name in sys.argv[1:]:
    sys.modules[name] = None  # "import NAME" fails, as where it is not installed
from leat_async.export._remote import ExtraMissingError, require_fsspec
try:
    require_fsspec("s3://bucket/exports/t.jsonl")
except ExtraMissingError as exc:
    print(exc)
"""


@pytest.mark.parametrize("blocked", [["s3fs"], ["fsspec", "s3fs"]])
def test_without_s3fs_an_s3_url_names_the_extra(blocked: list[str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", WITHOUT, *blocked],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == (
        "s3://bucket/exports/t.jsonl needs the s3 extra: pip install 'leat-async[s3]'\n"
    )


def test_a_url_that_fsspec_can_serve_needs_nothing_more() -> None:
    require_fsspec("memory://exports/t.jsonl")
    require_fsspec("s3://bucket/t.jsonl")


def test_a_protocol_without_its_package_names_the_package() -> None:
    try:
        import gcsfs  # type: ignore[import-not-found] # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed")
    with pytest.raises(ExtraMissingError, match=r"^gs://b/t.jsonl needs .*gcsfs"):
        require_fsspec("gs://b/t.jsonl")


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ExtraMissingError, match="fsspec knows no nosuch://"):
        require_fsspec("nosuch://b/t.jsonl")


# -- uploads to S3 ---------------------------------------------------------------------------


def test_a_large_file_arrives_whole_in_parts(tmp_path: Path, s3: Any, bucket: str) -> None:
    local, data = local_file(tmp_path, 2 * PART + 123_457)
    sent = upload(local, f"s3://{bucket}/exports/t.jsonl", block_size=PART)
    assert sent == len(data)
    got = s3.get_object(Bucket=bucket, Key="exports/t.jsonl")
    assert got["Body"].read() == data
    assert got["ETag"].endswith('-3"')  # a multipart upload of three parts
    assert objects(s3, bucket) == {"exports/t.jsonl": len(data)}
    assert uploads(s3, bucket) == []


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_a_small_or_empty_file_arrives_too(size: int, tmp_path: Path, s3: Any, bucket: str) -> None:
    local, data = local_file(tmp_path, size)
    assert upload(local, f"s3://{bucket}/t.jsonl") == size
    assert s3.get_object(Bucket=bucket, Key="t.jsonl")["Body"].read() == data
    assert uploads(s3, bucket) == []


def test_an_upload_replaces_the_previous_object(tmp_path: Path, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t.jsonl", Body=b"yesterday's\n")
    local, data = local_file(tmp_path, PART + 1)
    upload(local, f"s3://{bucket}/t.jsonl", block_size=PART)
    assert s3.get_object(Bucket=bucket, Key="t.jsonl")["Body"].read() == data


class _DiskFailsAfter(type(Path())):  # type: ignore[misc]
    """A local file whose disk fails (EIO) once ``good`` bytes are read, after ``watch()``."""

    good: int
    watch: Any

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return _FailingReader(super().open(*args, **kwargs), self.good, self.watch)


class _FailingReader:
    def __init__(self, file: Any, good: int, watch: Any) -> None:
        self.file, self.good, self.watch = file, good, watch

    def __enter__(self) -> _FailingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def read(self, n: int) -> bytes:
        if self.file.tell() >= self.good:
            self.watch()
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return bytes(self.file.read(n))


def test_a_failed_upload_leaves_neither_object_nor_parts(
    tmp_path: Path, s3: Any, bucket: str
) -> None:
    key = "exports/t.jsonl"
    s3.put_object(Bucket=bucket, Key="other.jsonl", Body=b"untouched\n")
    local, _ = local_file(tmp_path, 3 * PART)
    seen: dict[str, Any] = {}

    def watch() -> None:  # mid-way: two parts are in S3, and still no object
        (started,) = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
        parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=started["UploadId"])
        seen.update(key=started["Key"], parts=len(parts["Parts"]), objects=objects(s3, bucket))

    failing = _DiskFailsAfter(local)
    failing.good, failing.watch = 2 * PART, watch
    with pytest.raises(OSError, match="Input/output error") as caught:
        upload(failing, f"s3://{bucket}/{key}", block_size=PART)
    assert seen == {"key": key, "parts": 2, "objects": {"other.jsonl": 10}}
    assert str(caught.value) == (
        f"upload to s3://{bucket}/{key} failed: OSError: [Errno 5] Input/output error"
    )
    assert objects(s3, bucket) == {"other.jsonl": 10}
    assert uploads(s3, bucket) == []


def test_an_upload_to_a_missing_bucket_says_so_in_one_line(tmp_path: Path, s3: Any) -> None:
    local, _ = local_file(tmp_path, 100)
    with pytest.raises(OSError, match=r"^upload to s3://no-such-bucket-4711/t.jsonl failed: ") as e:
        upload(local, "s3://no-such-bucket-4711/t.jsonl")
    message = str(e.value)
    assert "\n" not in message and SECRET not in message and "testing" not in message
    assert "bucket" in message.lower()


def test_stale_uploads_of_the_key_are_aborted_and_no_others(
    tmp_path: Path, s3: Any, bucket: str
) -> None:
    # an earlier attempt died mid-way (its parts are still billed), and others are at work
    for key in ("t.jsonl", "t.jsonl", "t.jsonl.old", "exports/t.jsonl", "u.jsonl"):
        started = s3.create_multipart_upload(Bucket=bucket, Key=key)
        s3.upload_part(
            Bucket=bucket, Key=key, UploadId=started["UploadId"], PartNumber=1, Body=b"x" * 100
        )
    local, data = local_file(tmp_path, 1000)
    assert upload(local, f"s3://{bucket}/t.jsonl") == len(data)
    assert uploads(s3, bucket) == ["exports/t.jsonl", "t.jsonl.old", "u.jsonl"]
    assert s3.get_object(Bucket=bucket, Key="t.jsonl")["Body"].read() == data


def test_the_endpoint_may_come_from_storage_options(
    tmp_path: Path, s3_endpoint: str, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard: nothing listens
    local, data = local_file(tmp_path, 1000)
    options = {"endpoint_url": s3_endpoint, "skip_instance_cache": True}
    assert upload(local, f"s3://{bucket}/t.jsonl", storage_options=options) == len(data)
    assert s3.get_object(Bucket=bucket, Key="t.jsonl")["Body"].read() == data


# -- other fsspec filesystems ----------------------------------------------------------------


def test_a_memory_url_gets_the_bytes(tmp_path: Path) -> None:
    import fsspec  # type: ignore[import-untyped]

    local, data = local_file(tmp_path, 3 * MiB + 5)
    url = f"memory://leat-async-tests/{uuid.uuid4().hex}/t.jsonl"
    assert upload(local, url, block_size=MiB) == len(data)
    fs = fsspec.filesystem("memory")
    try:
        assert fs.cat_file(url) == data
    finally:
        fs.rm(url)
