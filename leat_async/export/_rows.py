"""Transactions to the bytes of an export: JSONL lines and CSV records (pure, no I/O).

Every transaction the client accepted can be written. orjson (on CPython) writes JSONL when it
can; a row it refuses (nested deeper than its 255 levels, while its parser reads 1,024)
is written by the standard library instead, and a row nested deeper than even the interpreter's
stack allows by a loop that needs no recursion. A string that is not valid Unicode (a lone
surrogate, which the standard library's parser lets through) is written as a ``\\u`` escape in
JSONL, and as ``?`` in CSV, which is UTF-8 and cannot hold it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Final

from .. import GiftcardTransaction
from .csv_cells import LINE_END, protect

__all__ = [
    "CSV_COLUMNS",
    "CSV_TEXT_COLUMNS",
    "ENCODERS",
    "HEADERS",
    "dumps_without_recursion",
    "json_text",
    "jsonl_plain",
    "transaction_json",
]

CSV_COLUMNS: Final = (
    "id",
    "uuid",
    "amount_in_cents",
    "type",
    "settled",
    "card_id",
    "card_uuid",
    "shop_id",
    "shop_uuid",
    "shop_name",
    "created_at",
)
#: the columns holding free text, written through :func:`~leat_async.export.csv_cells.protect`
CSV_TEXT_COLUMNS: Final = ("uuid", "type", "card_uuid", "shop_uuid", "shop_name")


def _row(tx: GiftcardTransaction, created_at: Any) -> dict[str, Any]:
    card, shop = tx.card, tx.shop
    return {
        "id": tx.id,
        "uuid": tx.uuid,
        "amount_in_cents": tx.amount_in_cents,
        "type": tx.type,
        "settled": tx.settled,
        "card": {"id": card.id, "uuid": card.uuid},
        "shop": {"id": shop.id, "uuid": shop.uuid, "name": shop.name},
        "settlements": tx.settlements,
        "created_at": created_at,
    }


def transaction_json(tx: GiftcardTransaction) -> dict[str, Any]:
    """The transaction with the API's own field names and ``created_at`` in ISO 8601."""
    return _row(tx, tx.created_at.isoformat())


# -- JSONL ------------------------------------------------------------------------------------


def _plain_line(tx: GiftcardTransaction) -> bytes:
    """One line by the standard library, whatever the row holds."""
    doc = transaction_json(tx)
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        text = dumps_without_recursion(doc)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: only a \u escape can carry it
        return dumps_without_recursion(doc, ascii_only=True).encode() + b"\n"


def json_text(value: Any) -> str:
    """``value`` as compact JSON text by the standard library, whatever it holds: any depth,
    and a lone surrogate as a ``\\u`` escape (so that the text is valid UTF-8)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        text = dumps_without_recursion(value)
    try:
        text.encode()
    except UnicodeEncodeError:
        return dumps_without_recursion(value, ascii_only=True)
    return text


def jsonl_plain(rows: Sequence[GiftcardTransaction]) -> bytes:
    """JSONL by the standard library alone."""
    return b"".join([_plain_line(tx) for tx in rows])


def dumps_without_recursion(value: Any, *, ascii_only: bool = False) -> str:
    """``json.dumps(value, separators=(",", ":"))`` with a stack of its own: any depth.

    ``value`` is what a JSON parser gives: dicts with str keys, lists (or tuples), scalars.
    """
    string = encode_basestring_ascii if ascii_only else encode_basestring
    out: list[str] = []
    # per open container: its remaining (separator, item) parts, and its closing bracket
    stack: list[tuple[Iterator[tuple[str, Any]], str]] = [(iter([("", value)]), "")]
    while stack:
        parts, closing = stack[-1]
        part = next(parts, None)
        if part is None:
            stack.pop()
            out.append(closing)
            continue
        separator, item = part
        out.append(separator)
        if isinstance(item, dict):
            out.append("{")
            pairs = enumerate(item.items())
            members = ((("," if i else "") + string(k) + ":", v) for i, (k, v) in pairs)
            stack.append((members, "}"))
        elif isinstance(item, list | tuple):
            out.append("[")
            elements = (("," if i else "", v) for i, v in enumerate(item))
            stack.append((elements, "]"))
        elif isinstance(item, str):
            out.append(string(item))
        else:
            out.append(json.dumps(item))
    return "".join(out)


try:
    import orjson
except ImportError:  # pragma: no cover - without orjson (PyPy)
    _jsonl: Callable[[Sequence[GiftcardTransaction]], bytes] = jsonl_plain
else:
    _LINE: Final = orjson.OPT_APPEND_NEWLINE

    def _fast_line(tx: GiftcardTransaction) -> bytes:
        try:
            return orjson.dumps(_row(tx, tx.created_at), option=_LINE)
        except orjson.JSONEncodeError:  # e.g. deeper than orjson writes: the slow way
            return _plain_line(tx)

    def _jsonl(rows: Sequence[GiftcardTransaction]) -> bytes:
        # orjson writes a datetime as isoformat() does and a tuple as a list: no conversions
        dumps = orjson.dumps
        try:
            return b"".join([dumps(_row(tx, tx.created_at), option=_LINE) for tx in rows])
        except orjson.JSONEncodeError:
            return b"".join([_fast_line(tx) for tx in rows])


# -- CSV --------------------------------------------------------------------------------------


def _csv_text(rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=LINE_END).writerows(rows)
    text = buf.getvalue()
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: UTF-8 cannot hold it
        return text.encode("utf-8", "replace")


def _csv(rows: Sequence[GiftcardTransaction]) -> bytes:
    return _csv_text(
        [
            (
                tx.id,
                protect(tx.uuid or ""),
                tx.amount_in_cents,
                protect(tx.type),
                "true" if tx.settled else "false",
                tx.card.id,
                protect(tx.card.uuid or ""),
                tx.shop.id,
                protect(tx.shop.uuid or ""),
                protect(tx.shop.name),
                tx.created_at.isoformat(),
            )
            for tx in rows
        ]
    )


#: what a new export file starts with
HEADERS: Final = {"jsonl": b"", "csv": _csv_text([CSV_COLUMNS])}
#: a page of transactions to the bytes that go into the file
ENCODERS: Final[dict[str, Callable[[Sequence[GiftcardTransaction]], bytes]]] = {
    "jsonl": _jsonl,
    "csv": _csv,
}
