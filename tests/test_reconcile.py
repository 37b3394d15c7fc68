"""Reconciliation: the pure matcher, the streaming reconciler, and reading the files."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leat_async import CardRef, GiftcardTransaction, Shop
from leat_async.reconcile import (
    EXACT_LIMIT,
    REPORT_COLUMNS,
    InputError,
    LedgerRow,
    Reconciler,
    match_times,
    read_export,
    read_ledger,
    reconcile,
    reconcile_to_csv,
)

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CARD, SHOP = "6f1c2e7a-0000-4000-8000-000000000001", "a6c7d2b0-0000-4000-8000-000000000002"


def tx(
    id: int, seconds: float, amount: int = 1000, card: str | None = CARD, shop: str = SHOP
) -> GiftcardTransaction:
    return GiftcardTransaction(
        id=id,
        uuid=f"tx-{id}",
        amount_in_cents=amount,
        type="STANDARD",
        settled=False,
        card=CardRef(id=1, uuid=card),
        shop=Shop(id=1, uuid=shop, name="Krusty Krab"),
        settlements=(),
        created_at=T0 + timedelta(seconds=seconds),
    )


def row(ref: str, seconds: float, amount: int = 1000, card: str = CARD) -> LedgerRow:
    return LedgerRow(ref, card, SHOP, amount, T0 + timedelta(seconds=seconds))


def pairs(report_matches: Sequence[object]) -> set[tuple[str, int]]:
    return {(m.ledger.reference, m.transaction.id) for m in report_matches}  # type: ignore[attr-defined]


# -- the pure matcher -------------------------------------------------------------------------


def test_nearest_within_tolerance() -> None:
    assert match_times([100.0], [50.0, 95.0, 180.0], 60) == [(0, 1)]
    assert match_times([100.0], [160.0], 60) == [(0, 0)]  # the bound is inclusive
    assert match_times([100.0], [160.5, 39.0], 60) == []


def test_ties_go_to_the_earlier() -> None:
    assert match_times([100.0], [50.0, 150.0], 60) == [(0, 0)]
    assert match_times([100.0, 100.0], [100.0], 60) == [(0, 0)]


def test_one_to_one() -> None:
    assert match_times([100.0, 101.0, 102.0], [100.0], 60) == [(0, 0)]
    assert match_times([100.0], [100.0, 100.0, 100.0], 60) == [(0, 0)]
    assert match_times([0.0, 10.0, 20.0], [1.0, 11.0, 21.0], 60) == [(0, 0), (1, 1), (2, 2)]


def test_most_matches_beats_each_ones_nearest() -> None:
    # ledger 6 s is nearest to 9 s, but taking it would leave ledger 13 s without a match
    assert match_times([6.0, 13.0], [2.0, 9.0], 4) == [(0, 0), (1, 1)]


def test_separate_runs_and_empty_sides() -> None:
    assert match_times([], [1.0], 5) == [] and match_times([1.0], [], 5) == []
    assert match_times([0.0, 1000.0], [500.0], 5) == []
    assert match_times([0.0, 1000.0], [4.0, 1003.0], 5) == [(0, 0), (1, 1)]


def test_huge_run_falls_back_to_a_linear_greedy_that_still_matches_most() -> None:
    n = int(EXACT_LIMIT**0.5) + 50  # n * n pairs in one run: over the exact limit
    ledger = [float(i) for i in range(n)]
    txs = [i + 0.5 for i in range(n)]
    got = match_times(ledger, txs, 1.0)
    assert len(got) == n and got == [(i, i) for i in range(n)]


def brute_force(a: list[float], b: list[float], tol: float) -> tuple[int, float]:
    """The best (pairs, -distance) over every one-to-one pairing: the rule's definition."""
    best = (0, 0.0)
    for k in range(min(len(a), len(b)), 0, -1):
        for ls in itertools.combinations(range(len(a)), k):
            for ts in itertools.permutations(range(len(b)), k):
                ds = [abs(a[i] - b[j]) for i, j in zip(ls, ts, strict=True)]
                if all(d <= tol for d in ds):
                    best = max(best, (k, -sum(ds)))
        if best[0]:
            return best
    return best


times = st.lists(st.integers(0, 40).map(float), max_size=5).map(sorted)


@settings(max_examples=300, deadline=None)
@given(times, times, st.integers(0, 10).map(float))
def test_matcher_is_optimal(a: list[float], b: list[float], tol: float) -> None:
    got = match_times(a, b, tol)
    assert len({i for i, _ in got}) == len(got) == len({j for _, j in got})
    assert all(abs(a[i] - b[j]) <= tol for i, j in got)
    score = (len(got), -sum(abs(a[i] - b[j]) for i, j in got))
    assert score == brute_force(a, b, tol)


# -- reconciling ------------------------------------------------------------------------------


def test_amount_change_is_missing_plus_unexpected() -> None:
    report = reconcile([row("A", 0), row("B", 600, amount=2500)], [tx(1, 5), tx(2, 610, 2499)])
    assert pairs(report.matches) == {("A", 1)}
    found = {(d.status, d.reference, d.transaction_id) for d in report.discrepancies}
    assert found == {("missing_in_leat", "B", None), ("unexpected_in_leat", "", 2)}
    s = report.summary
    assert (s.matched, s.missing_in_leat, s.unexpected_in_leat, s.clean) == (1, 1, 1, False)


def test_key_is_card_shop_and_amount() -> None:
    other = "6f1c2e7a-0000-4000-8000-00000000ffff"
    ledger = [row("A", 0), row("B", 0, card=other)]
    report = reconcile(ledger, [tx(1, 0, card=other.upper()), tx(2, 0, shop="elsewhere")])
    assert pairs(report.matches) == {("B", 1)}  # uuids compare case-insensitively
    assert {d.reference or d.transaction_id for d in report.discrepancies} == {"A", 2}


def test_old_rows_without_uuids_are_unexpected() -> None:
    report = reconcile([row("A", 0)], [tx(1, 0, card=None), tx(2, 1)])
    assert pairs(report.matches) == {("A", 2)}
    assert [d.transaction_id for d in report.discrepancies] == [1]


def test_tolerance_and_clean_report() -> None:
    ledger = [row(f"R{i}", i * 1000) for i in range(50)]
    txs = [tx(i, i * 1000 + 299) for i in range(50)]
    assert reconcile(ledger, txs).summary.clean  # the default tolerance: 300 s
    assert reconcile(ledger, txs, tolerance=timedelta(seconds=298)).summary.matched == 0
    with pytest.raises(ValueError, match="tolerance"):
        reconcile(ledger, txs, tolerance=-1)


def test_streaming_holds_only_candidates() -> None:
    rec = Reconciler([row("A", 0)], tolerance=60)
    assert rec.feed(tx(1, 61)) is not None  # out of reach at once
    assert rec.feed(tx(2, 30)) is None  # held until finish
    assert rec.feed(tx(3, -30)) is None
    left = list(rec.finish())
    assert [(d.status, d.transaction_id) for d in left] == [("unexpected_in_leat", 2)]
    assert pairs(rec.matches) == {("A", 3)}
    assert rec.summary.unexpected_in_leat == 2


# -- files ------------------------------------------------------------------------------------


def write_ledger(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at"])
        w.writerows(rows)
    return path


def test_read_ledger(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "l.csv",
        [
            ["A-1", CARD, SHOP, "-1250", "2024-06-01T12:00:00"],
            ["A-2", CARD, SHOP, "500", "2024-06-01T14:00:00+02:00"],
            ["", CARD, SHOP, "7", "2024-06-01"],
        ],
    )
    rows = list(read_ledger(path))
    assert rows[0] == LedgerRow("A-1", CARD, SHOP, -1250, T0)
    assert rows[1].created_at == T0 and rows[2].created_at == T0 - timedelta(hours=12)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (["A", CARD, SHOP, "12.50", "2024-06-01"], "line 2: amount_in_cents '12.50'"),
        (["A", CARD, SHOP, "1", "yesterday"], "line 2: not an ISO 8601"),
        (["A", "", SHOP, "1", "2024-06-01"], "line 2: giftcard_uuid is empty"),
    ],
)
def test_read_ledger_errors(tmp_path: Path, line: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(read_ledger(write_ledger(tmp_path / "l.csv", [line])))


def test_read_ledger_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("reference,giftcard_uuid,amount_in_cents\n")
    with pytest.raises(InputError, match="lacks the column"):
        read_ledger(path)


def test_read_export_errors(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"id": 1}\n')
    with pytest.raises(InputError, match="line 1: not a transaction"):
        list(read_export(path))


def test_report_file(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    ledger = [row("A", 0), row("B", 50, amount=777)]
    summary = reconcile_to_csv(ledger, [tx(1, 1), tx(2, 9999), tx(3, 2)], out)
    assert (summary.matched, summary.missing_in_leat, summary.unexpected_in_leat) == (1, 1, 2)
    with out.open(newline="") as f:
        lines = list(csv.reader(f))
    assert tuple(lines[0]) == REPORT_COLUMNS
    at = (T0 + timedelta(seconds=9999)).isoformat()
    assert lines[1] == ["unexpected_in_leat", "", "2", "tx-2", CARD, SHOP, "1000", at]  # at once
    at = (T0 + timedelta(seconds=2)).isoformat()
    assert lines[2] == ["unexpected_in_leat", "", "3", "tx-3", CARD, SHOP, "1000", at]  # held
    at = (T0 + timedelta(seconds=50)).isoformat()
    assert lines[3] == ["missing_in_leat", "B", "", "", CARD, SHOP, "777", at]
    assert len(lines) == 4 and not (tmp_path / "report.csv.partial").exists()
    in_memory = reconcile(ledger, [tx(1, 1), tx(2, 9999), tx(3, 2)])
    assert [list(map(str, d.csv_row())) for d in in_memory.discrepancies] == lines[1:]


def test_naive_ledger_time_is_refused() -> None:
    naive = LedgerRow("A", CARD, SHOP, 1, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        Reconciler([naive])
