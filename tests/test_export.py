"""Bulk export against the fake over loopback HTTP: content, atomicity, failure and resume."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from leat_async import CreatedAt, LeatAPIError, LeatClient
from leat_async.export import (
    CSV_COLUMNS,
    CheckpointError,
    checkpoint_path,
    export_transactions,
    partial_path,
    transaction_json,
)
from leat_async.export._rows import ENCODERS, jsonl_plain
from leat_async.reconcile import read_export
from leat_async.testing import FakeLeat, Fault

from .conftest import LONG_AGO, TOKEN, seed_rows


async def api_rows(fake: FakeLeat) -> list[dict[str, Any]]:
    """Every row as the API itself renders it, fetched with a plain aiohttp session."""
    rows: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    url = f"{fake.url}{FakeLeat.PREFIX}/giftcard-transactions"
    async with aiohttp.ClientSession(headers=headers) as http:
        page = 1
        while True:
            async with http.get(url, params={"perPage": "100", "page": str(page)}) as resp:
                doc = await resp.json()
            rows += doc["data"]
            if page >= doc["meta"]["last_page"]:
                return rows
            page += 1


def jsonl_ids(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def list_pages(fake: FakeLeat) -> list[str]:
    return [dict(r.query)["page"] for r in fake.requests if r.method == "GET"]


async def test_jsonl_is_the_api_rows_in_order(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    fake.seed(730, seed=3, end=LONG_AGO)
    shop = fake.add_shop(name='Café "Zoë", Rotterdam')  # quoting and non-ASCII
    old = fake.add_card(balance_in_cents=0, uuid=FakeLeat.NULL)
    later = LONG_AGO + timedelta(days=1)
    fake.add_transaction(
        card=old, shop=shop, amount_in_cents=500, uuid=FakeLeat.NULL, created_at=later
    )
    fake.add_transaction(
        card=old, shop=shop, amount_in_cents=-5, type="CORRECTION", created_at=later
    )
    out = tmp_path / "tx.jsonl"
    seen: list[tuple[int, int | None]] = []
    result = await export_transactions(
        client, out, progress=lambda rows, total: seen.append((rows, total))
    )
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == await api_rows(fake)  # the API's own names, values and timestamps
    assert [row["id"] for row in lines] == [t.id for t in fake.transactions]
    assert result.rows == result.expected == len(fake.transactions) == len(lines)
    assert result.pages == -(-len(lines) // 100) and result.resumed_from_page is None
    assert not partial_path(out).exists() and not checkpoint_path(out).exists()
    assert seen[0] == (0, None) and seen[-1] == (len(lines), len(lines))
    assert [rows for rows, _ in seen[1:]] == [*range(100, len(lines), 100), len(lines)]


async def test_jsonl_without_orjson_is_identical(client: LeatClient, fake: FakeLeat) -> None:
    seed_rows(fake, 3)
    zoe = fake.add_shop(name="Zoë")
    fake.add_transaction(card=fake.cards[0], shop=zoe, amount_in_cents=1, created_at=LONG_AGO)
    txs = [tx async for tx in client.giftcard_transactions.list()]
    plain = "".join(
        json.dumps(transaction_json(tx), ensure_ascii=False, separators=(",", ":")) + "\n"
        for tx in txs
    )
    assert ENCODERS["jsonl"](txs) == jsonl_plain(txs) == plain.encode()


async def test_csv_columns_and_values(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    fake.seed(150, end=LONG_AGO)
    shop = fake.add_shop(name='Café "Zoë", Rotterdam')
    old = fake.add_card(balance_in_cents=0, uuid=FakeLeat.NULL)
    fake.add_transaction(
        card=old, shop=shop, amount_in_cents=500, uuid=FakeLeat.NULL, created_at=LONG_AGO
    )
    out = tmp_path / "tx.csv"
    result = await export_transactions(client, out, format="csv")
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    api = await api_rows(fake)
    assert result.rows == len(rows) == len(api)
    for row, doc in zip(rows, api, strict=True):
        assert row == {
            "id": str(doc["id"]),
            "uuid": doc["uuid"] or "",
            "amount_in_cents": str(doc["amount_in_cents"]),
            "type": doc["type"],
            "settled": "true" if doc["settled"] else "false",
            "card_id": str(doc["card"]["id"]),
            "card_uuid": doc["card"]["uuid"] or "",
            "shop_id": str(doc["shop"]["id"]),
            "shop_uuid": doc["shop"]["uuid"],
            "shop_name": doc["shop"]["name"],
            "created_at": doc["created_at"],
        }
    assert {r["settled"] for r in rows} == {"true", "false"}
    assert [t.id for t in read_export(out)] == [d["id"] for d in api]


async def test_filters_and_window(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 300, step=60.0)
    other = fake.add_shop(name="Elsewhere")
    fake.add_transaction(card=fake.cards[0], shop=other, amount_in_cents=7, created_at=LONG_AGO)
    window = CreatedAt(gte=LONG_AGO + timedelta(minutes=10), lt=LONG_AGO + timedelta(minutes=260))
    out = tmp_path / "w.jsonl"
    result = await export_transactions(client, out, created_at=window, shop_uuid=fake.shops[0].uuid)
    expected = [
        t.id for t in fake.transactions if t.shop is fake.shops[0] and window.contains(t.created_at)
    ]
    assert jsonl_ids(out) == expected and result.rows == 250


async def test_empty_listing(client: LeatClient, tmp_path: Path) -> None:
    out = tmp_path / "none.csv"
    result = await export_transactions(client, out, format="csv")
    assert result.rows == 0 and out.read_bytes() == ",".join(CSV_COLUMNS).encode() + b"\r\n"


@pytest.mark.parametrize("checkpoint_every", [0.0, 3600.0])
async def test_failure_part_way_then_resume(
    brittle: LeatClient, client: LeatClient, fake: FakeLeat, tmp_path: Path, checkpoint_every: float
) -> None:
    seed_rows(fake, 950)
    fake.add_fault(
        Fault(method="GET", query={"page": "4"}, status=500, body={"message": "boom"}, times=None)
    )
    out = tmp_path / "tx.jsonl"
    with pytest.raises(LeatAPIError):
        await export_transactions(brittle, out, checkpoint_every=checkpoint_every)
    assert not out.exists()
    saved = json.loads(checkpoint_path(out).read_text())
    assert saved["next_page"] == 4 and saved["rows"] == 300
    assert saved["bytes"] == partial_path(out).stat().st_size
    assert saved["snapshot"] is not None and TOKEN not in checkpoint_path(out).read_text()
    assert len(jsonl_ids(partial_path(out))) == 300

    fake.clear_faults()
    fake.reset_requests()
    seed_rows(fake, 5, start=datetime.now(UTC) + timedelta(hours=1))  # after the snapshot
    result = await export_transactions(brittle, out, resume=True)
    assert jsonl_ids(out) == [t.id for t in fake.transactions[:950]]
    assert result.rows == 950 and result.rows_this_run == 650 and result.resumed_from_page == 4
    pages = list_pages(fake)
    assert pages[0] == "4" and not {"1", "2", "3"} & set(pages)
    assert not partial_path(out).exists() and not checkpoint_path(out).exists()


async def test_resume_cuts_a_torn_page(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    """A crash after the checkpoint, in the middle of writing a page: the tail is cut off."""
    seed_rows(fake, 420)
    fake.add_fault(Fault(method="GET", query={"page": "3"}, status=400, body={"message": "no"}))
    out = tmp_path / "tx.csv"
    with pytest.raises(LeatAPIError):
        await export_transactions(client, out, format="csv")
    with partial_path(out).open("ab") as f:
        f.write(b'999999,"half a ro')
    result = await export_transactions(client, out, format="csv", resume=True)
    assert [t.id for t in read_export(out)] == [t.id for t in fake.transactions]
    assert result.rows == 420 and out.read_text().count("\n") == 421


async def test_cancelled_export_resumes(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 800)
    out = tmp_path / "tx.jsonl"
    task: asyncio.Task[Any] | None = None

    def stop_at_300(rows: int, _: int | None) -> None:
        if rows >= 300 and task is not None:
            task.cancel()  # like Ctrl-C: the export task is cancelled at its next await

    task = asyncio.create_task(export_transactions(client, out, progress=stop_at_300))
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = json.loads(checkpoint_path(out).read_text())
    assert saved["rows"] >= 300 and not out.exists()
    await export_transactions(client, out, resume=True)
    assert jsonl_ids(out) == [t.id for t in fake.transactions]


async def test_resume_refusals(brittle: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 250)
    out = tmp_path / "tx.jsonl"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        await export_transactions(brittle, out, resume=True)
    fake.add_fault(Fault(method="GET", query={"page": "2"}, status=500, body={"message": "x"}))
    with pytest.raises(LeatAPIError):
        await export_transactions(brittle, out)
    with pytest.raises(CheckpointError, match="in the way"):
        await export_transactions(brittle, out)  # a fresh start would throw the partial away
    with pytest.raises(CheckpointError, match="different format"):
        await export_transactions(brittle, out, format="csv", resume=True)
    with pytest.raises(CheckpointError, match="different shop_uuid"):
        await export_transactions(brittle, out, shop_uuid=fake.shops[0].uuid, resume=True)
    window = CreatedAt(gte=LONG_AGO)
    with pytest.raises(CheckpointError, match="different created_at"):
        await export_transactions(brittle, out, created_at=window, resume=True)
    partial_path(out).write_bytes(b"")
    with pytest.raises(CheckpointError, match="has 0 bytes, its checkpoint says"):
        await export_transactions(brittle, out, resume=True)
    checkpoint_path(out).write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        await export_transactions(brittle, out, resume=True)
    assert not out.exists()


async def test_bad_arguments_send_nothing(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="format"):
        await export_transactions(client, tmp_path / "x", format="xml")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CreatedAt"):
        await export_transactions(client, tmp_path / "x", created_at="2024")  # type: ignore[arg-type]
    assert fake.requests == []


async def test_csv_odd_names_round_trip(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    """A lone CR is quoted (RFC 4180); formulas get a leading ' that read_export removes."""
    names = ["Ship\rShape", '=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1:A2)", "\tTab", "'q"]
    card = fake.add_card(balance_in_cents=0)
    for name in names:
        shop = fake.add_shop(name=name)
        fake.add_transaction(card=card, shop=shop, amount_in_cents=-5, created_at=LONG_AGO)
    fake.add_transaction(card=card, shop=shop, amount_in_cents=9, type="-cmd", created_at=LONG_AGO)
    out = tmp_path / "odd.csv"
    await export_transactions(client, out, format="csv")
    with out.open(newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    assert len(records) == 1 + len(names) + 1
    names_at, amounts_at = CSV_COLUMNS.index("shop_name"), CSV_COLUMNS.index("amount_in_cents")
    assert [r[names_at] for r in records[1:-1]] == ["Ship\rShape", *("'" + n for n in names[1:])]
    assert [r[amounts_at] for r in records[1:]] == ["-5"] * len(names) + ["9"]
    back = list(read_export(out))
    assert [t.shop.name for t in back] == [*names, names[-1]] and back[-1].type == "-cmd"


async def test_a_refused_argument_leaves_nothing(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    """Checked before any file is made: no .partial, no checkpoint, no unclosed file."""
    refusals = (
        ({"shop_uuid": " x"}, "shop_uuid"),
        ({"giftcard_hash": ""}, "giftcard_hash"),
        ({"settle": -1.0}, "settle"),
    )
    for bad, says in refusals:
        with pytest.raises(ValueError, match=says):
            await export_transactions(client, tmp_path / "out.jsonl", **bad)
    assert os.listdir(tmp_path) == [] and fake.requests == []


async def test_deep_settlements_are_written(
    client: LeatClient, fake: FakeLeat, tmp_path: Path
) -> None:
    """The client reads 1,024 levels (orjson); the export writes them, whatever the encoder."""
    seed_rows(fake, 2)
    deep: Any = "bottom"
    for _ in range(300):
        deep = {"next": deep}
    fake.add_transaction(
        card=fake.cards[0],
        shop=fake.shops[0],
        amount_in_cents=1,
        settlements=[deep],
        created_at=LONG_AGO + timedelta(days=1),
    )
    out = tmp_path / "deep.jsonl"
    result = await export_transactions(client, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.rows == 3 and lines[-1]["settlements"] == [deep]
    assert lines == await api_rows(fake)


async def test_to_a_stream(client: LeatClient, fake: FakeLeat, tmp_path: Path) -> None:
    seed_rows(fake, 250)
    stream = io.BytesIO()
    result = await export_transactions(client, stream, format="csv")
    out = tmp_path / "same.csv"
    await export_transactions(client, out, format="csv")
    assert stream.getvalue() == out.read_bytes() and result.rows == 250 and result.path is None
    with pytest.raises(ValueError, match="stream"):
        await export_transactions(client, io.BytesIO(), resume=True)
