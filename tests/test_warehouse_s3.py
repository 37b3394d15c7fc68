"""Exports to object storage end to end: the fake over loopback in, moto's S3 server out.

What a user sees in the bucket (boto3, not the s3fs that wrote it): the object with every row
once, or no object at all; never a partial one, never a multipart upload left behind.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from leat_async import LeatAPIError, LeatClient
from leat_async.export import checkpoint_path, export_transactions, partial_path
from leat_async.export._remote import staging_path
from leat_async.testing import FakeLeat, Fault

from ._command import cli
from ._s3 import (  # noqa: F401 - the fixtures s3_endpoint, s3 and bucket
    SECRET,
    bucket_fixture,
    moto_s3,
    objects,
    s3_fixture,
    uploads,
)
from .conftest import seed_rows


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


async def test_a_parquet_export_appears_whole_in_the_bucket(
    client: LeatClient, fake: FakeLeat, s3: Any, bucket: str, tmp_path: Path
) -> None:
    seed_rows(fake, 420)
    url = f"s3://{bucket}/exports/tx.parquet"
    result = await export_transactions(client, url, staging=tmp_path)
    assert result.url == url and result.path is None and result.rows == 420
    table = pq.read_table(io.BytesIO(body(s3, bucket, "exports/tx.parquet")))
    assert table.column("id").to_pylist() == [t.id for t in fake.transactions]
    assert objects(s3, bucket) == {
        "exports/tx.parquet": len(body(s3, bucket, "exports/tx.parquet"))
    }
    assert uploads(s3, bucket) == [] and os.listdir(staging_path(url, tmp_path).parent) == []


async def test_a_failed_export_leaves_nothing_in_the_bucket_and_resumes(
    brittle: LeatClient, fake: FakeLeat, s3: Any, bucket: str, tmp_path: Path
) -> None:
    seed_rows(fake, 650)
    fake.add_fault(
        Fault(method="GET", query={"page": "4"}, status=500, body={"message": "boom"}, times=None)
    )
    url = f"s3://{bucket}/tx.jsonl.gz"
    with pytest.raises(LeatAPIError):
        await export_transactions(brittle, url, staging=tmp_path, checkpoint_every=0)
    assert objects(s3, bucket) == {} and uploads(s3, bucket) == []
    fake.clear_faults()
    result = await export_transactions(brittle, url, staging=tmp_path, resume=True)
    assert result.rows == 650 and result.resumed_from_page == 4
    lines = gzip.decompress(body(s3, bucket, "tx.jsonl.gz")).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [t.id for t in fake.transactions]


async def test_an_upload_that_failed_is_redone_by_a_resume_without_fetching_again(
    client: LeatClient, fake: FakeLeat, s3: Any, tmp_path: Path
) -> None:
    seed_rows(fake, 150)
    url = "s3://not-there-yet/tx.csv"
    with pytest.raises(OSError, match=r"upload to s3://not-there-yet/tx\.csv failed") as caught:
        await export_transactions(client, url, staging=tmp_path)
    assert SECRET not in str(caught.value)
    s3.create_bucket(Bucket="not-there-yet")
    fake.reset_requests()
    again = await export_transactions(client, url, staging=tmp_path, resume=True)
    assert again.was_complete and fake.requests == []  # the rows were all fetched already
    assert body(s3, "not-there-yet", "tx.csv").count(b"\r\n") == 151


async def test_the_command_exports_to_s3_and_names_the_extra_without_it(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    url = f"s3://{bucket}/fake.csv.zst"
    done = await cli("export", "--fake", "300", "-o", url, LEAT_ASYNC_STAGING=str(tmp_path))
    assert done.status == 0 and f"exported 300 rows to {url}" in done.line, done.err
    assert list(objects(s3, bucket)) == ["fake.csv.zst"]
    blocked = await cli(
        "export", "--fake", "3", "-o", f"s3://{bucket}/x.jsonl", HARNESS_BLOCK="s3fs"
    )
    assert blocked.status == 2 and "pip install 'leat-async[s3]'" in blocked.line
    assert list(objects(s3, bucket)) == ["fake.csv.zst"]


async def test_incremental_runs_to_s3_replace_the_object_with_a_longer_one(
    client: LeatClient, fake: FakeLeat, s3: Any, bucket: str, tmp_path: Path
) -> None:
    seed_rows(fake, 120)
    url = f"s3://{bucket}/nightly.jsonl"
    first = await export_transactions(client, url, staging=tmp_path, incremental=True)
    assert first.rows == 120 and body(s3, bucket, "nightly.jsonl").count(b"\n") == 120
    local = staging_path(url, tmp_path)  # kept: the next run extends it
    assert not partial_path(local).exists() and not checkpoint_path(local).exists()
    again = await export_transactions(client, url, staging=tmp_path, incremental=True)
    assert again.rows_this_run == 0 and body(s3, bucket, "nightly.jsonl") == local.read_bytes()
