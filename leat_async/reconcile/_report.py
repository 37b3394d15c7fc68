"""What a reconciliation reports: its rows, its counts, and how the rows are written as CSV."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import IO, Final, Literal, NamedTuple

import attrs

from .. import GiftcardTransaction
from ..export.csv_cells import LINE_END, protect
from ._ledger import LedgerRow

__all__ = [
    "REPORT_COLUMNS",
    "Discrepancy",
    "Match",
    "ReconcileSummary",
    "Status",
    "write_report_rows",
]

REPORT_COLUMNS: Final = (
    "status",
    "reference",
    "transaction_id",
    "transaction_uuid",
    "giftcard_uuid",
    "shop_uuid",
    "amount_in_cents",
    "created_at",
)
Status = Literal["missing_in_leat", "unexpected_in_leat"]

# Named tuples: light enough to make one per row of millions.


class Match(NamedTuple):
    ledger: LedgerRow
    transaction: GiftcardTransaction


class Discrepancy(NamedTuple):
    """One row of the report."""

    status: Status
    reference: str
    transaction_id: int | None
    transaction_uuid: str | None
    giftcard_uuid: str | None
    shop_uuid: str | None
    amount_in_cents: int
    created_at: datetime

    @classmethod
    def missing(cls, row: LedgerRow) -> Discrepancy:
        return cls(
            "missing_in_leat",
            row.reference,
            None,
            None,
            row.giftcard_uuid,
            row.shop_uuid,
            row.amount_in_cents,
            row.created_at,
        )

    @classmethod
    def unexpected(cls, tx: GiftcardTransaction) -> Discrepancy:
        return cls(
            "unexpected_in_leat",
            "",
            tx.id,
            tx.uuid,
            tx.card.uuid,
            tx.shop.uuid,
            tx.amount_in_cents,
            tx.created_at,
        )

    def csv_row(self) -> tuple[str | int, ...]:
        """The values of :data:`REPORT_COLUMNS` (``None`` as an empty cell)."""
        return (
            self.status,
            self.reference,
            "" if self.transaction_id is None else self.transaction_id,
            self.transaction_uuid or "",
            self.giftcard_uuid or "",
            self.shop_uuid or "",
            self.amount_in_cents,
            self.created_at.isoformat(),
        )


@attrs.frozen
class ReconcileSummary:
    matched: int
    missing_in_leat: int
    unexpected_in_leat: int

    @property
    def clean(self) -> bool:
        """Everything matched."""
        return not (self.missing_in_leat or self.unexpected_in_leat)

    @property
    def ledger_rows(self) -> int:
        return self.matched + self.missing_in_leat

    @property
    def transactions(self) -> int:
        return self.matched + self.unexpected_in_leat


# -- CSV --------------------------------------------------------------------------------------

_QUOTE_IF: Final = frozenset(',"\r\n')


def _cell(value: str | int) -> str:
    """RFC 4180, and text a spreadsheet would run as a formula behind a ``'`` (the export's
    rule, :func:`~leat_async.export.csv_cells.protect`: a reader that drops one gets the text)."""
    if isinstance(value, int):
        return str(value)
    value = protect(value)
    if _QUOTE_IF.isdisjoint(value):
        return value
    return '"' + value.replace('"', '""') + '"'


def write_report_rows(out: IO[str], rows: Iterable[tuple[str | int, ...]]) -> None:
    """Write report rows (:meth:`Discrepancy.csv_row` values), one CRLF-ended line each."""
    out.writelines(",".join(map(_cell, row)) + LINE_END for row in rows)


def write_report_header(out: IO[str]) -> None:
    write_report_rows(out, [REPORT_COLUMNS])
