"""A real S3 for the tests: moto's server on a free loopback port, with fake credentials.

``from ._s3 import moto_s3`` in a test module, then ask for ``s3_endpoint`` (the server's URL;
the fixture has its own name, so that a test's argument does not shadow the import). One
server serves the whole session (moto keeps its buckets in the process, so every test makes its
own bucket). While it runs, the environment is the usual AWS one, as a user's would be:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``;
no profile, config file or credentials file of the machine is read.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = ["SECRET", "bucket_fixture", "local_file", "moto_s3", "objects", "s3_fixture", "uploads"]

#: the fake secret key: no message may show it
SECRET: Final = "s3cr3t-aws-key-not-for-messages"


@pytest.fixture(scope="session", name="s3_endpoint")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # imported here: a session without S3 tests never pays for moto
    from moto.server import ThreadedMotoServer

    nowhere = str(tmp_path_factory.mktemp("aws") / "absent")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", nowhere)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        _forget_filesystems()
        # werkzeug logs every request moto answers; only its warnings are news
        werkzeug, level = logging.getLogger("werkzeug"), logging.getLogger("werkzeug").level
        werkzeug.setLevel(logging.WARNING)
        try:
            yield endpoint
        finally:
            werkzeug.setLevel(level)
            _forget_filesystems()
            server.stop()


def _forget_filesystems() -> None:
    """fsspec keeps a filesystem per set of options: drop those that know another endpoint."""
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()


def local_file(directory: Path, size: int, name: str = "export.jsonl") -> tuple[Path, bytes]:
    """A file of ``size`` random bytes (so that a part out of place shows)."""
    data = os.urandom(size)
    path = directory / name
    path.write_bytes(data)
    return path, data


@pytest.fixture(name="s3")
def s3_fixture(s3_endpoint: str) -> Any:
    """boto3's client: the user's eyes on the bucket, apart from the s3fs that writes."""
    import boto3  # type: ignore[import-untyped]

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture(name="bucket")
def bucket_fixture(s3: Any) -> str:
    name = f"exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def objects(s3: Any, bucket: str) -> dict[str, int]:
    return {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def uploads(s3: Any, bucket: str) -> list[str]:
    """The keys of the multipart uploads under way (or left behind) in ``bucket``."""
    return sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
