"""Reconciliation on disk: the same answers as in memory, bounded buffers, files cleaned up,
and the async entry point with a pager on a real (fake) server."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leat_async import GiftcardTransaction, LeatClient
from leat_async.reconcile import (
    EXACT_LIMIT,
    REPORT_COLUMNS,
    InputError,
    LedgerRow,
    read_ledger,
    reconcile,
    reconcile_to_csv,
    reconcile_to_csv_async,
)
from leat_async.reconcile._matching import match_sorted
from leat_async.reconcile._spill import ExternalSorter
from leat_async.testing import FakeLeat

from .test_reconcile import CARD, SHOP, T0, row, tx, write_ledger

# -- the same answers as the in-memory reconciler ---------------------------------------------

cards = st.sampled_from([CARD, CARD.upper(), " " + CARD, "6f1c2e7a-0000-4000-8000-00000000beef"])
# whole and fractional seconds in a narrow span: many ties, duplicates and overlapping runs
times = st.one_of(st.integers(0, 40).map(float), st.floats(0, 40, allow_nan=False))
ledger_rows = st.lists(
    st.builds(
        lambda i, card, amount, s: LedgerRow(
            f"R{i}", card, SHOP, amount, T0 + timedelta(seconds=s)
        ),
        st.integers(0, 99),
        cards,
        st.sampled_from([100, 200]),
        times,
    ),
    max_size=25,
)
transactions = st.lists(
    st.builds(
        lambda card, amount, s: (card, amount, s),
        st.one_of(cards, st.none()),
        st.sampled_from([100, 200]),
        times,
    ),
    max_size=25,
).map(lambda specs: [tx(i, s, amount, card) for i, (card, amount, s) in enumerate(specs, 1)])
tolerances = st.sampled_from([0.0, 0.5, 1.0, 2.5, 5.0, 30.0])


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledger_rows, transactions, tolerances, st.integers(2, 6), st.booleans())
def test_on_disk_equals_in_memory(
    ledger: list[LedgerRow],
    txs: list[GiftcardTransaction],
    tol: float,
    memory_rows: int,
    small_exact_limit: bool,
) -> None:
    """Spilling every few rows, and (optionally) a tiny exact limit that sends runs through the
    streaming greedy pass: still exactly the in-memory reconciler's rows and counts."""
    limit = 4 if small_exact_limit else EXACT_LIMIT
    expected = reconcile(ledger, txs, tolerance=tol, exact_limit=limit)
    out = io.StringIO()
    summary = reconcile_to_csv(
        ledger, txs, out, tolerance=tol, memory_rows=memory_rows, exact_limit=limit
    )
    got = csv_rows(out.getvalue())
    assert tuple(got[0]) == REPORT_COLUMNS
    want = [[str(c) for c in d.csv_row()] for d in expected.discrepancies]
    assert sorted(got[1:]) == sorted(want)
    assert summary == expected.summary


def test_report_order_is_arrival_then_ledger_order(tmp_path: Path) -> None:
    # out of reach, held and unmatched, matched; ledger rows in their own order
    ledger = [row("Z", 500, amount=1), row("A", 0), row("M", 100, amount=2)]
    txs = [tx(7, 9999), tx(3, 1), tx(5, 2), tx(1, 600, amount=3)]
    out = tmp_path / "report.csv"
    summary = reconcile_to_csv(ledger, txs, out, memory_rows=2)
    with out.open(newline="") as f:
        got = [(r["status"], r["reference"] or r["transaction_id"]) for r in csv.DictReader(f)]
    assert got == [
        ("unexpected_in_leat", "7"),
        ("unexpected_in_leat", "5"),
        ("unexpected_in_leat", "1"),
        ("missing_in_leat", "Z"),
        ("missing_in_leat", "M"),
    ]
    assert (summary.matched, summary.ledger_rows, summary.transactions) == (1, 3, 4)
    assert list(tmp_path.iterdir()) == [out]  # no partial file left beside it


def test_match_sorted_streams_a_huge_run_in_bounded_memory() -> None:
    """A run of 200,000 identical payments a second apart: far over the exact limit, matched
    by the streaming greedy pass, holding only what lies within the tolerance."""
    n = 200_000
    ledger = ((CARD, SHOP, 100, float(i), i) for i in range(n))
    txs = ((CARD, SHOP, 100, i + 0.5, i) for i in range(1, n + 1))  # the last one has no row
    left = sorted(match_sorted(ledger, txs, 1.0))
    # ledger 0 s cannot reach 1.5 s; each later row takes the next transaction
    assert left == [(0, (CARD, SHOP, 100, 0.0, 0)), (1, (CARD, SHOP, 100, n + 0.5, n))]


def test_cells_are_rfc4180_and_formula_safe(tmp_path: Path) -> None:
    refs = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "'quoted", "a,b", "cr\rlf\n"]
    ledger = [row(ref, i * 1000) for i, ref in enumerate(refs)]
    out = tmp_path / "r.csv"
    reconcile_to_csv(ledger, [], out)
    with out.open(newline="") as f:
        got = [r["reference"] for r in csv.DictReader(f)]
    assert got == ["'" + r if r[0] in "=+-@'" else r for r in refs]
    assert out.read_bytes().count(b"\n") == len(refs) + 2  # the \n inside a quoted cell


# -- bounded buffers and files ----------------------------------------------------------------


def test_external_sorter_spills_merges_in_passes_and_removes_runs(tmp_path: Path) -> None:
    sorted_counts: list[int] = []
    sorter: ExternalSorter[tuple[int, int]] = ExternalSorter(
        tmp_path,
        name="t",
        buffer_rows=100,
        on_sorted=sorted_counts.append,
        fan_in=3,  # 10 runs: merged in two passes
        block_rows=7,
    )
    values = [((i * 7919) % 1000, i) for i in range(1000)]
    for i in range(0, 1000, 50):
        sorter.add(values[i : i + 50])
        assert sorter.buffered < 100  # never more than buffer_rows in memory
    assert len(list(tmp_path.iterdir())) == 10 and sum(sorted_counts) == 1000
    assert list(sorter.sorted()) == sorted(values)
    assert list(tmp_path.iterdir()) == []


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def bad_ledger(tmp_path: Path, good_rows: int) -> Path:
    rows = [
        [f"R{i}", CARD, SHOP, "100", f"2024-06-01T12:{i % 60:02d}:00"] for i in range(good_rows)
    ]
    return write_ledger(tmp_path / "ledger.csv", [*rows, ["BAD", CARD, SHOP, "1.5", "2024-06-01"]])


def test_a_bad_row_midway_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "report.csv"
    ledger = read_ledger(bad_ledger(tmp_path, 5000))
    with pytest.raises(InputError, match=r"line 5002: amount_in_cents '1\.5'"):
        reconcile_to_csv(ledger, [], out, tmp_dir=work, memory_rows=500)
    assert names(tmp_path) == ["ledger.csv", "work"] and names(work) == []


# -- the async entry point --------------------------------------------------------------------


async def test_async_reads_plain_iterables_in_a_worker_thread(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    readers: set[int] = set()

    def ledger() -> Iterator[LedgerRow]:
        for i in range(10_000):
            readers.add(threading.get_ident())
            yield row(f"R{i}", i * 1000)

    async def txs() -> AsyncIterator[GiftcardTransaction]:
        for i in range(10_000):
            yield tx(i, i * 1000 + 1)

    summary = await reconcile_to_csv_async(ledger(), txs(), tmp_path / "r.csv", memory_rows=3000)
    assert summary.clean and summary.matched == 10_000
    assert readers and loop_thread not in readers


async def test_async_job_cancelled_removes_its_files(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "r.csv"
    spilled = asyncio.Event()
    loop = asyncio.get_running_loop()

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "sort":
            loop.call_soon_threadsafe(spilled.set)

    def ledger() -> Iterator[LedgerRow]:
        i = 0
        while True:  # endless: only cancelling ends this job
            i += 1
            yield row(f"R{i}", i)

    job = asyncio.create_task(
        reconcile_to_csv_async(ledger(), [], out, tmp_dir=work, memory_rows=1000, progress=progress)
    )
    await asyncio.wait_for(spilled.wait(), 30)
    assert names(work)  # its directory holds sorted runs
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert names(tmp_path) == ["work"] and names(work) == []


async def test_async_with_a_pager_on_a_fake_server(tmp_path: Path) -> None:
    async with FakeLeat() as fake:
        shop = fake.add_shop(name="Krusty Krab")
        card = fake.add_card(balance_in_cents=10**6)
        start = datetime(2024, 3, 1, tzinfo=UTC)
        made = [
            fake.add_transaction(
                card=card,
                shop=shop,
                amount_in_cents=-100 - i,
                created_at=start + timedelta(minutes=i),
            )
            for i in range(250)
        ]
        ledger = [
            LedgerRow(
                f"R{i}",
                card.uuid or "",
                shop.uuid or "",
                -100 - i,
                start + timedelta(minutes=i, seconds=20),
            )
            for i in range(1, 251)  # R250 has no transaction; transaction 0 has no row
        ]
        async with LeatClient(fake.token, base_url=fake.url) as client:
            pager = client.giftcard_transactions.list(shop_uuid=shop.uuid)
            summary = await reconcile_to_csv_async(ledger, pager, tmp_path / "r.csv")
    assert (summary.matched, summary.missing_in_leat, summary.unexpected_in_leat) == (249, 1, 1)
    with (tmp_path / "r.csv").open(newline="") as f:
        got = [(r["status"], r["reference"], r["transaction_id"]) for r in csv.DictReader(f)]
    assert got == [
        ("unexpected_in_leat", "", str(made[0].id)),
        ("missing_in_leat", "R250", ""),
    ]


# -- a big ledger file: sorted by a worker process --------------------------------------------


async def test_a_ledger_file_sorted_by_a_worker_process(tmp_path: Path) -> None:
    rows = [
        [f"R{i}", CARD, SHOP, str(100 + i % 7), f"2024-06-01T12:{i % 60:02d}:00"]
        for i in range(3000)
    ]
    path = write_ledger(tmp_path / "ledger.csv", rows)
    txs = [tx(i, 60 * (i % 60) + 5, 100 + i % 7) for i in range(2990)]
    seen: list[tuple[str, int]] = []
    summary = await reconcile_to_csv_async(
        path,
        txs,
        tmp_path / "r.csv",
        memory_rows=400,
        progress=lambda p, n, t: seen.append((p, n)),
        worker_min_bytes=0,  # a worker for any file
    )
    expected = reconcile(list(read_ledger(path)), txs)
    assert summary == expected.summary
    assert ("read", 3000 + 2990) in seen and ("match", 3000 + 2990) in seen
    with (tmp_path / "r.csv").open(newline="") as f:
        got = [list(r) for r in csv.reader(f)][1:]
    assert sorted(got) == sorted([str(c) for c in d.csv_row()] for d in expected.discrepancies)
    assert names(tmp_path) == ["ledger.csv", "r.csv"]


async def test_a_bad_row_found_by_the_worker_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = bad_ledger(tmp_path, 3000)

    async def endless() -> AsyncIterator[GiftcardTransaction]:
        i = 0
        while True:  # only the worker's error ends this job
            i += 1
            yield tx(i, i)
            if not i % 1000:
                await asyncio.sleep(0)

    with pytest.raises(InputError, match=r"line 3002: amount_in_cents '1\.5'"):
        await reconcile_to_csv_async(
            path, endless(), tmp_path / "r.csv", tmp_dir=work, worker_min_bytes=0
        )
    assert names(tmp_path) == ["ledger.csv", "work"] and names(work) == []


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds ``text`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:  # gone meanwhile
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
async def test_cancelling_stops_the_worker_and_removes_its_files(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    rows = [[f"R{i}", CARD, SHOP, "100", "2024-06-01T12:00:00"] for i in range(300_000)]
    path = write_ledger(tmp_path / "ledger.csv", rows)
    reading = asyncio.Event()

    async def endless() -> AsyncIterator[GiftcardTransaction]:
        i = 0
        while True:
            i += 1
            if i == 5000:
                reading.set()
            yield tx(i, i)
            if not i % 1000:
                await asyncio.sleep(0)

    job = asyncio.create_task(
        reconcile_to_csv_async(
            path, endless(), tmp_path / "r.csv", tmp_dir=work, worker_min_bytes=0
        )
    )
    await asyncio.wait_for(reading.wait(), 30)
    assert processes_naming(str(work))  # the worker is sorting the ledger
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert processes_naming(str(work)) == []
    assert names(tmp_path) == ["ledger.csv", "work"] and names(work) == []


@pytest.mark.parametrize("side", [0, 1])
def test_a_long_run_is_held_only_up_to_the_exact_limit(side: int) -> None:
    """10,000 rows of one group a second apart (a single run at a tolerance of 2 s), only a few
    of the other side: what the matcher holds stays near the exact limit, not the run's size."""
    taken = 0

    def counted(records: Iterator[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
        nonlocal taken
        for r in records:
            taken += 1
            yield r

    many = [(CARD, SHOP, 100, float(i), i) for i in range(10_000)]
    few = [(CARD, SHOP, 100, 5000.5 + i, i) for i in range(3)]
    ledger, txs = (many, few) if side == 0 else (few, many)
    held = []
    left = []
    for out in match_sorted(counted(iter(ledger)), counted(iter(txs)), 2.0, exact_limit=100):
        left.append(out)
        held.append(taken - len(left))
    assert max(held) < 150
    assert len(left) == 10_000 + 3 - 2 * 3  # the three pair up with rows of the run


def test_report_times_keep_their_zone_exactly(tmp_path: Path) -> None:
    """The on-disk records keep a time as (seconds, offset) where that is exact, and as text
    where it is not: the report shows each time as the in-memory reconciler does."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zones: list[tzinfo] = [
        UTC,
        timezone(timedelta(hours=2)),
        timezone(-timedelta(hours=3, minutes=30)),
    ]
    zones.append(timezone(timedelta(seconds=5, microseconds=7)))
    with contextlib.suppress(ZoneInfoNotFoundError):  # no time zone data on this machine
        zones.append(ZoneInfo("Europe/Amsterdam"))  # +01:00 in winter, +02:00 in summer
    whens = [
        datetime(year, month, 1, 12, 0, 0, micro, tzinfo=tz)
        for tz in zones
        for year, month, micro in ((2024, 1, 0), (2024, 7, 123456), (2300, 3, 1), (1901, 5, 0))
    ]
    ledger = [LedgerRow(f"R{i}", CARD, SHOP, i, when) for i, when in enumerate(whens)]
    out = io.StringIO()
    reconcile_to_csv(ledger, [], out)
    got = [r[7] for r in csv_rows(out.getvalue())[1:]]
    assert got == [when.isoformat() for when in whens]
