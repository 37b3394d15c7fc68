"""Reconcile's inputs (issue 19): a transaction id given twice, a period over an export file,
and ledger amounts that are not ASCII digits."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leat_async import CreatedAt, GiftcardTransaction
from leat_async.reconcile import (
    InputError,
    Reconciler,
    read_export,
    read_ledger,
    reconcile,
    reconcile_to_csv,
)

from .test_reconcile import CARD, SHOP, T0, row, tx, write_ledger


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- a transaction id twice -------------------------------------------------------------------


def test_a_doubled_transaction_is_refused_in_memory() -> None:
    """The issue's case: two ledger rows, one transaction given twice. Leat holds one."""
    ledger = [row("A", 0), row("B", 0)]
    with pytest.raises(InputError, match="transaction id 1 appears twice"):
        reconcile(ledger, [tx(1, 0), tx(2, 50, amount=5), tx(1, 0)])


def test_the_streaming_reconciler_refuses_the_second_copy() -> None:
    rec = Reconciler([row("A", 0)])
    assert rec.feed(tx(1, 0)) is None
    with pytest.raises(InputError, match="transaction id 1 appears twice"):
        rec.feed(tx(1, 0))


@pytest.mark.parametrize("memory_rows", [500, 200_000], ids=["on disk", "in one buffer"])
def test_overlapping_exports_joined_are_refused_and_leave_nothing(
    tmp_path: Path, memory_rows: int
) -> None:
    """Exports of 0..2999 and 2000..4999 joined: 1,000 ids twice, far apart in the input."""
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "report.csv"
    ledger = [row(f"R{i}", i * 10) for i in range(5000)]
    joined = [tx(i, i * 10 + 1) for i in range(3000)] + [
        tx(i, i * 10 + 1) for i in range(2000, 5000)
    ]
    with pytest.raises(InputError) as raised:
        reconcile_to_csv(ledger, joined, out, tmp_dir=work, memory_rows=memory_rows)
    message = str(raised.value)
    assert message.startswith("transaction id 2000 appears twice"), message
    assert "the same payment each time" in message and "999 more ids repeat" in message
    assert names(tmp_path) == ["work"] and names(work) == []


def test_one_id_for_two_different_payments_is_refused_and_nothing_is_written() -> None:
    out = io.StringIO()  # as `-o -`: not even the header may go out
    txs = [tx(7, 0), tx(2, 10), tx(7, 99, amount=555)]
    with pytest.raises(InputError, match="transaction id 7 appears twice, as different payments"):
        reconcile_to_csv([row("A", 0)], txs, out, memory_rows=2)
    assert out.getvalue() == ""


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 8), st.integers(0, 3)), max_size=14),
    st.integers(2, 5),
)
def test_any_repeat_is_caught_on_disk_and_in_memory(
    specs: list[tuple[int, int]], memory_rows: int
) -> None:
    """Ids drawn from a few values (copies identical or not): both paths refuse exactly the
    inputs that repeat an id, and name one that repeats; otherwise they agree as before."""
    txs = [tx(id, 5.0 * k, amount=100 + k) for id, k in specs]
    ledger = [row(f"R{i}", 5.0 * k, amount=100 + k) for i, (_, k) in enumerate(specs)]
    ids = [id for id, _ in specs]
    repeated = {id for id in ids if ids.count(id) > 1}
    out = io.StringIO()
    if not repeated:
        summary = reconcile_to_csv(ledger, txs, out, memory_rows=memory_rows)
        assert summary == reconcile(ledger, txs).summary
        return
    for attempt in (
        lambda: reconcile_to_csv(ledger, txs, out, memory_rows=memory_rows),
        lambda: reconcile(ledger, txs),
    ):
        with pytest.raises(InputError) as raised:
            attempt()
        found = re.match(r"transaction id (\d+) appears", str(raised.value))
        assert found is not None and int(found[1]) in repeated, str(raised.value)
    assert out.getvalue() == ""


# -- a period over an export file -------------------------------------------------------------


def export_lines(txs: list[GiftcardTransaction]) -> str:
    return "".join(
        json.dumps(
            {
                "id": t.id,
                "uuid": t.uuid,
                "amount_in_cents": t.amount_in_cents,
                "type": t.type,
                "settled": t.settled,
                "card": {"id": t.card.id, "uuid": t.card.uuid},
                "shop": {"id": t.shop.id, "uuid": t.shop.uuid, "name": t.shop.name},
                "settlements": [],
                "created_at": t.created_at.isoformat(),
            }
        )
        + "\n"
        for t in txs
    )


def test_read_export_keeps_the_period_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "year.jsonl"
    path.write_text(export_lines([tx(i, 3600.0 * i) for i in range(48)]))
    day = CreatedAt(gte=T0 + timedelta(hours=10), lt=T0 + timedelta(hours=34))
    kept = [t.id for t in read_export(path, created_at=day)]
    assert kept == list(range(10, 34))  # the lower bound in, the upper one out
    assert [
        t.id for t in read_export(path, created_at=CreatedAt(gt=T0, lte=T0 + timedelta(hours=2)))
    ] == [1, 2]
    assert len(list(read_export(path))) == 48


# -- ledger amounts ---------------------------------------------------------------------------


def amount_row(tmp_path: Path, amount: str) -> Path:
    return write_ledger(
        tmp_path / "l.csv",
        [["A", CARD, SHOP, "100", "2024-06-01"], ["B", CARD, SHOP, amount, "2024-06-01"]],
    )


@pytest.mark.parametrize(
    "amount",
    [
        "-1_250",
        "1_000",
        "\u0661\u0662\u0665\u0660",  # Arabic-Indic digits
        "\u06f1\u06f2\u06f5\u06f0",  # Extended Arabic-Indic (Persian) digits
        "\uff11\uff12\uff15\uff10",  # full-width digits
        "-\u0967",  # a Devanagari digit after a sign
    ],
)
def test_ledger_amounts_that_int_would_take_are_refused(tmp_path: Path, amount: str) -> None:
    with pytest.raises(InputError, match=r"line 3: amount_in_cents .* is not a whole number"):
        list(read_ledger(amount_row(tmp_path, amount)))


@pytest.mark.parametrize(
    "amount", ["12.50", "1 250", "1\u00a0250", "- 5", "+-5", "1e3", "0x10", " "]
)
def test_a_refused_amount_says_what_is_expected(tmp_path: Path, amount: str) -> None:
    with pytest.raises(InputError) as raised:
        list(read_ledger(amount_row(tmp_path, amount)))
    assert str(raised.value).endswith(
        "is not a whole number of cents (digits 0-9 with an optional sign)"
    )
    assert "line 3: amount_in_cents" in str(raised.value)


def test_ascii_amounts_with_a_sign_or_spaces_around_are_read(tmp_path: Path) -> None:
    rows = [["A", CARD, SHOP, amount, "2024-06-01"] for amount in ("-1250", "+500", " 42 ", "007")]
    got = [r.amount_in_cents for r in read_ledger(write_ledger(tmp_path / "l.csv", rows))]
    assert got == [-1250, 500, 42, 7]
