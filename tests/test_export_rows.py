"""Rows to bytes, without a server: CSV any reader gets back, JSONL for whatever was accepted."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leat_async import transaction_from_json
from leat_async._api.params import CreatedAt
from leat_async.export._incremental import through_of, window_from
from leat_async.export._rows import (
    CSV_COLUMNS,
    ENCODERS,
    HEADERS,
    dumps_without_recursion,
    jsonl_plain,
)
from leat_async.export.csv_cells import RISKY_STARTS, protect, unprotect

ODD_TEXTS = [
    "Ship\rShape",
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-5% off",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\r=both",
    "'quoted already",
    "''",
    "'",
    'comma, "quote"',
    "line\nfeed",
    "\r\n",
    "",
    "plain",
]

any_text = st.text(st.characters(codec="utf-8"))


@given(any_text)
def test_protect_is_reversible_and_defuses_formulas(text: str) -> None:
    cell = protect(text)
    assert unprotect(cell) == text
    assert not cell.startswith(RISKY_STARTS)


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_protect_examples(text: str) -> None:
    cell = protect(text)
    assert unprotect(cell) == text
    assert cell == ("'" + text if text[:1] in "=+-@\t\r'" and text else text)


def tx_doc(shop_name: str = "Krusty Krab", **over: Any) -> dict[str, Any]:
    doc = {
        "id": 7,
        "uuid": "0b1c",
        "amount_in_cents": -1250,
        "type": "STANDARD",
        "settled": True,
        "card": {"id": 3, "uuid": "ca4d"},
        "shop": {"id": 2, "uuid": "5b0b", "name": shop_name},
        "settlements": [],
        "created_at": "2024-03-01T12:00:00+00:00",
    }
    return {**doc, **over}


@given(st.lists(any_text, min_size=1, max_size=5))
def test_csv_rows_come_back_from_any_csv_reader(names: list[str]) -> None:
    txs = [transaction_from_json(tx_doc(name, id=i)) for i, name in enumerate(names)]
    blob = HEADERS["csv"] + ENCODERS["csv"](txs)
    assert blob.count(b"\r\n") >= len(txs) + 1  # RFC 4180 record ends
    records = list(csv.reader(io.StringIO(blob.decode(), newline="")))
    assert records[0] == list(CSV_COLUMNS) and len(records) == len(txs) + 1
    column = CSV_COLUMNS.index("shop_name")
    assert [unprotect(r[column]) for r in records[1:]] == names
    assert [r[CSV_COLUMNS.index("amount_in_cents")] for r in records[1:]] == ["-1250"] * len(txs)


def test_csv_quotes_a_lone_carriage_return() -> None:
    line = ENCODERS["csv"]([transaction_from_json(tx_doc("Ship\rShape", type="-x"))])
    assert b'"Ship\rShape"' in line and b",'-x," in line and b",-1250," in line


def nested(depth: int) -> Any:
    value: Any = {"leaf": "é"}
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [300, 5000])
def test_jsonl_writes_any_depth(depth: int) -> None:
    """orjson writes 255 levels while it reads 1,024; the standard library recurses."""
    doc = tx_doc(settlements=[nested(depth)])
    tx = transaction_from_json(doc)
    for encode in (ENCODERS["jsonl"], jsonl_plain):
        line = encode([tx, tx])
        assert line.count(b"\n") == 2
        if depth <= 900:  # json.loads recurses too: check the deepest by its text
            assert json.loads(line.splitlines()[0]) == doc
        else:
            assert line.startswith(b'{"id":7,') and line.count(b"[") == depth * 2


def test_jsonl_keeps_a_lone_surrogate_as_an_escape() -> None:
    """json.loads (the parser without orjson) accepts one; UTF-8 cannot hold it."""
    doc = tx_doc("Zo\ud800", settlements=[{"note": "\udfff"}])
    tx = transaction_from_json(doc)
    for encode in (ENCODERS["jsonl"], jsonl_plain):
        line = encode([tx])
        assert b"\\ud800" in line and json.loads(line) == doc
    assert ENCODERS["csv"]([tx]).count(b"\r\n") == 1  # written ("?"), not a failure


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=20,
)


@given(json_values)
def test_dumps_without_recursion_is_json_dumps(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert dumps_without_recursion(value) == expected


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 3, 1, hour, minute, second, micro, tzinfo=UTC)


def test_through_leaves_the_youngest_rows_for_the_next_run() -> None:
    assert through_of(at(12), 60, None) == at(11, 59)
    assert through_of(at(12), 0.5, None) == at(11, 59, 59)  # whole seconds, rounded down
    assert through_of(at(12), 3600, at(11, 30)) == at(11, 30)  # never before the run's start


def test_window_from() -> None:
    assert window_from(None, None) is None
    assert window_from(None, at(10)) == CreatedAt(gte=at(10))
    given_ = CreatedAt(gte=at(9), lt=at(11))
    assert window_from(given_, at(10)) == CreatedAt(gte=at(10), lt=at(11))
    assert window_from(CreatedAt(gt=at(10, 30)), at(10)) == CreatedAt(gt=at(10, 30))
    with pytest.raises(ValueError, match="nothing"):
        window_from(given_, at(11))  # the caller's range has ended: nothing can be new
