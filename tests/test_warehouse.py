"""Warehouse exports against the fake over loopback: compressed JSONL/CSV and Parquet, chosen by
the suffix as the command line chooses them, resumable after a failure or a kill -9."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import signal
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from leat_async import LeatAPIError, LeatClient
from leat_async.export import (
    CheckpointError,
    checkpoint_path,
    export_transactions,
    format_of,
    incremental_path,
    partial_path,
)
from leat_async.reconcile import read_export
from leat_async.testing import FakeLeat, Fault

from ._command import cli, start
from .conftest import ONE_TRY, TOKEN, seed_rows
from .test_export import api_rows
from .test_incremental import T0, T1, Clock, add_rows


def ids(path: Path) -> list[int]:
    return [t.id for t in read_export(path)]


def fail_at_page(fake: FakeLeat, page: str) -> None:
    fake.add_fault(
        Fault(method="GET", query={"page": page}, status=500, body={"message": "boom"}, times=None)
    )


def test_the_name_says_the_format_and_compression() -> None:
    assert format_of("a.jsonl") == ("jsonl", "none")
    assert format_of("a.CSV.GZ") == ("csv", "gzip")
    assert format_of("a.jsonl.zst") == ("jsonl", "zstd")
    assert format_of("a.parquet") == ("parquet", "none")
    assert format_of("dump.gz") == ("jsonl", "gzip")  # an unknown base is JSONL, as ever
    assert format_of("a.txt") == format_of("-") == ("jsonl", "none")
    assert format_of("a.csv", "jsonl", "zstd") == ("jsonl", "zstd")  # asked for: it wins
    assert format_of("a.csv.gz", compression="none") == ("csv", "none")
    with pytest.raises(ValueError, match="Parquet compresses its row groups itself"):
        format_of("a.parquet.gz")
    with pytest.raises(ValueError, match="compression must be one of"):
        format_of("a.jsonl", compression="bz2")


@pytest.mark.parametrize("name", ["lib.csv", "lib.csv.gz", "lib.jsonl.zst", "lib.parquet"])
async def test_the_library_reads_the_suffix_as_the_command_does(
    client: LeatClient, fake: FakeLeat, tmp_path: Path, name: str
) -> None:
    """Reported: export_transactions(client, "lib.csv") wrote JSONL under a CSV name."""
    seed_rows(fake, 130)
    out = tmp_path / name
    result = await export_transactions(client, out)
    assert (result.format, result.compression) == format_of(name)
    head = out.read_bytes()[:4]
    magic = {"none": None, "gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}[result.compression]
    if result.format == "parquet":
        assert head == b"PAR1"
    elif magic is not None:
        assert head.startswith(magic)
    else:
        assert head == b"id,u"  # the CSV header, not a JSON line
    assert ids(out) == [t.id for t in fake.transactions] and result.rows == 130
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_a_compressed_export_fails_resumes_and_reads_as_one_stream(
    brittle: LeatClient, fake: FakeLeat, tmp_path: Path, fmt: str, compression: str
) -> None:
    seed_rows(fake, 950)
    fail_at_page(fake, "4")
    suffix = {"gzip": "gz", "zstd": "zst"}[compression]
    out = tmp_path / f"tx.{fmt}.{suffix}"
    plain = tmp_path / f"plain.{fmt}"
    with pytest.raises(LeatAPIError):
        await export_transactions(brittle, out, checkpoint_every=0)
    saved = json.loads(checkpoint_path(out).read_text())
    assert saved["rows"] == 300 and saved["compression"] == compression
    assert saved["bytes"] == partial_path(out).stat().st_size  # whole members only
    with partial_path(out).open("ab") as f:
        f.write(b"\x1f\x8b\x08 a torn member")  # a crash in the middle of the next one
    fake.clear_faults()
    with pytest.raises(CheckpointError, match="different compression"):
        await export_transactions(brittle, out, compression="none", resume=True)
    result = await export_transactions(brittle, out, resume=True)
    assert result.rows == 950 and result.resumed_from_page == 4
    await export_transactions(brittle, plain)
    if compression == "gzip":
        whole = gzip.decompress(out.read_bytes())  # the standard library reads every member
    else:
        reader = zstandard.ZstdDecompressor().stream_reader(
            out.read_bytes(), read_across_frames=True
        )
        whole = reader.read()
    assert whole == plain.read_bytes()  # the same bytes as an uncompressed export
    assert sorted(os.listdir(tmp_path)) == sorted([out.name, plain.name])


async def test_parquet_columns_are_typed(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    fake.seed(300, seed=3)
    out = tmp_path / "tx.parquet"
    await export_transactions(client, out)
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types == {
        "id": pa.int64(),
        "uuid": pa.string(),
        "amount_in_cents": pa.int64(),
        "type": pa.string(),
        "settled": pa.bool_(),
        "card_id": pa.int64(),
        "card_uuid": pa.string(),
        "shop_id": pa.int64(),
        "shop_uuid": pa.string(),
        "shop_name": pa.string(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "settlements": pa.string(),
    }
    meta = pq.ParquetFile(out).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    rows = table.to_pylist()
    api = await api_rows(fake)
    assert len(rows) == len(api) == 300
    for mine, theirs in zip(rows, api, strict=True):
        assert mine["id"] == theirs["id"] and mine["uuid"] == theirs["uuid"]
        assert mine["amount_in_cents"] == theirs["amount_in_cents"]
        assert mine["settled"] is theirs["settled"] and mine["type"] == theirs["type"]
        assert (mine["card_id"], mine["card_uuid"]) == (
            theirs["card"]["id"],
            theirs["card"]["uuid"],
        )
        shop = theirs["shop"]
        assert (mine["shop_id"], mine["shop_uuid"], mine["shop_name"]) == (
            shop["id"],
            shop["uuid"],
            shop["name"],
        )
        assert json.loads(mine["settlements"]) == theirs["settlements"]
        assert mine["created_at"].isoformat().replace("+00:00", "") in theirs["created_at"]
    assert [t.id for t in read_export(out)] == [r["id"] for r in api]


async def test_parquet_resumes_without_losing_or_repeating_a_row(
    brittle: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 950)
    fail_at_page(fake, "6")
    out = tmp_path / "tx.parquet"
    with pytest.raises(LeatAPIError):
        await export_transactions(brittle, out, checkpoint_every=0)
    parts = partial_path(out)
    assert parts.is_dir() and not out.exists()
    saved = json.loads(checkpoint_path(out).read_text())
    assert saved["rows"] == 500 and saved["parts"] == len(list(parts.iterdir())) >= 1
    # a kill after the next part was written, before its checkpoint: that part is not counted
    (parts / f"part-{saved['parts'] + 1:06d}.parquet").write_bytes(b"PAR1 half a part")
    fake.clear_faults()
    result = await export_transactions(brittle, out, resume=True)
    assert result.rows == 950 and result.resumed_from_page == 6
    assert ids(out) == [t.id for t in fake.transactions]
    assert os.listdir(tmp_path) == [out.name]


async def test_a_row_parquet_cannot_hold_fails_the_run_and_leaves_nothing(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    """A number beyond 64 bits on the first page: the run stops with a clear error before it
    counts that page, and no checkpoint holds a row, so nothing is left."""
    seed_rows(fake, 250)
    fake.transactions[50].amount_in_cents = 2**70
    out = tmp_path / "tx.parquet"
    with pytest.raises(ValueError, match="export it as JSONL"):
        await export_transactions(client, out, checkpoint_every=3600)
    assert os.listdir(tmp_path) == []


async def test_parquet_incremental_runs_append_and_duckdb_reads_them(tmp_path: Path) -> None:
    clock = Clock(T0)
    async with (
        FakeLeat(token=TOKEN, clock=clock) as fake,
        LeatClient(TOKEN, base_url=fake.url, retry=ONE_TRY, timeout=5.0) as client,
    ):
        await _parquet_nights(client, fake, clock, tmp_path)


async def _parquet_nights(client: LeatClient, fake: FakeLeat, clock: Clock, tmp_path: Path) -> None:
    seed_rows(fake, 200)
    out = tmp_path / "nightly.parquet"
    first = await export_transactions(client, out, incremental=True)
    add_rows(fake, 70, T0 + timedelta(minutes=5))
    clock.now = T1
    second = await export_transactions(client, out, incremental=True)
    assert (first.rows, second.rows_this_run, second.rows) == (200, 70, 270)
    assert ids(out) == [t.id for t in fake.transactions]
    again = await export_transactions(client, out, incremental=True)
    assert again.rows_this_run == 0 and pq.read_table(out).num_rows == 270
    sql = "SELECT count(*), sum(amount_in_cents), count(DISTINCT id) FROM read_parquet(?)"
    counted = duckdb.execute(sql, [str(out)]).fetchone()
    assert counted == (270, sum(t.amount_in_cents for t in fake.transactions), 270)
    assert sorted(os.listdir(tmp_path)) == [out.name, incremental_path(out).name]


async def test_parquet_cannot_be_a_stream(client: LeatClient, tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="Parquet is written whole"),
        (tmp_path / "s").open("wb") as f,
    ):
        await export_transactions(client, f, format="parquet")


# -- the command -------------------------------------------------------------------------------


async def test_a_missing_extra_is_exit_2_before_any_request(fake: FakeLeat, tmp_path: Path) -> None:
    for name, extra, blocked in [
        ("x.jsonl.zst", "leat-async[zstd]", "zstandard"),
        ("x.parquet", "leat-async[parquet]", "pyarrow"),
    ]:
        out = tmp_path / name
        done = await cli("export", "--base-url", fake.url, "-o", str(out), HARNESS_BLOCK=blocked)
        assert done.status == 2 and extra in done.line, done.err
        assert os.listdir(tmp_path) == [] and fake.requests == []
    bad = await cli(
        "export", "--fake", "3", "-o", str(tmp_path / "a.parquet"), "--compression", "gzip"
    )
    assert bad.status == 2 and "Parquet compresses its row groups itself" in bad.line


async def test_the_command_writes_parquet_and_zstd_from_the_fake(tmp_path: Path) -> None:
    for name in ("a.parquet", "a.csv.zst"):
        done = await cli("export", "--fake", "250", "-o", str(tmp_path / name))
        assert done.status == 0 and "exported 250 rows" in done.line, done.err
        assert len(ids(tmp_path / name)) == 250


@pytest.mark.parametrize(("name", "more"), [("tx.parquet", []), ("ds", ["--partition-by", "day"])])
async def test_parquet_killed_at_any_file_step_then_resumed_has_every_row_once(
    fake: FakeLeat, tmp_path: Path, name: str, more: list[str]
) -> None:
    """kill -9 before a sample of the run's durable file steps, then ``--resume`` (or, if
    nothing was left to resume, the same command): every row once, nothing left beside it."""
    seed_rows(fake, 640, step=300.0)
    reference = tmp_path / f"reference-{name}"
    log = tmp_path / "steps.log"
    args = ["export", "--base-url", fake.url, *more]
    done = await cli(*args, "-o", str(reference), HARNESS_LOG=str(log))
    assert done.status == 0, done.err
    steps = log.read_text().splitlines()
    read = dataset_ids if more else table_rows
    expected = read(reference)
    rng = random.Random(23)
    points = sorted({*rng.sample(range(1, len(steps) + 1), min(6, len(steps))), len(steps)})

    async def scenario(at: int) -> None:
        where = tmp_path / f"kill-{at}"
        where.mkdir()
        out = where / name
        proc = await start(*args, "-o", str(out), HARNESS_KILL_AT=str(at))
        await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == -signal.SIGKILL, (at, steps[at - 1])
        if out.exists():  # a reader sees a whole file (a whole dataset) or none
            assert len(read(out)) == 640
        resume = ["--resume"] if checkpoint_path(out).exists() else []
        if not (more and out.exists() and not resume):  # a finished dataset is not redone
            again = await cli(*args, "-o", str(out), *resume)
            assert again.status == 0, (at, steps[at - 1], again.err)
        assert read(out) == expected, (at, steps[at - 1])
        left = set(os.listdir(where)) - {f"{out.name}.lock"}  # a kill's lock file: unlocked
        assert left == {out.name}, (at, steps[at - 1])

    gate = asyncio.Semaphore(3)

    async def one(at: int) -> None:
        async with gate:
            await scenario(at)

    await asyncio.gather(*(one(at) for at in points))


@pytest.mark.parametrize(
    ("name", "more", "step", "limit"),
    [("tx.parquet", [], 300.0, 60_000), ("ds", ["--partition-by", "day"], 60.0, 30_000)],
)
async def test_a_part_the_disk_refuses_leaves_a_run_that_resumes(
    fake: FakeLeat, tmp_path: Path, name: str, more: list[str], step: float, limit: int
) -> None:
    """A later part cannot be written (a file-size limit, which pyarrow's own writes meet: a
    200-row part fits, the next 2,000 rows do not; a dataset's save fails after one of its
    files): the checkpoint still counts whole parts only, and ``--resume`` has every row once."""
    seed_rows(fake, 2300, step=step)
    args = ["export", "--base-url", fake.url, *more]
    reference = tmp_path / f"reference-{name}"
    assert (await cli(*args, "-o", str(reference))).status == 0
    for page in ("2", "22"):  # a second late: a part is saved after each
        fake.add_fault(Fault(method="GET", query={"page": page}, delay=1.1))
    out = tmp_path / name
    done = await cli(*args, "-o", str(out), HARNESS_FILE_LIMIT=str(limit))
    assert done.status == 3 and "File too large" in done.line, done.err
    assert json.loads(checkpoint_path(out).read_text())["rows"] == 200
    assert "export failed after 200 rows" in done.line and "--resume" in done.line
    fake.clear_faults()
    again = await cli(*args, "-o", str(out), "--resume")
    assert again.status == 0, again.err
    read = dataset_ids if more else table_rows
    assert read(out) == read(reference)
    assert sorted(os.listdir(tmp_path)) == sorted([reference.name, out.name])


# -- partitioned datasets ----------------------------------------------------------------------


def dataset_ids(directory: Path) -> list[int]:
    sql = "SELECT id FROM read_parquet(?, hive_partitioning = true) ORDER BY id"
    return [r[0] for r in duckdb.execute(sql, [f"{directory}/**/*.parquet"]).fetchall()]


def table_rows(path: Path) -> list[dict[str, object]]:
    return pq.read_table(path).to_pylist()


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*.parquet")}


async def test_a_day_partitioned_dataset_reads_as_one_table(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 900, step=400.0)  # about four days
    out = tmp_path / "ds"
    result = await export_transactions(client, out, partition_by="day", checkpoint_every=0)
    assert result.rows == 900 and os.listdir(tmp_path) == ["ds"]
    folders = sorted(os.listdir(out))
    days = sorted({f"created_date={t.created_at.date().isoformat()}" for t in fake.transactions})
    assert folders == days and len(days) >= 4
    assert dataset_ids(out) == sorted(t.id for t in fake.transactions)  # every row once
    sql = (
        "SELECT count(*) FROM read_parquet(?, hive_partitioning = true) "
        "WHERE CAST(created_at AT TIME ZONE 'UTC' AS DATE) <> created_date"
    )
    assert duckdb.execute(sql, [f"{out}/**/*.parquet"]).fetchone() == (0,)
    import pyarrow.dataset as ds

    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 900 and "created_date" in table.column_names
    with pytest.raises(ValueError, match="is not empty"):
        await export_transactions(client, out, partition_by="day")


async def test_incremental_partitions_only_add_files(tmp_path: Path) -> None:
    clock = Clock(T0)
    async with (
        FakeLeat(token=TOKEN, clock=clock) as fake,
        LeatClient(TOKEN, base_url=fake.url, retry=ONE_TRY, timeout=5.0) as client,
    ):
        seed_rows(fake, 400, step=600.0)
        out = tmp_path / "ds"
        await export_transactions(client, out, partition_by="month", incremental=True)
        before = files_of(out)
        add_rows(fake, 30, T0 + timedelta(minutes=5))
        clock.now = T1
        fake.reset_requests()
        second = await export_transactions(client, out, partition_by="month", incremental=True)
        assert second.rows_this_run == 30 and second.requests == len(fake.requests) <= 3
        after = files_of(out)
        assert {k: after[k] for k in before} == before  # nothing rewritten or removed
        assert len(after) > len(before)
        assert dataset_ids(out) == sorted(t.id for t in fake.transactions)
        assert sorted(os.listdir(tmp_path)) == ["ds", "ds.incremental.json"]


async def test_the_command_refuses_a_partitioned_csv(fake: FakeLeat, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    done = await cli("export", "--base-url", fake.url, "-o", str(out), "--partition-by", "day",
                     "--format", "csv")  # fmt: skip
    assert done.status == 2 and "--partition-by writes Parquet" in done.line
    (out / "x").mkdir(parents=True)
    done = await cli("export", "--base-url", fake.url, "-o", str(out), "--partition-by", "day")
    assert done.status == 2 and "is not empty" in done.line and fake.requests == []


def test_what_parquet_cannot_hold_is_said_or_made_valid() -> None:
    from leat_async import transaction_from_json
    from leat_async.export._arrow_rows import table_of

    from .test_export_rows import tx_doc

    odd = transaction_from_json(tx_doc("Shop\udc80", uuid="u-\udc80"))
    table = table_of([odd])  # UTF-8 cannot hold a surrogate
    assert table.column("uuid").to_pylist() == ["u-?"]
    assert table.column("shop_name").to_pylist() == ["Shop?"]
    with pytest.raises(ValueError, match="export it as JSONL"):
        table_of([odd, transaction_from_json(tx_doc(amount_in_cents=2**70))])


def test_settlements_orjson_cannot_write_still_reach_the_parquet_column() -> None:
    """A page holding one too-deep value and one lone surrogate: every row's JSON text is kept."""
    from leat_async import transaction_from_json
    from leat_async.export._arrow_rows import table_of

    from .test_export_rows import nested, tx_doc

    plain, deep, odd = [{"id": 1}], [nested(300)], [{"note": "\udfff"}]
    page = [transaction_from_json(tx_doc(settlements=s)) for s in (plain, deep, odd, plain)]
    texts = table_of(page).column("settlements").to_pylist()
    assert [json.loads(t) for t in texts] == [plain, deep, odd, plain]
    clean = [transaction_from_json(tx_doc(settlements=plain))] * 2
    assert table_of(clean).column("settlements").to_pylist() == ['[{"id":1}]'] * 2
