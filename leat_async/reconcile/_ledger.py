"""Reading the reconciliation's inputs: a ledger CSV, and an export (JSONL or CSV)."""

from __future__ import annotations

import csv
import functools
import io
import operator
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final, NamedTuple, NoReturn

try:
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - without orjson (PyPy)
    import json

    _loads = json.loads

from .. import CreatedAt, GiftcardTransaction, transaction_from_json
from ..export import (
    CSV_TEXT_COLUMNS,
    ExtraMissingError,
    format_of,
    open_compressed,
    parquet_rows,
    parse_datetime,
)
from ..export.csv_cells import unprotect

__all__ = [
    "LEDGER_COLUMNS",
    "InputError",
    "LedgerFields",
    "LedgerRow",
    "RepeatedTransactionError",
    "read_export",
    "read_ledger",
    "read_ledger_fields",
]

_SHARED_UUIDS: Final = 1 << 16
LEDGER_COLUMNS: Final = ("reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at")


class LedgerRow(NamedTuple):
    """One row of your ledger: a payment you expect Leat to have recorded.

    ``created_at`` must be timezone-aware (:class:`Reconciler` refuses a naive one).
    """

    reference: str
    giftcard_uuid: str
    shop_uuid: str
    amount_in_cents: int
    created_at: datetime


class InputError(ValueError):
    """A ledger or export file that cannot be read as one; the text names the file and line."""


class RepeatedTransactionError(InputError):
    """A transaction id that came more than once. Leat holds each transaction once, so such an
    input is not one listing of Leat's (two overlapping exports joined, say) and nothing in it
    is matched: a report built on it would describe money that does not exist.

    ``transaction_id`` is an id that repeats (one that came as different payments, if any
    did), ``copies`` how often it came. ``same_payment``: whether those copies agree on what
    reconcile compares (uuid, card, shop, amount and time); ``None`` where that is not known.
    ``repeated_ids``: how many ids repeat in all; ``None`` where the search stopped at the first.
    """

    def __init__(
        self,
        transaction_id: int,
        copies: int = 2,
        same_payment: bool | None = None,
        repeated_ids: int | None = None,
    ) -> None:
        self.transaction_id = transaction_id
        self.copies = copies
        self.same_payment = same_payment
        self.repeated_ids = repeated_ids
        times = "twice" if copies == 2 else f"{copies:,} times"
        more = (
            f" ({repeated_ids - 1:,} more ids repeat)" if repeated_ids and repeated_ids > 1 else ""
        )
        how = {
            True: ", the same payment each time, as when overlapping exports are joined",
            False: ", as different payments (uuid, card, shop, amount or time differ)",
            None: "",
        }[same_payment]
        super().__init__(
            f"transaction id {transaction_id} appears {times}{more}{how}: Leat holds each "
            "transaction once, so reconcile against one export of the period"
        )

    def __reduce__(self) -> tuple[type[RepeatedTransactionError], tuple[object, ...]]:
        return type(self), (self.transaction_id, self.copies, self.same_payment, self.repeated_ids)


def read_ledger(path: str | os.PathLike[str]) -> Iterator[LedgerRow]:
    """Stream the rows of a ledger CSV with the columns :data:`LEDGER_COLUMNS` (others are
    ignored), in file order.

    ``created_at`` is ISO 8601; a date, or a time without a zone, is UTC. The file is opened and
    its header checked at once (``OSError``, or :class:`InputError` for a missing column); a bad
    row raises :class:`InputError` naming its line when the iteration reaches it.
    """
    return map(_as_ledger_row, read_ledger_fields(path))


_as_ledger_row = functools.partial(tuple.__new__, LedgerRow)

#: a ledger row's values, as a plain tuple in :class:`LedgerRow`'s order
LedgerFields = tuple[str, str, str, int, datetime]


def read_ledger_fields(path: str | os.PathLike[str]) -> Iterator[LedgerFields]:
    """:func:`read_ledger`'s values as plain tuples: the same checks, for jobs that need speed."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        at = _columns(path, f)
    return _read_ledger(path, at)


def _columns(path: str | os.PathLike[str], f: Iterable[str]) -> list[int]:
    """Where the ledger's columns are, from the header."""
    try:
        header = [name.strip() for name in next(csv.reader(f), [])]
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    absent = [c for c in LEDGER_COLUMNS if c not in header]
    if absent:
        raise InputError(f"{path}: the ledger lacks the column(s) {', '.join(absent)}")
    return [header.index(c) for c in LEDGER_COLUMNS]


def _read_ledger(path: str | os.PathLike[str], at: list[int]) -> Iterator[LedgerFields]:
    # each uuid as written -> stripped, one string object per uuid: a ledger repeats them a lot
    uuids: dict[str, str] = {}
    fields = operator.itemgetter(*at)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            next(reader, None)  # the header
            for record in reader:
                if not record:
                    continue
                try:
                    ref, card, shop, amount, when = fields(record)
                    when = when.strip()
                    row = (
                        ref.strip(),
                        uuids.get(card) or _uuid(uuids, card, "giftcard_uuid"),
                        uuids.get(shop) or _uuid(uuids, shop, "shop_uuid"),
                        _cents(amount),
                        parse_datetime(when) if when else _empty("created_at"),
                    )
                except IndexError:
                    raise InputError(
                        f"{path} line {reader.line_num}: {len(record)} columns, expected at "
                        f"least {max(at) + 1}"
                    ) from None
                except ValueError as exc:
                    raise InputError(f"{path} line {reader.line_num}: {exc}") from None
                yield row
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            raise InputError(f"{path}: not a readable CSV ({exc})") from None


def _uuid(uuids: dict[str, str], text: str, column: str) -> str:
    stripped = text.strip() or _empty(column)
    if len(uuids) >= _SHARED_UUIDS:  # bounded: a ledger may name millions of cards
        uuids.clear()
    uuids[text] = stripped
    return stripped


def _empty(column: str) -> NoReturn:
    raise ValueError(f"{column} is empty")


def _cents(text: str) -> int:
    digits = text.strip()  # around the number, whitespace is allowed
    unsigned = digits[1:] if digits[:1] in ("-", "+") else digits
    # int() alone also takes "1_000" and the digits of other scripts ("\u0661\u0662"): not money
    if unsigned.isascii() and unsigned.isdigit():
        return int(digits)
    raise ValueError(
        f"amount_in_cents {digits!r:.30} is not a whole number of cents "
        "(digits 0-9 with an optional sign)"
    )


def read_export(
    path: str | os.PathLike[str], *, created_at: CreatedAt | None = None
) -> Iterator[GiftcardTransaction]:
    """Stream the transactions of an export file, of the format and compression its name says
    (as the export chose them: ``.csv``, ``.parquet``, ``.gz``, ``.zst``; else JSONL); with
    ``created_at``, only those it contains (the listing's filter, applied to the file).

    Raises :class:`InputError` at the first line that is not a transaction, and for a format
    whose extra is not installed.
    """
    try:
        fmt, compression = format_of(os.fspath(path))
        if fmt == "parquet":
            rows = _parquet_errors(path, parquet_rows(path))
        elif fmt == "csv":
            rows = _csv_errors(path, _read_export_csv(path, compression))
        else:
            rows = _read_export_jsonl(path, compression)
    except ExtraMissingError as exc:
        raise InputError(str(exc)) from None
    if created_at is None:
        return rows
    return (tx for tx in rows if created_at.contains(tx.created_at))


def _csv_errors(
    path: str | os.PathLike[str], rows: Iterator[GiftcardTransaction]
) -> Iterator[GiftcardTransaction]:
    try:
        yield from rows
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise InputError(f"{path}: not a readable CSV ({exc})") from None


def _parquet_errors(
    path: str | os.PathLike[str], rows: Iterator[GiftcardTransaction]
) -> Iterator[GiftcardTransaction]:
    try:
        yield from rows
    except (ValueError, TypeError, KeyError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: not a Parquet export ({exc})") from None


def _read_export_jsonl(
    path: str | os.PathLike[str], compression: str
) -> Iterator[GiftcardTransaction]:
    with open_compressed(path, compression) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield transaction_from_json(_loads(line))
            except ValueError as exc:  # bad JSON, or not the API's shape
                raise InputError(f"{path} line {number}: not a transaction ({exc})") from None


def _read_export_csv(
    path: str | os.PathLike[str], compression: str
) -> Iterator[GiftcardTransaction]:
    raw = open_compressed(path, compression)
    with io.TextIOWrapper(raw, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM
        reader = csv.DictReader(f)
        for r in reader:
            try:
                text = {name: unprotect(r[name]) for name in CSV_TEXT_COLUMNS}
                yield transaction_from_json(
                    {
                        "id": int(r["id"]),
                        "uuid": text["uuid"] or None,
                        "amount_in_cents": int(r["amount_in_cents"]),
                        "type": text["type"],
                        "settled": r["settled"] == "true",
                        "card": {"id": int(r["card_id"]), "uuid": text["card_uuid"] or None},
                        "shop": {
                            "id": int(r["shop_id"]),
                            "uuid": text["shop_uuid"] or None,
                            "name": text["shop_name"],
                        },
                        "settlements": [],
                        "created_at": r["created_at"],
                    }
                )
            except (KeyError, TypeError, ValueError) as exc:  # TypeError: a short row's None
                why = f"no {exc.args[0]!r} column" if isinstance(exc, KeyError) else str(exc)
                raise InputError(
                    f"{path} line {reader.line_num}: not a transaction ({why})"
                ) from None
